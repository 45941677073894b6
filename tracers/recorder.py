"""What a traced call records: :class:`TraceOptions`, the snapshot machinery and ``_Recorder``.

``_Recorder`` is the hot loop, one per traced call. ``sys.settrace`` (3.10, 3.11) drives it
directly (:func:`_run_settrace` here); on 3.12+ ``tracers/monitoring.py`` feeds it the same
events from ``sys.monitoring``. It appends raw event tuples; ``tracers/frames.py`` turns them into
:class:`~tracegym.tracers.cwm.Frame` objects after the call. ``tracers/trace.py`` (``Tracer``)
picks the driver and puts the pieces together.

How it is fast (and still exact): the per-event work is the least Python can do, and the repr
work waits until the call is over. A line event appends ``(kind, frame, lineno, names,
snapshot)``. The snapshot is the values tuple itself when every value is an immutable atom, else
its pickle (protocol 3, fast mode, one C call, a deep copy of builtin containers at that instant,
so a list mutated later still reprs as it was). The pickler's dispatch table refuses every type
without a built-in saver, so no user code runs and anything but builtin data (objects, cycles)
is repr'd at once, value by value; so are sets, whose rebuilt iteration order could differ.

A trace function already installed when a call is traced with settrace (a debugger, coverage)
would see none of the call's events, since settrace holds one function only. By default
(``TraceOptions(other_tracer="refuse")``) tracing then raises :class:`TracerConflictError`
naming it, before the call runs; with ``other_tracer="set_aside"`` it is set aside for that call
and put back afterwards, and :class:`DisplacedTracerWarning` names it (once per traced call).
tracegym's own recorder, when one traced call traces another, is neither refused nor reported.
"""

from __future__ import annotations

import os
import pickle
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tracegym.checks import check_int

TRUNCATED = "...<truncated>"
_TRACERS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CALL, _LINE, _RETURN, _EXCEPTION = 0, 1, 2, 3  # a raw event's kind (its first item)


@dataclass(frozen=True)
class TraceOptions:
    """What to trace and how much.

    Args:
        scope: ``"file"`` (default) traces the entry function and every function defined in its
            source file; ``"entry"`` only the entry function's own code; ``"user"`` any code
            outside the standard library and site-packages. tracegym's own frames never.
        files: extra source files whose functions are traced too.
        max_depth: frames deeper than this many traced calls below the entry (the entry is 0)
            are not recorded, nor anything they call. None: no limit.
        max_events: recording stops after this many events (``Trace.truncated``); the call goes
            on untraced. None: no limit.
        max_repr: a repr longer than this is cut to ``max_repr`` characters plus ``TRUNCATED``.
        context: the source context written before the frames: the entry's whole ``"file"``
            (CWM's setting) or only the entry ``"function"``.
        backend: the recorder: ``"c"`` (the C extension, CPython 3.11), ``"python"``, or
            ``"auto"`` (C when importable, else Python). Both give the same frames.
        other_tracer: what to do, on Python 3.10 and 3.11, when another ``sys.settrace``
            function (a debugger, coverage) is installed: ``"refuse"`` (default) raises
            :class:`TracerConflictError` before the call runs; ``"set_aside"`` removes it for
            the traced call, puts it back afterwards and warns (:class:`DisplacedTracerWarning`).
            On 3.12+ the tracer uses ``sys.monitoring`` and runs beside such a function.
    """

    scope: Literal["file", "entry", "user"] = "file"
    files: tuple[str, ...] = ()
    max_depth: int | None = None
    max_events: int | None = 1_000_000
    max_repr: int = 200
    context: Literal["file", "function"] = "file"
    backend: Literal["auto", "python", "c"] = "auto"
    other_tracer: Literal["refuse", "set_aside"] = "refuse"

    def __post_init__(self) -> None:
        if self.scope not in ("file", "entry", "user"):
            raise ValueError(f"scope must be 'file', 'entry' or 'user', got {self.scope!r}")
        if self.context not in ("file", "function"):
            raise ValueError(f"context must be 'file' or 'function', got {self.context!r}")
        if self.backend not in ("auto", "python", "c"):
            raise ValueError(f"backend must be 'auto', 'python' or 'c', got {self.backend!r}")
        if self.other_tracer not in ("refuse", "set_aside"):
            raise ValueError(f"other_tracer must be 'refuse' or 'set_aside', got "
                             f"{self.other_tracer!r}")
        # stored as plain ints: the options travel to the sandbox as JSON
        for name in ("max_depth", "max_events"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), 0, optional=True))
        object.__setattr__(self, "max_repr", check_int("max_repr", self.max_repr, 1))
        if isinstance(self.files, str):
            raise ValueError(f"files must be a tuple of paths, got the string {self.files!r}")


