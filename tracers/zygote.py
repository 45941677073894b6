"""A warm sandbox: :class:`SandboxPool` runs :func:`~tracegym.tracers.sandbox.run_source`'s calls,
each as isolated as a per-call run, without starting a Python per call.

>>> with SandboxPool(workers=2) as pool:  # doctest: +SKIP
...     pool.run_source("def f(x):\\n    return x + 1\\n", "f", (41,)).trace.return_repr
'42'

Each worker is a *zygote*: a sandbox child process started once (``_sandbox_child.py zygote``)
that has paid for the interpreter, ``import tracegym.tracers`` and, at the namespaces level,
the read-only root of binds. For every program it forks a process that goes on as a per-call
child does: new mount/pid/net/ipc/uts namespaces, a fresh size-capped tmpfs work dir and
``/proc``, the program as pid 2 under a relay, a fresh random uid, the rlimits, ``no_new_privs``
and the seccomp filter, a cleared environment; the wall clock, the output caps and the kill
are the pool's, exactly as :func:`run_source` applies them. Outcomes, messages and traces are
the same as per call (tests/tracers/test_zygote.py compares them).

What programs share: nothing that one of them can change. Each starts as a copy-on-write fork
of a zygote that never runs program code and reads nothing a program writes (only its exit
status), so a program that rewrites the tracer, the builtins, ``sys.modules``, ``os.environ``,
its rlimits or signal handlers changes its own copy only. Files: the read-only root (the same
binds as per call) and nothing writable beyond its own work dir. Kernel objects: its own
namespaces (no abstract socket, SysV IPC object, process or mount of another program is
visible) and its own uid. Unlike a per-call run, the program starts with the tracer already
imported (a per-call child imports it before the program runs, too) and its wall time counts
from the fork, not from a Python start. At the rlimits level (no root or no namespaces) the
isolation is that level's, as per call: programs under the caller's uid can signal the zygote,
which the pool then replaces (the run that lost its worker is a ``crash``).

Lifetime: zygotes start on first use, up to ``workers``, one program at a time each;
:meth:`SandboxPool.close` (or leaving the ``with`` block) ends them, and a zygote also ends when
the pool's process does (its socket closes), taking a running program with it. Calls may come
from several threads at once (``workers`` run at a time; more wait). A pool belongs to the
process that made it: a forked copy refuses to run.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref

from tracegym.checks import check_int
from tracegym.errors import SandboxError
from tracegym.tracers.sandbox import (
    _CHILD,
    _WORK,
    Limits,
    RunResult,
    _binds,
    child_env,
    collect,
    make_job,
    make_work_dir,
    open_pipes,
    resolve_isolation,
)

__all__ = ["SandboxPool"]

START_TIMEOUT_S = 60.0  # a zygote that is not ready by then is a SandboxError
KILL_ANSWER_S = 30.0  # a kill the zygote does not answer by then ends the zygote
DEFAULT_LIMITS = Limits()


class SandboxPool:
    """Warm sandbox workers; ``run_source`` / ``trace_source`` as the module-level functions.

    Args:
        workers (int): zygotes, so programs that run at once (>= 1). Default 1.
        isolation (str): ``"auto"`` (this machine's best level), ``"namespaces"`` or
            ``"rlimits"``, as :func:`~tracegym.tracers.sandbox.run_source` takes per call.

    Raises ValueError naming the field for a bad argument, SandboxError when a zygote cannot
    start (on the call that needed it).
    """

    def __init__(self, workers: int = 1, *, isolation: str = "auto") -> None:
        self.workers = check_int("workers", workers, 1)
        self.isolation = resolve_isolation(isolation)
        self._slots = threading.BoundedSemaphore(self.workers)
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._zygotes: set = set()
        self._lock = threading.Lock()
        self._closed = False
        self._owner = os.getpid()
        # the namespaces level mounts each zygote's root here (inside its own mount namespace,
        # so the folder stays empty on the host); the rlimits level makes work dirs here
        self._base = tempfile.mkdtemp(prefix="tracegym-pool-")
        os.chmod(self._base, 0o711)  # rlimits level: the dropped uid must reach its work dir
        self._finalizer = weakref.finalize(self, _close_all, self._zygotes, self._base)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End every zygote (a program still running in one is killed) and remove the pool's
        temporary folder. Calls after this raise SandboxError."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def run_source(self, code: str, entry: str, args=(), kwargs=None, *,
                   limits: Limits = DEFAULT_LIMITS, trace_options=None) -> RunResult:
        """:func:`~tracegym.tracers.sandbox.run_source` in a warm worker: the same checks,
        outcomes and RunResult; it never raises for the program."""
        job = make_job(code, entry, args, kwargs, limits=limits, trace_options=trace_options)
        if os.getpid() != self._owner:
            raise SandboxError("a SandboxPool runs only in the process that made it")
        work = None
        if self.isolation == "rlimits":  # a fresh host folder; namespaces: a fresh tmpfs
            work = os.path.join(self._base, f"work-{secrets.token_hex(8)}")
            make_work_dir(work, job["uid"])
        home = work or _WORK
        job["env"], job["home"] = child_env(home), home
        try:
            for attempt in (1, 2):
                zygote = self._acquire()
                try:
                    return zygote.run(job, limits)
                except _Lost:  # gone before it forked the program (killed while idle)
                    if attempt == 2:
                        raise
                finally:
                    self._release(zygote)
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)

    def trace_source(self, code: str, entry: str, args=(), kwargs=None, *,
                     limits: Limits = DEFAULT_LIMITS, trace_options=None):
        """:func:`~tracegym.tracers.sandbox.trace_source` in a warm worker: the Trace, or the
        exception that matches the outcome."""
        return self.run_source(code, entry, args, kwargs, limits=limits,
                               trace_options=trace_options).unwrap()

    def _acquire(self) -> _Zygote:
        self._slots.acquire()
        try:
            with self._lock:
                if self._closed:
                    raise SandboxError("the SandboxPool is closed")
            try:
                zygote = self._idle.get_nowait()
            except queue.Empty:
                zygote = None
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.close()
                    self._zygotes.discard(zygote)
                zygote = _Zygote(self.isolation, self._base)
                with self._lock:
                    self._zygotes.add(zygote)
            return zygote
        except BaseException:
            self._slots.release()
            raise

    def _release(self, zygote: _Zygote) -> None:
        with self._lock:
            keep = zygote.alive() and not self._closed
            if not keep:
                self._zygotes.discard(zygote)
        if keep:
            self._idle.put(zygote)
        else:
            zygote.close()
        self._slots.release()


class _Lost(SandboxError):
    """A zygote ended before it forked the program: the pool retries on a new one."""


def _close_all(zygotes: set, base: str) -> None:
    for zygote in list(zygotes):
        zygote.close()
    zygotes.clear()
    shutil.rmtree(base, ignore_errors=True)


class _Zygote:
    """One warm worker: its process and the socket the pool talks to it on."""

    def __init__(self, level: str, base: str) -> None:
        self.level = level
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        root = tempfile.mkdtemp(prefix="root-", dir=base) if level == "namespaces" else None
        self._err = tempfile.TemporaryFile(dir=base)  # the zygote's own stderr, for errors
        cmd = [sys.executable, "-s", "-B", _CHILD, "zygote", level, str(theirs.fileno())]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._err,
                                         env=child_env(_WORK if root else base), cwd=base,
                                         pass_fds=(theirs.fileno(),), start_new_session=True)
        except BaseException:
            ours.close()
            self._err.close()
            raise
        finally:
            theirs.close()
        try:
            self.sock.settimeout(START_TIMEOUT_S)
            _send(self.sock, {"root_dir": root, "binds": _binds() if root else [],
                              "work_path": _WORK})
            answer = _recv(self.sock)
            self.sock.settimeout(None)
        except OSError as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        if answer is None or "ready" not in answer:
            why = (answer or {}).get("error") or self._stderr_tail() or "it exited"
            self.close()
            raise SandboxError(f"the warm sandbox's zygote ({level}) did not start: {why}")

    def alive(self) -> bool:
        return self.sock is not None and self.proc.poll() is None

    def run(self, job: dict, limits: Limits) -> RunResult:
        """Send ``job`` with three fresh pipes and collect the run as :func:`run_source` does.

        Raises _Lost when the zygote was gone before it forked the program (nothing ran).
        """
        pipes = open_pipes()
        start = time.monotonic()
        try:
            try:
                _send(self.sock, job, fds=[w for _, w in pipes])
                self.sock.settimeout(START_TIMEOUT_S)
                started = _recv(self.sock)
                self.sock.settimeout(None)
            except OSError as exc:
                started = None
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = "EOF"
            if started is None or "started" not in started:
                self.kill_hard()
                raise _Lost(f"the warm sandbox's zygote ended before the run ({why})")
        except BaseException:
            for r, _ in pipes:
                os.close(r)
            raise
        finally:
            for _, w in pipes:
                os.close(w)
        return collect(_Forked(self), *(r for r, _ in pipes), limits, self.level, start)

    def close(self) -> None:
        """EOF ends the zygote (and a program it runs); SIGKILL if it lingers."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if getattr(self, "proc", None) is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()

    def kill_hard(self) -> None:
        """The zygote stopped answering or died: SIGKILL it; its program's pid 1 follows (its
        parent-death signal)."""
        self.proc.kill()
        self.proc.wait()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _stderr_tail(self) -> str:
        try:
            self._err.seek(0)
            return self._err.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


class _Forked:
    """One program forked by a zygote, as :func:`~tracegym.tracers.sandbox.collect` drives
    it: its status comes back on the zygote's socket."""

    def __init__(self, zygote: _Zygote) -> None:
        self.zygote = zygote
        self.status: dict | None = None
        self.lost = ""

    @property
    def returncode(self) -> int | None:
        return None if self.status is None else self.status["returncode"]

    def poll(self) -> int | None:
        if self.status is None and not self.lost:
            self._read(0.0)
        return self.returncode if not self.lost else -1

    def wait(self, timeout: float) -> int | None:
        if self.status is None and not self.lost and not self._read(timeout):
            raise subprocess.TimeoutExpired("zygote", timeout)
        return self.returncode

    def kill(self) -> None:
        if self.status is not None or self.lost:
            return
        try:
            _send(self.zygote.sock, {"kill": True})
        except OSError:
            pass
        if not self._read(KILL_ANSWER_S) and not self.lost:
            self.zygote.kill_hard()
            self.lost = "the warm sandbox's zygote stopped answering; it was killed"

    def cpu_s(self) -> float:
        return 0.0 if self.status is None else self.status["cpu_s"]

    def _read(self, timeout: float) -> bool:
        """Take the status if it comes within ``timeout`` s; False if it did not."""
        sock = self.zygote.sock
        if not select.select([sock], [], [], timeout)[0]:
            return False
        try:  # the zygote writes a frame at once: once it starts, it all comes
            status, why = _recv(sock), "EOF"
        except OSError as exc:
            status, why = None, f"{type(exc).__name__}: {exc}"
        if status is None:  # the zygote died: at rlimits a program may kill it
            self.lost = f"the warm sandbox's zygote process ended during the run ({why})"
            self.zygote.kill_hard()
        else:
            self.status = status
        return True


def _send(sock: socket.socket, obj: dict, fds=()) -> None:
    data = json.dumps(obj).encode()
    head = len(data).to_bytes(4, "big")
    if fds:
        socket.send_fds(sock, [head], list(fds))  # the fds ride on the header
        sock.sendall(data)
    else:
        sock.sendall(head + data)


def _recv(sock: socket.socket) -> dict | None:
    """The next frame, None at EOF."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    body = _recv_exact(sock, int.from_bytes(head, "big"))
    return None if body is None else json.loads(body)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            return None
        got += chunk
    return got
