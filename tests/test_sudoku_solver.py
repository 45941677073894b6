import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.sudoku.board import DIGIT_CHARS, geometry, is_valid_solution, parse_puzzle
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.envs.sudoku.solver import (
    _DIGIT_OF,
    _POPCOUNT,
    _search,
    count_solutions,
    solve,
    solve_batch,
    solve_reference,
)
from tracegym.errors import MultipleSolutionsError, UnsolvableError


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


def test_solve_batch__top95_effort_is_pinned(top95_lines):
    puzzles = np.stack([parse_puzzle(line) for line in top95_lines])
    for limit, nodes, guesses in ((1, 6222, 6127), (2, 11047, 10952)):
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