def safe_repr(value: Any) -> str:
    """``repr(value)``, or ``<repr failed: ExcType>`` when that raises."""
    try:
        r = repr(value)
    except Exception as e:  # noqa: BLE001 - a traced program's __repr__ may raise anything
        return f"<repr failed: {type(e).__name__}>"
    if type(r) is not str:  # a __repr__ returning a str subclass; keep the text only
        r = str.__str__(r)
    return r


_IMMUTABLE = frozenset({int, str, float, bool, type(None), complex})  # kept by reference
# The C pickler saves plain functions and classes by name, importing their module: a module
# missing from sys.modules (exec'd code) would mean an import search at every event. Such values
# are repr'd at once when they are locals themselves; nested in a container they still pickle.
_BY_NAME = frozenset({types.FunctionType, type})
# Any failure of a snapshot dump means "repr it now": besides refusals (TypeError), cycles
# (ValueError) and depth (RecursionError), fast mode can fail with a KeyError on its own id-memo
# (a frozenset saved by reduce, protocol 3): that must never reach the traced program.
_SNAP_ERRORS = (Exception,)
# Reaching the recursion or memory limit while recording is the program's doing (the tracer adds
# a few frames and copies of the program's values): it reaches the program, as it would have
# untraced. Any other exception in the tracer's own code is a tracer bug: recording stops, the
# call runs on untraced, and Tracer.trace raises it afterwards (never on Trace.exception).
_PROGRAM_LIMITS = (RecursionError, MemoryError)


class _Refuse(dict):
    """A dispatch table that refuses every type it is asked about. The C pickler asks only for
    types without a built-in saver, so pickling succeeds only for None, bool, int, float, str,
    bytes, bytearray, tuple, list, dict, set, frozenset (exact types, no subclasses) and
    module-level functions and classes (by name): no user code (``__reduce__``) ever runs."""

    __slots__ = ()

    def __missing__(self, key: Any) -> Any:
        raise TypeError(f"not snapshotted: {key!r}")


class _Pickler(pickle.Pickler):
    dispatch_table = _Refuse()


class _Sink:
    __slots__ = ("write",)


def _new_pickler() -> tuple[Callable[[Any], None], Callable[[], bytes]]:
    """``(dump, pop)``: ``dump(v); pop()`` gives v's pickle bytes, two C calls.

    Protocol 3 (no framing) writes each pickle with one ``write``; fast mode (no memo) needs no
    clearing between dumps, and refuses cycles (then the value is repr'd at once).
    """
    chunks: list[bytes] = []
    sink = _Sink()
    sink.write = chunks.append
    p = _Pickler(sink, 3)
    p.fast = True
    return p.dump, chunks.pop


class _Eager(str):
    """A repr taken at event time: the value could not be snapshotted exactly."""

    __slots__ = ()


# Sets and frozensets pickle (protocol 3) as ``builtins set`` + their items: rebuilt, a set may
# iterate in another order, so its repr could differ. Their global's name gives them away
# (a string holding "set\n" only costs a per-value pass, never a wrong repr).
_SET_MARK = b"set\n"


def _visible(loc: dict) -> dict:
    """The locals without hidden ones (``.0``: a comprehension's iterator, shown by address)."""
    return {k: v for k, v in loc.items() if k[:1] != "."}


