import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.sudoku.bitboard import search9
from tracegym.envs.sudoku.board import (
    DIGIT_CHARS,
    find_conflict,
    geometry,
    is_valid_solution,
    parse_puzzle,
)
from tracegym.envs.sudoku.generator import DIFFICULTIES, SudokuGenerator
from tracegym.envs.sudoku.solver import (
    _DIGIT_OF,
    _POPCOUNT,
    _search,
    _tables,
    count_solutions,
    solve,
    solve_batch,
    solve_reference,
)
from tracegym.errors import ConflictError, MultipleSolutionsError, UnsolvableError


def test_solver__solves_all_of_top95_uniquely(top95_lines):
    puzzles = np.stack([parse_puzzle(line) for line in top95_lines])
    assert len(puzzles) == 95
    solutions, counts, stats = solve_batch(puzzles, limit=2)
    assert (counts == 1).all()
    assert all(is_valid_solution(s, p) for s, p in zip(solutions, puzzles))
    assert (stats[:, 1] > 0).any()  # top95 needs guessing: the search really ran


def test_solver__agrees_with_reference_on_top95_sample(top95_lines):
    for line in top95_lines[:3]:
        reference, count = solve_reference(line, limit=2)
        assert count == 1
        assert np.array_equal(solve(line), reference)


def test_count_solutions__empty_board_reaches_limit():
    result = count_solutions("." * 16, limit=5)
    assert result.num_solutions == 5 and result.guesses > 0


def test_count_solutions__effort_of_a_propagation_only_puzzle():
    puzzle = SudokuGenerator(9, "easy").generate(3).puzzle
    result = count_solutions(puzzle, limit=2)
    assert (result.num_solutions, result.nodes, result.guesses) == (1, 1, 0)


DEAD = ".234" + "1..." + "...." + "...."  # cell (1,1) can only be 1, but column 1 holds 1


def test_solve__unsolvable_and_multiple():
    assert count_solutions(DEAD).num_solutions == 0
    with pytest.raises(UnsolvableError, match=re.escape("puzzle: has no solution")):
        solve(DEAD)
    with pytest.raises(MultipleSolutionsError, match="more than one solution"):
        solve("." * 81, require_unique=True)
    with pytest.raises(ValueError, match=re.escape("limit must be >= 1, got 0")):
        count_solutions("." * 16, limit=0)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**40), size=st.sampled_from([4, 6]), holes=st.integers(0, 36))
def test_solver__counts_match_reference_on_random_digs(seed, size, holes):
    """Random partial grids (often with many solutions): compiled and reference counts agree."""
    solution = SudokuGenerator(size, "easy").generate(seed).solution
    rng = np.random.default_rng(seed)
    puzzle = solution.copy().reshape(-1)
    puzzle[rng.permutation(size * size)[: min(holes, size * size)]] = 0
    puzzle = puzzle.reshape(size, size)
    _, ref_count = solve_reference(puzzle, limit=50)
    assert count_solutions(puzzle, limit=50).num_solutions == ref_count


def test_solve_batch__parallel_equals_serial(top95_lines):
    """The threaded loop gives each puzzle exactly what the one-core loop gives it."""
    puzzles = np.stack([parse_puzzle(line) for line in top95_lines] * 3)
    puzzles[::7] = 0  # empty boards: several solutions, the most search
    for limit in (1, 2):
        serial = solve_batch(puzzles, limit, parallel=False)
        threaded = solve_batch(puzzles, limit, parallel=True)
        for a, b in zip(serial, threaded):
            assert np.array_equal(a, b)
    assert solve_batch(puzzles, 2)[1][::7].tolist() == [2] * len(puzzles[::7])


def test_solve_batch__empty_batch_and_bad_arguments():
    solutions, counts, stats = solve_batch(np.zeros((0, 9, 9), dtype=np.int8))
    assert solutions.shape == (0, 9, 9) and counts.shape == (0,) and stats.shape == (0, 2)
    with pytest.raises(ValueError, match=re.escape("puzzles: expected shape (B, n, n), got (81,)")):
        solve_batch(np.zeros(81, dtype=np.int8))
    with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
        solve_batch(np.zeros((1, 4, 4), dtype=np.int8), limit=0)


