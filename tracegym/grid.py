"""Grid and token utilities shared by every grid task (Sudoku, Maze, ARC).

Grid tasks become fixed-length token sequences, row-major, as in the TRM/HRM datasets: id ``0`` is
padding and the task's symbols start at ``1``. Each task decides its own symbol table; the code that
turns characters into cells and grids into tokens lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tracegym.errors import PuzzleFormatError

PAD_ID = 0


def check_cells(grid: np.ndarray, high: int, *, field: str, name: str = "value",
                error: type[ValueError] = PuzzleFormatError) -> np.ndarray:
    """``grid`` (any shape, checked by the caller) as int8 with every cell in ``0..high``.

    Non-integer cells or the first cell out of range raise ``error`` naming ``field``, the cell
    (rows and columns counted from 1) and its ``name`` ("value", "code", "colour").
    """
    if not np.issubdtype(grid.dtype, np.integer):
        raise error(f"{field}: expected integer cells, got dtype {grid.dtype}")
    bad = np.argwhere((grid < 0) | (grid > high))
    if len(bad):
        r, c = bad[0]
        raise error(f"{field}: cell at row {r + 1}, column {c + 1} has {name} "
                    f"{int(grid[r, c])} outside 0..{high}")
    return grid.astype(np.int8)

# Symbols of the common text formats: `.`/`0` blank, then 1-9, then A.. for 10 and up (16x16
# Sudoku writes 10..16 as A..G, so the digit 0 never collides with the blank).
DIGIT_CHARS = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def digit_alphabet(n: int, blanks: str = ".0") -> dict[str, int]:
    """Character -> value table for a grid of values ``1..n`` with the given blank characters."""
    if not 1 <= n <= len(DIGIT_CHARS):
        raise ValueError(f"n must be in 1..{len(DIGIT_CHARS)}, got {n}")
    table = {ch: 0 for ch in blanks}
    for value, ch in enumerate(DIGIT_CHARS[:n], start=1):
        table[ch] = value
        table[ch.lower()] = value
    return table


def parse_char_grid(
    text: str, alphabet: Mapping[str, int], shape: tuple[int, int], *, field: str = "grid"
) -> np.ndarray:
    """Parse ``rows*cols`` characters (whitespace ignored) into an int8 grid of ``shape``."""
    chars = "".join(text.split())
    rows, cols = shape
    if len(chars) != rows * cols:
        raise PuzzleFormatError(
            f"{field}: expected {rows * cols} characters for a {rows}x{cols} grid, got {len(chars)}"
        )
    lookup = np.full(128, -1, dtype=np.int16)
    for ch, value in alphabet.items():
        lookup[ord(ch)] = value
    codes = np.frombuffer(chars.encode("utf-8", "replace"), dtype=np.uint8)
    if len(codes) != len(chars) or (codes >= 128).any():
        bad = next(i for i, ch in enumerate(chars) if ord(ch) >= 128)
        raise PuzzleFormatError(f"{field}: bad character {chars[bad]!r} at position {bad}")
    values = lookup[codes]
    if (values < 0).any():
        bad = int(np.argmax(values < 0))
        raise PuzzleFormatError(
            f"{field}: bad character {chars[bad]!r} at position {bad} "
            f"(row {bad // cols + 1}, column {bad % cols + 1})"
        )
    return values.astype(np.int8).reshape(rows, cols)


def format_char_grid(grid: np.ndarray, symbols: str) -> str:
    """Write a grid of values as one line, ``symbols[v]`` for value ``v``."""
    lut = np.frombuffer(symbols.encode("ascii"), dtype=np.uint8)
    return lut[np.asarray(grid, dtype=np.intp).ravel()].tobytes().decode("ascii")


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 symmetries of the square (k in 0..7) on the last two axes.

    ``k % 4`` quarter turns counter-clockwise, then a transpose when ``k >= 4``.
    """
    if not 0 <= k < 8:
        raise ValueError(f"k must be in 0..7, got {k}")
    out = np.rot90(grid, k % 4, axes=(-2, -1))
    return np.swapaxes(out, -1, -2) if k >= 4 else out


def inverse_dihedral(k: int) -> int:
    """Index of the symmetry that undoes ``dihedral(., k)``."""
    if not 0 <= k < 8:
        raise ValueError(f"k must be in 0..7, got {k}")
    # Rotations invert to the opposite turn; the four reflections are their own inverse.
    return (4 - k) % 4 if k < 4 else k
