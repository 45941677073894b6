"""``tracegym trace-model predict --checkpoint CHECKPOINT --source FILE --entry f --args "..."``
and ``tracegym trace-model eval --checkpoint CHECKPOINT [--traces DIR] [--episodes 50]``.

``eval`` prints :func:`~tracegym.training.evaluate_traces.evaluate_exectrace` as JSON: next-frame,
full-trace and output exact match on ``tracegym/ExecTrace-v0``, each beside the copy baseline
(a progress bar on stderr while it runs).

``predict`` prints the trace a trained trace model predicts for one call, in CWM format (its own
frames fed back: :func:`~tracegym.agents.trace_model.decode.rollout`; the call frame, which holds
the argument values, is taken from the real trace when there is one, else predicted too), then,
when the program runs in the sandbox (:func:`~tracegym.tracers.trace_source`; ``--in-process``
traces it here instead), a unified diff against the real trace and a one-line score. The header
(source context marked ``# << START_OF_TRACE``) comes from the real trace when there is one, else
from the file with the ``def <entry>`` line marked. A checkpoint made with another tokenizer is a
clear error.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

from tracegym.checks import check_int, check_positive_int
from tracegym.errors import SandboxError, TracegymError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("predict",
                       help="predict the trace of one call and diff it with the real one")
    p.add_argument("--checkpoint", required=True, metavar="CHECKPOINT",
                   help="trace model checkpoint file or run directory")
    p.add_argument("--source", required=True, metavar="FILE", help="Python source file")
    p.add_argument("--entry", required=True, help="name of the function to call")
    p.add_argument("--args", default="", metavar="ARGS",
                   help='the call\'s arguments as Python literals, e.g. "[1, 2], k=3"')
    p.add_argument("--max-frames", type=int, default=200, help="frames predicted at most")
    p.add_argument("--timeout", type=float, default=10.0, help="sandbox wall seconds")
    p.add_argument("--in-process", action="store_true",
                   help="run the real call in this process, without the sandbox (trusted code)")
    p.add_argument("--no-run", action="store_true", help="do not run the program (no diff)")
    e = sub.add_parser("eval", help="the ExecTrace metrics beside the copy baseline; prints JSON")
    e.add_argument("--checkpoint", required=True, metavar="CHECKPOINT",
                   help="trace model checkpoint file or run directory")
    e.add_argument("--traces", metavar="DIR",
                   help="`tracegym data traces` output whose test programs to use; freshly "
                   "generated programs if omitted")
    e.add_argument("--kind", default="mixed", choices=("straight_line", "loops", "mixed"),
                   help="without --traces: the generated programs' kind")
    e.add_argument("--episodes", type=int, default=20, help="episodes per metric")
    e.add_argument("--rollout-episodes", type=int, default=None, metavar="N",
                   help="of those, how many also get a full-trace rollout (all if omitted)")
    e.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    e.add_argument("--max-frames", type=int, default=200, help="frames per trace at most")
    e.add_argument("--score-call", action="store_true",
                   help="also score the call frame (its arguments are not in the prompt)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def fallback_header(source: str, entry: str) -> str:
    """The header of ``source`` with the ``def entry`` line marked (no real trace at hand)."""
    from tracegym.tracers.cwm import Trace

    lines = source.split("\n")
    pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(entry)}\s*\(")
    lineno = next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), None)
    if lineno is None:
        raise TracegymError(f"entry: no 'def {entry}(' line in the source")
    return Trace(entry=entry, context=source, frames=[], entry_lineno=lineno).to_cwm()


def real_trace(source: str, entry: str, call, args):
    """``(trace, None)`` or ``(None, why it could not run)``."""
    from tracegym.tracers import Limits, TraceOptions, Tracer, trace_source
    from tracegym.tracers.cwm import scrub_addresses
    from tracegym.tracers.programs import Program

    options = TraceOptions(max_events=args.max_frames)
    try:
        if args.in_process:
            fn = Program("cli", source, entry, (call,), origin="directory").load()
            trace = Tracer(options).trace(fn, *call.args, **call.kwargs)
        else:
            trace = trace_source(source, entry, call.args, call.kwargs,
                                 limits=Limits(wall_time_s=args.timeout), trace_options=options)
    except (ValueError, SyntaxError, KeyError, SandboxError) as err:
        return None, f"{type(err).__name__}: {err}"
    return scrub_addresses(trace), None


def evaluate(args: argparse.Namespace) -> int:
    import json

    from tracegym.training.checkpoint import load_trace_model
    from tracegym.training.evaluate_traces import evaluate_exectrace

    for name in ("episodes", "max_frames"):
        check_positive_int(name, getattr(args, name))
    check_int("rollout_episodes", args.rollout_episodes, 0, optional=True)
    programs = "generated"
    if args.traces:
        from tracegym.datasets.traces import split_programs

        programs = split_programs(args.traces, "test")
    model = load_trace_model(args.checkpoint)
    result = evaluate_exectrace(model, programs=programs, kind=args.kind,
                                episodes=args.episodes, seed=args.seed, max_frames=args.max_frames,
                                rollout_episodes=args.rollout_episodes,
                                given_call=not args.score_call, progress=not args.no_progress)
    where = {"traces": args.traces} if args.traces else {"kind": args.kind}
    print(json.dumps({"checkpoint": str(args.checkpoint), **where, **result}))
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "eval":
        return evaluate(args)
    from tracegym.agents.trace_model.decode import rollout
    from tracegym.envs.exectrace.source import frame_texts
    from tracegym.tracers.programs import parse_arguments
    from tracegym.training.checkpoint import load_trace_model

    path = Path(args.source)
    if not path.is_file():
        raise FileNotFoundError(f"source: no such file {args.source!r}")
    check_positive_int("max_frames", args.max_frames)
    source = path.read_text(encoding="utf-8")
    call = parse_arguments(args.args, field_name="args")
    model = load_trace_model(args.checkpoint)
    trace, why = (None, "--no-run") if args.no_run else real_trace(source, args.entry, call, args)
    if trace is not None:
        header, true_frames = frame_texts(trace)
    else:
        header, true_frames = fallback_header(source, args.entry), None
    # The call frame holds the argument values, which the header (source only) does not: when
    # the real trace is at hand it is given, as in evaluation; otherwise it is predicted too.
    given = true_frames[:1] if true_frames else []
    predicted = rollout(model, header, args.max_frames, given=given)
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
    hits = sum(p == t for p, t in zip(predicted[1:], true_frames[1:]))
    out.write(f"# frames: the call frame given, {len(predicted) - 1} predicted after it, "
              f"{len(true_frames) - 1} real, {hits} equal at their position; full trace exact: "
              f"{tuple(predicted) == tuple(true_frames)}\n")
    return 0

