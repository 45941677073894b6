"""The ``sys.monitoring`` (PEP 669) driver of the recorder, for Python 3.12 and later.

:func:`_run_monitored` feeds the settrace recorder (``tracers/recorder.py``) the events
``sys.settrace`` would send, from ``sys.monitoring`` callbacks, so both drivers give the same
frames (tests/tracers/test_tracer.py compares them). Unlike settrace it leaves a trace function
that is already installed (a debugger, coverage) in place.

It takes a tool id of its own for the call and frees it afterwards: the first free of
:data:`TOOL_IDS` (3, 4, 5). It never takes the ids PEP 669 reserves for a debugger (0), coverage
(1) and a profiler (2), which such a tool may claim while the trace runs; Hypothesis' explain
phase uses 3. With 3, 4 and 5 all taken, tracing raises a TracerConflictError (a RuntimeError)
naming their users.
"""

from __future__ import annotations

import sys
from _thread import get_ident
from typing import Any

from tracegym.tracers.recorder import _PROGRAM_LIMITS, TracerConflictError, _Recorder

# The tool ids the tracer may take, in order (5 is PEP 669's optimizer id, so it comes last).
TOOL_IDS = (3, 4, 5)


def _take_tool_id(mon: Any) -> int:
    """Claim the first free id of :data:`TOOL_IDS` as "tracegym"; a
    :class:`~tracegym.tracers.recorder.TracerConflictError` (a RuntimeError) names the tools
    holding them when none is free."""
    for tool in TOOL_IDS:
        if mon.get_tool(tool) is None:
            try:
                mon.use_tool_id(tool, "tracegym")
            except ValueError:  # another thread claimed it since get_tool
                continue
            return tool
    users = ", ".join(f"{i}: {mon.get_tool(i)!r}" for i in TOOL_IDS)
    raise TracerConflictError(
        f"sys.monitoring has no free tool id for the tracer: ids {TOOL_IDS} are in use ({users});"
        " the tracer leaves ids 0-2 to a debugger, coverage and a profiler")


def _run_monitored(rec: _Recorder, fn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """Python >= 3.12: the same recorder fed by ``sys.monitoring`` (PEP 669) callbacks, sending
    it what ``sys.settrace`` sends on these Pythons (CPython's Python/legacy_tracing.c):

    - "call": PY_START, PY_RESUME, PY_THROW;
    - "line": LINE, and a backward JUMP that stays on one line (a loop, or an inlined
      comprehension, written on one line: settrace sends a line event per iteration);
    - "return": PY_RETURN and PY_YIELD (sent as "exit": certainly a return or a yield);
      PY_UNWIND (an exception leaving the frame) is sent as "unwind", which records nothing:
      the frame's last frame is the exception, as settrace's unwinding "return" gives;
    - "exception": RAISE, STOP_ITERATION.

    PEP 669 allows only some events per code object: LINE, JUMP, PY_RETURN, PY_YIELD and
    STOP_ITERATION are switched on for the code objects the scope wants; the call events, RAISE
    and PY_UNWIND are global. Events come from every thread, so only calls made by this thread
    are recorded, and every other event only for the frame on top of the recorder's stack
    (``rec.local`` checks). A settrace tracer stays in place; our tool id (see
    :func:`_take_tool_id`) is freed afterwards.
    """
    mon = sys.monitoring  # type: ignore[attr-defined]
    ev = mon.events
    tool = _take_tool_id(mon)
    local_events = ev.LINE | ev.JUMP | ev.PY_RETURN | ev.PY_YIELD | ev.STOP_ITERATION
    watched: list[Any] = []
    lines_of: dict[Any, dict[int, int | None]] = {}
    getframe = sys._getframe
    owner = get_ident()
    disable = mon.DISABLE

    def on_start(code, offset, exc=None):
        if rec.stopped or get_ident() != owner:
            return None
        try:
            if code not in rec.wanted:
                want = rec.wanted[code] = rec.decide(code)
                if want:
                    mon.set_local_events(tool, code, local_events)
                    watched.append(code)
        except _PROGRAM_LIMITS:
            raise
        except Exception as e:  # noqa: BLE001 - our own failure: raised by Tracer.trace
            rec.fail(e)
            return None
        rec(getframe(1), "call", None)

    def local(event, arg=None):
        if not rec.stopped:
            rec.local(getframe(2), event, arg)

    def on_jump(code, offset, target):
        if target > offset:
            return disable  # forward: never a line event (a code's local events, reset below)
        lines = lines_of.get(code)
        if lines is None:
            lines = lines_of[code] = {o: line for start, end, line in code.co_lines()
                                      for o in range(start, end, 2)}
        line = lines.get(target)
        if line is None or line != lines.get(offset):
            return disable  # another line: its LINE event follows
        local("line")
        return None

    callbacks = {
        ev.PY_START: on_start,
        ev.PY_RESUME: on_start,
        ev.PY_THROW: on_start,
        ev.LINE: lambda code, line: local("line"),
        ev.JUMP: on_jump,
        ev.PY_RETURN: lambda code, offset, value: local("exit", value),
        ev.PY_YIELD: lambda code, offset, value: local("exit", value),
        ev.PY_UNWIND: lambda code, offset, exc: local("unwind"),
        ev.RAISE: lambda code, offset, exc: local("exception", (type(exc), exc, None)),
        ev.STOP_ITERATION: lambda code, offset, exc: local("exception", (type(exc), exc, None)),
    }
    rec.uninstall = lambda: mon.set_events(tool, 0)
    result = exception = None
    try:
        for event, cb in callbacks.items():
            mon.register_callback(tool, event, cb)
        mon.set_events(tool, ev.PY_START | ev.PY_RESUME | ev.PY_THROW | ev.RAISE | ev.PY_UNWIND)
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed back on the Trace
            exception = e
    finally:
        rec.stopped, rec.left = True, 0
        mon.set_events(tool, 0)
        for code in watched:  # also undoes the DISABLEs returned above
            mon.set_local_events(tool, code, 0)
        for event in callbacks:
            mon.register_callback(tool, event, None)
        mon.free_tool_id(tool)
    return result, exception
