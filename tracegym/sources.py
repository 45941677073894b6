"""Where an env's puzzles come from: a fixed list, a file, a generator, or any iterator.

Shared by every grid env: the env passes ``convert`` (check one item and return its grid) and
``read_file`` (parse a file of items); the rest is the same for Sudoku, mazes and ARC. Every
source is drawn with the env's ``np_random`` on reset, so the same seed gives the same puzzles
in the single env and in each slot of the vector env.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

Convert = Callable[[object, str], np.ndarray]


class PuzzleSource:
    """Draws one puzzle grid per call; ``shape`` is the grid shape of every draw."""

    shape: tuple[int, ...]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class ListSource(PuzzleSource):
    """Uniform draws from a fixed stack of puzzles."""

    def __init__(self, grids: list[np.ndarray], field: str = "puzzles"):
        if not len(grids):
            raise ValueError(f"{field}: the list is empty")
        shapes = sorted({g.shape for g in grids})
        if len(shapes) > 1:
            raise ValueError(f"{field}: mixed grid shapes {shapes}")
        self.shape = shapes[0]
        self.grids = np.stack(grids)

    def draw(self, rng):
        return self.grids[rng.integers(len(self.grids))]


class CallableSource(PuzzleSource):
    """A fresh puzzle per reset from a generator object or any ``rng -> puzzle`` callable."""

    def __init__(self, fn: Callable[[np.random.Generator], object], convert: Convert,
                 shape: tuple[int, ...] | None = None):
        self.fn, self.convert = fn, convert
        # the spaces need the shape before the first reset: probe with a throwaway rng
        self.shape = shape or self.draw(np.random.default_rng(0)).shape

    def draw(self, rng):
        return self.convert(self.fn(rng), "generated puzzle")


class IteratorSource(PuzzleSource):
    """The next puzzle of an iterator on each reset (the env's rng is not used)."""

    def __init__(self, iterator: Iterator, convert: Convert, field: str = "puzzles"):
        self.iterator, self.convert, self.field = iterator, convert, field
        self._pending = self._next()
        self.shape = self._pending.shape

    def _next(self) -> np.ndarray:
        try:
            item = next(self.iterator)
        except StopIteration:
            raise ValueError(f"{self.field}: the iterator is exhausted") from None
        return self.convert(item, f"{self.field} item")

    def draw(self, rng):
        if self._pending is not None:
            grid, self._pending = self._pending, None
            return grid
        return self._next()


def make_source(puzzles, *, convert: Convert, read_file: Callable[[str], list[np.ndarray]],
                is_single: Callable[[object], bool], default: Callable[[], PuzzleSource],
                field: str = "puzzles") -> PuzzleSource:
    """Turn an env's ``puzzles=`` style option into a :class:`PuzzleSource`.

    None -> ``default()``; a source -> itself; a path (``os.PathLike``, or a string naming an
    existing file) -> a list read by ``read_file``; one item (``is_single``) or a list of items ->
    a :class:`ListSource` of converted grids; a callable -> :class:`CallableSource`; an iterator ->
    :class:`IteratorSource`.
    """
    if puzzles is None:
        return default()
    if isinstance(puzzles, PuzzleSource):
        return puzzles
    if isinstance(puzzles, os.PathLike) or (isinstance(puzzles, str) and os.path.isfile(puzzles)):
        return ListSource(read_file(os.fspath(puzzles)), field)
    if is_single(puzzles):
        return ListSource([convert(puzzles, field)], field)
    if isinstance(puzzles, (list, tuple, np.ndarray)):
        return ListSource([convert(p, f"{field}[{i}]") for i, p in enumerate(puzzles)], field)
    if callable(puzzles):
        return CallableSource(puzzles, convert)
    if isinstance(puzzles, Iterator):
        return IteratorSource(puzzles, convert, field)
    raise ValueError(f"{field}: expected a list, a file path, a generator or an iterator, "
                     f"got {type(puzzles).__name__}")