# The search itself is pinned below (effort, branch order, random stream), so a speed-up of the
# compiled core cannot change a solution, a grade or a generated puzzle unnoticed. The figures
# were recorded from the straightforward implementation this core replaced.


def _generic(puzzle: np.ndarray, limit: int) -> tuple[int, np.ndarray, list[int]]:
    """The generic core on any size (what the generator runs): (count, first solution, effort)."""
    n = puzzle.shape[0]
    solution = np.zeros(n * n, dtype=np.int8)
    effort = np.zeros(2, dtype=np.int64)
    count = _search(np.ascontiguousarray(puzzle, dtype=np.int8).reshape(-1), *_tables(n), limit,
                    0, np.ones(1, dtype=np.uint64), False, -1, 0, solution, effort)
    return count, solution.reshape(n, n), effort.tolist()


def test_search__generic_core_top95_effort_is_pinned(top95_lines):
    """The generic core keeps its search on 9x9 too (the generator grades with it)."""
    totals = {1: [0, 0], 2: [0, 0]}
    for line in top95_lines:
        for limit in (1, 2):
            effort = _generic(parse_puzzle(line), limit)[2]
            totals[limit] = [a + b for a, b in zip(totals[limit], effort)]
    assert totals == {1: [6222, 6127], 2: [11047, 10952]}


def test_solve_batch__top95_effort_is_pinned(top95_lines):
    """The 9x9 bit-board core: box-line eliminations cut the guesses about threefold."""
    puzzles = np.stack([parse_puzzle(line) for line in top95_lines])
    for limit, nodes, guesses in ((1, 2060, 1965), (2, 3923, 3828)):
        _, _, stats = solve_batch(puzzles, limit, parallel=False)
        assert stats.sum(axis=0).tolist() == [nodes, guesses]


def test_count_solutions__empty_boards_search_deep():
    """An empty 16x16 board branches ~177 levels deep: the saved-state stack has to grow."""
    result = count_solutions("." * 256, limit=1)
    assert (result.num_solutions, result.nodes, result.guesses) == (1, 178, 177)
    assert is_valid_solution(result.solution, np.zeros((16, 16), dtype=np.int8))
    result = count_solutions("." * 81, limit=1)
    assert (result.num_solutions, result.nodes, result.guesses) == (1, 48, 47)


@pytest.mark.parametrize("size, nodes, state, grid", [
    (9, 45, 6762377575323871150, "392154768586397241714682953673928514148765329259413876821536497"
                                 "465879132937241685"),
    (16, 175, 5564368427445320811, "76B138C5F2E49ADG823D7F6ABG951E4C9ECGB24D186A7F3554AF1G9E73CD62"
                                   "B8F79A6DG3248EBC51CG5BE9823A16D7F413245B7CGDF9A68EE8D641AFC5B7"
                                   "3G29D9F7A456813GEBC2418C23DG5EABF976GBE5F719D62C84A32A638CEB49"
                                   "7F51GD3542C6F7EBD1G89ABCG9DE31AF482567AD1895B467G2C3EF6F7EGA28"
                                   "9C534D1B"),
])
def test_search__randomized_fill_is_pinned(size, nodes, state, grid):
    """The generator's random full grid: same branches, same draws from the stream."""
    geo = geometry(size)
    rng = np.array([12345], dtype=np.uint64)
    solution = np.zeros(size * size, dtype=np.int8)
    effort = np.zeros(2, dtype=np.int64)
    count = _search(np.zeros(size * size, dtype=np.int8), geo.peers, geo.units, _DIGIT_OF,
                    _POPCOUNT, 1, 0, rng, True, -1, 0, solution, effort)
    assert (count, effort.tolist(), int(rng[0])) == (1, [nodes, nodes - 1], state)
    assert "".join(DIGIT_CHARS[v - 1] for v in solution) == grid


def test_solve_batch__clashing_givens_count_no_node():
    """Givens that contradict each other are rejected before any propagation (0 nodes); a
    contradiction found by propagating costs the one root node."""
    dead = parse_puzzle(DEAD)
    twice = np.zeros((4, 4), dtype=np.int8)
    twice[0, :2] = 1  # bypasses parse_puzzle's check on purpose
    # no clash among the givens, but propagating them empties a cell
    stuck = parse_puzzle("2..." + ".3.2" + "..3." + "4...")
    _, counts, stats = solve_batch(np.stack([dead, twice, stuck]), limit=2)
    assert counts.tolist() == [0, 0, 0] and stats.tolist() == [[0, 0], [0, 0], [1, 0]]


