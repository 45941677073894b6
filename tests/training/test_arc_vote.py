"""ARC's pass@K as TRM's evaluator counts it (training/arc_eval.py): the crop, the inverse
augmentation of every dihedral id, the vote ranking, and pass@K per task."""

import numpy as np
import pytest

from tracegym.envs.arc import tokens
from tracegym.envs.arc.augment import IDENTITY, ArcAugmentation, parse_augmentation_name
from tracegym.envs.arc.data import ArcTask
from tracegym.training.arc_eval import ArcVotes, crop, sigmoid

# TRM's dihedral_transform (dataset/common.py), written out here independently of tracegym.grid
TRM_DIHEDRAL = [
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    np.fliplr,
    np.flipud,
    lambda a: a.T,
    lambda a: np.fliplr(np.rot90(a, 1)),
]
PERM = np.array([0, 3, 1, 2, 9, 4, 8, 5, 7, 6])  # keeps black, as TRM's copies do
X = np.array([[1, 2, 3], [4, 5, 6]])  # no symmetry: every dihedral image differs
Y = np.array([[6, 5], [4, 3], [2, 1]])


def trm_aug(grid, k, perm=PERM):
    """TRM's ``aug``: colours first, then the dihedral transform."""
    return TRM_DIHEDRAL[k](perm[grid])


def name(task, k, perm=PERM):
    return f"{task}|||t{k}|||{''.join(map(str, perm))}"


def enc(grid):
    return tokens.encode(np.ascontiguousarray(grid))


def trm_crop_reference(canvas):
    """TRM's ``_crop`` loop, transcribed literally."""
    grid = canvas.reshape(30, 30)
    max_area, max_size, num_c = 0, (0, 0), 30
    for num_r in range(1, 31):
        for c in range(1, num_c + 1):
            x = grid[num_r - 1, c - 1]
            if x < 2 or x > 11:
                num_c = c - 1
                break
        if num_r * num_c > max_area:
            max_area, max_size = num_r * num_c, (num_r, num_c)
    return (grid[:max_size[0], :max_size[1]] - 2).astype(np.uint8)


# -- crop -----------------------------------------------------------------------------------------

def test_crop__a_well_formed_canvas_gives_its_grid():
    grid = np.random.default_rng(0).integers(0, 10, (7, 30))
    assert np.array_equal(crop(enc(grid)), grid)
    assert np.array_equal(crop(enc(np.full((30, 30), 4))), np.full((30, 30), 4))


def test_crop__largest_rectangle_and_empty_corner():
    canvas = np.zeros((30, 30), np.uint8)
    canvas[0, :3] = 5  # row 0: three colours
    canvas[1, :2] = 6  # row 1: two; then pad. Areas 3, 4, 0...: the 2x2 rectangle wins
    assert crop(canvas.ravel()).tolist() == [[3, 3], [4, 4]]
    canvas[0, 0] = 1  # an end marker at the corner: no grid, an empty answer (still a vote)
    assert crop(canvas.ravel()).shape == (0, 0)


def test_crop__matches_trm_loop_on_random_canvases():
    rng = np.random.default_rng(1)
    for _ in range(300):
        canvas = rng.choice([0, 1, 2, 5, 11, 12], size=900, p=[.05, .05, .3, .3, .25, .05])
        h, w = rng.integers(1, 31, 2)
        canvas.reshape(30, 30)[:h, :w] = rng.integers(2, 12, (h, w))  # a block of colours
        assert np.array_equal(crop(canvas), trm_crop_reference(canvas))


# -- inverse augmentation -------------------------------------------------------------------------

@pytest.mark.parametrize("k", range(8))
def test_votes__inverse_augmentation_restores_every_dihedral_id(k):
    # a copy made with TRM's transform k, named as TRM names it, maps back onto the original
    # input (its vote is filed under the test pair) and the original answer
    task_id, aug = parse_augmentation_name(name("t", k))
    votes = ArcVotes()
    votes.add(task_id, aug, enc(trm_aug(X, k)), enc(trm_aug(Y, k)), q_halt=0.0)
    (_, grid, count, confidence), = votes.ranked("t", X)
    assert np.array_equal(grid, Y) and count == 1 and confidence == 0.5
    score = votes.score([ArcTask("t", (), ((X, Y),))])
    assert score["pass@1"] == 1.0 and score["unmatched_predictions"] == 0


def test_votes__all_eight_copies_agree_on_one_answer():
    votes = ArcVotes()
    for k in range(8):
        task_id, aug = parse_augmentation_name(name("t", k))  # t0: colours only
        votes.add(task_id, aug, enc(trm_aug(X, k)), enc(trm_aug(Y, k)), q_halt=1.0)
    ranked = votes.ranked("t", X)
    assert len(ranked) == 1 and ranked[0][2] == 8


def test_votes__a_wrong_inverse_loses_the_vote():
    # filed under a reflection the copy was not made with: the input does not map back, so the
    # vote is lost (as with tracegym's old numbering in TRM's evaluator) and counted as unmatched
    votes = ArcVotes()
    votes.add("t", ArcAugmentation(6, tuple(PERM)), enc(trm_aug(X, 4)), enc(trm_aug(Y, 4)))
    score = votes.score([ArcTask("t", (), ((X, Y),))])
    assert score["unanswered_pairs"] == 1 and score["unmatched_predictions"] == 1
    assert score["pass@2"] == 0.0


