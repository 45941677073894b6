"""Trace one call in this process, bounded in wall time: the twin of the sandbox's ``run_source``.

>>> run_in_process("def f(x):\\n    return x + 1\\n", "f", (41,)).trace.return_repr
'42'

Far faster than :func:`~tracegym.tracers.sandbox.run_source` (no process per call) and with no
isolation at all: the program runs with this process's rights, memory and files. Use the
sandbox for anything untrusted. :func:`run_in_process` returns the sandbox's
:class:`~tracegym.tracers.sandbox.RunResult`, with an outcome from the same vocabulary
(:data:`~tracegym.tracers.outcomes.RUN_OUTCOMES`): ``ok``, ``timeout``, ``memory`` (a
MemoryError), ``exit`` (``sys.exit``), ``syntax_error``, ``module_error``, ``entry_missing``,
``entry_not_callable``, ``tracer_error`` (the tracer refused to run beside another tracer,
such as one the module code installed; see :class:`~tracegym.tracers.TracerConflictError`) and
``crash`` (3.10's worker only, below). ``isolation`` is
``"in-process"``; output is not captured, and the Trace object comes back without
``trace_json``.

Wall time. A ``SIGALRM`` timer (:class:`_Alarm`) bounds the module code and then the call, each
to ``timeout`` seconds: it raises :class:`CallTimeout` (a BaseException, so ``except Exception``
in the program does not swallow it) inside the program's own frames only, never inside the
tracer's (there it tries again 5 ms later), and re-fires every 0.2 s until the run ends. While a
run is on, the timer owns ``SIGALRM`` and ``ITIMER_REAL``; the previous handler comes back after
it (a pending interval timer does not). Python runs signal handlers in the main thread only and
lets only that thread install one, so the timer works in the main thread only: a run started in
any other thread has no wall-time bound at all (``max_events`` stops the recording, not the
call), except on 3.10, where the worker below is killed from any thread.

Python 3.10. Before 3.11 CPython checks for pending signals only at some backward jumps and
calls, and skips the check before a ``SETUP_FINALLY``: in ``while True: try: i += 1 ...`` the
alarm's handler never runs, nor can another thread take the GIL. No Python code can end such a
call, so on 3.10 runs go one at a time to a forked worker process (``_WORKER``), which is killed
when a run outlives ``timeout`` by :data:`KILL_GRACE_S` (outcome ``timeout``, no trace; the next
run forks a new worker); a worker that dies gives ``crash``. Its traces come back without the
live ``result`` and ``exception`` objects, which need not (and may not) pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Mapping

from tracegym.tracers.sandbox import RunResult

__all__ = ["KILL_GRACE_S", "CallTimeout", "run_in_process"]

ISOLATION = "in-process"  # RunResult.isolation of every in-process run
ALARM_REPEAT_S = 0.2  # the timer re-fires this often while a program ignores it
ALARM_RETRY_S = 0.005  # ... and this soon when it landed in the tracer's own frames
_FORKED = sys.version_info < (3, 11)  # see the module docstring
KILL_GRACE_S = 2.0  # the worker's own alarm gets this long past the timeout before the kill


class CallTimeout(BaseException):
    """Raised inside an in-process program that ran past its wall time."""


def run_in_process(program, entry: str | None = None, args=(), kwargs=None, *,
                   timeout: float = 10.0, trace_options=None) -> RunResult:
    """Trace ``entry(*args, **kwargs)`` from ``program`` in this process; never raises for the
    program (Ctrl-C during the call is raised again).

    Args:
        program: source text that defines ``entry``, or a
            :class:`~tracegym.tracers.programs.Program` (whose own ``entry`` runs; ``entry``
            is then None or the same name).
        entry: the function to call.
        args, kwargs: the call's arguments; deep copies go to the program, so a function that
            mutates its arguments leaves the caller's intact.
        timeout: wall seconds (> 0) for the module code, and again for the call.
        trace_options: a :class:`~tracegym.tracers.TraceOptions` or a dict of its fields.

    Raises ValueError naming the field for bad input here, before anything runs.
    """
    from tracegym.tracers.programs import Call, Program

    if isinstance(program, Program):
        if entry is not None and entry != program.entry:
            raise ValueError(f"entry: the program's entry is {program.entry!r}, got {entry!r}")
    elif isinstance(program, str):
        if not isinstance(entry, str) or not entry.isidentifier():
            raise ValueError(f"entry must be an identifier, got {entry!r}")
        program = Program(entry, program, entry, origin="source")
    else:
        raise ValueError(f"program must be source text or a Program, got "
                         f"{type(program).__name__}")
    if not isinstance(args, (tuple, list)):
        raise ValueError(f"args must be a tuple or list, got {type(args).__name__}")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"kwargs must be a mapping with str keys, got {kwargs!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    job = (program, Call(tuple(args), dict(kwargs)), _trace_options(trace_options), float(timeout))
    start = time.monotonic()
    result = _WORKER.run(*job) if _FORKED else _run_here(*job)
    result.elapsed_s = time.monotonic() - start
    return result


def _trace_options(options):
    from tracegym.tracers import TraceOptions

    if options is None:
        return TraceOptions()
    if isinstance(options, TraceOptions):
        return options
    if not isinstance(options, dict):
        raise ValueError(f"trace_options must be a TraceOptions or dict, got {options!r}")
    unknown = set(options) - {f.name for f in dataclasses.fields(TraceOptions)}
    if unknown:
        raise ValueError(f"trace_options has unknown fields {sorted(unknown)}")
    return TraceOptions(**{k: tuple(v) if k == "files" else v for k, v in options.items()})


# ---------------------------------------------------------------------------------------------
# in this very process


@functools.cache
def _tracers_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__)) + os.sep


class _Alarm:
    """The wall-time guard (see the module docstring): in the main thread, ``with _Alarm(s):``
    raises :class:`CallTimeout` in the program's frames once ``s`` seconds have passed; in any
    other thread it does nothing (``usable`` is False)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False
        self.usable = threading.current_thread() is threading.main_thread()

    def _fire(self, signum, frame):
        if not self.armed:
            return
        if frame is None or os.path.abspath(frame.f_code.co_filename).startswith(_tracers_dir()):
            # inside the tracer (or this runner): raising here would break it; try again shortly
            signal.setitimer(signal.ITIMER_REAL, ALARM_RETRY_S)
            return
        signal.setitimer(signal.ITIMER_REAL, ALARM_REPEAT_S)  # in case the program swallows it
        raise CallTimeout(f"wall time {self.seconds}s exceeded")

    def __enter__(self):
        if self.usable:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.usable:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def _run_here(program, call, options, timeout: float) -> RunResult:
    """:func:`run_in_process` in this very process, arguments checked."""
    from tracegym.tracers import Tracer, TracerConflictError

    def result(outcome: str, message: str = "", trace=None, **detail) -> RunResult:
        return RunResult(outcome, message, isolation=ISOLATION, detail=detail, trace=trace)

    try:
        with _Alarm(timeout):  # module code may loop too
            fn = _load(program)
    except SyntaxError as err:
        return result("syntax_error", str(err.msg), lineno=err.lineno, offset=err.offset,
                      text=err.text)
    except CallTimeout as err:
        return result("timeout", f"{err} (module code)")
    except _EntryMissing as err:
        return result("entry_missing", str(err))
    except SystemExit as err:  # not an Exception: it would end the caller
        code = err.code if isinstance(err.code, int) else None
        return result("exit", f"program called sys.exit({err.code!r})", code=code)
    except Exception as err:  # noqa: BLE001 - the program's module code may raise anything
        return result("module_error", f"{type(err).__name__}: {err}")
    if not callable(fn):
        return result("entry_not_callable", f"entry {program.entry!r} is not callable")
    tracer = Tracer(options)
    call = call.copy()
    try:
        with _Alarm(timeout):
            trace = tracer.trace(fn, *call.args, **call.kwargs)
    except CallTimeout as err:  # fired after the call, before the tracer finished
        return result("timeout", str(err))
    except TracerConflictError as err:  # e.g. the module code installed a settrace function
        return result("tracer_error", str(err))
    exc = trace.exception
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    if isinstance(exc, CallTimeout):
        return result("timeout", str(exc), trace)
    if isinstance(exc, MemoryError):
        return result("memory", "MemoryError during the call", trace)
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else None
        return result("exit", f"program called sys.exit({exc.code!r})", trace, code=code)
    return result("ok", "", trace)  # returned or raised: trace_outcome() tells which


