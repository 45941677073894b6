"""TrainOrder: the examples sampler and TRM's groups sampler (every example of one random puzzle
per group, packed whole, the overflowing puzzle cut), as pure functions of (seed, position)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.training.sampling import TrainOrder


def arc_like(sizes_per_group: list[list[int]]):
    """Index arrays for groups of puzzles with the given example counts."""
    puzzle_sizes = [s for group in sizes_per_group for s in group]
    puzzle_indices = np.concatenate([[0], np.cumsum(puzzle_sizes)])
    group_indices = np.concatenate([[0], np.cumsum([len(g) for g in sizes_per_group])])
    return int(puzzle_indices[-1]), puzzle_indices, group_indices


def puzzle_of(puzzle_indices, example):
    return int(np.searchsorted(puzzle_indices, example, side="right")) - 1


def test_examples_sampler_is_a_permutation_per_epoch_cut_into_batches():
    order = TrainOrder(10, [0, 10], [0, 1], sampler="examples", batch_size=4, seed=3)
    batches = [order.next_batch() for _ in range(4)]  # 2 per epoch: the 2 leftovers dropped
    perm0 = np.random.default_rng([3, 0]).permutation(10)
    perm1 = np.random.default_rng([3, 1]).permutation(10)
    assert np.array_equal(np.concatenate(batches[:2]), perm0[:8])
    assert np.array_equal(np.concatenate(batches[2:]), perm1[:8])
    assert order.batches_for(5) == 10 and order.position == 2.0


def test_groups_sampler_takes_every_example_of_one_puzzle_per_group_and_cuts_the_last():
    # 3 groups; group g's puzzles have 3 examples each; batch 4: whole puzzles, then a cut
    n, puzzles, groups = arc_like([[3, 3], [3, 3], [3, 3]])
    order = TrainOrder(n, puzzles, groups, sampler="groups", batch_size=4, seed=0)
    first = order.next_batch()
    assert len(first) == 4 and len(set(first.tolist())) == 4
    owners = [puzzle_of(puzzles, e) for e in first]
    assert owners[0] == owners[1] == owners[2] != owners[3]  # one whole puzzle, then 1 of the next
    assert order.offset == 2  # the cut puzzle's other 2 examples are dropped (as TRM)
    second = order.next_batch()  # group 3's puzzle (3 examples), then the next epoch's first
    assert order.epoch == 1
    assert len({puzzle_of(puzzles, e) for e in second[:3]}) == 1


def test_groups_sampler_expected_batches_are_trms_formula():
    n, puzzles, groups = arc_like([[2, 4]] * 5 + [[3]] * 5)  # 15 puzzles, 45 examples
    order = TrainOrder(n, puzzles, groups, sampler="groups", batch_size=6, seed=0)
    # TRM: int(epochs x total_groups x mean_puzzle_examples / batch) = 100 x 10 x 3 / 6
    assert order.batches_for(100) == 500


def trm_packing(plans, batch, count):
    """TRM's _sample_batch as a plain loop over per-epoch plans (examples, puzzle bounds)."""
    out, epoch, p = [], 0, 0
    for _ in range(count):
        current = []
        while len(current) < batch:
            examples, bounds = plans(epoch)
            if p == len(bounds) - 1:
                epoch, p = epoch + 1, 0
                continue
            chunk = examples[bounds[p]:bounds[p + 1]][:batch - len(current)]
            current.extend(chunk.tolist())
            p += 1
        out.append(current)
    return out


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=3), min_size=2,
                      max_size=8),
       batch=st.integers(1, 7), seed=st.integers(0, 2**16), cut=st.integers(0, 6))
def test_groups_sampler_properties(sizes, batch, seed, cut):
    n, puzzles, groups = arc_like(sizes)

    def make():
        return TrainOrder(n, puzzles, groups, sampler="groups", batch_size=batch, seed=seed)

    straight = make()
    batches = [straight.next_batch().tolist() for _ in range(6)]
    # each epoch: every group once, with every example of one of its puzzles, consecutively
    examples, bounds = make()._epoch_plan(0)
    chosen = [puzzle_of(puzzles, examples[bounds[k]]) for k in range(len(bounds) - 1)]
    group_of = [int(np.searchsorted(groups, c, side="right")) - 1 for c in chosen]
    assert sorted(group_of) == list(range(len(sizes)))
    for k, c in enumerate(chosen):
        assert sorted(examples[bounds[k]:bounds[k + 1]]) == list(range(puzzles[c],
                                                                       puzzles[c + 1]))
    # batches are TRM's packing of those plans
    assert batches == trm_packing(make()._epoch_plan, batch, 6)
    # a resumed order goes on exactly
    probe, resumed = make(), make()
    for _ in range(cut):
        probe.next_batch()
    resumed.load_state(probe.state())
    assert [resumed.next_batch().tolist() for _ in range(6 - cut)] == batches[cut:]


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="sampler"):
        TrainOrder(4, [0, 4], [0, 1], sampler="shuffle", batch_size=2, seed=0)