# --------------------------------------------------------------------------------------------
# the 9x9 bit-board core against the generic core and the reference


def _core9(puzzle: np.ndarray, limit: int) -> tuple[int, np.ndarray, list[int]]:
    solution = np.zeros(81, dtype=np.int8)
    effort = np.zeros(2, dtype=np.int64)
    count = search9(np.ascontiguousarray(puzzle, dtype=np.int8).reshape(-1), limit, solution,
                    effort)
    return count, solution.reshape(9, 9), effort.tolist()


def _assert_cores_agree(puzzle: np.ndarray, limit: int) -> int:
    """Same count; when unique the same solution; the effort means what SolveResult says."""
    count, solution, (nodes, guesses) = _core9(puzzle, limit)
    ref_count, ref_solution, (ref_nodes, ref_guesses) = _generic(puzzle, limit)
    assert count == ref_count
    if count == 1 < limit:  # unique; at limit 1 a count of 1 is the first of maybe several
        assert np.array_equal(solution, ref_solution)
    if count:
        assert is_valid_solution(solution, puzzle)
    # a node is a propagation, the root included; every guess starts one
    assert nodes == guesses + 1 or (nodes, guesses, count) == (0, 0, 0)
    assert (nodes == 0) == (ref_nodes == 0)  # givens that contradict: both reject before search
    if ref_guesses == 0 and ref_nodes:
        assert guesses == 0  # the 9x9 propagation includes every generic deduction
    return count


def test_core9__matches_generic_core_and_reference_on_top95(top95_lines):
    puzzles = np.stack([parse_puzzle(line) for line in top95_lines])
    for limit in (1, 2):
        solutions, counts, _ = solve_batch(puzzles, limit, parallel=False)
        for puzzle, solution, count in zip(puzzles, solutions, counts):
            ref_count, ref_solution, _ = _generic(puzzle, limit)
            assert count == ref_count == 1
            assert np.array_equal(solution, ref_solution)
    for line in top95_lines[:3]:  # the plain recursive reference takes seconds per puzzle
        reference, count = solve_reference(line, limit=2)
        assert count == 1 and np.array_equal(count_solutions(line).solution, reference)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_core9__matches_generator_on_every_difficulty(difficulty):
    """The generated puzzle's solution, and no guess where the generator graded none."""
    puzzles, solutions, stats = SudokuGenerator(9, difficulty).generate_arrays(5, 12)
    _, counts, effort = solve_batch(puzzles, 1, parallel=False)
    assert counts.tolist() == [1] * 12
    for puzzle, solution, grade, (nodes, guesses) in zip(puzzles, solutions, stats, effort):
        assert np.array_equal(count_solutions(puzzle).solution, solution)
        assert _assert_cores_agree(puzzle, 2) == 1
        assert nodes == guesses + 1 and (guesses == 0 or grade[2] > 0)


