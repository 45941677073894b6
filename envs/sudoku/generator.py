"""Sudoku generator: a random full grid, then clues removed while the solution stays unique.

Item ``i`` of a seed is built from its own random stream, seeded by ``(seed, i)``, so any puzzle
can be rebuilt alone and a dataset shard needs nothing from the others. For each attempt:

1. a random complete grid (the search of :mod:`.solver` on an empty board, branches in random
   order);
2. cells visited in random order; a clue is removed when the solver proves that no *other*
   solution exists (the removed digit forbidden in that cell leaves no solution), until the
   level's clue target is reached (or every cell was tried: a minimal puzzle);
3. the puzzle is graded by the solver's effort (propagations ``nodes``, branches ``guesses``)
   and kept only if it fits the level, else the next attempt of the same stream runs.

Levels (clue targets scale with the board; the 9x9 values in brackets):

=======  ============================  =======================================================
level    clues                         effort
=======  ============================  =======================================================
easy     50% of cells (40)             solved by propagation alone (``guesses == 0``)
medium   40% of cells (32); 45% 16x16  solved by propagation alone (the default level)
hard     minimal (every clue needed)   solved by propagation alone
extreme  minimal                       needs guessing (``guesses >= 1``), as in Sudoku-Extreme
=======  ============================  =======================================================

Two pairs do not exist or are out of reach and raise ValueError: ``extreme`` 4x4 (every 4x4
puzzle yields to singles) and ``hard`` 16x16 (minimal 16x16 puzzles practically always need
guessing).

Every puzzle emitted has exactly one solution; :attr:`GeneratedPuzzle.clues` and ``guesses`` record
what was reached, not what was asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from tracegym.checks import check_int, check_positive_int, check_seed
from tracegym.errors import MultipleSolutionsError, UnsolvableError
from tracegym.rng import item_stream, shuffle

from .board import SIZES, geometry
from .solver import _DIGIT_OF, _POPCOUNT, _search, count_solutions

DIFFICULTIES = ("easy", "medium", "hard", "extreme")
# the columns of generate_arrays' stats, one row per puzzle
STATS_COLUMNS = ("clues", "nodes", "guesses", "attempts")
DEFAULT_DIFFICULTY = "medium"
# clue target as a fraction of the cells (0 = dig until minimal) and the effort rule
_CLUE_FRACTION = {"easy": 0.5, "medium": 0.4, "hard": 0.0, "extreme": 0.0}
_CLUE_FRACTION_16 = {**_CLUE_FRACTION, "medium": 0.45}  # 40% 16x16 almost always needs guesses
_NO_GUESS, _NEEDS_GUESS = 1, 2
_EFFORT_RULE = {"easy": _NO_GUESS, "medium": _NO_GUESS, "hard": _NO_GUESS,
                "extreme": _NEEDS_GUESS}
UNSUPPORTED = {(4, "extreme"): "every 4x4 puzzle is solved by singles without guessing",
               (16, "hard"): "minimal 16x16 puzzles practically always need guessing"}
MAX_ATTEMPTS = 10_000


@numba.njit(cache=True)
def _generate(seed, index, target_clues, effort_rule, max_attempts, peers, units, digit_of,
              popcount, puzzle, solution, stats):
    """Fill ``puzzle``/``solution`` (flat int8) for item ``index`` of ``seed``.

    ``stats`` gets (clues, nodes, guesses, attempts); returns False if no attempt fit the level.
    """
    nn = puzzle.shape[0]
    rng = item_stream(seed, index)
    empty = np.zeros(nn, dtype=np.int8)
    scratch = np.zeros(nn, dtype=np.int8)
    effort = np.zeros(2, dtype=np.int64)
    order = np.arange(nn)
    for attempt in range(max_attempts):
        # 1. a random full grid; a rare stuck search (16x16) is abandoned after a node budget
        if _search(empty, peers, units, digit_of, popcount, 1, 50 * nn, rng, True, -1, 0,
                   solution, effort) != 1:
            continue
        # 2. remove clues in random order while the solution stays unique
        shuffle(rng, order)
        puzzle[:] = solution
        clues = nn
        for cell in order:
            if clues <= target_clues:
                break
            digit = puzzle[cell]
            puzzle[cell] = 0
            if _search(puzzle, peers, units, digit_of, popcount, 1, 0, rng, False, cell,
                       1 << (digit - 1), scratch, effort) > 0:
                puzzle[cell] = digit  # another solution exists without this clue: keep it
            else:
                clues -= 1
        # 3. grade by the effort of solving the final puzzle
        effort[:] = 0
        _search(puzzle, peers, units, digit_of, popcount, 1, 0, rng, False, -1, 0, scratch,
                effort)
        guesses = effort[1]
        if effort_rule == 1 and guesses > 0:
            continue
        if effort_rule == 2 and guesses == 0:
            continue
        stats[0] = clues
        stats[1] = effort[0]
        stats[2] = guesses
        stats[3] = attempt + 1
        return True
    return False


@numba.njit(cache=True)
def _generate_batch(seed, start, target_clues, effort_rule, max_attempts, peers, units,
                    digit_of, popcount, puzzles, solutions, stats):
    for i in range(puzzles.shape[0]):
        if not _generate(seed, start + i, target_clues, effort_rule, max_attempts, peers, units,
                         digit_of, popcount, puzzles[i], solutions[i], stats[i]):
            return i
    return puzzles.shape[0]


@dataclass(frozen=True)
class GeneratedPuzzle:
    """One generated puzzle with its unique solution and the grade it reached."""

    puzzle: np.ndarray  # (n, n) int8, 0 = blank
    solution: np.ndarray  # (n, n) int8
    clues: int
    nodes: int
    guesses: int
    difficulty: str
    seed: int
    index: int


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of :class:`SudokuGenerator`; :meth:`validate` names any bad field."""

    size: int = 9
    difficulty: str = DEFAULT_DIFFICULTY
    max_attempts: int = MAX_ATTEMPTS

    def validate(self) -> GeneratorConfig:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {list(SIZES)}, got {self.size!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {list(DIFFICULTIES)}, "
                             f"got {self.difficulty!r}")
        if (self.size, self.difficulty) in UNSUPPORTED:
            raise ValueError(f"difficulty {self.difficulty!r} is not available for size "
                             f"{self.size}: {UNSUPPORTED[self.size, self.difficulty]}")
        check_positive_int("max_attempts", self.max_attempts)
        return self

    @property
    def target_clues(self) -> int:
        fraction = (_CLUE_FRACTION_16 if self.size == 16 else _CLUE_FRACTION)[self.difficulty]
        return round(fraction * self.size * self.size)


