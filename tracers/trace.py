"""In-process execution tracer: ``trace(fn, *args, **kwargs) -> Trace``.

Every argument after ``fn`` goes to ``fn`` untouched, so no option name can clash with the traced
function's keywords. Options live on a frozen :class:`TraceOptions` given to a :class:`Tracer`::

    t = trace(f, 3, key="x")                                   # default options
    t = Tracer(TraceOptions(max_events=1000)).trace(f, 3)      # chosen options

What is recorded, per traced frame (CWM's convention): a ``call`` event with the arguments, a
``line`` event before each line runs with the locals *as they stand before it*, a ``return`` event
with the returned (or, for a generator, yielded) value, and an ``exception`` event where an
exception is raised or passes through. A frame left by an exception gets no return event: its last
frame is the exception. Values are ``repr`` strings, cut at ``max_repr`` characters and then marked
with :data:`TRUNCATED`; a ``__repr__`` that raises gives ``<repr failed: ValueError>``.

The traced call behaves as untraced: it returns the same value or raises the same exception
(``Trace.result`` / ``Trace.exception`` hold the real objects). At ``max_events`` recording stops,
``Trace.truncated`` is set, and the call runs on, untraced, to its end. Should the tracer itself
fail, recording stops the same way and ``trace`` then raises a RuntimeError from that failure:
only the call's own exception goes on ``Trace.exception``.

How it is fast (and still exact): the per-event work is the least Python can do, and the repr
work waits until the call is over. A line event appends ``(kind, frame, lineno, names,
snapshot)``. The snapshot is the values tuple itself when every value is an immutable atom, else
its pickle (protocol 3, fast mode, one C call, a deep copy of builtin containers at that instant,
so a list mutated later still reprs as it was). The pickler's dispatch table refuses every type
without a built-in saver, so no user code runs and anything but builtin data (objects, cycles)
is repr'd at once, value by value; so are sets, whose rebuilt iteration order could differ.
After the call, each distinct snapshot is unpickled and repr'd once (whole, and per container),
then cut to ``max_repr``. The frames are exactly those of an eager repr-every-local tracer
(tests/test_tracer.py compares on many functions), except that objects' ``repr`` showing an
address differ between any two runs.

Python 3.12+ uses ``sys.monitoring`` (PEP 669) behind the same recorder, fed the events settrace
would send (tests/test_tracer.py compares the two); 3.10 and 3.11 use ``sys.settrace``. A
profiler and any earlier trace function are left as they were. Hidden comprehension locals
(``.0``, an iterator whose repr shows an address) are not recorded.

On CPython 3.11 an optional C recorder, ``tracegym.tracers._ctrace`` (built from
``tracers/_ctrace.c`` when a compiler is present), does the same work without a Python frame per
event: a C trace function (``PyEval_SetTrace``) keeps immutable atoms by reference and reprs
anything else at once, and builds the frames in C. ``TraceOptions(backend=...)`` chooses:
``"auto"`` (the C recorder when it is importable, else Python), ``"python"`` or ``"c"``. Both
give the same frames.
"""

from __future__ import annotations

import dis
import gc
import linecache
import os
import pickle
import sys
import sysconfig
import types
from _thread import get_ident
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tracegym.tracers.cwm import Frame, Trace

try:  # the optional C recorder (CPython 3.11 only; see setup.py)
    from tracegym.tracers import _ctrace
except ImportError as _e:  # not built, no compiler, or another Python
    _ctrace = None
    C_UNAVAILABLE: str | None = (
        f"tracegym.tracers._ctrace is not importable ({_e})" if sys.version_info[:2] == (3, 11)
        else f"the C recorder is for CPython 3.11, this is {sys.version.split()[0]}")
else:
    C_UNAVAILABLE = None

