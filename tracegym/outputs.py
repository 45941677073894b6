"""One writer per output, and nothing left behind by a killed one.

Writers stage their work under hidden names beside the output that carry their PID
(``.OUT.partial-<pid>``, ``.OUT.spill-<pid>``, ``.NAME.tmp-<pid>``: :mod:`tracegym.io`). This
module makes sure those names never outlive their process and that two processes never write
one output at once:

* :class:`OutputLock` holds an exclusive ``fcntl.flock`` on the hidden file ``.OUT.lock`` beside
  ``OUT`` while a process writes it. The kernel drops the lock when the process dies, however it
  dies, so a killed writer never blocks the next one. A second process asking for the same
  output is refused at once with :class:`OutputBusyError`, naming the holder's PID. The lock file
  is removed on release (after a SIGKILL it stays, unlocked, until the next writer removes it).
* On taking the lock, the leftovers of writers that died (``.OUT.<tag>-<pid>`` whose PID no
  longer runs: ``os.kill(pid, 0)`` fails with ESRCH, or the process is a zombie) are removed,
  with one line on stderr; a leftover whose PID still runs is left alone. A previous ``OUT``
  that a writer killed mid-replace had moved aside (``.OUT.old-<pid>``) is put back first.
* :func:`signals_clean_up`: SIGTERM and SIGHUP, whose default action kills the process without
  running ``finally`` blocks, raise :class:`Terminated` instead (a KeyboardInterrupt, so code
  that lets Ctrl-C through lets it through too); once the cleanup has run, the signal is sent
  again with its default action, so the process still ends as killed by it.
* :func:`pause_point`: a named point in a writer where a test can stop the process and kill it.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tracegym.errors import TracegymError

# the tags of the hidden siblings a dataset writer leaves when killed: its staging directory, a
# previous output moved aside while being replaced, ARC's spill files, an output check's probe
DIRECTORY_TAGS = ("partial", "old", "spill", "probe")
PAUSE_AT_ENV = "TRACEGYM_PAUSE_AT"
PAUSE_FILE_ENV = "TRACEGYM_PAUSE_FILE"
_SIGNALS = ("SIGTERM", "SIGHUP")  # default action: die at once; SIGINT already raises


class OutputBusyError(TracegymError):
    """Another process (or another thread of this one) is writing the same output."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while an output was being written (see
    :func:`signals_clean_up`); ``signum`` is the signal."""

    def __init__(self, signum: int):
        super().__init__(f"{signal.Signals(signum).name}: stopped")
        self.signum = signum


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed child its parent has not
    reaped yet runs no code). Another user's process counts as running."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # ESRCH
        return False
    except PermissionError:  # EPERM: it exists, under another user
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split at the last ")"
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:  # no /proc (macOS) or it just ended
        return True


def _leftover_pattern(name: str, tags: Sequence[str]) -> re.Pattern:
    """``.NAME.<tag>-<pid>``, optionally followed by ``-<random suffix>`` (mkdtemp's)."""
    return re.compile(rf"\.{re.escape(name)}\.({'|'.join(map(re.escape, tags))})-(\d+)"
                      r"(?:-[A-Za-z0-9_]+)?")


def remove_leftovers(path: str | os.PathLike, tags: Sequence[str] = DIRECTORY_TAGS) -> list[str]:
    """Remove the hidden siblings ``.NAME.<tag>-<pid>`` of ``path`` left by processes that no
    longer run, saying so on stderr in one line; return their names. A ``.NAME.old-<pid>`` (a
    previous ``path`` moved aside by a writer killed before its new one was renamed in) is put
    back when ``path`` is missing. The caller must hold ``path``'s lock (:class:`OutputLock`), or
    be the only writer, so that no live writer of ours owns them; a leftover named by a running
    PID other than ours is left alone (it may belong to a writer that does not lock)."""
    path = Path(path)
    if not tags:
        return []
    pattern = _leftover_pattern(path.name, tags)
    try:
        names = sorted(os.listdir(path.parent))
    except FileNotFoundError:
        return []
    removed, restored, kept = [], [], []
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        pid = int(match[2])
        # our own pid: an earlier process that had it, as nothing of ours is staged yet
        if pid != os.getpid() and pid_running(pid):
            kept.append(f"{name} (pid {pid} is running)")
            continue
        leftover = path.parent / name
        if match[1] == "old" and not (path.exists() or path.is_symlink()):
            os.replace(leftover, path)
            restored.append(name)
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(name)
    if removed or restored or kept:
        parts = [f"removed {', '.join(removed)}"] if removed else []
        parts += [f"put the previous output back from {', '.join(restored)}"] if restored else []
        parts += [f"left {', '.join(kept)}"] if kept else []
        print(f"tracegym: leftovers of killed writers of {str(path)!r}: {'; '.join(parts)}",
              file=sys.stderr, flush=True)
    return removed + restored


# ---------------------------------------------------------------------------------------------
# the lock

class _Held:
    """A lock file this process holds: its descriptor, the thread holding it, how many
    ``acquire()`` calls are open, and the parents of the output its first one made."""

    def __init__(self, fd: int, made: list[Path], path: Path):
        self.fd, self.made, self.path = fd, made, path
        self.owner, self.depth = threading.get_ident(), 0


_held: dict[str, _Held] = {}  # output path -> the lock this process holds on it
_held_guard = threading.Lock()


class OutputLock:
    """An exclusive lock on output ``out`` (a file or directory), by ``fcntl.flock`` on the
    hidden sibling ``.OUT.lock``; see the module docstring.

    ``acquire()`` raises :class:`OutputBusyError` when another process holds it; inside one
    process the lock is reentrant for the thread holding it (a builder locks its output, then
    the writer it calls locks it again) and refused to other threads. The outermost
    ``acquire()`` makes missing parents of ``out`` and removes the leftovers of dead writers
    (``tags``, :func:`remove_leftovers`); the matching ``release()`` removes the lock file, and
    the parents it made if ``out`` was not written. A lock still held when the interpreter
    exits is released then. As a context manager it also applies :func:`signals_clean_up`."""

    def __init__(self, out: str | os.PathLike, *, tags: Sequence[str] = DIRECTORY_TAGS,
                 path: str | os.PathLike | None = None):
        self.out = Path(os.path.abspath(os.fspath(out)))
        # the lock file: beside OUT, unless given (a run directory keeps it inside, as its
        # parent may be read-only)
        self.path = self.out.with_name(f".{self.out.name}.lock") if path is None \
            else Path(os.path.abspath(os.fspath(path)))
        self.tags = tuple(tags)
        self.count = 0  # acquire() calls of this object not yet released

    def acquire(self) -> OutputLock:
        key = str(self.out)
        with _held_guard:
            held = _held.get(key)
            first = held is None
            if first:
                held = _held[key] = _Held(*self._lock(), self.path)
            elif held.owner != threading.get_ident():
                raise OutputBusyError(f"out: {key!r} is being written by another thread of "
                                      "this process")
            held.depth += 1
            self.count += 1
        if first:
            try:
                remove_leftovers(self.out, self.tags)
            except BaseException:
                self.release()
                raise
        return self

    def _lock(self) -> tuple[int, list[Path]]:
        made, parent = [], self.path.parent
        while not parent.is_dir():  # remember what we make, to undo it if nothing is written
            made.append(parent)
            parent = parent.parent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                _remove_empty(made)
                who = f"pid {holder}" if holder.isdigit() else "a process that is starting"
                raise OutputBusyError(f"out: {str(self.out)!r} is being written by another "
                                      f"process ({who}); wait for it to end, or write "
                                      "elsewhere") from None
            # the holder before us may have removed the file between our open and our flock:
            # then we locked a deleted file, and must lock the one now at the path
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd, made

    def release(self) -> None:
        key = str(self.out)
        with _held_guard:
            if not self.count:
                return
            self.count -= 1
            held = _held.get(key)
            if held is None:  # released already, by _release_all at the exit
                return
            held.depth -= 1
            if not held.depth:
                del _held[key]
                _unlock(self.out, held)

    def __enter__(self) -> OutputLock:
        self._signals = signals_clean_up()
        self._signals.__enter__()
        try:
            return self.acquire()
        except BaseException:
            self._signals.__exit__(*sys.exc_info())
            raise

    def __exit__(self, *exc) -> bool:
        try:
            self.release()
        finally:
            self._signals.__exit__(*exc)
        return False


def _unlock(out: Path, held: _Held) -> None:
    try:
        held.path.unlink(missing_ok=True)  # while locked: a waiting locker retries on a new file
    finally:
        os.close(held.fd)
    if not (out.exists() or out.is_symlink()):
        _remove_empty(held.made)


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


@atexit.register
def _release_all() -> None:
    """A lock held to the end (a trainer's run directory) leaves no lock file behind."""
    with _held_guard:
        for key, held in list(_held.items()):
            _unlock(Path(key), held)
        _held.clear()


def output_lock(out: str | os.PathLike, *, tags: Sequence[str] = DIRECTORY_TAGS) -> OutputLock:
    """``with output_lock(out):`` write ``out`` alone (:class:`OutputLock`), SIGTERM cleaning
    up (:func:`signals_clean_up`)."""
    return OutputLock(out, tags=tags)


# ---------------------------------------------------------------------------------------------
# signals

_signals_depth = 0  # nesting of signals_clean_up() in the main thread


@contextmanager
def signals_clean_up() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (a second one during the
    cleanup is ignored) instead of killing the process outright, so the ``finally`` blocks and
    ``except BaseException`` cleanups of a writer run; when the outermost block ends by it, the
    signal is sent again with its default action, so the process ends as killed by it. Only
    signals whose handler is the default are taken, and only in the main thread (where Python
    runs handlers): a program that handles them itself keeps its handlers."""
    global _signals_depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        for sig in previous:  # the cleanup that follows must not be cut short in turn
            signal.signal(sig, signal.SIG_IGN)
        print(f"tracegym: {signal.Signals(signum).name}: stopping; removing the unfinished "
              "output", file=sys.stderr, flush=True)
        raise Terminated(signum)

    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    _signals_depth += 1
    try:
        yield
    except Terminated as err:
        if _signals_depth == 1:
            for sig, old in previous.items():
                signal.signal(sig, old)
            previous.clear()
            signal.signal(err.signum, signal.SIG_DFL)
            os.kill(os.getpid(), err.signum)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [err.signum])  # delivered here if blocked
        raise
    finally:
        _signals_depth -= 1
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# a hook for tests


def pause_point(name: str) -> None:
    """When the environment variable ``TRACEGYM_PAUSE_AT`` equals ``name``, write ``name`` to
    the file ``TRACEGYM_PAUSE_FILE`` and sleep until a signal ends the process: a test waits for
    the file, then kills the writer at a known point. A no-op otherwise.

    The points: ``generate`` (items drawn or records traced), ``spill`` (rows spilled to disk),
    ``parquet`` (a Parquet file half-written), ``rename`` (a staged output complete, before its
    rename)."""
    if os.environ.get(PAUSE_AT_ENV) != name:
        return
    flag = Path(os.environ[PAUSE_FILE_ENV])
    staged = flag.with_name(f".{flag.name}.tmp-{os.getpid()}")
    staged.write_text(name, encoding="utf-8")
    os.replace(staged, flag)  # the test never reads half a file
    deadline = time.monotonic() + 600  # a test that forgot to kill us must not hang CI forever
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError(f"pause_point({name!r}): nobody ended this process in 600 s")
