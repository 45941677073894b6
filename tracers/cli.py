"""``tracegym trace FILE --entry f --args "[1, 2], k=3"``: print the trace of one call.

The file runs in the sandbox by default (:func:`~tracegym.tracers.sandbox.trace_source`), since it
may be anyone's code; ``--in-process`` traces it in this process instead (faster, no isolation).
Output is CWM trace text (``--format cwm``) or the lossless JSON (``--format json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="Python source file")
    parser.add_argument("--entry", required=True, help="name of the function to call")
    parser.add_argument("--args", default="", metavar="ARGS",
                        help='the call\'s arguments as Python literals, e.g. "[1, 2], k=3"')
    parser.add_argument("--format", choices=("cwm", "json"), default="cwm",
                        help="CWM trace text (default) or JSON")
    parser.add_argument("--max-events", type=int, default=10_000,
                        help="stop recording after this many events (default 10000)")
    parser.add_argument("--max-repr", type=int, default=200,
                        help="truncate value reprs to this many characters (default 200)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="wall-time limit of the call in seconds, sandbox only (default 10)")
    parser.add_argument("--in-process", action="store_true",
                        help="trace in this process, without the sandbox (trusted code only)")


def main(args: argparse.Namespace) -> int:
    from tracegym.errors import EntryPointError, ProgramSyntaxError
    from tracegym.tracers import Limits, TraceOptions, Tracer, trace_source
    from tracegym.tracers.programs import Program, parse_arguments

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"file: no such file {args.file!r}")
    source = path.read_text(encoding="utf-8")
    call = parse_arguments(args.args, field_name="args")
    options = TraceOptions(max_events=args.max_events, max_repr=args.max_repr)
    if args.in_process:
        program = Program(path.stem, source, args.entry, (call,), origin="directory",
                          location=str(path))
        try:
            namespace = program.namespace()
        except SyntaxError as err:
            raise ProgramSyntaxError(f"{args.file}: line {err.lineno}: {err.msg}",
                                     lineno=err.lineno, offset=err.offset, text=err.text) from None
        if not callable(namespace.get(args.entry)):
            raise EntryPointError(f"entry: {args.entry!r} is not a function defined in "
                                  f"{args.file}")
        result = Tracer(options).trace(namespace[args.entry], *call.args, **call.kwargs)
    else:
        result = trace_source(source, args.entry, call.args, call.kwargs,
                              limits=Limits(wall_time_s=args.timeout), trace_options=options)
    text = result.to_cwm() if args.format == "cwm" else result.to_json()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


COMMANDS = {"trace": ("trace one call of a Python file and print its CWM trace", add_arguments,
                      main)}