class _EntryMissing(Exception):
    """The source ran but defines no ``entry`` (a KeyError would be the module code's)."""


def _load(program):
    """The entry function; :class:`_EntryMissing` (with the message) when no such name."""
    if program.module is not None:  # an importable module's function: imported, not exec'd
        return program.load()
    namespace = program.namespace()
    if program.entry not in namespace:
        names = sorted(n for n, v in namespace.items() if callable(v) and not n.startswith("__"))
        raise _EntryMissing(f"entry {program.entry!r} not defined; callables: {names}")
    return namespace[program.entry]


# ---------------------------------------------------------------------------------------------
# Python 3.10: in a forked worker


def _serve(conn, parent_end) -> None:
    """The forked worker's loop: a job in, ``("ok", RunResult)`` or ``("error", message)`` out,
    until the parent closes its end (or is gone)."""
    parent_end.close()  # else the parent's exit would not reach us as EOF
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            result = _run_here(*job)
            if result.trace is not None:  # the live objects need not (and may not) travel
                result.trace = dataclasses.replace(result.trace, result=None, exception=None)
            reply = ("ok", result)
        except KeyboardInterrupt:  # Ctrl-C reached the whole process group: the parent too
            return
        except Exception as err:  # noqa: BLE001 - the tracer's own failure: the parent raises it
            reply = ("error", f"{type(err).__name__}: {err}")
        finally:
            for stream in (sys.stdout, sys.stderr):  # the program's prints, before the reply
                stream.flush()
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - e.g. a repr object that does not pickle
            conn.send(("error", f"the worker cannot send its result: {type(err).__name__}: "
                                f"{err}"))