def _unique_rectangle_puzzle() -> np.ndarray:
    """A solved grid with the four cells of a swappable rectangle (a b / b a over two boxes)
    blanked: exactly two solutions."""
    solution = SudokuGenerator(9, "easy").generate(0).solution
    for r1 in range(9):
        for r2 in range(r1 + 1, 9):
            if r1 // 3 == r2 // 3:
                continue
            for c1 in range(9):
                for c2 in range(c1 + 1, 9):
                    if c1 // 3 != c2 // 3:
                        continue
                    a, b = solution[r1, c1], solution[r1, c2]
                    if (solution[r2, c1], solution[r2, c2]) == (b, a):
                        puzzle = solution.copy()
                        puzzle[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
                        return puzzle
    raise AssertionError("no rectangle in the test grid")


def _dead_puzzle() -> np.ndarray:
    """Givens that do not clash, yet no solution: a dug grid with one given changed (the first
    such of a fixed random stream, found by the generic core)."""
    solution = SudokuGenerator(9, "easy").generate(0).solution.reshape(-1)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        puzzle = solution.copy()
        puzzle[rng.permutation(81)[:45]] = 0
        cell = rng.choice(np.flatnonzero(puzzle))
        puzzle[cell] = puzzle[cell] % 9 + 1
        grid = puzzle.reshape(9, 9)
        if find_conflict(grid) is None and _generic(grid, 1)[0] == 0:
            return grid
    raise AssertionError("no dead puzzle in the test stream")


def test_core9__zero_one_two_and_many_solutions():
    puzzle = _unique_rectangle_puzzle()
    assert [_assert_cores_agree(puzzle, limit) for limit in (1, 2, 3)] == [1, 2, 2]
    assert count_solutions(puzzle, 5).num_solutions == 2
    with pytest.raises(MultipleSolutionsError):
        solve(puzzle, require_unique=True)
    solved = SudokuGenerator(9, "easy").generate(0).solution
    assert _assert_cores_agree(solved, 2) == 1 and _core9(solved, 2)[2] == [1, 0]
    dead = _dead_puzzle()
    assert _assert_cores_agree(dead, 2) == 0 and _core9(dead, 2)[2][0] >= 1
    with pytest.raises(UnsolvableError):
        solve(dead)
    # many: open a quarter of the grid and count to a high limit
    open_grid = solved.copy()
    open_grid[:, :4] = 0
    for limit in (1, 2, 7, 40):
        assert _assert_cores_agree(open_grid, limit) == limit


def test_core9__empty_grid():
    result = count_solutions("." * 81, limit=1)
    assert is_valid_solution(result.solution, np.zeros((9, 9), dtype=np.int8))
    assert np.array_equal(result.solution, _generic(np.zeros((9, 9), dtype=np.int8), 1)[1])
    assert (result.nodes, result.guesses) == (48, 47)
    assert count_solutions("." * 81, limit=25).num_solutions == 25


def test_core9__invalid_givens():
    """count_solutions rejects clashing givens by name; the batch entry point (no re-check)
    counts them as no solution before any node, as the generic core does."""
    twice = np.zeros((9, 9), dtype=np.int8)
    twice[0, 0] = twice[8, 0] = 5  # a column holds 5 twice
    with pytest.raises(ConflictError, match="puzzle: digit 5 appears twice in column 1"):
        count_solutions(twice)
    box = np.zeros((9, 9), dtype=np.int8)
    box[0, 0] = box[1, 1] = 3
    row = np.zeros((9, 9), dtype=np.int8)
    row[4, 2] = row[4, 7] = 9
    out_of_range = np.zeros((9, 9), dtype=np.int8)
    out_of_range[2, 2] = 10
    negative = np.zeros((9, 9), dtype=np.int8)
    negative[2, 2] = -1
    # every digit around (0, 0) but none in it: an open cell dead before propagation
    boxed_in = np.zeros((9, 9), dtype=np.int8)
    boxed_in[0, 1:9] = [1, 2, 3, 4, 5, 6, 7, 8]
    boxed_in[3, 0] = 9
    batch = np.stack([twice, box, row, out_of_range, negative, boxed_in])
    for parallel in (False, True):
        solutions, counts, stats = solve_batch(batch, 2, parallel=parallel)
        assert counts.tolist() == [0] * 6 and stats.tolist() == [[0, 0]] * 6
        assert not solutions.any()
    for grid in batch:
        assert _generic(grid, 2)[0] == 0 and _generic(grid, 2)[2] == [0, 0]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**40), holes=st.integers(0, 81), change=st.booleans(),
       limit=st.sampled_from([1, 2, 3, 10]))
def test_core9__agrees_with_generic_core_on_random_digs(seed, holes, change, limit):
    """Random partial grids of a solved grid (one given changed at times: often none, sometimes
    clashing givens): same count, and when unique the same solution."""
    solution = SudokuGenerator(9, "easy").generate(seed % 1000).solution
    rng = np.random.default_rng(seed)
    puzzle = solution.copy().reshape(-1)
    puzzle[rng.permutation(81)[:holes]] = 0
    if change and puzzle.any():
        cell = rng.choice(np.flatnonzero(puzzle))
        puzzle[cell] = puzzle[cell] % 9 + 1
    puzzle = puzzle.reshape(9, 9)
    count = _assert_cores_agree(puzzle, limit)
    _, counts, _ = solve_batch(puzzle[None], limit)
    assert counts.tolist() == [count]
