import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tracegym.envs.arc.augment import (
    IDENTITY,
    ArcAugmentation,
    augmentation_name,
    augmentations,
    distinct_copies,
    num_augmentations,
    parse_augmentation_name,
    pass_at_2,
    random_augmentation,
    vote,
)
from tracegym.envs.arc.data import ArcTask

grids = st.tuples(st.integers(1, 30), st.integers(1, 30)).flatmap(
    lambda shape: arrays(np.int8, shape, elements=st.integers(0, 9))
)
augs = st.builds(
    ArcAugmentation, st.integers(0, 7), st.permutations(list(range(10))).map(tuple)
)


@given(grids, augs)
def test_augmentation__inverse_undoes_apply(grid, aug):
    out = aug.apply(grid)
    assert out.dtype == np.int8
    back = aug.inverse().apply(out)
    assert back.shape == grid.shape and np.array_equal(back, grid)


@given(grids, st.integers(0, 2**32 - 1))
def test_random_augmentation__keep_black_keeps_zero(grid, seed):
    aug = random_augmentation(np.random.default_rng(seed), keep_black=True)
    assert aug.colour_perm[0] == 0
    # Black cells land exactly where the symmetry alone puts them.
    assert np.array_equal(aug.apply(grid) == 0, ArcAugmentation(aug.k).apply(grid) == 0)


@given(st.lists(st.tuples(grids, grids), min_size=1, max_size=3), grids, augs)
@settings(max_examples=50)
def test_augmentation__apply_task_keeps_shapes_consistent(pairs, test_in, aug):
    task = ArcTask("t", tuple(pairs), ((test_in, None),))
    out = aug.apply_task(task)
    assert out.task_id == "t" and out.test[0][1] is None
    for (a_in, a_out), (b_in, b_out) in zip(task.train, out.train):
        # A quarter turn either way (k 1, 3), the transpose (6) and the anti-transpose (7) swap
        # height and width; the flips (4, 5) and the half turn (2) do not.
        swap = aug.k in (1, 3, 6, 7)
        for a, b in ((a_in, b_in), (a_out, b_out)):
            assert b.shape == (a.shape[::-1] if swap else a.shape)
            assert np.array_equal(b, aug.apply(a))


def test_augmentation__rejects_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("k must be in 0..7, got 8")):
        ArcAugmentation(8)
    with pytest.raises(ValueError, match=re.escape("colour_perm must be a permutation of 0..9")):
        ArcAugmentation(0, (0,) * 10)


def test_augmentation__array_perm_is_hashable_and_equal_to_tuple():
    assert ArcAugmentation(3, np.arange(10)) == ArcAugmentation(3, tuple(range(10)))
    assert IDENTITY.is_identity and not ArcAugmentation(1).is_identity


@pytest.mark.parametrize("keep_black", [True, False])
def test_augmentations__distinct_non_identity(keep_black):
    out = augmentations(500, np.random.default_rng(0), keep_black=keep_black)
    assert len(out) == len(set(out)) == 500
    assert not any(a.is_identity for a in out)
    assert all(a.colour_perm[0] == 0 for a in out) or not keep_black


def test_augmentations__too_many_raises():
    limit = num_augmentations(keep_black=True)
    assert limit == 8 * 362880 - 1
    with pytest.raises(ValueError, match=re.escape(f"count must be in 0..{limit}")):
        augmentations(limit + 1, np.random.default_rng(0))


def test_vote__majority_back_mapped_answer_first():
    rng = np.random.default_rng(1)
    answer = rng.integers(0, 10, (3, 5)).astype(np.int8)
    wrong = np.zeros((2, 2), dtype=np.int8)
    aug_list = [IDENTITY, *augmentations(6, rng)]
    # Four copies answer correctly (in their own frame), three agree on one wrong answer.
    preds = [a.apply(wrong) for a in aug_list[:3]] + [a.apply(answer) for a in aug_list[3:]]
    top = vote(preds, aug_list)
    assert len(top) == 2
    assert np.array_equal(top[0], answer) and np.array_equal(top[1], wrong)


def test_vote__ties_go_to_first_seen_and_none_is_skipped():
    a, b, c = (np.full((1, 1), v, dtype=np.int8) for v in (1, 2, 3))
    top = vote([None, c, a, b, a, c, b], [IDENTITY] * 7)
    assert [int(g[0, 0]) for g in top] == [3, 1]
    assert vote([None], [IDENTITY]) == []
    with pytest.raises(ValueError, match=re.escape("equal length, got 1 and 2")):
        vote([a], [IDENTITY, IDENTITY])


def test_vote__same_bytes_other_shape_are_different_answers():
    flat, tall = np.zeros((1, 2), dtype=np.int8), np.zeros((2, 1), dtype=np.int8)
    top = vote([flat, tall, tall], [IDENTITY] * 3)
    assert top[0].shape == (2, 1) and top[1].shape == (1, 2)


def test_pass_at_2__right_if_either_of_two():
    target = np.array([[1, 2]], dtype=np.int8)
    other = np.array([[2, 1]], dtype=np.int8)
    assert pass_at_2([other, target], target)
    assert pass_at_2([target], target)
    assert not pass_at_2([other, other], target)
    assert not pass_at_2([], target)
    assert not pass_at_2([target.reshape(2, 1)], target)  # same cells, wrong shape
    with pytest.raises(ValueError, match=re.escape("at most 2 attempts allowed, got 3")):
        pass_at_2([other, other, target], target)


def test_distinct_copies__copies_differ_from_each_other_and_the_task():
    task = ArcTask("sym", ((np.array([[1, 2], [2, 1]], np.int8), np.array([[1]], np.int8)),),
                   ((np.array([[2, 2]], np.int8), np.array([[1, 2]], np.int8)),))
    augs = distinct_copies(task, 50, np.random.default_rng(0))
    keys = {_task_key(task)} | {_task_key(a.apply_task(task)) for a in augs}
    assert len(augs) == 50 and len(keys) == 51


def test_distinct_copies__gives_up_on_a_task_without_distinct_copies():
    task = ArcTask("black", ((np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int8)),), ())
    assert distinct_copies(task, 10, np.random.default_rng(0)) == []
    recoloured = distinct_copies(task, 10, np.random.default_rng(0), keep_black=False)
    colours = [a.colour_perm[0] for a in recoloured]  # only 9 distinct copies exist
    assert 0 < len(colours) <= 9 and len(set(colours)) == len(colours) and 0 not in colours


def _task_key(task):
    return b"|".join(bytes(g.shape) + g.tobytes() for p in (*task.train, *task.test) for g in p)


@given(augs)
def test_augmentation_name__round_trips_trms_names(aug):
    name = augmentation_name("007bbfb7", aug)
    assert parse_augmentation_name(name) == ("007bbfb7", aug)
    assert (name == "007bbfb7") == aug.is_identity


def test_augmentation_name__t_k_means_trms_transform():
    # TRM names a copy "<task>|||t<k>|||<perm>" and applies dihedral_transform(mapping[grid], k):
    # t6 is the transpose there, so it must be here
    task_id, aug = parse_augmentation_name("abc|||t6|||0213456789")
    grid = np.array([[1, 2, 3]], np.int8)
    assert task_id == "abc" and aug.apply(grid).tolist() == [[2], [1], [3]]


@pytest.mark.parametrize("name", ["abc|||t8|||0123456789", "abc|||6|||0123456789",
                                  "abc|||t1|||012345678", "abc|||t1|||0123456788"])
def test_parse_augmentation_name__refuses_malformed_names(name):
    with pytest.raises(ValueError):
        parse_augmentation_name(name)