TRUNCATED = "...<truncated>"
_HERE = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_DIRS = tuple(
    {os.path.abspath(p) + os.sep
     for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))
     if p}
)
_MONITORING = sys.version_info >= (3, 12)
# sys.monitoring tool ids to try, first those PEP 669 leaves unassigned (0 debugger, 1 coverage,
# 2 profiler, 5 optimizer)
_TOOL_IDS = (3, 4, 5, 2, 1, 0)
_CALL, _LINE, _RETURN, _EXCEPTION = 0, 1, 2, 3
# settrace's "return" event fires on a return, a yield, and an exception unwinding the frame;
# the opcode at f_lasti tells them apart (sys.monitoring has an event for each).
_RETURN_OPS = frozenset(
    dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE") if n in dis.opmap
)
# From 3.13 a yield's f_lasti is already on the RESUME after the YIELD_VALUE.
_YIELD_RESUME = (dis.opmap["YIELD_VALUE"], dis.opmap["RESUME"]) \
    if sys.version_info >= (3, 13) else None


def _returns_at(co_code: bytes, lasti: int) -> bool:
    """Is settrace's "return" at ``f_lasti`` a return or a yield (not an exception unwinding)?"""
    op = co_code[lasti]
    return op in _RETURN_OPS or (_YIELD_RESUME is not None and lasti >= 2
                                 and (co_code[lasti - 2], op) == _YIELD_RESUME)


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
    """

    scope: Literal["file", "entry", "user"] = "file"
    files: tuple[str, ...] = ()
    max_depth: int | None = None
    max_events: int | None = 1_000_000
    max_repr: int = 200
    context: Literal["file", "function"] = "file"
    backend: Literal["auto", "python", "c"] = "auto"

    def __post_init__(self) -> None:
        if self.scope not in ("file", "entry", "user"):
            raise ValueError(f"scope must be 'file', 'entry' or 'user', got {self.scope!r}")
        if self.context not in ("file", "function"):
            raise ValueError(f"context must be 'file' or 'function', got {self.context!r}")
        if self.backend not in ("auto", "python", "c"):
            raise ValueError(f"backend must be 'auto', 'python' or 'c', got {self.backend!r}")
        for name in ("max_depth", "max_events"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be None or an int >= 0, got {v!r}")
        if not isinstance(self.max_repr, int) or self.max_repr < 1:
            raise ValueError(f"max_repr must be an int >= 1, got {self.max_repr!r}")
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


_SMALL = 400  # bytes of pickle under which re-pickling a container to find its repr costs more


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
            self.events.append((_CALL, frame, frame.f_lineno, tuple(loc),
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
        append = self.events.append
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
                    append((_LINE, frame, frame.f_lineno, tuple(loc), values, len(stack) - 1))
                    return local
                if event == "return":  # settrace: a return, a yield or an unwind (see _build)
                    append((_RETURN, frame, frame.f_lineno, frame.f_lasti, safe_repr(arg),
                            len(stack) - 1))
                    stack_pop()
                    return local
                if event == "exit":  # sys.monitoring: PY_RETURN or PY_YIELD, for certain
                    append((_RETURN, frame, frame.f_lineno, -1, safe_repr(arg), len(stack) - 1))
                    stack_pop()
                    return local
                if event == "exception":
                    append((_EXCEPTION, frame, frame.f_lineno, None, safe_repr(arg[1]),
                            len(stack) - 1))
                    return local
                rec.left = left  # opcode events are not recorded
                return local
            except _PROGRAM_LIMITS:
                raise
            except Exception as e:  # noqa: BLE001 - our own failure: raised by Tracer.trace
                rec.fail(e)
                return None

        return local


class Tracer:
    """Traces calls with fixed :class:`TraceOptions`; ``Tracer().trace(fn, *a, **kw)``."""

    def __init__(self, options: TraceOptions | None = None) -> None:
        self.options = options if options is not None else TraceOptions()

    def trace(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Trace:
        """Run ``fn(*args, **kwargs)`` under the tracer; return the :class:`Trace`."""
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {fn!r}")
        opts = self.options
        entry_code = _code_of(fn)
        failures: list[Exception] = []
        decide = _guarded(_scope_predicate(opts, entry_code), failures)
        use_c = _use_c(opts.backend)
        if use_c:
            crec = _ctrace.Recorder(decide, opts.max_depth, opts.max_events, opts.max_repr,
                                    TRUNCATED, bytes(_RETURN_OPS))
            result, exception = _run_c(crec, fn, args, kwargs)
        else:
            rec = _Recorder(decide, opts.max_depth, opts.max_events)
            run = _run_monitored if _MONITORING else _run_settrace
            result, exception = run(rec, fn, args, kwargs)
            if rec.error is not None:
                failures.append(rec.error)
        if failures:
            raise RuntimeError(f"the tracer failed while tracing {_name_of(fn, entry_code)}: "
                               f"{type(failures[0]).__name__}: {failures[0]}") from failures[0]
        enabled = gc.isenabled()
        gc.disable()  # building ~1e5 small objects: collections would only rescan them
        try:
            if use_c:
                frames = crec.build(_InfoOf(), Frame, _EVENT_NAMES)
                return _finish(frames, crec.truncated, fn, entry_code, opts, result, exception)
            return _build(rec, fn, entry_code, opts, result, exception)
        finally:
            if enabled:
                gc.enable()


_EVENT_NAMES = ("call", "line", "return", "exception")


def _guarded(decide: Callable[[Any], bool], failures: list) -> Callable[[Any], bool]:
    """``decide`` that records its failure in ``failures`` (then traces nothing more) instead
    of raising into the traced program; Tracer.trace raises it after the call."""

    def guarded(code: Any) -> bool:
        if failures:
            return False
        try:
            return bool(decide(code))
        except _PROGRAM_LIMITS:
            raise
        except Exception as e:  # noqa: BLE001 - our own failure: raised by Tracer.trace
            failures.append(e)
            return False

    return guarded


def _use_c(backend: str) -> bool:
    if backend == "python":
        return False
    ok = _ctrace is not None and not _MONITORING
    if backend == "c" and not ok:
        raise RuntimeError("backend='c' needs the C recorder on CPython 3.11: " + (
            C_UNAVAILABLE or "this Python uses sys.monitoring"))
    return ok


class _InfoOf:
    """``info_of(code) -> (lines, qualname)`` for the C recorder's build (once per code)."""

    def __init__(self) -> None:
        self.lines_of: dict[str, list[str]] = {}

    def __call__(self, code: Any) -> tuple[list[str], str]:
        fname = code.co_filename
        lines = self.lines_of.get(fname)
        if lines is None:  # index = line number; [0] and past the end: ""
            lines = self.lines_of[fname] = [""] + [
                s.rstrip("\r\n") for s in linecache.getlines(fname)]
        return lines, getattr(code, "co_qualname", code.co_name)