class _Recorder:
    """The hot loop. One per traced call; ``events`` is a flat list of raw event tuples.

    A call or line event records ``(kind, frame, lineno, names, snapshot)``; the snapshot is
    the locals' values at that instant, deep, in a form whose repr later is exact:

    - ``tuple``: the values themselves, all immutable atoms (int, str, float, bool, None);
    - ``bytes``: the pickle of the values tuple (C speed; a deep copy of builtin containers);
    - ``list``: one item per value: the atom itself, its pickle bytes, or an :class:`_Eager`
      repr taken now (a user object, a set, a cycle: anything the pickler refuses).
    """

    __slots__ = ("events", "wanted", "decide", "stack", "max_depth", "left", "stopped",
                 "truncated", "error", "local", "dump", "pop", "uninstall")

    def __init__(self, decide: Callable[[Any], bool], max_depth: int | None,
                 max_events: int | None) -> None:
        self.events: list[tuple] = []
        self.wanted: dict[Any, bool] = {}
        self.decide = decide
        self.stack: list[Any] = []
        self.max_depth = sys.maxsize if max_depth is None else max_depth
        self.left = sys.maxsize if max_events is None else max_events
        self.stopped = False
        self.truncated = False
        self.error: Exception | None = None  # the tracer's own failure, raised after the call
        self.dump, self.pop = _new_pickler()
        self.uninstall: Callable[[], Any] = lambda: sys.settrace(None)
        self.local = self._make_local()

    def stop(self) -> None:
        self.stopped = True
        self.left = 0
        self.uninstall()
        # Before 3.12 a local trace function returning None leaves the frame's f_trace set, so
        # a stopped recorder would still be called on every line of the frames it traced (and a
        # signal meant for the program, e.g. a wall-time alarm, would keep landing in it).
        for frame in self.stack:
            frame.f_trace = None

    def fail(self, error: Exception) -> None:
        """The tracer itself failed: stop recording, let the call go on untouched."""
        if self.error is None:
            self.error = error
        self.stop()

    def snapshot(self, values: tuple) -> tuple | bytes | list:
        kinds = set(map(type, values))
        if kinds <= _IMMUTABLE:
            return values
        if not kinds.isdisjoint(_BY_NAME):
            return self.per_value(values)
        try:
            self.dump(values)
        except _SNAP_ERRORS:
            self.dump, self.pop = _new_pickler()  # a failed dump may leave state behind
            return self.per_value(values)
        blob = self.pop()
        return blob if _SET_MARK not in blob else self.per_value(values)

    def per_value(self, values: tuple) -> list:
        out = []
        for v in values:
            if type(v) in _IMMUTABLE:
                out.append(v)
                continue
            if type(v) in _BY_NAME:
                out.append(_Eager(safe_repr(v)))
                continue
            try:
                self.dump(v)
            except _SNAP_ERRORS:
                self.dump, self.pop = _new_pickler()
                out.append(_Eager(safe_repr(v)))
                continue
            blob = self.pop()
            out.append(blob if _SET_MARK not in blob else _Eager(safe_repr(v)))
        return out

    # settrace's global function: only "call" events arrive here.
    def __call__(self, frame, event, arg):
        if self.stopped:
            return None
        try:
            code = frame.f_code
            want = self.wanted.get(code)
            if want is None:
                want = self.wanted[code] = self.decide(code)
            if not want or len(self.stack) > self.max_depth:
                return None
            if self.left <= 0:
                self.truncated = True
                self.stop()
                return None
            self.left -= 1
            self.stack.append(frame)
            loc = frame.f_locals
            if ".0" in loc:
                loc = _visible(loc)
            self.events.append((_CALL, code, frame.f_lineno, tuple(loc),
                                self.snapshot(tuple(loc.values())), len(self.stack) - 1))
            return self.local
        except _PROGRAM_LIMITS:
            raise
        except Exception as e:  # noqa: BLE001 - our own failure: raised by Tracer.trace
            self.fail(e)
            return None

    def _make_local(self) -> Callable[[Any, str, Any], Any]:
        """The local trace function: a closure, since reading cells is cheaper than attributes
        on the hottest path. ``left`` counts events still allowed; stopping sets it to 0."""
        events = self.events
        append = events.append
        stack = self.stack
        stack_pop = stack.pop
        dump, pop = self.dump, self.pop
        immutable, by_name = _IMMUTABLE, _BY_NAME
        mark = _SET_MARK
        rec = self
        visible = _visible

        def local(frame, event, arg):
            nonlocal dump, pop
            if not stack or stack[-1] is not frame:
                # Only the frame entered last records (as the C recorder does): sys.monitoring
                # sends a watched code's events for all its frames (other threads, frames past
                # max_depth), and under settrace a frame keeps its f_trace after its return.
                return local
            left = rec.left
            if left <= 0:
                if not rec.stopped:
                    rec.truncated = True
                    rec.stop()
                return None
            try:
                rec.left = left - 1
                if event == "line":  # the hot path: snapshot() inlined
                    loc = frame.f_locals
                    if ".0" in loc:  # a comprehension's hidden iterator
                        loc = visible(loc)
                    values = tuple(loc.values())
                    kinds = set(map(type, values))
                    if kinds <= immutable:
                        pass
                    elif not kinds.isdisjoint(by_name):
                        values = rec.per_value(values)
                        dump, pop = rec.dump, rec.pop
                    else:
                        try:
                            dump(values)
                            values = pop()
                            if mark in values:
                                values = rec.per_value(tuple(loc.values()))
                                dump, pop = rec.dump, rec.pop  # per_value may renew the pickler
                        except _SNAP_ERRORS:
                            rec.dump, rec.pop = _new_pickler()  # a failed dump may leave state
                            values = rec.per_value(tuple(loc.values()))
                            dump, pop = rec.dump, rec.pop
                    append((_LINE, frame.f_code, frame.f_lineno, tuple(loc), values,
                            len(stack) - 1))
                    return local
                if event == "return":  # settrace: a return, a yield or an unwind (see _build)
                    lasti = frame.f_lasti
                    if arg is None and events and events[-1][3] == lasti and \
                            events[-1][0] == _EXCEPTION and events[-1][1] is frame.f_code and \
                            events[-1][5] == len(stack) - 1:
                        # Raised where the frame stands and nothing ran since: an unwind,
                        # even at a yield (a suspended generator closed or thrown into), where
                        # the opcode test of _build would take it for a yield of None.
                        # (It still counts toward max_events, as every settrace event does.)
                        stack_pop()
                        return local
                    append((_RETURN, frame.f_code, frame.f_lineno, lasti, safe_repr(arg),
                            len(stack) - 1))
                    stack_pop()
                    return local
                if event == "unwind":  # sys.monitoring: PY_UNWIND, an exception leaves it
                    stack_pop()
                    return local
                if event == "exit":  # sys.monitoring: PY_RETURN or PY_YIELD, for certain
                    append((_RETURN, frame.f_code, frame.f_lineno, -1, safe_repr(arg),
                            len(stack) - 1))
                    stack_pop()
                    return local
                if event == "exception":  # f_lasti: where it was raised (see "return")
                    append((_EXCEPTION, frame.f_code, frame.f_lineno, frame.f_lasti,
                            safe_repr(arg[1]), len(stack) - 1))
                    return local
                rec.left = left  # opcode events are not recorded
                return local
            except _PROGRAM_LIMITS:
                raise
            except Exception as e:  # noqa: BLE001 - our own failure: raised by Tracer.trace
                rec.fail(e)
                return None

        return local


