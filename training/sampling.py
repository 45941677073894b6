"""The order in which the Trainer draws train examples: :class:`TrainOrder`.

Batches are a pure function of ``(seed, position)``: the position (``epoch``, ``offset``) is all
a checkpoint needs to resume the exact batch sequence.

* ``"examples"``: each epoch is a permutation of all train examples (``default_rng([seed,
  epoch])``) cut into batches; the last partial batch of an epoch is dropped. ``offset`` counts
  batches.
* ``"groups"`` (TRM's and HRM's sampler; a group is one original puzzle and its augmented
  copies): each epoch visits the groups in a shuffled order and, for each, picks one of its
  puzzles at random and takes *every* example of it, in a random order (all demos of one ARC
  augmented copy together). Puzzles are packed whole into a batch; the one that would overflow
  it gives only the examples that fit and its rest is dropped, and the next batch starts with
  the next puzzle, as TRM's ``_sample_batch``. A batch may run on into the next epoch (TRM
  concatenates the epochs of an eval interval), so the number of batches per epoch varies;
  its expectation, ``total_groups x mean_puzzle_examples / batch_size``, is TRM's. ``offset``
  counts the puzzles of the epoch's order used so far.
"""

from __future__ import annotations

import numpy as np

from .config import SAMPLERS


class TrainOrder:
    """Global batches of example indices over a dataset with TRM's index arrays.

    Args:
        num_examples: examples in the train split.
        puzzle_indices: (P+1,) example offsets of the puzzles.
        group_indices: (G+1,) puzzle offsets of the groups.
        sampler: ``"examples"`` or ``"groups"`` (see the module docstring).
        batch_size: global batch size.
        seed: the run's seed; epoch ``e`` draws from ``np.random.default_rng([seed, e])``.
    """

    def __init__(self, num_examples: int, puzzle_indices, group_indices, *, sampler: str,
                 batch_size: int, seed: int):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed
        self.num_examples = num_examples
        self.puzzle_indices = np.asarray(puzzle_indices, dtype=np.int64)
        self.group_indices = np.asarray(group_indices, dtype=np.int64)
        self.epoch, self.offset = 0, 0
        self._plan_epoch, self._plan = -1, None

    # -- sizes
    @property
    def examples_per_epoch(self) -> float:
        """Examples one epoch offers: all of them ("examples"), or the expected size of one
        random puzzle per group ("groups": TRM's ``total_groups x mean_puzzle_examples``)."""
        if self.sampler == "examples":
            return float(self.num_examples)
        groups = len(self.group_indices) - 1
        puzzles = len(self.puzzle_indices) - 1
        return groups * self.num_examples / max(puzzles, 1)

    def batches_for(self, epochs: int) -> int:
        """Batches in ``epochs`` epochs: exact for "examples" (the partial batch is dropped), and
        TRM's ``int(epochs x total_groups x mean_puzzle_examples / batch_size)`` for "groups"."""
        if self.sampler == "examples":
            return epochs * (self.num_examples // self.batch_size)
        return int(epochs * self.examples_per_epoch / self.batch_size)

    @property
    def position(self) -> float:
        """Epochs done, fractional (the log's ``epoch``)."""
        if self.sampler == "examples":
            return self.epoch + self.offset / max(self.num_examples // self.batch_size, 1)
        return self.epoch + self.offset / (len(self.group_indices) - 1)

    # -- state
    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state(self, state: dict) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])

    # -- batches
    def next_batch(self) -> np.ndarray:
        """The next global batch: ``(batch_size,)`` int64 example indices; advances the position."""
        if self.sampler == "examples":
            per_epoch = self.num_examples // self.batch_size
            if self.offset >= per_epoch:
                self.epoch, self.offset = self.epoch + 1, 0
            order = self._epoch_plan(self.epoch)
            start = self.offset * self.batch_size
            self.offset += 1
            return order[start:start + self.batch_size]
        parts, need = [], self.batch_size
        while need:
            examples, bounds = self._epoch_plan(self.epoch)
            puzzles = len(bounds) - 1
            if self.offset >= puzzles:
                self.epoch, self.offset = self.epoch + 1, 0
                continue
            p = self.offset
            # the whole puzzles from p that fit, then the first examples of the next one
            q = int(np.searchsorted(bounds, bounds[p] + need, side="right")) - 1
            parts.append(examples[bounds[p]:bounds[q]])
            need -= int(bounds[q] - bounds[p])
            self.offset = q
            if need and q < puzzles:
                parts.append(examples[bounds[q]:bounds[q] + need])
                need, self.offset = 0, q + 1
        return np.concatenate(parts)

    def _epoch_plan(self, epoch: int):
        """One epoch's draw (cached): the example order ("examples"), or, for "groups", the
        examples of the chosen puzzles, shuffled within each puzzle, and the puzzles' bounds."""
        if epoch == self._plan_epoch:
            return self._plan
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampler == "examples":
            plan = rng.permutation(self.num_examples)
        else:
            groups, puzzles = self.group_indices, self.puzzle_indices
            order = rng.permutation(len(groups) - 1)
            lo, hi = groups[order], groups[order + 1]
            puzzle = lo + (rng.random(len(order)) * (hi - lo)).astype(np.int64)
            first, size = puzzles[puzzle], puzzles[puzzle + 1] - puzzles[puzzle]
            bounds = np.concatenate([[0], np.cumsum(size)])
            owner = np.repeat(np.arange(len(order)), size)  # position of each example's puzzle
            examples = first[owner] + np.arange(bounds[-1]) - bounds[owner]
            # shuffle within each puzzle: sort by (puzzle position, random key)
            examples = examples[np.lexsort((rng.random(bounds[-1]), owner))]
            plan = (examples, bounds)
        self._plan_epoch, self._plan = epoch, plan
        return plan
