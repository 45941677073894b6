"""Grid and token utilities shared by every grid task (Sudoku, Maze, ARC).

Grid tasks become fixed-length token sequences, row-major, as in the TRM/HRM datasets: id ``0`` is
padding and the task's symbols start at ``1`` (each task's layout is its ``envs/<task>/tokens.py``).
Each task decides its own character table; parsing characters into cells
(:func:`parse_char_grid`, :func:`parse_char_rows`), writing cells as text, one grid or a batch
(:func:`format_char_grid`, :func:`char_texts`), and the 8 symmetries of the square
(:func:`dihedral`, in TRM's numbering) live here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tracegym.checks import check_int
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
    check_int("n", n, 1, len(DIGIT_CHARS))
    table = {ch: 0 for ch in blanks}
    for value, ch in enumerate(DIGIT_CHARS[:n], start=1):
        table[ch] = value
        table[ch.lower()] = value
    return table


def _codes(chars: str, alphabet: Mapping[str, int]) -> np.ndarray:
    """The value of every character of ``chars`` (int16, -1 for one outside ``alphabet``), in one
    table lookup: UTF-32 gives one code point per character, so non-ASCII text needs no loop."""
    lookup = np.full(128, -1, dtype=np.int16)
    for ch, value in alphabet.items():
        lookup[ord(ch)] = value  # alphabets are ASCII (an IndexError here is our bug)
    points = np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32)
    return np.where(points < 128, lookup[points & 127], -1)


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
    values = _codes(chars, alphabet)
    if (values < 0).any():
        bad = int(np.argmax(values < 0))
        raise PuzzleFormatError(
            f"{field}: bad character {chars[bad]!r} at position {bad} "
            f"(row {bad // cols + 1}, column {bad % cols + 1})"
        )
    return values.astype(np.int8).reshape(rows, cols)


def parse_char_rows(rows: Sequence[str], alphabet: Mapping[str, int], *,
                    field: str = "grid") -> np.ndarray:
    """Parse lines of equal length, one row each, into an ``(len(rows), width)`` int8 grid.

    Rows of different lengths and characters outside ``alphabet`` raise
    :class:`PuzzleFormatError` naming the row and column (from 1) and, for a bad character, the
    characters allowed (in the alphabet's order).
    """
    width = len(rows[0]) if rows else 0
    for r, row in enumerate(rows):
        if len(row) != width:
            raise PuzzleFormatError(f"{field}: ragged rows: row {r + 1} has {len(row)} "
                                    f"characters, row 1 has {width}")
    values = _codes("".join(rows), alphabet)
    bad = np.flatnonzero(values < 0)
    if bad.size:
        r, c = divmod(int(bad[0]), width)
        expected = ", ".join(repr(ch) for ch in alphabet)
        raise PuzzleFormatError(f"{field}: unknown character {rows[r][c]!r} at row {r + 1}, "
                                f"column {c + 1} (expected one of {expected})")
    return values.astype(np.int8).reshape(len(rows), width)


def char_texts(grids: np.ndarray, symbols: str, *, row_sep: str = "") -> np.ndarray:
    """``(..., H, W)`` grids of values -> ``(...)`` fixed-width numpy bytes, ``symbols[v]`` for
    value ``v``, row-major, with ``row_sep`` (one character, or none) between rows.

    One table lookup for a whole batch (dataset builders write a text column of every example).
    """
    grids = np.asarray(grids)
    *lead, h, w = grids.shape
    lut = np.frombuffer(symbols.encode("ascii"), dtype=np.uint8)
    cells = lut[grids.astype(np.intp)]  # (..., H, W)
    if row_sep:
        ends = np.full((*lead, h, 1), ord(row_sep), dtype=np.uint8)
        cells = np.concatenate([cells, ends], axis=-1)  # (..., H, W + 1): each row, then sep
        cells = cells.reshape(*lead, h * (w + 1))[..., :-1]  # no separator after the last row
    else:
        cells = cells.reshape(*lead, h * w)
    return np.ascontiguousarray(cells).view(f"S{cells.shape[-1]}").reshape(lead)


def format_char_grid(grid: np.ndarray, symbols: str, *, row_sep: str = "") -> str:
    """Write one grid of values as text, ``symbols[v]`` for value ``v``: one line, or rows joined
    by ``row_sep``."""
    return char_texts(grid, symbols, row_sep=row_sep).item().decode("ascii")


# The 8 symmetries of the square, numbered as TRM's ``dihedral_transform`` (dataset/common.py),
# so that the ``t<k>`` in dataset names means what TRM's tools take it to mean.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)  # rotations undo each other, reflections themselves


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 symmetries of the square (k in 0..7) on the last two axes, as TRM numbers
    them: 0 identity, 1 ``np.rot90(x, 1)``, 2 ``np.rot90(x, 2)``, 3 ``np.rot90(x, 3)``, 4
    ``np.fliplr(x)``, 5 ``np.flipud(x)``, 6 ``x.T``, 7 ``np.fliplr(np.rot90(x, 1))`` (the
    anti-transpose). A view where numpy gives one.
    """
    k = check_int("k", k, 0, 7)
    rows, cols = -2, -1
    if k < 4:
        return np.rot90(grid, k, axes=(rows, cols))
    if k == 4:
        return np.flip(grid, cols)
    if k == 5:
        return np.flip(grid, rows)
    if k == 6:
        return np.swapaxes(grid, rows, cols)
    return np.flip(np.rot90(grid, 1, axes=(rows, cols)), cols)


def inverse_dihedral(k: int) -> int:
    """Index of the symmetry that undoes ``dihedral(., k)``."""
    return DIHEDRAL_INVERSE[check_int("k", k, 0, 7)]
