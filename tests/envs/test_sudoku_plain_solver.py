"""The plain-Python solver of ``tracegym solve PUZZLE`` against the compiled one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.sudoku import plain_solver
from tracegym.envs.sudoku.board import parse_puzzle
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.envs.sudoku.plain_solver import SearchBudgetExceeded
from tracegym.envs.sudoku.solver import count_solutions
from tracegym.errors import TracegymError


def plain(grid: np.ndarray, limit: int = 2, max_nodes: int = plain_solver.DEFAULT_MAX_NODES):
    count, solution, nodes = plain_solver.count_solutions(grid.reshape(-1).tolist(),
                                                          grid.shape[0], limit, max_nodes)
    return count, (None if solution is None else np.array(solution).reshape(grid.shape)), nodes


def assert_agrees(grid: np.ndarray, limit: int = 2) -> None:
    count, solution, _ = plain(grid, limit)
    compiled = count_solutions(grid, limit)
    assert count == compiled.num_solutions
    if count == 1:  # the first of several depends on the branch order; the only one does not
        assert np.array_equal(solution, compiled.solution)


def test_plain_solver__agrees_on_all_of_top95(top95_lines):
    nodes = []
    for line in top95_lines:
        grid = parse_puzzle(line)
        count, solution, used = plain(grid)
        assert count == 1 and np.array_equal(solution, count_solutions(grid, 2).solution)
        nodes.append(used)
    assert max(nodes) < plain_solver.DEFAULT_MAX_NODES  # no top95 puzzle needs the hand-over
    assert max(nodes) > 1  # and top95 needs search: the branching really ran


@pytest.mark.parametrize("size", [4, 6, 9])
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_plain_solver__agrees_on_generated_puzzles(size, difficulty):
    generator = SudokuGenerator(size, difficulty)
    for index in range(5):
        assert_agrees(generator.generate(index).puzzle)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.sampled_from([4, 6, 9]), holes=st.floats(0.3, 1.0))
def test_plain_solver__counts_match_on_random_digs(seed, size, holes):
    rng = np.random.default_rng(seed)
    grid = SudokuGenerator(size, "easy").generate(seed % 1000).solution.copy()
    grid.reshape(-1)[rng.random(size * size) < holes] = 0
    assert_agrees(grid, limit=3)


def test_plain_solver__none_several_and_clashing_givens():
    dead = parse_puzzle(".234" "1..." "...." "....")  # (1,1) can only be 1; column 1 holds 1
    assert plain(dead)[:2] == (0, None)
    assert plain(np.zeros((9, 9), dtype=np.int8), limit=5)[0] == 5
    clash = np.zeros((4, 4), dtype=np.int8)
    clash[0, :2] = 3
    assert plain(clash)[0] == 0


def test_plain_solver__budget_hands_over():
    with pytest.raises(SearchBudgetExceeded, match="within 3 search nodes"):
        plain(np.zeros((16, 16), dtype=np.int8), limit=10**6, max_nodes=3)


def test_plain_solver__bad_arguments():
    with pytest.raises(TracegymError, match="size must be one of .*got 5"):
        plain_solver.count_solutions([0] * 25, 5)
    with pytest.raises(TracegymError, match="expected 16 values for size 4, got 3"):
        plain_solver.count_solutions([0, 0, 0], 4)
    with pytest.raises(TracegymError, match=r"cells\[2\] must be in 0..4, got 7"):
        plain_solver.count_solutions([0, 0, 7] + [0] * 13, 4)


def test_plain_solver__imports_no_numba(tmp_path):
    import subprocess
    import sys

    code = ("import sys, tracegym.envs.sudoku.plain_solver; "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"
