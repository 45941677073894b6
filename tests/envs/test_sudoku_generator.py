import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.sudoku.board import is_valid_solution
from tracegym.envs.sudoku.generator import (
    DIFFICULTIES,
    UNSUPPORTED,
    SudokuGenerator,
    require_unique,
)
from tracegym.envs.sudoku.solver import solve_reference
from tracegym.errors import MultipleSolutionsError, UnsolvableError

LEVELS = [(size, level) for size in (4, 6, 9) for level in DIFFICULTIES
          if (size, level) not in UNSUPPORTED]


@settings(max_examples=40)
@given(case=st.sampled_from(LEVELS), seed=st.integers(0, 2**63 - 1), index=st.integers(0, 10**6))
def test_generator__exactly_one_solution_by_the_reference_solver(case, seed, index):
    size, level = case
    item = SudokuGenerator(size, level).generate(seed, index)
    solution, count = solve_reference(item.puzzle, limit=2)
    assert count == 1
    assert np.array_equal(solution, item.solution)
    assert is_valid_solution(item.solution, item.puzzle)
    assert item.clues == int((item.puzzle != 0).sum())


@settings(max_examples=20)
@given(case=st.sampled_from(LEVELS), seed=st.integers(0, 2**63 - 1))
def test_generator__grade_matches_level(case, seed):
    size, level = case
    gen = SudokuGenerator(size, level)
    item = gen.generate(seed)
    if level == "extreme":
        assert item.guesses >= 1
    else:
        assert item.guesses == 0
    if level in ("easy", "medium"):
        assert item.clues == gen.config.target_clues
    else:  # minimal: removing any clue breaks uniqueness
        for r, c in zip(*np.nonzero(item.puzzle)):
            dug = item.puzzle.copy()
            dug[r, c] = 0
            assert solve_reference(dug, limit=2)[1] == 2


def test_generator__sixteen_by_sixteen_medium_is_unique():
    item = SudokuGenerator(16, "medium").generate(seed=5)
    assert require_unique(item.puzzle).tolist() == item.solution.tolist()


def test_generator__same_seed_same_bytes_and_items_rebuild_alone():
    gen = SudokuGenerator(9, "hard")
    a = gen.generate_arrays(seed=42, count=6)
    b = gen.generate_arrays(seed=42, count=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    alone = gen.generate(seed=42, index=4)
    assert np.array_equal(alone.puzzle, a[0][4])
    assert not np.array_equal(a[0][0], gen.generate(seed=43).puzzle)


def test_generator__draw_from_rng_is_deterministic():
    gen = SudokuGenerator(6, "medium")
    first = gen(np.random.default_rng(1)).puzzle
    assert np.array_equal(first, gen(np.random.default_rng(1)).puzzle)


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=5), "size must be one of [4, 6, 9, 16], got 5"),
    (dict(difficulty="brutal"), "difficulty must be one of ['easy', 'medium', 'hard', "
                                "'extreme'], got 'brutal'"),
    (dict(size=4, difficulty="extreme"), "difficulty 'extreme' is not available for size 4"),
    (dict(max_attempts=0), "max_attempts must be >= 1, got 0"),
])
def test_generator__bad_config(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SudokuGenerator(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "7"])
def test_generator__bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be"):
        SudokuGenerator(4).generate(seed)


def test_require_unique__rejects_several_and_none():
    with pytest.raises(MultipleSolutionsError, match="more than one solution"):
        require_unique("1234" + "." * 12)
    with pytest.raises(UnsolvableError, match="no solution"):
        require_unique(".234" + "1..." + "." * 8)
