import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.sudoku.augment import (
    Augmentation,
    augment_batch,
    equivalence_fingerprint,
    equivalence_fingerprints,
    random_augmentation,
    random_maps,
)
from tracegym.envs.sudoku.board import geometry, is_valid_solution
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.envs.sudoku.solver import count_solutions

SIZES = st.sampled_from([4, 6, 9])
SEEDS = st.integers(0, 2**63 - 1)


def _puzzles(size: int, seed: int, count: int = 3):
    return SudokuGenerator(size, "medium").generate_arrays(seed, count)[:2]


@settings(max_examples=25)
@given(size=SIZES, seed=SEEDS)
def test_augment_batch__puzzles_stay_valid_unique_and_paired(size, seed):
    puzzles, solutions = _puzzles(size, seed)
    aug_p, aug_s = augment_batch(puzzles, solutions, 3, np.random.default_rng(seed))
    assert aug_p.shape == (3, 3, size, size) and aug_p.dtype == puzzles.dtype
    for puzzle, solution in zip(aug_p.reshape(-1, size, size), aug_s.reshape(-1, size, size)):
        result = count_solutions(puzzle, limit=2)
        assert result.num_solutions == 1
        assert np.array_equal(result.solution, solution)
        assert is_valid_solution(solution, puzzle)
    # blanks move with their cells: the clue count is kept
    assert ((aug_p != 0).sum(axis=(2, 3)) == (puzzles != 0).sum(axis=(1, 2))[:, None]).all()


@settings(max_examples=25)
@given(size=st.sampled_from([4, 6, 9, 16]), seed=SEEDS)
def test_augmentation__inverse_undoes(size, seed):
    rng = np.random.default_rng(seed)
    grids = rng.integers(0, size + 1, size=(2, size, size)).astype(np.int8)
    aug = random_augmentation(size, rng)
    assert np.array_equal(aug.inverse().apply(aug.apply(grids)), grids)
    assert np.array_equal(aug.apply(aug.inverse().apply(grids)), grids)
    assert aug.inverse().inverse() == aug


@settings(max_examples=25)
@given(size=SIZES, seed=SEEDS)
def test_augmentation__apply_keeps_a_solution_valid(size, seed):
    _, solutions = _puzzles(size, seed, count=1)
    aug = random_augmentation(size, np.random.default_rng(seed))
    assert is_valid_solution(aug.apply(solutions[0]))
    assert np.array_equal(aug.apply(solutions)[0], aug.apply(solutions[0]))  # batch axes


@settings(max_examples=25)
@given(size=SIZES, seed=SEEDS)
def test_equivalence_fingerprint__invariant_under_augmentation(size, seed):
    puzzles, solutions = _puzzles(size, seed)
    aug_p, _ = augment_batch(puzzles, solutions, 4, np.random.default_rng(seed))
    for puzzle, copies in zip(puzzles, aug_p):
        want = equivalence_fingerprint(puzzle)
        assert all(equivalence_fingerprint(copy) == want for copy in copies)
    assert equivalence_fingerprints(puzzles) == [equivalence_fingerprint(p) for p in puzzles]


def test_equivalence_fingerprint__transpose_invariant_where_allowed_and_sees_clues():
    puzzles, _ = _puzzles(9, 5, count=1)
    puzzle = puzzles[0]
    assert equivalence_fingerprint(puzzle) == equivalence_fingerprint(puzzle.T)
    fewer = puzzle.copy()
    fewer[np.unravel_index(np.flatnonzero(puzzle)[0], puzzle.shape)] = 0
    assert equivalence_fingerprint(fewer) != equivalence_fingerprint(puzzle)


@pytest.mark.parametrize("size", [4, 6, 9, 16])
def test_random_maps__move_whole_lines_and_transpose_only_square_boxes(size):
    geo = geometry(size)
    cell_maps, digit_maps = random_maps(size, 400, np.random.default_rng(1))
    old_rows = cell_maps.reshape(-1, size, size) // size  # (400, n, n) old row of each new cell
    old_cols = cell_maps.reshape(-1, size, size) % size
    kept = (old_rows == old_rows[:, :, :1]).all(axis=(1, 2))  # each new row is one old row
    flipped = (old_cols == old_cols[:, :, :1]).all(axis=(1, 2))  # ... or one old column
    assert (kept | flipped).all()
    if geo.box_rows == geo.box_cols:
        assert 100 < flipped.sum() < 300  # about half of the draws transpose
    else:
        assert not flipped.any()  # a transposed 2x3-box board is not a Sudoku of the same boxes
    assert (digit_maps[:, 0] == 0).all()
    assert (np.sort(digit_maps[:, 1:], axis=1) == np.arange(1, size + 1)).all()


def test_random_maps__reach_every_position_move_of_4x4():
    # 2 band orders x 2 x 2 row orders, the same for columns, x transpose: 8 * 8 * 2 = 128
    cell_maps, _ = random_maps(4, 3000, np.random.default_rng(0))
    assert len({m.tobytes() for m in cell_maps}) == 128


def test_augment_batch__deterministic_and_empty_k():
    puzzles, solutions = _puzzles(6, 2)
    a = augment_batch(puzzles, solutions, 5, np.random.default_rng(9))
    b = augment_batch(puzzles, solutions, 5, np.random.default_rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    empty_p, empty_s = augment_batch(puzzles, solutions, 0, np.random.default_rng(9))
    assert empty_p.shape == empty_s.shape == (3, 0, 6, 6)


@pytest.mark.parametrize("build, message", [
    (lambda: Augmentation(4, np.zeros(16, int), np.arange(5)),
     "cell_map must be a permutation of 0..15"),
    (lambda: Augmentation(4, np.arange(16), np.array([1, 0, 2, 3, 4])),
     "digit_map must be a permutation of 0..4 with 0 -> 0, got [1, 0, 2, 3, 4]"),
    (lambda: Augmentation(7, np.arange(49), np.arange(8)), "size must be one of [4, 6, 9, 16]"),
    (lambda: Augmentation.identity(4).apply(np.zeros((9, 9), int)),
     "grids: expected shape (..., 4, 4), got (9, 9)"),
    (lambda: augment_batch(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)), 1, np.random.default_rng()),
     "solutions: expected shape (2, 4, 4) like puzzles, got (3, 4, 4)"),
    (lambda: augment_batch(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), -1, np.random.default_rng()),
     "k must be >= 0, got -1"),
])
def test_augmentation__bad_input(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()
