"""Where an env's puzzles come from: a fixed list, a file, a generator, or any iterator.

Every source is drawn with the env's ``np_random`` on reset, so the same seed gives the same
puzzles in the single env and in each slot of the vector env.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

from tracegym.errors import UnsolvableError

from .board import SIZES, as_grid, read_puzzles
from .generator import GeneratedPuzzle, SudokuGenerator
from .solver import solve_batch


class PuzzleSource:
    """Draws one puzzle ((nn,) int8) per call; ``size`` is the board side."""

    size: int

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class ListSource(PuzzleSource):
    """Uniform draws from a fixed stack of puzzles (each checked for conflicts and a solution)."""

    def __init__(self, grids: list[np.ndarray]):
        if not grids:
            raise ValueError("puzzles: the list is empty")
        sizes = {g.shape[0] for g in grids}
        if len(sizes) > 1:
            raise ValueError(f"puzzles: mixed board sizes {sorted(sizes)}")
        self.size = sizes.pop()
        self.puzzles = np.stack(grids).reshape(len(grids), -1).astype(np.int8)
        _, counts, _ = solve_batch(self.puzzles.reshape(len(grids), self.size, self.size))
        if (counts == 0).any():
            raise UnsolvableError(f"puzzles[{int(np.argmin(counts))}]: has no solution")

    def draw(self, rng):
        return self.puzzles[rng.integers(len(self.puzzles))]


class GeneratorSource(PuzzleSource):
    """A fresh puzzle per reset from a :class:`SudokuGenerator` or an ``rng -> puzzle`` callable."""

    def __init__(self, generator: Callable[[np.random.Generator], object], size: int | None):
        self.generator = generator
        self.size = generator.config.size if isinstance(generator, SudokuGenerator) else size

    def draw(self, rng):
        item = self.generator(rng)
        puzzle = item.puzzle if isinstance(item, GeneratedPuzzle) else item
        grid = as_grid(puzzle, self.size, field="generated puzzle")
        self.size = grid.shape[0]
        return grid.reshape(-1)


class IteratorSource(PuzzleSource):
    """Takes the next puzzle of an iterator on each reset (the env's rng is not used)."""

    def __init__(self, iterator: Iterator, size: int | None):
        self.iterator = iterator
        first = self._next()
        self.size = first.shape[0] if size is None else size
        self._pending = first

    def _next(self):
        try:
            item = next(self.iterator)
        except StopIteration:
            raise ValueError("puzzles: the iterator is exhausted") from None
        puzzle = item.puzzle if isinstance(item, GeneratedPuzzle) else item
        return as_grid(puzzle, field="puzzles item")

    def draw(self, rng):
        if self._pending is not None:
            grid, self._pending = self._pending, None
        else:
            grid = self._next()
        return grid.reshape(-1)


def make_source(puzzles, size: int | None, difficulty: str) -> PuzzleSource:
    """Turn the env's ``puzzles=`` option into a :class:`PuzzleSource`."""
    if puzzles is None:
        return GeneratorSource(SudokuGenerator(9 if size is None else size, difficulty), None)
    if isinstance(puzzles, PuzzleSource):
        source = puzzles
    elif isinstance(puzzles, (str, os.PathLike)) and (
            isinstance(puzzles, os.PathLike) or os.path.sep in puzzles or os.path.isfile(puzzles)):
        source = ListSource(read_puzzles(puzzles, size))
    elif isinstance(puzzles, str):
        source = ListSource([as_grid(puzzles, size)])
    elif isinstance(puzzles, np.ndarray) and puzzles.ndim == 2 and puzzles.shape[0] in SIZES \
            and puzzles.shape[0] == puzzles.shape[1]:  # one (n, n) grid, not a stack of lines
        source = ListSource([as_grid(puzzles, size)])
    elif isinstance(puzzles, (list, tuple, np.ndarray)):
        source = ListSource([as_grid(p, size, field=f"puzzles[{i}]")
                             for i, p in enumerate(puzzles)])
    elif callable(puzzles):
        source = GeneratorSource(puzzles, size)
    elif isinstance(puzzles, Iterator):
        source = IteratorSource(puzzles, size)
    else:
        raise ValueError(f"puzzles: expected a list, a file path, a generator or an iterator, "
                         f"got {type(puzzles).__name__}")
    if size is not None and source.size is not None and source.size != size:
        raise ValueError(f"size={size} does not match the puzzles' size {source.size}")
    if source.size is None:
        raise ValueError("size: must be given with a puzzle callable")
    return source
