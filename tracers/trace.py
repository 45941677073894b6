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

This module holds :class:`Tracer`, which decides what is traced (the scope) and puts the pieces
together; each piece has its own module:

- ``tracers/recorder.py``: :class:`TraceOptions` and the recorder, the hot loop that snapshots
  the locals at each event (its docstring says how it is fast and still exact), driven by
  ``sys.settrace`` on 3.10 and 3.11;
- ``tracers/monitoring.py``: the ``sys.monitoring`` (PEP 669) driver of the same recorder on
  3.12+, fed the events settrace would send (tests/tracers/test_tracer.py compares the two);
- ``tracers/frames.py``: after the call, the recorded events become frames (reprs, truncation,
  source lines, depths) and the :class:`~tracegym.tracers.cwm.Trace`.

A profiler is left as it was. A trace function already installed (a debugger, coverage) is left
in place by ``sys.monitoring``; ``sys.settrace`` (3.10, 3.11) has room for one only, so by default
tracing refuses (:class:`TracerConflictError`, before the call runs) rather than hide the call
from that tool; ``TraceOptions(other_tracer="set_aside")`` sets it aside for the traced call and
puts it back afterwards, and :class:`DisplacedTracerWarning` names it. Chaining the two is not
offered: settrace keeps one local trace function per frame, which both would need.
Hidden comprehension locals (``.0``, an iterator whose repr shows an address) are not recorded.

On CPython 3.11 an optional C recorder, ``tracegym.tracers._ctrace`` (built from
``tracers/_ctrace.c`` when a compiler is present), does the same work without a Python frame per
event: a C trace function (``PyEval_SetTrace``) keeps immutable atoms by reference and reprs
anything else at once, and builds the frames in C. ``TraceOptions(backend=...)`` chooses:
``"auto"`` (the C recorder when it is importable, else Python), ``"python"`` or ``"c"``. Both
give the same frames.
"""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from tracegym.tracers.cwm import Frame, Trace
from tracegym.tracers.frames import _EVENT_NAMES, _RETURN_OPS, _build, _CodeInfo, _finish, _name_of
from tracegym.tracers.monitoring import _run_monitored
from tracegym.tracers.recorder import (
    _PROGRAM_LIMITS,
    TRUNCATED,
    DisplacedTracerWarning,
    TraceOptions,
    TracerConflictError,
    _check_other_tracer,
    _Recorder,
    _run_settrace,
    safe_repr,
)

try:  # the optional C recorder (CPython 3.11 only; see setup.py)
    from tracegym.tracers import _ctrace
except ImportError as _e:  # not built, no compiler, or another Python
    _ctrace = None
    C_UNAVAILABLE: str | None = (
        f"tracegym.tracers._ctrace is not importable ({_e})" if sys.version_info[:2] == (3, 11)
        else f"the C recorder is for CPython 3.11, this is {sys.version.split()[0]}")
else:
    C_UNAVAILABLE = None

__all__ = [
    "C_UNAVAILABLE",
    "TRUNCATED",
    "DisplacedTracerWarning",
    "TraceOptions",
    "Tracer",
    "TracerConflictError",
    "safe_repr",
    "trace",
]

_HERE = os.path.dirname(os.path.abspath(__file__))  # tracers/: never traced
_LIBRARY_DIRS = tuple(
    {os.path.abspath(p) + os.sep
     for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))
     if p}
)
_MONITORING = sys.version_info >= (3, 12)


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
        run = None if use_c else self._python_driver()
        if run is not _run_monitored:  # settrace holds one trace function: refuse, or set aside
            _check_other_tracer(sys.gettrace(), opts.other_tracer,
                                () if _ctrace is None else (_ctrace.Recorder,))
        if use_c:
            crec = _ctrace.Recorder(decide, opts.max_depth, opts.max_events, opts.max_repr,
                                    TRUNCATED, bytes(_RETURN_OPS))
            result, exception = _run_c(crec, fn, args, kwargs)
        else:
            rec = _Recorder(decide, opts.max_depth, opts.max_events)
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
                frames = crec.build(_CodeInfo(), Frame, _EVENT_NAMES)
                return _finish(frames, crec.truncated, fn, entry_code, opts, result, exception)
            return _build(rec, fn, entry_code, opts, result, exception)
        finally:
            if enabled:
                gc.enable()

    @staticmethod
    def _python_driver() -> Callable[..., tuple[Any, Any]]:
        """What drives the Python recorder: sys.monitoring on 3.12+, else sys.settrace."""
        return _run_monitored if _MONITORING else _run_settrace


class _SettraceTracer(Tracer):
    """The Python recorder driven by sys.settrace on every Python (3.12+ too), for the
    conformance kit's ``SettraceRecorder`` and the tests comparing the two drivers."""

    @staticmethod
    def _python_driver() -> Callable[..., tuple[Any, Any]]:
        return _run_settrace


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

