"""Sudoku puzzle sources for the envs: :func:`tracegym.sources.make_source` with Sudoku checks.

Grids are drawn flat, ``(n*n,)`` int8. A list of puzzles is checked once for a solution.

The default source (``puzzles=None``) is a :class:`BufferedSource`: resets draw from a buffer of
generated puzzles that the compiled generator fills in batches, shared by every env of the
process, so a reset costs a table look-up instead of a fresh generation inside ``step``.
"""

from __future__ import annotations

import threading

import numpy as np

from tracegym.errors import TracegymError, UnsolvableError
from tracegym.sources import CallableSource, ListSource, PuzzleSource
from tracegym.sources import make_source as _make_source

from . import rules
from .board import DEFAULT_SIZE, SIZES, as_grid, geometry, read_puzzles
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
        return BufferedSource(DEFAULT_SIZE if size is None else size, difficulty)

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


# The buffer's puzzles are items 0..BUFFER_SIZE-1 of this seed of the generator, whatever the
# env's seed: a pure function of (size, difficulty), so every env draws from the same table.
BUFFER_SEED = 20_240_917
BUFFER_SIZE = 4096  # a power of two: a draw's index is the top bits of one raw 64-bit word
_BATCH = {4: 512, 6: 512, 9: 256, 16: 1}  # puzzles generated per refill (16x16 is slow)


class _Buffer:
    """The generated puzzles of one (size, difficulty), filled in batches on first use.

    ``grids`` (BUFFER_SIZE, n*n) int8; ``mask``/``count`` the rules' legal-write mask and
    candidate counts of each puzzle (what a reset loads), computed once per batch.
    """

    def __init__(self, size: int, difficulty: str):
        self.generator = SudokuGenerator(size, difficulty)
        self.geometry = geometry(size)
        self.batch = _BATCH[size]
        nn = size * size
        self.grids = np.zeros((BUFFER_SIZE, nn), np.int8)
        self.mask = np.zeros((BUFFER_SIZE, nn, size), np.int8)
        self.count = np.zeros((BUFFER_SIZE, nn), np.int16)
        self.ready = np.zeros(BUFFER_SIZE // self.batch, bool)
        self.complete = False  # every batch filled: draws skip the check
        self._lock = threading.Lock()  # two threads filling one batch would race on the rows

    def fill(self, indices: np.ndarray) -> None:
        """Generate every batch that holds one of ``indices`` and is not yet filled."""
        if self.complete:
            return
        batches = np.unique(indices // self.batch)
        todo = batches[~self.ready[batches]]
        if not len(todo):
            return
        with self._lock:
            for b in todo:
                if self.ready[b]:
                    continue
                start = int(b) * self.batch
                puzzles, _, _ = self.generator.generate_arrays(BUFFER_SEED, self.batch, start)
                rows = slice(start, start + self.batch)
                flat = puzzles.reshape(self.batch, -1)
                free = rules.free_digits(flat, self.geometry)
                _, row_of, count_of = rules._tables(self.geometry.size)
                self.grids[rows], self.mask[rows], self.count[rows] = \
                    flat, row_of[free], count_of[free]
                self.ready[b] = True
            self.complete = bool(self.ready.all())


_BUFFERS: dict[tuple[int, str], _Buffer] = {}


def _buffer(size: int, difficulty: str) -> _Buffer:
    key = (size, difficulty)
    if key not in _BUFFERS:
        _BUFFERS[key] = _Buffer(size, difficulty)
    return _BUFFERS[key]


class BufferedSource(PuzzleSource):
    """Generated puzzles of ``size`` at ``difficulty``, drawn from a shared buffer.

    The buffer holds items ``0..BUFFER_SIZE-1`` (4,096) of the generator's stream for
    :data:`BUFFER_SEED`; compiled code generates them a batch at a time, the first time a draw
    lands in a batch, and keeps them for the process (every env of that size and level shares
    them). A draw takes one raw 64-bit word from the env's generator and picks the item named by
    its top 12 bits, so what an env draws depends on its own seed only: the single env and each
    slot of the vector env draw the same puzzles, and ``reset(seed=s)`` repeats its episodes.
    Every puzzle has one solution and fits the level; an env sees at most 4,096 distinct ones
    (pass ``puzzles=SudokuGenerator(...)`` for a fresh puzzle on every reset, at the
    generator's speed).
    """

    def __init__(self, size: int, difficulty: str, field: str = "difficulty"):
        if not isinstance(difficulty, str) or difficulty not in DIFFICULTIES:
            raise TracegymError(f"{field} must be one of {list(DIFFICULTIES)}, "
                                f"got {difficulty!r}")
        try:
            self.buffer = _buffer(size, difficulty)
        except ValueError as e:  # e.g. no "extreme" 4x4 puzzle exists, or a bad size
            raise TracegymError(f"{field}: {e}") from None
        self.shape = (size * size,)
        self._shift = 64 - (BUFFER_SIZE.bit_length() - 1)

    def indices(self, rngs) -> np.ndarray:
        """One buffer index per generator of ``rngs`` (one raw word each), batches filled."""
        raw = np.array([rng.bit_generator.random_raw() for rng in rngs], np.uint64)
        idx = (raw >> np.uint64(self._shift)).astype(np.int64)
        self.buffer.fill(idx)
        return idx

    def draw(self, rng):
        return self.buffer.grids[self.indices([rng])[0]].copy()
