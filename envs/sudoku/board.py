"""Sudoku boards: geometry (units and peers), text parsing and formatting, and given checks.

Text format: one puzzle per line, row-major, ``.`` or ``0`` for a blank, digits ``1``-``9``; 16x16
puzzles write 10..16 as ``A``..``G`` (case-insensitive), so every puzzle is ``size*size``
characters with one character per cell. The size follows from the length: 16 -> 4x4 (2x2 boxes),
36 -> 6x6 (2x3 boxes: 2 rows by 3 columns), 81 -> 9x9 (3x3), 256 -> 16x16 (4x4). Whitespace
inside a line is ignored; in files, empty lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracegym.errors import ConflictError, PuzzleFormatError
from tracegym.grid import (
    DIGIT_CHARS,
    check_cells,
    digit_alphabet,
    format_char_grid,
    parse_char_grid,
)

# size -> (box rows, box cols)
BOX_SHAPES: dict[int, tuple[int, int]] = {4: (2, 2), 6: (2, 3), 9: (3, 3), 16: (4, 4)}
SIZES = tuple(BOX_SHAPES)
DEFAULT_SIZE = 9  # the env's board side when neither size nor puzzles say


@dataclass(frozen=True)
class Geometry:
    """Index tables of an ``n x n`` board with ``box_rows x box_cols`` boxes.

    Cells are numbered row-major ``0..n*n-1``; units are the n rows, then the n columns, then the
    n boxes (``3n`` units of n cells each).
    """

    size: int
    box_rows: int
    box_cols: int
    units: np.ndarray = field(repr=False)  # (3n, n) cell ids of each unit
    peers: np.ndarray = field(repr=False)  # (n*n, P) cells sharing a unit with each cell
    cell_units: np.ndarray = field(repr=False)  # (n*n, 3) row, column and box unit of each cell

    @property
    def num_cells(self) -> int:
        return self.size * self.size

    @property
    def full_mask(self) -> int:
        return (1 << self.size) - 1

    def box_of(self, row: int, col: int) -> int:
        return (row // self.box_rows) * (self.size // self.box_cols) + col // self.box_cols


@functools.cache
def geometry(size: int) -> Geometry:
    """The (cached) geometry of a supported board size."""
    if size not in BOX_SHAPES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    br, bc = BOX_SHAPES[size]
    n = size
    rows = np.arange(n * n).reshape(n, n)
    boxes = rows.reshape(n // br, br, n // bc, bc).transpose(0, 2, 1, 3).reshape(n, n)
    units = np.concatenate([rows, rows.T, boxes]).astype(np.int32)
    cell_units = np.zeros((n * n, 3), dtype=np.int32)
    for u, cells in enumerate(units):
        cell_units[cells, u // n] = u
    peers = []
    for cell in range(n * n):
        near = set(np.concatenate(units[cell_units[cell]]).tolist()) - {cell}
        peers.append(sorted(near))
    geo = Geometry(n, br, bc, units, np.array(peers, dtype=np.int32), cell_units)
    for arr in (geo.units, geo.peers, geo.cell_units):
        arr.setflags(write=False)
    return geo


def size_from_length(length: int, *, field: str = "puzzle") -> int:
    for size in SIZES:
        if size * size == length:
            return size
    valid = ", ".join(f"{s * s} ({s}x{s})" for s in SIZES)
    raise PuzzleFormatError(f"{field}: length {length} is not a Sudoku size; expected {valid}")


def parse_puzzle(text: str, size: int | None = None, *, field: str = "puzzle") -> np.ndarray:
    """Parse one puzzle line into an ``(n, n)`` int8 grid (0 = blank) and check its givens.

    Raises :class:`PuzzleFormatError` for a wrong length or character and :class:`ConflictError`
    when two givens clash.
    """
    chars = "".join(text.split())
    n = size_from_length(len(chars), field=field) if size is None else size
    geometry(n)  # validates the size
    grid = parse_char_grid(chars, digit_alphabet(n), (n, n), field=field)
    check_givens(grid, field=field)
    return grid


def format_puzzle(grid: np.ndarray, *, blank: str = ".") -> str:
    """Write an ``(n, n)`` grid as one line (the inverse of :func:`parse_puzzle`)."""
    grid = np.asarray(grid)
    if blank not in ".0":
        raise ValueError(f"blank must be '.' or '0', got {blank!r}")
    return format_char_grid(grid, blank + DIGIT_CHARS[: grid.shape[-1]])


def read_puzzles(path: str | os.PathLike, size: int | None = None) -> list[np.ndarray]:
    """Read a file of puzzles, one per line (``#`` comments and empty lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"puzzles: no such file {str(path)!r}")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(parse_puzzle(line, size, field=f"{path.name}:{lineno}"))
    if not out:
        raise PuzzleFormatError(f"puzzles: file {str(path)!r} holds no puzzle")
    return out


def as_grid(puzzle, size: int | None = None, *, field: str = "puzzle") -> np.ndarray:
    """Accept a puzzle string or an array-like grid and return a checked int8 ``(n, n)`` grid."""
    if isinstance(puzzle, str):
        return parse_puzzle(puzzle, size, field=field)
    arr = np.asarray(puzzle)
    if arr.ndim == 1:
        arr = arr.reshape(-1, size_from_length(arr.size, field=field)) if arr.size else arr
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] not in BOX_SHAPES:
        raise PuzzleFormatError(f"{field}: expected a square grid of side {list(SIZES)}, "
                                f"got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise PuzzleFormatError(f"{field}: expected a {size}x{size} grid, got {arr.shape}")
    grid = check_cells(arr, arr.shape[0], field=field)
    check_givens(grid, field=field)
    return grid


def find_conflict(grid: np.ndarray) -> tuple[str, int, int] | None:
    """The first clash among the givens as ``(unit kind, unit number from 1, digit)``, or None."""
    n = grid.shape[0]
    geo = geometry(n)
    flat = np.asarray(grid).reshape(-1)
    values = flat[geo.units]  # (3n, n)
    for u in range(3 * n):
        counts = np.bincount(values[u], minlength=n + 1)
        counts[0] = 0
        if counts.max() > 1:
            kind = ("row", "column", "box")[u // n]
            return kind, u % n + 1, int(np.argmax(counts > 1))
    return None


def check_givens(grid: np.ndarray, *, field: str = "puzzle") -> None:
    """Raise :class:`ConflictError` naming the unit and digit if two givens clash."""
    clash = find_conflict(grid)
    if clash is not None:
        kind, index, digit = clash
        raise ConflictError(f"{field}: digit {DIGIT_CHARS[digit - 1]} appears twice in "
                            f"{kind} {index}")


def is_valid_solution(grid: np.ndarray, givens: np.ndarray | None = None) -> bool:
    """True iff ``grid`` is complete, breaks no rule, and agrees with the nonzero ``givens``."""
    grid = np.asarray(grid)
    n = grid.shape[0]
    geo = geometry(n)
    values = grid.reshape(-1)[geo.units]
    want = np.arange(1, n + 1)
    if not (np.sort(values, axis=1) == want).all():
        return False
    if givens is not None:
        givens = np.asarray(givens)
        mask = givens != 0
        return bool((grid[mask] == givens[mask]).all())
    return True
