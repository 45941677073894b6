"""tracegym.tracers: trace Python calls into CWM-style state traces.

``trace(fn, *args, **kwargs)`` runs the call in-process and returns a :class:`Trace`;
``Tracer(TraceOptions(...)).trace(fn, ...)`` chooses what and how much to record.
``trace_source(code, entry, args, limits=Limits(...))`` traces untrusted source in a sandboxed
subprocess (:mod:`.sandbox`); ``SandboxPool`` (:mod:`.zygote`) runs many that way, paying the
sandbox's start-up once per worker. ``Trace.to_cwm()`` / ``Trace.from_cwm(text)`` and
``Trace.to_json()`` / ``Trace.from_json(text)`` are the two text forms; :class:`TraceTokenizer`
turns CWM text into token ids. Program sources are in :mod:`.programs`, Hypothesis strategies in
:mod:`.strategies`.
"""

from tracegym.tracers.cwm import (
    ACTION_SEP,
    ARG_SEP,
    CALL_SEP,
    EXCEPTION_SEP,
    FRAME_SEP,
    LINE_SEP,
    RETURN_SEP,
    SPECIAL_TOKENS,
    START_MARKER,
    TRACE_CONTEXT_START,
    UNCHANGED,
    Frame,
    Trace,
)
from tracegym.tracers.in_process import run_in_process
from tracegym.tracers.sandbox import (
    Limits,
    RunResult,
    run_source,
    sandbox_capabilities,
    trace_source,
)
from tracegym.tracers.trace import (
    TRUNCATED,
    DisplacedTracerWarning,
    TraceOptions,
    Tracer,
    TracerConflictError,
    safe_repr,
    trace,
)

__all__ = [
    "ACTION_SEP",
    "ARG_SEP",
    "CALL_SEP",
    "DisplacedTracerWarning",
    "EXCEPTION_SEP",
    "FRAME_SEP",
    "LINE_SEP",
    "RETURN_SEP",
    "SPECIAL_TOKENS",
    "START_MARKER",
    "TRACE_CONTEXT_START",
    "TRUNCATED",
    "UNCHANGED",
    "Frame",
    "Limits",
    "RunResult",
    "SandboxPool",  # noqa: F822 (loaded on first use, below)
    "Trace",
    "TraceOptions",
    "TraceTokenizer",  # noqa: F822 (loaded on first use, below)
    "Tracer",
    "TracerConflictError",
    "run_in_process",
    "run_source",
    "safe_repr",
    "sandbox_capabilities",
    "trace",
    "trace_source",
]


def __getattr__(name: str):
    # the tokenizer imports numpy (most of this package's import time): only when asked, so a
    # sandboxed program's process starts without it
    if name == "TraceTokenizer":
        from tracegym.tracers.tokenizer import TraceTokenizer

        return TraceTokenizer
    if name == "SandboxPool":
        from tracegym.tracers.zygote import SandboxPool

        return SandboxPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
