"""Sudoku puzzle sources for the envs: :func:`tracegym.sources.make_source` with Sudoku checks.

Grids are drawn flat, ``(n*n,)`` int8. A list of puzzles is checked once for a solution.
"""

from __future__ import annotations

import numpy as np

from tracegym.errors import TracegymError, UnsolvableError
from tracegym.sources import CallableSource, ListSource, PuzzleSource
from tracegym.sources import make_source as _make_source

from .board import DEFAULT_SIZE, SIZES, as_grid, read_puzzles
from .generator import DIFFICULTIES, GeneratedPuzzle, SudokuGenerator
from .solver import solve_batch


def _convert(item, field: str, size: int | None = None) -> np.ndarray:
    puzzle = item.puzzle if isinstance(item, GeneratedPuzzle) else item
    return as_grid(puzzle, size, field=field).reshape(-1)


def _is_single(item) -> bool:
    if isinstance(item, str):
        return True
    return isinstance(item, np.ndarray) and item.ndim == 2 and item.shape[0] in SIZES \
        and item.shape[0] == item.shape[1]  # one (n, n) grid, not a stack of puzzle lines


def make_source(puzzles, size: int | None, difficulty: str) -> PuzzleSource:
    """The env's ``puzzles=`` option as a source; its ``size`` is the board side."""

    def convert(item, field):
        return _convert(item, field, size)

    def read_file(path):
        return [g.reshape(-1) for g in read_puzzles(path, size)]

    def default():
        gen = SudokuGenerator(DEFAULT_SIZE if size is None else size, difficulty)
        return CallableSource(gen, convert, shape=(gen.config.size ** 2,))

    if isinstance(puzzles, SudokuGenerator):
        source = CallableSource(puzzles, convert, shape=(puzzles.config.size ** 2,))
    else:
        source = _make_source(puzzles, convert=convert, read_file=read_file,
                              is_single=_is_single, default=default)
    source.size = int(round(np.sqrt(source.shape[0])))
    if size is not None and source.size != size:
        raise ValueError(f"size={size} does not match the puzzles' size {source.size}")
    if isinstance(source, ListSource):
        n = source.size
        _, counts, _ = solve_batch(source.grids.reshape(-1, n, n))
        if (counts == 0).any():
            raise UnsolvableError(f"puzzles[{int(np.argmin(counts))}]: has no solution")
    return source


def check_puzzle(puzzle, size: int, field: str) -> np.ndarray:
    """One given puzzle (a string or an (n, n) grid, 0 = blank) of side ``size``, checked for
    its format, clashing givens and a solution, as a flat ``(n*n,)`` int8 grid."""
    grid = as_grid(puzzle, size, field=field)
    if solve_batch(grid[None])[1][0] == 0:
        raise UnsolvableError(f"{field}: has no solution")
    return grid.reshape(-1)


def generated_source(size: int, difficulty, field: str) -> PuzzleSource:
    """Fresh puzzles of ``size`` at ``difficulty``; a level that is unknown, or unavailable at
    this size, raises TracegymError naming ``field``."""
    if not isinstance(difficulty, str) or difficulty not in DIFFICULTIES:
        raise TracegymError(f"{field} must be one of {list(DIFFICULTIES)}, got {difficulty!r}")
    try:
        generator = SudokuGenerator(size, difficulty)
    except ValueError as e:  # e.g. no "extreme" 4x4 puzzle exists
        raise TracegymError(f"{field}: {e}") from None
    return CallableSource(generator, _convert, shape=(size * size,))
