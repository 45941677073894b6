"""``tracegym trace FILE --entry f --args "[1, 2], k=3"``: print the trace of one call;
``tracegym check-tracer MODULE:ADAPTER``: property-test a tracer (:mod:`.conformance`).

The file runs in the sandbox by default (:func:`~tracegym.tracers.sandbox.run_source`), since it
may be anyone's code; ``--in-process`` traces it in this process instead
(:func:`~tracegym.tracers.in_process.run_in_process`: faster, no isolation). ``--timeout`` bounds
both: the module code and the call are stopped past it. Output is CWM trace text
(``--format cwm``) or the lossless JSON (``--format json``).

Exit status: 0 when the call returned. 1 when it raised: the trace is still printed, ending with
its exception frames, and stderr names the exception (a call whose arguments do not fit the
function raises before its first line, so its trace has no frame); 1 also when the run failed
(timeout, memory, crash, sys.exit) or, in-process, the module code raised, with one line on
stderr after whatever trace came back. 2 for bad input: an option out of range, ``--args`` that
are not literals, a file that does not parse, a missing entry.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="Python source file")
    parser.add_argument("--entry", required=True, metavar="NAME", help="the function to call")
    parser.add_argument("--args", default="", metavar="ARGS",
                        help='the call\'s arguments as Python literals, e.g. "[1, 2], k=3"')
    parser.add_argument("--format", choices=("cwm", "json"), default="cwm",
                        help="CWM trace text or lossless JSON")
    parser.add_argument("--max-events", type=int, default=10_000, metavar="N",
                        help="stop recording after N events (>= 1)")
    parser.add_argument("--max-repr", type=int, default=200, metavar="N",
                        help="cut value reprs to N characters (>= 1)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="wall time of the call, in the sandbox or in-process (> 0)")
    parser.add_argument("--in-process", action="store_true",
                        help="trace in this process, without the sandbox (trusted code only)")


def _check_options(args: argparse.Namespace) -> None:
    from tracegym.checks import check_positive_int
    from tracegym.errors import TracegymError

    for name in ("max_events", "max_repr"):
        # 0 events would print an empty trace and look fine
        check_positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise TracegymError(f"--timeout must be a number of seconds > 0, got {args.timeout}")


def _read(args: argparse.Namespace) -> tuple[str, object]:
    """``(source, call)`` from the file and ``--args``; bad input raises TracegymError."""
    from tracegym.errors import TracegymError
    from tracegym.tracers.programs import parse_arguments

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"file: no such file {args.file!r}")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TracegymError(f"file: {args.file!r} is not UTF-8 text ({err.reason} at byte "
                            f"{err.start})") from None
    try:
        call = parse_arguments(args.args, field_name="args")
    except ValueError as err:  # tracers/programs raises plain ValueError for what the user typed
        raise TracegymError(str(err)) from None
    return source, call


def _in_process(args: argparse.Namespace, source: str, call, options):
    """The :class:`~tracegym.tracers.sandbox.RunResult` of the call traced in this process,
    bounded by ``--timeout`` as the sandboxed run is; a file that does not parse or lacks the
    entry raises TracegymError."""
    from tracegym.errors import EntryPointError, ProgramSyntaxError
    from tracegym.tracers.in_process import run_in_process
    from tracegym.tracers.programs import Program

    path = Path(args.file)
    program = Program(path.stem, source, args.entry, (call,), origin="directory",
                      location=str(path))
    result = run_in_process(program, None, call.args, call.kwargs, timeout=args.timeout,
                            trace_options=options)
    if result.outcome == "syntax_error":
        where = result.detail
        raise ProgramSyntaxError(f"{args.file}: line {where['lineno']}: {result.message}",
                                 lineno=where["lineno"], offset=where["offset"],
                                 text=where["text"])
    if result.outcome in ("entry_missing", "entry_not_callable"):
        raise EntryPointError(f"entry: {args.entry!r} is not a function defined in "
                              f"{args.file}")
    return result


def main(args: argparse.Namespace) -> int:
    from tracegym.tracers import TraceOptions
    from tracegym.tracers.sandbox import Limits, run_source

    _check_options(args)
    source, call = _read(args)
    options = TraceOptions(max_events=args.max_events, max_repr=args.max_repr)
    if args.in_process:
        result = _in_process(args, source, call, options)
        if result.outcome == "module_error":
            print(f"tracegym: trace: {args.file}: the module code raised {result.message}",
                  file=sys.stderr)
            return 1
    else:
        result = run_source(source, args.entry, call.args, call.kwargs,
                            limits=Limits(wall_time_s=args.timeout), trace_options=options)
    if result.trace is None:
        result.unwrap()  # raises: bad input (no parse, no entry) or a SandboxError (timeout...)
    trace = result.trace
    text = trace.to_cwm() if args.format == "cwm" else trace.to_json()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()  # the trace before the error line, when both go to a terminal
    if result.outcome != "ok":
        result.unwrap()  # a trace came back, but the run failed (timeout, memory, sys.exit)
    if trace.exception_repr is not None:
        why = "" if trace.frames else " before its first line (do --args fit its parameters?)"
        print(f"tracegym: trace: {args.entry}({args.args}) raised {trace.exception_repr}{why}",
              file=sys.stderr)
        return 1
    if trace.truncated:
        print(f"tracegym: trace: recording stopped after {args.max_events} events "
              f"(--max-events); the call itself ran to its end", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------- check-tracer
def add_check_tracer_arguments(parser: argparse.ArgumentParser) -> None:
    from tracegym.tracers.strategies import PROGRAM_KINDS

    parser.add_argument("adapter", metavar="MODULE:ADAPTER",
                        help="the tracer's adapter (see tracegym.tracers.conformance), e.g. "
                             "tracegym.tracers.conformance.adapters:PySnooperAdapter")
    parser.add_argument("--max-examples", type=int, default=100, metavar="N",
                        help="programs tried per property (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed")
    parser.add_argument("--kinds", default=",".join(PROGRAM_KINDS), metavar="KIND,...",
                        help="program kinds to draw from, comma-separated")


def check_tracer_main(args: argparse.Namespace) -> int:
    """``tracegym check-tracer MODULE:ADAPTER``: the table of properties held and failed, each
    failure with its minimal program. Exit 1 when one failed, 2 for bad input (one line on
    stderr), including an adapter that cannot run here (a package it needs is missing)."""
    from tracegym.checks import check_positive_int
    from tracegym.errors import TracegymError
    from tracegym.tracers.conformance import (
        AdapterUnavailable,
        check,
        format_results,
        load_adapter,
    )
    from tracegym.tracers.strategies import program_calls

    check_positive_int("--max-examples", args.max_examples)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    try:
        program_calls(kinds)
    except ValueError as err:
        raise TracegymError(f"--kinds: {err}") from None
    # a module beside the user, as `python -m` finds it: the cwd is on the path while the
    # adapter loads, and only then (a caller's later imports must not find the cwd's modules)
    added = "" not in sys.path and os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        adapter = load_adapter(args.adapter)
    except AdapterUnavailable as err:
        raise TracegymError(f"adapter {args.adapter} cannot run here: {err}") from None
    finally:
        if added and os.getcwd() in sys.path:
            sys.path.remove(os.getcwd())
    results = check(adapter, kinds=kinds, max_examples=args.max_examples, seed=args.seed)
    title = (f"{args.adapter} on Python {sys.version.split()[0]}: {args.max_examples} programs "
             f"per property, seed {args.seed}, kinds {','.join(kinds)}")
    sys.stdout.write(format_results(results, title=title, records=adapter.records))
    return 1 if any(r.status == "failed" for r in results) else 0


COMMANDS = {
    "trace": ("trace one call of a Python file and print its CWM trace", add_arguments, main),
    "check-tracer": ("property-test a tracer through its adapter; minimal failing programs",
                     add_check_tracer_arguments, check_tracer_main),
}