class TracerConflictError(RuntimeError):
    """Another tracer holds what tracing a call needs: on Python 3.10 and 3.11 a ``sys.settrace``
    function is installed (a debugger, coverage; see ``TraceOptions.other_tracer``), on 3.12+
    every ``sys.monitoring`` tool id the tracer may take (3, 4, 5) is in use. Raised before the
    traced call runs; nothing is left installed."""


class DisplacedTracerWarning(RuntimeWarning):
    """Tracing a call with ``sys.settrace`` and ``TraceOptions(other_tracer="set_aside")`` set
    aside a trace function that was already installed (a debugger, coverage): it sees none of
    the traced call's events; it is put back afterwards.

    Python 3.12+ traces with ``sys.monitoring``, which leaves such a function in place. Python's
    default warning filter shows it once per calling line; silence it with
    ``warnings.simplefilter("ignore", DisplacedTracerWarning)``.
    """


def _check_other_tracer(prior: Any, policy: str, own: tuple[type, ...] = ()) -> None:
    """Refuse (``policy`` "refuse": :class:`TracerConflictError`) or warn that tracing a call
    sets aside ``prior`` (``sys.gettrace()``), unless it is None or one of tracegym's own
    recorders (``_Recorder``, or an ``own`` type): one traced call tracing another is expected,
    and tracegym's frames are never in a trace anyway. The warning points at the first caller
    outside tracers/ (the line that asked for the trace)."""
    if prior is None or isinstance(prior, (_Recorder, *own)):
        return
    if policy == "refuse":
        raise TracerConflictError(
            f"a trace function is already installed ({prior!r}: a debugger or coverage?); "
            "sys.settrace holds one only, so tracing this call would hide it from that tool. "
            "Remove it, or pass TraceOptions(other_tracer='set_aside') to set it aside for the "
            "call (Python 3.12+ traces with sys.monitoring and runs beside it)")
    level, frame = 2, sys._getframe(1)  # stacklevel 2: our caller
    while frame is not None and frame.f_code.co_filename.startswith(_TRACERS_DIR):
        level, frame = level + 1, frame.f_back
    warnings.warn(
        f"tracegym's tracer sets aside the trace function already installed ({prior!r}) while "
        "it traces this call; that function sees none of the call's events and is put back "
        "afterwards (Python 3.12+ traces with sys.monitoring and leaves it in place)",
        DisplacedTracerWarning, stacklevel=level)


def _run_settrace(rec: _Recorder, fn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """``fn(*args, **kwargs)`` with ``rec`` as the settrace function; the function installed
    before (if any) is put back afterwards. Returns ``(result, exception)``."""
    result = exception = None
    prior = sys.gettrace()
    sys.settrace(rec)
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - handed back on the Trace
        exception = e
    finally:
        sys.settrace(prior)
        rec.stopped, rec.left = True, 0  # generators made here may resume: f_trace goes quiet
    return result, exception
