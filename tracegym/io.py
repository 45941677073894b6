"""Atomic writes: a reader sees the old file (or directory) or the new one, never half of one.

Everything is written under a hidden temporary name in the destination's own directory (so the
final ``os.replace`` is a rename within one file system) and renamed over the destination at the
end; if the writing fails, the temporary is removed and the destination is left as it was.
Temporary names carry the writer's PID (``.NAME.tmp-<pid>`` for a file, ``.NAME.partial-<pid>``
for a directory): a run killed half-way leaves a hidden leftover that names its process, and the
next writer of the same output removes it once that process has ended (:mod:`tracegym.outputs`).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a.txt", "hello\\n")
>>> (folder / "a.txt").read_text()
'hello\\n'
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(path: str | os.PathLike, tag: str) -> Path:
    """The hidden name ``.NAME.<tag>-<pid>`` beside ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file name beside ``path`` for the caller to write (with any library
    that takes a path: ``np.save``, ``savefig``, safetensors); when the block ends it replaces
    ``path``, and when the block raises it is removed. The parent directory must exist."""
    path = Path(path)
    tmp = temporary_sibling(path, "tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure; after os.replace there is nothing left


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, with ``\\n`` line ends on every platform."""
    atomic_write_bytes(path, text.encode(encoding))


def replace_directory(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Rename directory ``tmp`` to ``out``. A missing or empty ``out`` is replaced in one step;
    a non-empty one is first moved aside (``.OUT.old-<pid>``), then deleted, and put back if the
    rename fails."""
    tmp, out = Path(tmp), Path(out)
    if out.is_dir() and any(out.iterdir()):
        old = temporary_sibling(out, "old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)  # put the previous contents back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextmanager
def atomic_directory(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh hidden sibling directory ``.OUT.partial-<pid>`` to fill; when the block ends
    it replaces ``out`` (:func:`replace_directory`), and when the block raises it is removed, so
    ``out`` is never half-written. Missing parents of ``out`` are made."""
    out = Path(out)
    tmp = temporary_sibling(out, "partial")
    if tmp.exists():  # left by a killed run of a process with our pid
        shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
        replace_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
