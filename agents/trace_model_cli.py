"""``tracegym trace-model predict --checkpoint CKPT --source FILE --entry f --args "..."``.

Prints the trace a trained trace model predicts for one call, in CWM format (its own frames fed
back: :func:`~tracegym.agents.trace_model.decode.rollout`), then, when the program runs in the
sandbox (:func:`~tracegym.tracers.trace_source`; ``--in-process`` traces it here instead), a
unified diff against the real trace and a one-line score. The header (source context marked
``# << START_OF_TRACE``) comes from the real trace when there is one, else from the file with the
``def <entry>`` line marked. A checkpoint made with another tokenizer is a clear error.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("predict",
                       help="predict the trace of one call and diff it with the real one")
    p.add_argument("--checkpoint", required=True, help="a trace model checkpoint (file or run dir)")
    p.add_argument("--source", required=True, metavar="FILE", help="Python source file")
    p.add_argument("--entry", required=True, help="name of the function to call")
    p.add_argument("--args", default="", metavar="ARGS",
                   help='the call\'s arguments as Python literals, e.g. "[1, 2], k=3"')
    p.add_argument("--max-frames", type=int, default=200, help="frames predicted at most")
    p.add_argument("--timeout", type=float, default=10.0, help="sandbox wall seconds")
    p.add_argument("--in-process", action="store_true",
                   help="run the real call in this process, without the sandbox (trusted code)")
    p.add_argument("--no-run", action="store_true", help="do not run the program (no diff)")


def fallback_header(source: str, entry: str) -> str:
    """The header of ``source`` with the ``def entry`` line marked (no real trace at hand)."""
    from tracegym.tracers.cwm import Trace

    lines = source.split("\n")
    pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(entry)}\s*\(")
    lineno = next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), None)
    if lineno is None:
        raise ValueError(f"entry: no 'def {entry}(' line in the source")
    return Trace(entry=entry, context=source, frames=[], entry_lineno=lineno).to_cwm()


def real_trace(source: str, entry: str, call, args):
    """``(trace, None)`` or ``(None, why it could not run)``."""
    from tracegym.envs.exectrace.source import scrub_addresses
    from tracegym.tracers import Limits, TraceOptions, Tracer, trace_source
    from tracegym.tracers.programs import Program

    options = TraceOptions(max_events=args.max_frames)
    try:
        if args.in_process:
            fn = Program("cli", source, entry, (call,), origin="directory").load()
            trace = Tracer(options).trace(fn, *call.args, **call.kwargs)
        else:
            trace = trace_source(source, entry, call.args, call.kwargs,
                                 limits=Limits(wall_time_s=args.timeout), trace_options=options)
    except (ValueError, SyntaxError, KeyError) as err:
        return None, f"{type(err).__name__}: {err}"
    return scrub_addresses(trace), None


def main(args: argparse.Namespace) -> int:
    from tracegym.agents.trace_model import load_trace_model
    from tracegym.agents.trace_model.decode import rollout
    from tracegym.envs.exectrace.source import frame_texts
    from tracegym.tracers.programs import parse_arguments

    path = Path(args.source)
    if not path.is_file():
        raise FileNotFoundError(f"source: no such file {args.source!r}")
    if args.max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {args.max_frames}")
    source = path.read_text(encoding="utf-8")
    call = parse_arguments(args.args, field_name="args")
    model = load_trace_model(args.checkpoint)
    trace, why = (None, "--no-run") if args.no_run else real_trace(source, args.entry, call, args)
    if trace is not None:
        header, true_frames = frame_texts(trace)
    else:
        header, true_frames = fallback_header(source, args.entry), None
    predicted = rollout(model, header, args.max_frames)
    text = header + "".join(predicted)
    out = sys.stdout
    out.write(text if text.endswith("\n") else text + "\n")
    if true_frames is None:
        out.write(f"# no real trace to compare with ({why})\n")
        return 0
    real = header + "".join(true_frames)
    diff = list(difflib.unified_diff(real.splitlines(True), text.splitlines(True),
                                     "real", "predicted"))
    out.write("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    hits = sum(p == t for p, t in zip(predicted, true_frames))
    out.write(f"# frames: {len(predicted)} predicted, {len(true_frames)} real, {hits} equal at "
              f"their position; full trace exact: {tuple(predicted) == tuple(true_frames)}\n")
    return 0


COMMANDS = {"trace-model": ("predict a trace with a trained trace model (predict)",
                            add_arguments, main)}