def _run_c(crec: Any, fn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    result = exception = None
    crec.install()
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - handed back on the Trace
        exception = e
    finally:
        crec.uninstall()  # puts back the trace function found at install()
    return result, exception


def _run_settrace(rec: _Recorder, fn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
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


def _run_monitored(rec: _Recorder, fn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """Python >= 3.12: the same recorder fed by ``sys.monitoring`` (PEP 669) callbacks, sending
    it what ``sys.settrace`` sends on these Pythons (CPython's Python/legacy_tracing.c):

    - "call": PY_START, PY_RESUME, PY_THROW;
    - "line": LINE, and a backward JUMP that stays on one line (a loop, or an inlined
      comprehension, written on one line: settrace sends a line event per iteration);
    - "return": PY_RETURN, PY_YIELD, and PY_UNWIND (an exception leaving the frame), which
      ``_build`` tells apart from a return by the opcode at f_lasti exactly as for settrace;
    - "exception": RAISE, STOP_ITERATION.

    PEP 669 allows only some events per code object: LINE, JUMP, PY_RETURN, PY_YIELD and
    STOP_ITERATION are switched on for the code objects the scope wants; the call events, RAISE
    and PY_UNWIND are global. Events come from every thread, so only calls made by this thread
    are recorded, and every other event only for the frame on top of the recorder's stack
    (``rec.local`` checks). A settrace tracer stays in place; our tool id is freed afterwards.
    """
    mon = sys.monitoring  # type: ignore[attr-defined]
    ev = mon.events
    tool = next((i for i in _TOOL_IDS if mon.get_tool(i) is None), None)
    if tool is None:
        raise RuntimeError("sys.monitoring has no free tool id for the tracer")
    mon.use_tool_id(tool, "tracegym")
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
        ev.PY_UNWIND: lambda code, offset, exc: local("return", None),
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


def trace(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Trace:
    """Trace ``fn(*args, **kwargs)`` with the default :class:`TraceOptions`.

    Every argument after ``fn`` goes to ``fn``; choose options with ``Tracer(options).trace``.
    The call's own exception does not propagate: it is on ``Trace.exception``.
    """
    return Tracer().trace(fn, *args, **kwargs)


# ------------------------------------------------------------------------------ helpers
def _code_of(fn: Any) -> Any:
    f = fn
    for _ in range(100):  # unwrap bound methods, functools.partial, decorators with __wrapped__
        if hasattr(f, "__code__"):
            return f.__code__
        f = getattr(f, "__func__", None) or getattr(f, "func", None) or \
            getattr(f, "__wrapped__", None) or getattr(type(f), "__call__", None)  # noqa: B004
        if f is None:
            return None
    return None


def _name_of(fn: Any, entry_code: Any) -> str:
    return getattr(fn, "__qualname__", None) or (
        getattr(entry_code, "co_qualname", "") if entry_code is not None else repr(fn))


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    path = os.path.abspath(filename)
    return path.startswith(_LIBRARY_DIRS) or path.startswith(_HERE + os.sep)


def _scope_predicate(opts: TraceOptions, entry_code: Any) -> Callable[[Any], bool]:
    # Decided once per code object (the recorder caches the answer), so it may be slow-ish.
    entry_file = entry_code.co_filename if entry_code is not None else None
    files = {os.path.abspath(f) for f in opts.files}
    if entry_file is not None and opts.scope != "entry":
        files.add(os.path.abspath(entry_file) if not entry_file.startswith("<") else entry_file)

    def decide(code: Any) -> bool:
        fname = code.co_filename
        if fname.startswith(_HERE + os.sep):
            return False  # never our own frames
        if opts.scope == "entry" and code is entry_code:
            return True
        if fname in files or os.path.abspath(fname) in files:
            return True
        return opts.scope == "user" and not _is_library(fname)

    return decide


def _reprs_small(values: tuple, repr_of: dict, limit: int) -> list[str]:
    """Reprs of builtin values whose pickle is small: ``map(repr)`` at C speed."""
    try:
        reprs = list(map(repr, values))
    except Exception:  # noqa: BLE001 - e.g. an int past the digit limit; go value by value
        return _reprs(values, repr_of, limit, None, True)
    if reprs and max(map(len, reprs)) > limit:
        reprs = [r if len(r) <= limit else r[:limit] + TRUNCATED for r in reprs]
    return reprs


def _reprs(values: Any, repr_of: dict, limit: int, key: Callable[[Any], bytes] | None,
           loaded: bool) -> list[str]:
    """Reprs of snapshot items (see :class:`_Recorder`), cut at ``limit``.

    A container's repr is cached by its pickle bytes (equal bytes, equal repr), so a list that
    did not change between events is repr'd once. ``loaded``: the values were unpickled from a
    whole-tuple snapshot (a bytes item is then a value, not a pickle).
    """
    out = []
    for v in values:
        t = type(v)
        if t in _IMMUTABLE:
            r = safe_repr(v) if t is int else repr(v)  # ints past the digit limit refuse
        elif t is _Eager:
            r = str(v)
        elif t is bytes and not loaded:  # one value's pickle
            r = repr_of.get(v)
            if r is None:
                r = repr_of[v] = safe_repr(pickle.loads(v))
        elif key is None:  # a small snapshot: repr is cheaper than a cache key
            r = safe_repr(v)
        else:  # a value unpickled from a whole-tuple snapshot: builtins only, so it pickles
            b = key(v)
            r = repr_of.get(b)
            if r is None:
                r = repr_of[b] = safe_repr(v)
        out.append(r if len(r) <= limit else r[:limit] + TRUNCATED)
    return out


def _build(rec: _Recorder, fn: Any, entry_code: Any, opts: TraceOptions, result: Any,
           exception: BaseException | None) -> Trace:
    """Turn raw events into frames: reprs, truncation, source lines, depths."""
    limit = opts.max_repr
    lines_of: dict[str, list[str]] = {}
    code_info: dict[Any, tuple[list[str], str, bytes]] = {}
    frames: list[Frame] = []
    append = frames.append
    new = tuple.__new__

    # Equal marshal bytes mean equal reprs: each distinct snapshot is repr'd once per trace,
    # whole (all the locals of one event) and per container value.
    repr_of: dict[bytes | str, str] = {}
    whole_of: dict[bytes, list[str]] = {}
    whole = whole_of.get
    dump, pop = _new_pickler()

    def key(v: Any) -> bytes:
        dump(v)
        return pop()

    for ev in rec.events:
        kind, frame, lineno, depth = ev[0], ev[1], ev[2], ev[5]
        code = frame.f_code
        info = code_info.get(code)
        if info is None:
            fname = code.co_filename
            lines = lines_of.get(fname)
            if lines is None:  # index = line number; [0] and past the end: ""
                lines = lines_of[fname] = [""] + [
                    s.rstrip("\r\n") for s in linecache.getlines(fname)]
            info = code_info[code] = (lines, getattr(code, "co_qualname", code.co_name),
                                      code.co_code)
        lines, qualname, co_code = info
        try:
            source = lines[lineno]
        except (IndexError, TypeError):  # no source, or f_lineno None
            source = ""
        if kind <= _LINE:
            snap = ev[4]
            if type(snap) is bytes:
                reprs = whole(snap)
                if reprs is None:
                    values = pickle.loads(snap)
                    reprs = whole_of[snap] = (
                        _reprs(values, repr_of, limit, key, True) if len(snap) > _SMALL
                        else _reprs_small(values, repr_of, limit))
            elif type(snap) is tuple:
                reprs = _reprs_small(snap, repr_of, limit)
            else:
                reprs = _reprs(snap, repr_of, limit, key, False)
            append(new(Frame, ("line" if kind else "call", lineno, source,
                               dict(zip(ev[3], reprs)), None, qualname, depth)))
        elif kind == _RETURN:
            # settrace also sends "return" when an exception unwinds the frame: the opcode at
            # f_lasti then is not a return or a yield. That frame's last frame is the exception.
            if ev[3] >= 0 and not _returns_at(co_code, ev[3]):
                continue
            r = ev[4]
            append(new(Frame, ("return", lineno, source, {}, r if len(r) <= limit else
                               r[:limit] + TRUNCATED, qualname, depth)))
        else:
            r = ev[4]
            append(new(Frame, ("exception", lineno, source, {}, r if len(r) <= limit else
                               r[:limit] + TRUNCATED, qualname, depth)))
    return _finish(frames, rec.truncated, fn, entry_code, opts, result, exception)


def _finish(frames: list[Frame], truncated: bool, fn: Any, entry_code: Any, opts: TraceOptions,
            result: Any, exception: BaseException | None) -> Trace:
    """The Trace around built frames: context, entry, outcome."""
    limit = opts.max_repr
    context, context_lineno, entry_lineno, filename = "", 1, None, ""
    if entry_code is not None:
        filename = entry_code.co_filename
        entry_lineno = entry_code.co_firstlineno
        all_lines = linecache.getlines(filename)
        if opts.context == "file":
            context = "".join(all_lines)
        else:
            import inspect

            try:
                src, start = inspect.getsourcelines(entry_code)
                context, context_lineno = "".join(src), max(start, 1)
            except (OSError, TypeError):
                context = ""
    entry = _name_of(fn, entry_code)
    ret = None if exception is not None else safe_repr(result)
    exc = None if exception is None else safe_repr(exception)
    if ret is not None and len(ret) > limit:
        ret = ret[:limit] + TRUNCATED
    if exc is not None and len(exc) > limit:
        exc = exc[:limit] + TRUNCATED
    return Trace(entry=entry, context=context, frames=frames, entry_lineno=entry_lineno,
                 context_lineno=context_lineno, filename=filename, return_repr=ret,
                 exception_repr=exc, truncated=truncated, result=result, exception=exception)
