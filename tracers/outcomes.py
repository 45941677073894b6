"""What one traced call came to: the outcome names the runners and the trace dataset share.

A run, sandboxed (:func:`~tracegym.tracers.sandbox.run_source`) or in-process
(:func:`~tracegym.tracers.in_process.run_in_process`), returns a
:class:`~tracegym.tracers.sandbox.RunResult` whose ``outcome`` is one of :data:`RUN_OUTCOMES`.
``ok`` there means the call ran to its end under the tracer: it may have returned or raised, and
its trace may stop at ``max_events``. A trace dataset record (``tracegym data traces``) tells
those three apart with :func:`trace_outcome` and adds the failures only a builder sees; its
``outcome`` is one of :data:`RECORD_OUTCOMES`.
"""

from __future__ import annotations

# outcome -> what it means; the runner that can give it in brackets when not both
RUN_OUTCOMES: dict[str, str] = {
    "ok": "the call ran to its end under the tracer (returned or raised); the trace came back",
    "timeout": "the wall-clock (or, sandboxed, CPU-time) limit ended the run",
    "memory": "the program ran out of memory (sandboxed: its address-space limit)",
    "exit": "the program called sys.exit",
    "syntax_error": "the source does not parse",
    "module_error": "the module code raised",
    "entry_missing": "the source defines no such entry",
    "entry_not_callable": "the entry is defined but not callable",
    "crash": "the process running the call ended without a result: os._exit, a signal, the OOM "
             "killer (in-process: only in 3.10's forked worker)",
    "output_limit": "(sandbox) the program wrote more to stdout+stderr than allowed",
    "violation": "(sandbox) the program broke the result protocol",
    "tracer_error": "(sandbox) the tracer itself failed during the call",
    "serialise_error": "(sandbox) the trace could not be written as JSON",
    "setup_error": "(sandbox) the child could not set up the tracer or the sandbox",
}

# a dataset record: "ok" split by what the trace shows, plus the builder's own failures
RECORD_OUTCOMES: dict[str, str] = {
    "ok": "the call returned: a full trace",
    "exception": "the traced function raised: still a full trace",
    "truncated": "max_events hit: the trace holds the first events",
    **{name: meaning for name, meaning in RUN_OUTCOMES.items() if name != "ok"},
    "argument_error": "the arguments cannot be sent to the sandbox",
    "format_error": "the trace cannot be written as CWM text",
}


def trace_outcome(trace) -> str:
    """``truncated``, ``exception`` or ``ok``: what the trace of a call that ran to its end (a
    run's ``ok``) shows, in that order of precedence."""
    if trace.truncated:
        return "truncated"
    return "exception" if trace.exception_repr is not None else "ok"