class _Worker:
    """The forked process that runs in-process calls on 3.10 (see ``_FORKED``), one at a time;
    started on the first call, killed when a call outlives its time (the next call forks a new
    one), a daemon: it ends with this process."""

    def __init__(self) -> None:
        self.process = self.conn = None
        self.lock = threading.Lock()

    def start(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")  # a copy of this process: nothing to import
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_end, self.conn), daemon=True,
                                   name="tracegym-in-process")
        self.process.start()
        child_end.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.conn.close()
            self.process = self.conn = None

    def run(self, program, call, options, timeout: float) -> RunResult:
        with self.lock:
            if self.process is None or not self.process.is_alive():
                self.close()
                self.start()
            try:
                self.conn.send((program, call, options, timeout))  # pickled whole, then sent
            except (pickle.PicklingError, TypeError, AttributeError):
                # arguments that do not pickle (none from a spec or the generator): run them
                # here, bounded as on 3.11 by the alarm alone
                return _run_here(program, call, options, timeout)
            try:
                if not self.conn.poll(timeout + KILL_GRACE_S):
                    self.close()
                    return RunResult("timeout", f"wall time {timeout}s exceeded; the call did "
                                     "not stop at CallTimeout and its process was killed",
                                     isolation=ISOLATION)
                kind, value = self.conn.recv()
            except EOFError:  # the worker died: os._exit in the program, the OOM killer...
                self.process.join()
                code = self.process.exitcode
                self.close()
                return RunResult("crash", f"the process running the call ended (exit code "
                                 f"{code})", returncode=code, isolation=ISOLATION)
            except BaseException:  # Ctrl-C while waiting: leave no worker running the call
                self.close()
                raise
        if kind == "error":
            raise RuntimeError(f"in-process call of {program.name}: {value}")
        return value


_WORKER = _Worker()
