"""What one traced call came to: the outcome vocabulary, in one place.

A run, sandboxed (:func:`~tracegym.tracers.sandbox.run_source`) or in-process
(:func:`~tracegym.tracers.in_process.run_in_process`), returns a
:class:`~tracegym.tracers.sandbox.RunResult` whose ``outcome`` is one of :data:`RUN_OUTCOMES`.
``ok`` there means the call ran to its end under the tracer: it may have returned or raised, and
its trace may stop at ``max_events``. A trace dataset record (``tracegym data traces``) tells
those three apart with :func:`trace_outcome` and adds the failures only a builder sees; its
``outcome`` is one of :data:`RECORD_OUTCOMES`.

=====================  =====  =====  ===========================================================
outcome                run    trace  ``RunResult.unwrap()`` raises
=====================  =====  =====  ===========================================================
ok                     both   yes    nothing: returns the Trace
timeout                both   no     SandboxTimeout (also a TimeoutError)
memory                 both   maybe  SandboxMemoryError
exit                   both   maybe  SandboxCrash
syntax_error           both   no     ProgramSyntaxError (a ValueError, with ``lineno``)
module_error           both   no     SandboxCrash
entry_missing          both   no     EntryPointError (a ValueError)
entry_not_callable     both   no     EntryPointError
crash                  both   no     SandboxCrash
output_limit           sbx    no     SandboxOutputLimit
result_limit           sbx    no     SandboxOutputLimit
violation              sbx    no     SandboxViolation
tracer_error           both   no     SandboxCrash
serialise_error        sbx    no     SandboxCrash
setup_error            sbx    no     SandboxError
=====================  =====  =====  ===========================================================

("sbx": the sandbox only; "maybe": the trace is kept when the tracer saw the call end so.)
A dataset record replaces ``ok`` by ``ok``, ``exception`` or ``truncated`` (what the trace
shows) and adds ``argument_error`` and ``format_error``.

Each label names the cause, not the symptom: a program's own exception is ``ok`` (a record's
``exception``), even when the program replaced a builtin (it has its own copy of the builtins
in the sandbox); a long but harmless program whose trace is too large to send back is
``result_limit``, never ``violation``, which is kept for a result channel that holds no valid
record (a program forging or corrupting its own result); ``setup_error`` is the sandbox's own
failure, before the program ran. tests/tracers/test_outcomes.py runs one program per label.
"""

from __future__ import annotations

# outcome -> what it means; "(sandbox)" when only the sandbox gives it
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
    "result_limit": "(sandbox) the call ended but its trace is larger than Limits.result_bytes",
    "violation": "(sandbox) the result channel held no valid record: the program forged or "
                 "corrupted its own result",
    "tracer_error": "the tracer refused to run beside another tracer (one the program "
                    "installed); sandboxed also: the tracer itself failed during the call",
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