# -- ranking --------------------------------------------------------------------------------------

def vote_for(votes, answer, k, q):
    """A copy under TRM's transform ``k`` answering ``answer`` (in original orientation)."""
    votes.add("t", ArcAugmentation(k, tuple(PERM)), enc(trm_aug(X, k)),
              enc(trm_aug(answer, k)), q_halt=q)


WRONG = np.array([[1, 1], [1, 1]])
OTHER = np.array([[2]])


def test_votes__two_agreeing_copies_beat_one_more_confident():
    votes = ArcVotes()
    vote_for(votes, WRONG, 0, 5.0)  # one vote, sigmoid(5) = 0.993
    vote_for(votes, Y, 1, -1.0)  # two votes, sigmoid(-1) = 0.269 each
    vote_for(votes, Y, 6, -1.0)
    ranked = votes.ranked("t", X)
    assert [(g.tolist(), n) for _, g, n, _ in ranked] == [(Y.tolist(), 2), (WRONG.tolist(), 1)]
    assert ranked[0][3] == pytest.approx(1 / (1 + np.exp(1.0)))
    assert ranked[1][3] == pytest.approx(1 / (1 + np.exp(-5.0)))
    score = votes.score([ArcTask("t", (), ((X, Y),))])
    assert (score["pass@1"], score["pass@2"]) == (1.0, 1.0)
    assert score["ranking"] == "votes, mean sigmoid(q_halt)"


def test_votes__equal_votes_ranked_by_mean_confidence_not_order():
    votes = ArcVotes()
    vote_for(votes, WRONG, 2, 0.0)  # seen first: 2 votes, mean sigmoid 0.5
    vote_for(votes, WRONG, 3, 0.0)
    vote_for(votes, Y, 4, 3.0)  # 2 votes, mean (sigmoid(3) + 0.5) / 2 = 0.726
    vote_for(votes, Y, 5, 0.0)
    vote_for(votes, OTHER, 7, 9.0)  # 1 vote: third whatever its confidence
    ranked = votes.ranked("t", X)
    assert [g.tolist() for _, g, _, _ in ranked] == [Y.tolist(), WRONG.tolist(), OTHER.tolist()]
    assert [q for _, _, _, q in ranked] == pytest.approx(
        [(sigmoid(3.0) + 0.5) / 2, 0.5, sigmoid(9.0)])
    task = [ArcTask("t", (), ((X, Y),))]
    assert votes.score(task)["pass@1"] == 1.0
    vote_for(votes, WRONG, 0, -2.0)  # a third vote outweighs any confidence
    assert votes.ranked("t", X)[0][1].tolist() == WRONG.tolist()
    score = votes.score(task)
    assert (score["pass@1"], score["pass@2"]) == (0.0, 1.0)


def test_votes__without_q_halt_ties_go_to_the_first_seen():
    votes = ArcVotes()
    for answer, k in ((WRONG, 1), (Y, 2), (OTHER, 3)):
        votes.add("t", ArcAugmentation(k, tuple(PERM)), enc(trm_aug(X, k)),
                  enc(trm_aug(answer, k)))
    score = votes.score([ArcTask("t", (), ((X, Y),))])
    assert (score["pass@1"], score["pass@2"]) == (0.0, 1.0)
    assert score["ranking"] == "votes, first seen"


def test_votes__pass_at_k_per_task_then_mean_over_tasks():
    # task a: 2 test pairs, one right -> 0.5; task b: 1 pair right -> 1; task c: never answered
    x2 = np.array([[7, 8]])
    tasks = [ArcTask("a", (), ((X, Y), (x2, x2))), ArcTask("b", (), ((X, Y),)),
             ArcTask("c", (), ((X, Y),))]
    votes = ArcVotes()
    votes.add("a", IDENTITY, enc(X), enc(Y))
    votes.add("a", IDENTITY, enc(x2), enc(WRONG))
    votes.add("b", IDENTITY, enc(X), enc(Y))
    votes.add("z", IDENTITY, enc(X), enc(Y))  # a task outside test_puzzles: unmatched
    score = votes.score(tasks, pass_ks=(1, 2, 5))
    assert score["per_task"] == {"a": {"pass@1": 0.5, "pass@2": 0.5, "pass@5": 0.5},
                                 "b": {"pass@1": 1.0, "pass@2": 1.0, "pass@5": 1.0},
                                 "c": {"pass@1": 0.0, "pass@2": 0.0, "pass@5": 0.0}}
    assert score["pass@1"] == pytest.approx(0.5)
    assert (score["tasks"], score["test_pairs"], score["unanswered_pairs"]) == (3, 4, 1)
    assert (score["predictions"], score["unmatched_predictions"]) == (4, 1)
    with pytest.raises(ValueError, match=r"pass_ks: expected K >= 1, got \[0\]"):
        votes.score(tasks, pass_ks=(0,))
