"""Run directories: checked before a run starts (so a bad ``--out`` fails at once, not after the
model is built and trained), refused when they already hold a run, and cleared on request.

File-system problems raise an OSError of the matching kind (PermissionError, NotADirectoryError,
...) whose message names the user's path; an existing run raises :class:`RunExistsError`.

One process at a time writes a run directory: it holds the directory's lock
(:func:`lock_run_dir`, a :class:`tracegym.outputs.OutputLock`), and another process asking for
it gets :class:`~tracegym.outputs.OutputBusyError` naming the holder's PID.
"""

from __future__ import annotations

import errno
import os
import tempfile
import weakref
from pathlib import Path

from tracegym.errors import TracegymError
from tracegym.outputs import OutputLock, remove_leftovers

# what a run writes into its directory (a fresh run replaces these with --overwrite)
RUN_FILES = ("checkpoint.safetensors", "metrics.jsonl", "config.json", "curves.png")
LOCK_NAME = ".lock"  # inside the run directory: its parent may be read-only (a mounted volume)


class RunExistsError(TracegymError):
    """The run directory already holds files, and neither overwrite nor resume was asked for."""


def os_error(kind: type[OSError], code: int | None, message: str) -> OSError:
    """``kind(message)`` with ``errno`` set: one argument, so the message is the whole line the
    CLI prints (it names the user's path)."""
    err = kind(message)
    err.errno = code
    return err


def run_dir_of(checkpoint: str | os.PathLike) -> Path:
    """The run directory of a checkpoint given as a file or as its run directory."""
    path = Path(checkpoint)
    return path if path.is_dir() else path.parent


def check_writable_dir(path: str | os.PathLike, what: str = "out") -> Path:
    """Create directory ``path`` (and its parents) if missing and check that files can be
    written in it, by writing and removing a probe file: permission bits alone miss read-only
    mounts, /proc and /sys. Raises an OSError naming ``path``."""
    path = Path(path)
    shown = repr(str(path))
    if path.exists() and not path.is_dir():
        raise os_error(FileExistsError, errno.EEXIST,
                        f"{what}: {shown} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_error(type(err), err.errno, f"{what}: cannot create directory {shown}: "
                        f"{err.strerror or err}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise os_error(type(err), err.errno, f"{what}: cannot write in {shown}: "
                        f"{err.strerror or err}") from None
    return path


def prepare_run_dir(out: str | os.PathLike, *, overwrite: bool = False,
                    resume: bool = False) -> Path:
    """Make ``out`` ready for a run before anything slow happens.

    A missing or empty directory is fine. One that holds files is refused
    (:class:`RunExistsError`) unless ``resume`` (the run continues there) or ``overwrite`` (the
    files of the old run, :data:`RUN_FILES`, are deleted; other files are left alone). A
    directory another process is training in is refused whatever the flags
    (:class:`~tracegym.outputs.OutputBusyError`); the temporary files of a run killed while
    saving (``.checkpoint.safetensors.tmp-<pid>``, its process gone) are removed.
    """
    path = check_writable_dir(out)  # a bad location fails first, naming the user's path
    with _run_lock(path):  # never clear the files of a run that is going on
        for name in RUN_FILES:
            remove_leftovers(path / name, tags=("tmp",))
        if not resume:
            present = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
            if present and not overwrite:
                runs = [name for name in RUN_FILES if name in present]
                held = f"holds a run ({', '.join(runs)})" if runs else "is not empty"
                raise RunExistsError(f"out: {str(path)!r} {held}; pass --overwrite to replace "
                                     f"it, or --resume {path} to continue it")
            for name in RUN_FILES:
                target = path / name
                if target.is_file():
                    target.unlink()
    return path


def _run_lock(path: Path) -> OutputLock:
    return OutputLock(path, tags=(), path=path / LOCK_NAME)


def lock_run_dir(out: str | os.PathLike, owner: object | None = None) -> OutputLock:
    """Take run directory ``out``'s lock (the file ``OUT/.lock``) for a run that writes it
    (rank 0 of a Trainer): :class:`~tracegym.outputs.OutputBusyError`, naming the holder's PID,
    while another process holds it. Held until ``release()``, until ``owner`` is
    garbage-collected, or to the exit. ``out`` must exist (:func:`check_writable_dir`)."""
    lock = _run_lock(Path(out)).acquire()
    if owner is not None:
        weakref.finalize(owner, lock.release)
    return lock
