"""The trace dataset's calls: run one call (in the sandbox or in-process), turn what came back into
a record, and map that over every call of a shard in order.

Part of :mod:`tracegym.datasets.traces` (outcomes and columns are described there). Both runners
live in the tracer layer: :func:`~tracegym.tracers.sandbox.run_source` and
:func:`~tracegym.tracers.in_process.run_in_process`; their results share one outcome vocabulary
(:mod:`tracegym.tracers.outcomes`), read here the same way for both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallSettings:
    """How each call runs: in the sandbox or not, events recorded, wall seconds; ``pool``, a
    :class:`~tracegym.tracers.zygote.SandboxPool` the sandboxed calls run in (None: a process
    per call, the same records)."""

    sandbox: bool
    max_events: int
    timeout: float
    pool: object = field(default=None, compare=False)


def in_process(program, call, settings: CallSettings) -> tuple[str, str | None, object]:
    """``(outcome, error, trace or None)`` of one call run in this process (in a forked worker
    on 3.10: see :mod:`tracegym.tracers.in_process`)."""
    from tracegym.tracers import TraceOptions
    from tracegym.tracers.in_process import run_in_process

    return _read(run_in_process(program, None, call.args, call.kwargs, timeout=settings.timeout,
                                trace_options=TraceOptions(max_events=settings.max_events)))


def in_sandbox(program, call, settings: CallSettings) -> tuple[str, str | None, object]:
    """``(outcome, error, trace or None)`` of one call run in the sandbox (warm when
    ``settings.pool`` is set)."""
    from tracegym.errors import ArgumentSerialisationError
    from tracegym.tracers.sandbox import Limits, run_source

    limits = Limits(wall_time_s=settings.timeout, cpu_time_s=max(1, math.ceil(settings.timeout)))
    run = run_source if settings.pool is None else settings.pool.run_source
    try:
        result = run(program.source, program.entry, call.args, dict(call.kwargs),
                     limits=limits, trace_options={"max_events": settings.max_events})
    except ArgumentSerialisationError as err:
        return "argument_error", str(err), None
    return _read(result)


def _read(result) -> tuple[str, str | None, object]:
    """A :class:`~tracegym.tracers.sandbox.RunResult` as ``(outcome, error, trace)``: a run's
    ``ok`` becomes ``ok``, ``exception`` or ``truncated`` by what its trace shows."""
    from tracegym.tracers.outcomes import trace_outcome

    if result.outcome == "ok":
        return trace_outcome(result.trace), None, result.trace
    if result.outcome == "syntax_error":  # no trace; the line in the text
        return "syntax_error", f"line {result.detail.get('lineno')}: {result.message}", None
    return result.outcome, result.message or None, result.trace


def record(program, index: int, call_index: int, call, split: str,
           settings: CallSettings) -> dict:
    """One row of the dataset (``COLUMNS``): the call of ``program`` (``index`` in the whole
    source) with ``program.inputs[call_index]`` = ``call``, run as ``settings`` say."""
    run = in_sandbox if settings.sandbox else in_process
    args_repr, args_json_text = args_text(call), args_json(call)
    outcome, error, trace = run(program, call, settings)
    cwm = trace_json = None
    if trace is not None:
        from tracegym.errors import TraceFormatError
        from tracegym.tracers.cwm import scrub_addresses

        trace = scrub_addresses(trace)  # as the ExecTrace env writes it
        trace_json = trace.to_json()
        try:
            cwm = trace.to_cwm()
        except TraceFormatError as err:
            outcome, error = "format_error", f"to_cwm: {err}"
    outputs = program.outputs
    return {
        "program": program.name, "program_index": index, "origin": program.origin,
        "location": program.location, "source": program.source, "entry": program.entry,
        "call_index": call_index, "args_repr": args_repr, "args_json": args_json_text,
        "expected_output": outputs[call_index] if outputs and call_index < len(outputs)
        else None,
        "outcome": outcome, "error": error,
        "return_repr": trace.return_repr if trace is not None else None,
        "exception_repr": trace.exception_repr if trace is not None else None,
        "num_frames": len(trace.frames) if trace is not None else 0,
        "truncated": bool(trace is not None and trace.truncated),
        "cwm": cwm, "trace_json": trace_json, "split": split,
    }


def args_text(call) -> str:
    """The call's argument list as Python text: ``[1, 2], k=3`` (addresses scrubbed)."""
    from tracegym.tracers import safe_repr
    from tracegym.tracers.cwm import scrub_text

    return scrub_text(", ".join([*(safe_repr(a) for a in call.args),
                                 *(f"{k}={safe_repr(v)}" for k, v in call.kwargs.items())]))


def args_json(call) -> str | None:
    """The call as JSON, or None when JSON would not give back the same values."""
    value = {"args": list(call.args), "kwargs": dict(call.kwargs)}
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
        if json.loads(text) != value:  # a tuple, an int key, ... (a list never equals a tuple)
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return text


def map_ordered(fn: Callable, jobs: list, workers: int) -> Iterator:
    """``map(fn, jobs)``, on ``workers`` threads when > 1, in order, a window at a time."""
    if workers == 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ThreadPoolExecutor

    window = workers * 8  # results held at most: memory stays bounded
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(jobs), window):
            yield from pool.map(fn, jobs[start:start + window])