class SudokuGenerator:
    """Seeded generator of unique-solution puzzles.

    >>> gen = SudokuGenerator(size=4, difficulty="hard")
    >>> p = gen.generate(seed=7, index=0)
    >>> p.puzzle.shape, p.difficulty
    ((4, 4), 'hard')
    """

    def __init__(self, size: int = 9, difficulty: str = DEFAULT_DIFFICULTY,
                 max_attempts: int = MAX_ATTEMPTS):
        self.config = GeneratorConfig(size, difficulty, max_attempts).validate()
        geo = geometry(size)
        self._tables = (geo.peers, geo.units, _DIGIT_OF, _POPCOUNT)

    def __repr__(self) -> str:
        return f"SudokuGenerator(size={self.config.size}, difficulty={self.config.difficulty!r})"

    def generate_arrays(self, seed: int, count: int, start: int = 0):
        """Items ``start..start+count-1`` of ``seed`` as arrays.

        Returns ``(puzzles (count, n, n) int8, solutions (count, n, n) int8, stats (count, 4))``
        with stats columns :data:`STATS_COLUMNS` (clues, nodes, guesses, attempts).
        """
        seed = check_seed(seed)
        count, start = check_int("count", count, 0), check_int("start", start, 0)
        cfg = self.config
        n = cfg.size
        puzzles = np.zeros((count, n * n), dtype=np.int8)
        solutions = np.zeros((count, n * n), dtype=np.int8)
        stats = np.zeros((count, 4), dtype=np.int64)
        done = _generate_batch(seed, start, cfg.target_clues, _EFFORT_RULE[cfg.difficulty],
                               cfg.max_attempts, *self._tables, puzzles, solutions, stats)
        if done < count:
            raise RuntimeError(f"no {cfg.difficulty} {n}x{n} puzzle found for seed {seed}, "
                               f"index {start + done} in {cfg.max_attempts} attempts")
        return puzzles.reshape(count, n, n), solutions.reshape(count, n, n), stats

    def generate(self, seed: int, index: int = 0) -> GeneratedPuzzle:
        """Item ``index`` of ``seed``: the same arguments always give the same puzzle."""
        puzzles, solutions, stats = self.generate_arrays(seed, 1, index)
        clues, nodes, guesses, _ = (int(x) for x in stats[0])
        return GeneratedPuzzle(puzzles[0], solutions[0], clues, nodes, guesses,
                               self.config.difficulty, int(seed), int(index))

    def __call__(self, rng: np.random.Generator) -> GeneratedPuzzle:
        """Draw one puzzle from a numpy ``Generator`` (what the environments call on reset)."""
        return self.generate(int(rng.integers(2**63)), 0)


def require_unique(puzzle, *, size: int | None = None) -> np.ndarray:
    """Return the solution of ``puzzle`` if it has exactly one, else raise.

    :class:`UnsolvableError` for none, :class:`MultipleSolutionsError` for several.
    """
    result = count_solutions(puzzle, 2, size=size)
    if result.num_solutions == 0:
        raise UnsolvableError("puzzle: has no solution")
    if result.num_solutions > 1:
        raise MultipleSolutionsError("puzzle: has more than one solution (uniqueness check)")
    return result.solution
