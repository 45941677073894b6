"""Sudoku solver: bit-mask constraint propagation plus depth-first search.

Each cell keeps a bit mask of the digits still possible (bit ``d-1`` for digit ``d``). Placing a
digit clears its bit from the cell's peers (*naked singles* fall out when a mask has one bit
left); a scan over the units changed since their last scan finds digits with a single place
left in a unit (*hidden singles*) and contradictions (an empty mask, or a digit with no place in
a unit). When propagation stalls, the search branches on the empty cell with the fewest
candidates. The hot loops are compiled with numba (``cache=True``, so the compile happens once
per machine). This generic core serves every size; 9x9 puzzles go to the bit-board core of
:mod:`.bitboard` (:func:`count_solutions`, :func:`solve`, :func:`solve_batch` pick it), which
adds box-line eliminations and is several times faster. Both find the same solutions and the
same counts; on a puzzle with several solutions the first one found may differ between them.
The generator keeps the generic core (:func:`_search`), so its puzzles and grades do not depend
on the 9x9 core.

Effort is reported as ``nodes`` (propagations, the root included: 1 means propagation alone
solved the puzzle) and ``guesses`` (branches taken), by whichever core ran: the 9x9 core's
stronger propagation usually needs about a third of the generic core's guesses, and never a
guess where the generic core needs none. :func:`count_solutions` with ``limit=2`` is the
uniqueness test. :func:`solve_batch` runs a whole ``(B, n, n)`` array in one compiled call,
over every core for large batches (what ``tracegym solve FILE`` uses). :func:`solve_reference`
is a plain recursive solver kept as an independent check and as the reference of
``benchmarks/sudoku.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from tracegym.checks import check_positive_int
from tracegym.errors import (
    MultipleSolutionsError,
    PuzzleFormatError,
    UnsolvableError,
)
from tracegym.rng import randbelow

from .bitboard import search9, solve_batch9, solve_batch9_parallel
from .board import as_grid, geometry

# ---------------------------------------------------------------------------------------------
# compiled core

MAX_SIZE = 16
_POPCOUNT = sum((np.arange(1 << MAX_SIZE) >> b) & 1 for b in range(MAX_SIZE)).astype(np.int8)
# digit (1-based) of a one-bit mask; only entries at powers of two are meaningful
_DIGIT_OF = np.zeros(1 << MAX_SIZE, dtype=np.int8)
_DIGIT_OF[1 << np.arange(MAX_SIZE)] = np.arange(1, MAX_SIZE + 1)


@numba.njit(cache=True)
def _cell_tables(units, nn):
    """Per-cell lookups derived from ``units``: its 3 unit ids, and those units as a bit mask."""
    n = units.shape[1]
    cell_units = np.empty((nn, 3), dtype=np.int32)
    unit_mask = np.zeros(nn, dtype=np.int64)  # 3n <= 48 units: one int64 holds a set of units
    for kind in range(3):  # rows, columns, boxes (no division: this runs once per search)
        for i in range(n):
            u = kind * n + i
            for k in range(n):
                cell = np.uint32(units[u, k])
                cell_units[cell, kind] = u
                unit_mask[cell] |= np.int64(1) << u
    return cell_units, unit_mask


# The search state is one int32 array: ``state[cell]`` is the candidate mask of an open cell (0
# once the cell is placed) and ``state[nn + u]`` the digits placed in unit ``u``. ``values``
# holds the digits of placed cells and is only written: a backtrack restores ``state``, and the
# digits it leaves stale belong to open cells, which are placed again before a solution is read.
#
# Speed notes (each measured): the placement is written out inside the loops rather than called,
# since a numba call passing arrays costs reference counting; indices read from arrays are cast
# to unsigned, which spares numba's negative-index wraparound on every access.


@numba.njit(cache=True)
def _propagate(values, state, peers, units, cell_units, unit_mask, digit_of, queue, qtail, dirty,
               full):
    """Apply naked and hidden singles until nothing changes; False on contradiction.

    ``queue[:qtail]`` holds cells pinned to one candidate, waiting to be placed; ``dirty`` is the
    set of units changed since they were last scanned for hidden singles. The fixpoint (and
    whether a contradiction is met) does not depend on the order of the deductions, so scanning
    only the dirty units ends in the same state as scanning them all.
    """
    nn = state.shape[0] - units.shape[0]
    n = units.shape[1]
    qhead = 0
    while True:
        while qhead < qtail:
            cell = np.uint32(queue[qhead])
            qhead += 1
            bit = state[cell]
            if bit == 0:  # placed already (queued twice)
                continue
            for k in range(3):
                u = np.uint32(nn + cell_units[cell, k])
                if state[u] & bit:
                    return False  # the digit is already placed in one of the cell's units
                state[u] |= bit
            values[cell] = digit_of[np.uint32(bit)]
            state[cell] = 0
            dirty |= unit_mask[cell]
            for j in range(peers.shape[1]):
                p = np.uint32(peers[cell, j])
                c = state[p]
                if c & bit:
                    c ^= bit
                    if c == 0:
                        return False
                    state[p] = c
                    dirty |= unit_mask[p]
                    if (c & (c - 1)) == 0:
                        queue[qtail] = p
                        qtail += 1
        qhead = 0
        qtail = 0
        for u in range(units.shape[0]):
            if ((dirty >> u) & 1) == 0:
                continue
            dirty &= ~(np.int64(1) << u)
            once = 0
            twice = 0
            for k in range(n):
                c = state[np.uint32(units[u, k])]
                twice |= once & c
                once |= c
            if (once | state[nn + u]) != full:
                return False  # some digit has no place left in this unit
            hidden = once & ~twice
            while hidden != 0:
                bit = hidden & -hidden
                hidden ^= bit
                found = False
                for k in range(n):
                    cell = np.uint32(units[u, k])
                    if (state[cell] & bit) != 0:
                        state[cell] = bit
                        dirty |= unit_mask[cell]
                        queue[qtail] = cell
                        qtail += 1
                        found = True
                        break
                if not found:
                    return False  # the cell holding this digit was already pinned to another
        if qtail == 0:
            return True


@numba.njit(cache=True)
def _search_core(givens, peers, units, cell_units, unit_mask, digit_of, popcount, limit,
                 max_nodes, rng, randomize, forbid_cell, forbid_bit, solution, stats):
    """:func:`_search` with the per-cell tables of :func:`_cell_tables` passed in."""
    nn = givens.shape[0]
    n = units.shape[1]
    nu = units.shape[0]
    m = nn + nu
    full = (1 << n) - 1
    values = np.zeros(nn, dtype=np.int8)
    state = np.zeros(m, dtype=np.int32)
    queue = np.empty(4 * nn + 4, dtype=np.int32)
    # the givens: a digit twice in a unit, or an open cell whose peers hold every digit, is a
    # contradiction before any propagation (no node counted)
    for cell in range(nn):
        v = givens[cell]
        if v != 0:
            if v < 0 or v > n:
                return 0
            bit = np.int32(1) << (v - 1)
            for k in range(3):
                u = np.uint32(nn + cell_units[cell, k])
                if state[u] & bit:
                    return 0
                state[u] |= bit
            values[cell] = v
    qtail = 0
    for cell in range(nn):
        if givens[cell] == 0:
            c = full & ~(state[np.uint32(nn + cell_units[cell, 0])]
                         | state[np.uint32(nn + cell_units[cell, 1])]
                         | state[np.uint32(nn + cell_units[cell, 2])])
            if c == 0:
                return 0
            state[cell] = c
            if (c & (c - 1)) == 0:
                queue[qtail] = cell
                qtail += 1
    if forbid_cell >= 0:
        c = state[forbid_cell] & ~forbid_bit
        if c == 0:  # also when the cell holds a given (state 0)
            return 0
        state[forbid_cell] = c
        if (c & (c - 1)) == 0:
            queue[qtail] = forbid_cell
            qtail += 1
    all_units = (np.int64(1) << nu) - 1

    # saved states, one row per open branch; grown on demand (the depth is rarely near nn)
    cap = min(nn + 1, 32)
    saved = np.empty((cap, m), dtype=np.int32)
    branch_cell = np.empty(nn + 1, dtype=np.int32)
    branch_left = np.empty(nn + 1, dtype=np.int32)
    depth = 0
    count = 0
    nodes = 1
    guesses = 0
    ok = _propagate(values, state, peers, units, cell_units, unit_mask, digit_of, queue, qtail,
                    all_units, full)
    while True:
        if ok:
            # branch on the first open cell with the fewest candidates (2 is the least possible)
            best = -1
            best_count = n + 1
            for cell in range(nn):
                c = state[cell]
                if c != 0:
                    pc = popcount[np.uint32(c)]
                    if pc < best_count:
                        best_count = pc
                        best = cell
                        if pc == 2:
                            break
            if best < 0:  # every cell fixed: a solution
                count += 1
                if count == 1:
                    solution[:] = values
                if count >= limit:
                    break
            else:
                if depth == cap:
                    cap = min(2 * cap, nn + 1)
                    grown = np.empty((cap, m), dtype=np.int32)
                    grown[:depth] = saved[:depth]
                    saved = grown
                for k in range(m):  # a plain loop: a slice would cost reference counting
                    saved[depth, k] = state[k]
                branch_cell[depth] = best
                branch_left[depth] = state[best]
                depth += 1
        # take the next untried branch, backtracking over exhausted ones
        ok = False
        while depth > 0:
            left = branch_left[depth - 1]
            if left == 0:
                depth -= 1
                continue
            if max_nodes > 0 and nodes >= max_nodes:
                stats[0] += nodes
                stats[1] += guesses
                return -1
            if randomize:
                k = randbelow(rng, popcount[left])
                bit = left & -left
                for _ in range(k):
                    left ^= bit
                    bit = left & -left
                left = branch_left[depth - 1]
            else:
                bit = left & -left
            branch_left[depth - 1] = left ^ bit
            for k in range(m):
                state[k] = saved[depth - 1, k]
            guesses += 1
            nodes += 1
            # pin the branch cell and let the propagation place it
            cell = branch_cell[depth - 1]
            state[cell] = bit
            queue[0] = cell
            ok = _propagate(values, state, peers, units, cell_units, unit_mask, digit_of, queue,
                            1, unit_mask[cell], full)
            break
        if not ok and depth == 0:
            break
    stats[0] += nodes
    stats[1] += guesses
    return count


@numba.njit(cache=True)
def _search(givens, peers, units, digit_of, popcount, limit, max_nodes, rng, randomize,
            forbid_cell, forbid_bit, solution, stats):
    """Count solutions of ``givens`` (flat int8, 0 blank) up to ``limit``.

    Writes the first solution found into ``solution`` and ``stats[0] += nodes``,
    ``stats[1] += guesses``. With ``forbid_cell >= 0`` the digit ``forbid_bit`` is removed from
    that cell's candidates first (used to ask "is there a solution other than the known one?").
    Returns the count, or -1 if ``max_nodes > 0`` propagations were spent first.
    """
    cell_units, unit_mask = _cell_tables(units, givens.shape[0])
    return _search_core(givens, peers, units, cell_units, unit_mask, digit_of, popcount, limit,
                        max_nodes, rng, randomize, forbid_cell, forbid_bit, solution, stats)


@numba.njit(cache=True)
def _solve_batch(puzzles, peers, units, digit_of, popcount, limit, solutions, counts, stats):
    rng = np.ones(1, dtype=np.uint64)  # unused: the search is not randomized
    cell_units, unit_mask = _cell_tables(units, puzzles.shape[1])
    for i in range(puzzles.shape[0]):
        counts[i] = _search_core(puzzles[i], peers, units, cell_units, unit_mask, digit_of,
                                 popcount, limit, 0, rng, False, -1, 0, solutions[i], stats[i])


@numba.njit(cache=True, parallel=True)
def _solve_batch_parallel(puzzles, peers, units, digit_of, popcount, limit, solutions, counts,
                          stats):
    cell_units, unit_mask = _cell_tables(units, puzzles.shape[1])
    # puzzles are independent and each writes only its own rows: one prange over the batch
    for i in numba.prange(puzzles.shape[0]):
        rng = np.ones(1, dtype=np.uint64)
        counts[i] = _search_core(puzzles[i], peers, units, cell_units, unit_mask, digit_of,
                                 popcount, limit, 0, rng, False, -1, 0, solutions[i], stats[i])


# ---------------------------------------------------------------------------------------------
# Python interface


@dataclass(frozen=True)
class SolveResult:
    """What the solver found: the first solution (or None), how many (capped at the limit)."""

    solution: np.ndarray | None
    num_solutions: int
    nodes: int
    guesses: int


@functools.cache
def _tables(size: int):
    geo = geometry(size)
    return geo.peers, geo.units, _DIGIT_OF, _POPCOUNT


def count_solutions(puzzle, limit: int = 2, *, size: int | None = None) -> SolveResult:
    """Count the solutions of ``puzzle`` (a string or grid), stopping at ``limit``.

    ``nodes`` and ``guesses`` are the effort of the core that ran (the bit-board core for 9x9,
    see the module docstring).
    """
    limit = check_positive_int("limit", limit)
    grid = as_grid(puzzle, size)
    n = grid.shape[0]
    solution = np.zeros(n * n, dtype=np.int8)
    stats = np.zeros(2, dtype=np.int64)
    if n == 9:
        count = search9(grid.reshape(-1), limit, solution, stats)
    else:
        count = _search(grid.reshape(-1), *_tables(n), limit, 0, np.ones(1, dtype=np.uint64),
                        False, -1, 0, solution, stats)
    return SolveResult(solution.reshape(n, n) if count else None, int(count), int(stats[0]),
                       int(stats[1]))


def solve(puzzle, *, size: int | None = None, require_unique: bool = False) -> np.ndarray:
    """Return the solution grid of ``puzzle``.

    Raises :class:`UnsolvableError` when there is none and, with ``require_unique``,
    :class:`MultipleSolutionsError` when there are several.
    """
    result = count_solutions(puzzle, 2 if require_unique else 1, size=size)
    if result.num_solutions == 0:
        raise UnsolvableError("puzzle: has no solution")
    if require_unique and result.num_solutions > 1:
        raise MultipleSolutionsError("puzzle: has more than one solution")
    return result.solution


PARALLEL_MIN_BATCH = 256  # below this, starting the worker threads costs more than it saves
PARALLEL_CHUNK = 32  # puzzles a thread takes at a time; small, so hard puzzles spread out


def solve_batch(puzzles: np.ndarray, limit: int = 1, *, parallel: bool | None = None):
    """Solve a ``(B, n, n)`` int array of puzzles in one compiled loop.

    Returns ``(solutions, counts, stats)``: ``solutions`` ``(B, n, n)`` int8, the first solution
    found (zeros where there is none); ``counts`` ``(B,)``, solutions found up to ``limit``
    (``limit=2``: 0 none, 1 unique, 2 several); ``stats`` ``(B, 2)``, nodes and guesses as in
    :func:`count_solutions` (9x9 batches run the bit-board core). ``parallel`` spreads the
    batch over numba's threads (all cores unless ``NUMBA_NUM_THREADS`` says otherwise); by
    default only batches of at least ``PARALLEL_MIN_BATCH`` puzzles do. Givens are not
    re-checked here (clashing givens count as no solution), so pass grids that came through
    :func:`~.board.as_grid` or the generator.

    >>> from tracegym.envs.sudoku.board import parse_puzzle
    >>> grids = np.stack([parse_puzzle("1... ..1. .1.. ....")] * 3)
    >>> solve_batch(grids, limit=2)[1].tolist()
    [2, 2, 2]
    """
    limit = check_positive_int("limit", limit)
    puzzles = np.ascontiguousarray(puzzles, dtype=np.int8)
    if puzzles.ndim != 3 or puzzles.shape[1] != puzzles.shape[2]:
        raise PuzzleFormatError(f"puzzles: expected shape (B, n, n), got {puzzles.shape}")
    b, n, _ = puzzles.shape
    flat = puzzles.reshape(b, n * n)
    solutions = np.zeros((b, n * n), dtype=np.int8)
    counts = np.zeros(b, dtype=np.int64)
    stats = np.zeros((b, 2), dtype=np.int64)
    if b == 0:
        return solutions.reshape(b, n, n), counts, stats
    if parallel is None:
        parallel = b >= PARALLEL_MIN_BATCH
    if parallel:
        with numba.parallel_chunksize(PARALLEL_CHUNK):
            if n == 9:
                solve_batch9_parallel(flat, limit, solutions, counts, stats)
            else:
                _solve_batch_parallel(flat, *_tables(n), limit, solutions, counts, stats)
    elif n == 9:
        solve_batch9(flat, limit, solutions, counts, stats)
    else:
        _solve_batch(flat, *_tables(n), limit, solutions, counts, stats)
    return solutions.reshape(b, n, n), counts, stats


def solve_reference(puzzle, limit: int = 2) -> tuple[np.ndarray | None, int]:
    """Plain recursive backtracking in pure Python (fewest-candidates cell, no propagation).

    Independent of the compiled solver; returns ``(first solution or None, count up to limit)``.
    """
    grid = as_grid(puzzle)
    n = grid.shape[0]
    geo = geometry(n)
    board = grid.reshape(-1).tolist()
    peers = geo.peers.tolist()
    digits = set(range(1, n + 1))
    found: list[list[int]] = []

    def candidates(cell: int) -> set[int]:
        return digits - {board[p] for p in peers[cell]}

    def recurse() -> bool:  # True = stop, the limit is reached
        best, best_cands = -1, None
        for cell, v in enumerate(board):
            if v == 0:
                cands = candidates(cell)
                if best_cands is None or len(cands) < len(best_cands):
                    best, best_cands = cell, cands
                    if len(cands) <= 1:
                        break
        if best < 0:
            found.append(list(board))
            return len(found) >= limit
        for d in sorted(best_cands):
            board[best] = d
            if recurse():
                return True
        board[best] = 0
        return False

    recurse()
    first = np.array(found[0], dtype=np.int8).reshape(n, n) if found else None
    return first, len(found)
