"""ARC dataset: ARC-AGI or generated tasks in the TRM layout plus Parquet.

Layout (see :mod:`tracegym.datasets.writer`): ``OUT/{train,test}/dataset.json`` (vocab 12,
seq_len ``side * side``: 900 by default; pad/ignore/blank 0), the ``all__*.npy`` arrays,
``all.parquet``, ``OUT/identifiers.json`` and, as TRM's build writes it for its ARC evaluator
(``evaluators/arc.py``), ``OUT/test_puzzles.json``: ``{task id: {"train": [...], "test":
[{"input": grid, "output": grid}, ...]}}``, the original (unaugmented) evaluation tasks whose
test pairs are in this build's test split. Tokens are :mod:`tracegym.envs.arc.tokens`: colour
``c`` -> ``c + 2``, ``1`` marks the end of the grid (the column right of it and the row below
it), ``0`` pad, on a 30x30 canvas (TRM's), or a smaller ``--side N`` one (``N x N`` tokens,
for small procedural families: every grid of every task must fit it, or the build fails).

Which pairs go where, as in TRM's ``build_arc_dataset.py`` for ``--set arc-agi-1`` (or 2) with
its published ``--subsets training evaluation concept``:

* train: for every task of the set's *training* and *evaluation* subsets and of ConceptARC
  (160 tasks, :data:`tracegym.envs.arc.data.CONCEPTARC`; ``concept=False``, ``--no-concept``,
  leaves it out), its demonstration pairs; for training-subset and ConceptARC tasks, also their
  test pairs (TRM sends every subset but the test set's whole to train).
* test: the test pairs of the evaluation-subset tasks (the pairs scored on ARC).

No test pair appears in train: a train example whose (input, label) pair equals a test example
of the whole build (an evaluation test pair under one of its task's copies, any shard) is
dropped. Only the pair counts: ARC-AGI-1 repeats
small outputs across tasks (13 of its 419 evaluation test outputs are outputs of other tasks),
and an example with the same output but another input is no leak (TRM drops nothing).

Procedural sets (``--set procedural/<family>``, or ``procedural`` for all families in turn,
:mod:`tracegym.envs.arc.generator`): ``--train N`` generated tasks play the training subset and
``--test M`` more (from a separate seed stream) the evaluation subset, with the same pair
assignment and the same filter.

Every task gets up to ``--augment K`` augmented copies (a dihedral symmetry and a colour
permutation keeping black, :mod:`tracegym.envs.arc.augment`), drawn from a stream seeded by
``(seed, task)``; as in TRM, a draw whose copy equals the task or an earlier copy is skipped and
drawing stops after ``5 K`` draws, so a very symmetric task can get fewer copies. Each copy is one
*puzzle* with its own identifier, named like TRM's ``<task>|||t<k>|||<permutation>`` (the original
keeps the bare task id), in both splits; a task and its copies form one *group*. Identifiers count
from 1 (0 is the blank), tasks in order (training, evaluation, then ConceptARC, each subset
sorted by id; TRM's order of ``--subsets``), copies
in order within a task, so every shard agrees on them. ``--shard i/n`` builds the i-th contiguous
slice of the tasks.

Translation (TRM's translational augmentation, on by default, ``--no-translate`` turns it off):
in the train split, every example of a puzzle but one (drawn at random) is shifted to a random
offset ``(r, c)`` with ``0 <= r <= side - max(input rows, label rows)`` (the same for columns),
input and label alike; the test split stays at ``(0, 0)``. The Parquet file records each
example's offset; :func:`~tracegym.envs.arc.tokens.decode` finds a grid wherever it sits.

Large builds (``--augment 1000``: about 3.5 million examples, 6 GB of tokens) stream: arrays past
16 MB spill to files in a hidden directory beside OUT (``.OUT.spill-<pid>``), read back by blocks
when written; the test pairs' keys are 16-byte digests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracegym.checks import check_int
from tracegym.envs.arc.augment import (  # noqa: F401 - SEPARATOR: its old home
    SEPARATOR,
    ArcAugmentation,
    augmentation_name,
    distinct_copies,
)
from tracegym.envs.arc.data import CONCEPTARC, ArcTask, load_tasks, task_to_json
from tracegym.envs.arc.tokens import COLOUR_OFFSET, SIDE, VOCAB_SIZE, encode
from tracegym.envs.arc.tokens import translate as translate_tokens
from tracegym.errors import TracegymError
from tracegym.grid import dihedral
from tracegym.io import temporary_sibling
from tracegym.outputs import pause_point

from .common import (
    TEST_STREAM,
    TRAIN_STREAM,
    augment_rng,
    check_shard,
    shard_slice,
    stream_seed,
    translate_rng,
    user_options,
)
from .engines import Chunk, Engine, check_engine, chunk_size, chunks, open_engine
from .writer import BLANK_IDENTIFIER, RowSpill, SplitData, locked_output, write_dataset

SETS = ("arc-agi-1", "arc-agi-2")
PROCEDURAL = "procedural"
DEFAULT_PROCEDURAL_TASKS = (400, 400)  # train, test: the sizes of ARC-AGI-1's subsets
# subsets whose test pairs go to the test split; every other subset's go to train (as in TRM)
TEST_SUBSET = "evaluation"
TEST_PUZZLES = "test_puzzles.json"  # the file TRM's ARC evaluator opens
SPILL_MEMORY = 16 << 20  # bytes of tokens per array (4 of them) kept in memory before spilling


class _Split:
    """Examples of one split, appended task by task; tokens spill to disk when large."""

    def __init__(self, spill_dir: Path, name: str, memory: int, seq_len: int):
        self.inputs = RowSpill(spill_dir / f"{name}-inputs.bin", seq_len, memory)
        self.labels = RowSpill(spill_dir / f"{name}-labels.bin", seq_len, memory)
        self.ids, self.sizes, self.groups = [], [], [0]
        self.names: list[str] = []  # per example: task id, then puzzle name
        self.task_ids: list[str] = []
        self.arrays = {"pair": [], "demo": [], "row_offset": [], "col_offset": []}

    def add_task(self, task_id: str, names: list[str], first_id: int, tokens: np.ndarray,
                 copy_of: np.ndarray, pair: np.ndarray, demos: int, offsets: np.ndarray):
        """Append one task's examples, ``tokens`` ``(n, 2, seq_len)``, sorted by ``copy_of`` (the
        copy each comes from: puzzle ``first_id + copy_of``), as one group."""
        if not len(copy_of):
            return
        self.inputs.append(tokens[:, 0])
        self.labels.append(tokens[:, 1])
        copies, sizes = np.unique(copy_of, return_counts=True)
        self.ids += (first_id + copies).tolist()
        self.sizes += sizes.tolist()
        self.groups.append(len(self.ids))
        self.task_ids += [task_id] * len(copy_of)
        self.names += [names[c] for c in copy_of.tolist()]
        for key, values in (("pair", pair), ("demo", pair < demos),
                            ("row_offset", offsets[:, 0]), ("col_offset", offsets[:, 1])):
            self.arrays[key].append(values)

    def data(self) -> SplitData:
        columns = {key: np.concatenate(parts) if parts else np.zeros(0, np.int8)
                   for key, parts in self.arrays.items()}
        return SplitData(
            inputs=self.inputs.array(), labels=self.labels.array(),
            puzzle_identifiers=np.array(self.ids, np.int32),
            puzzle_indices=np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int32),
            group_indices=np.array(self.groups, np.int32),
            columns={"task_id": self.task_ids, "augmentation": self.names,
                     "pair": columns["pair"].astype(np.int32),
                     # bytes, written as str: 3.5M str objects would take 200 MB (an empty
                     # split keeps the list, whose Parquet type is null, as before)
                     "kind": np.where(columns["demo"].astype(bool), b"demo", b"test")
                     if len(self.task_ids) else [],
                     "row_offset": columns["row_offset"].astype(np.int8),
                     "col_offset": columns["col_offset"].astype(np.int8)})


class _TaskTokens:
    """A task's pairs encoded once under each of the 8 symmetries; copies are then lookups.

    ``canvases[k]`` is ``(pairs, 2, side * side)``: the (input, output) tokens of every pair
    (train pairs then test pairs) under ``dihedral(., k)``; ``spans[k]`` the pair's largest rows
    and columns.
    """

    def __init__(self, task: ArcTask, side: int = SIDE):
        pairs = [*task.train, *task.test]
        canvases, spans = [], []
        for k in range(8):
            moved = [(dihedral(x, k), dihedral(y, k)) for x, y in pairs]
            canvases.append(np.stack([[encode(x, side), encode(y, side)] for x, y in moved]))
            spans.append(np.array([np.maximum(x.shape, y.shape) for x, y in moved]))
        self.canvases, self.spans = np.stack(canvases), np.stack(spans)

    def copies(self, augs: list[ArcAugmentation | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens (copies, pairs, 2, T), spans (copies, pairs, 2))``; None: the task."""
        ks = np.array([0 if a is None else a.k for a in augs])
        luts = np.tile(np.arange(VOCAB_SIZE, dtype=np.uint8), (len(augs), 1))
        for row, aug in zip(luts, augs):  # pad and end marker stay, colours move
            if aug is not None:
                row[COLOUR_OFFSET:] = np.array(aug.colour_perm, np.uint8) + COLOUR_OFFSET
        tokens = luts[np.arange(len(augs))[:, None, None, None], self.canvases[ks]]
        return tokens, self.spans[ks]


def _random_offsets(rng: np.random.Generator, spans: np.ndarray, copy_of: np.ndarray,
                    side: int = SIDE) -> np.ndarray:
    """TRM's translation: a random (r, c) per example that keeps it on the ``side`` canvas,
    except one example per puzzle (drawn at random) that stays at (0, 0). ``copy_of`` is
    sorted."""
    offsets = (rng.random(spans.shape) * (side + 1 - spans)).astype(np.int8)
    starts = np.flatnonzero(np.r_[True, copy_of[1:] != copy_of[:-1]])
    sizes = np.diff(np.r_[starts, len(copy_of)])
    offsets[starts + (rng.random(len(starts)) * sizes).astype(np.intp)] = 0
    return offsets


def _tasks_per_chunk(count: int, engine: Engine, augment: int) -> int:
    # about 256 examples' worth of copies at least (a worker's start pays off), 4096 at most
    step = max(1, 256 // (1 + augment))
    return chunk_size(count, engine.workers, step=step, most=16 * step)


@dataclass(frozen=True)
class _Copies:
    """An engine task: each task's copies ``[None, *augmentations]`` (stream ``(seed, g)``) and,
    for an evaluation task, the keys of every copy of its test pairs."""

    tasks: list  # (ArcTask, subset) of the whole build
    seed: int
    augment: int
    side: int = SIDE

    def __call__(self, chunk: Chunk) -> list[tuple[list, list]]:
        out = []
        for g in range(chunk.lo, chunk.hi):
            task, subset = self.tasks[g]
            augs = [None, *distinct_copies(task, self.augment, augment_rng(self.seed, g))]
            keys = []
            if subset == TEST_SUBSET:  # every copy of every test pair: train may hold none
                test = ArcTask(task.task_id, (), task.test)
                tokens, _ = _TaskTokens(test, self.side).copies(augs)
                keys = [_pair_key(pair) for pair in tokens.reshape(-1, 2, tokens.shape[-1])]
            out.append((augs, keys))
        return out


@dataclass(frozen=True)
class _Examples:
    """An engine task: each task's train examples (copies of its pairs that are no test pair,
    translated) and, for an evaluation task, its test examples.

    Per task: ``((tokens (n, 2, T), copy_of, pair, offsets, dropped), test)``, ``test`` being
    ``(tokens, copy_of, pair)`` or None; ``copy_of`` is sorted (see ``_Split.add_task``)."""

    tasks: list
    copies: list  # per task: [None, *augmentations]
    forbidden: frozenset  # _pair_key of every copy of every test pair
    seed: int
    translate: bool
    side: int = SIDE

    def __call__(self, chunk: Chunk) -> list[tuple]:
        out = []
        for g in range(chunk.lo, chunk.hi):
            task, subset = self.tasks[g]
            tokens, spans = _TaskTokens(task, self.side).copies(self.copies[g])  # (C, P, 2, T)
            demos = len(task.train)
            to_train = demos + (len(task.test) if subset != TEST_SUBSET else 0)
            keep = np.array([[_pair_key(pair) not in self.forbidden for pair in copy[:to_train]]
                             for copy in tokens], dtype=bool).reshape(len(tokens), to_train)
            copy_of, pair = np.nonzero(keep)  # row-major: sorted by copy
            offsets = np.zeros((len(copy_of), 2), np.int8)
            if self.translate and len(copy_of):
                offsets = _random_offsets(translate_rng(self.seed, g), spans[copy_of, pair],
                                          copy_of, self.side)
            moved = translate_tokens(tokens[copy_of, pair], offsets[:, None, 0],
                                     offsets[:, None, 1])
            train = (moved, copy_of, pair, offsets, int((~keep).sum()))
            test = None
            if subset == TEST_SUBSET:
                copy_of, pair = np.nonzero(np.ones((len(tokens), len(task.test)), bool))
                pair += demos
                test = (tokens[copy_of, pair], copy_of, pair)
            out.append((train, test))
        return out


def procedural_tasks(arc_set: str, seed: int, train: int, test: int) -> list[tuple[ArcTask, str]]:
    """The tasks of a procedural set: ``train`` then ``test`` generated tasks, each subset from
    its own seed stream; ``procedural`` cycles through the families in name order."""
    from tracegym.envs.arc.generator import FAMILIES, get_family, procedural_task

    family = arc_set.partition("/")[2]
    families = sorted(FAMILIES) if family in ("", "all") else [get_family(family).name]
    out = []
    for count, stream, subset in ((train, TRAIN_STREAM, "training"),
                                  (test, TEST_STREAM, "evaluation")):
        stream_seed_ = stream_seed(seed, stream)
        out += [(procedural_task(families[i % len(families)], stream_seed_, i).task, subset)
                for i in range(count)]
    return out


def _pair_key(tokens: np.ndarray) -> bytes:
    """An (input, label) example, ``(2, T)`` tokens at the canvas origin, as a set key: a
    128-bit digest, so that the half million keys of ``--augment 1000`` take 8 MB, not 1 GB (a
    collision, which would drop one train example, has odds below 2**-80)."""
    return hashlib.blake2b(np.ascontiguousarray(tokens).data, digest_size=16).digest()


def check_fits(tasks: list[ArcTask], side: int) -> None:
    """Raise TracegymError naming the first task with a grid larger than the ``side`` canvas."""
    for task in tasks:
        for kind, pairs in (("train", task.train), ("test", task.test)):
            for i, pair in enumerate(pairs):
                for which, grid in zip(("input", "output"), pair):
                    shape = np.shape(grid)
                    if grid is not None and max(shape) > side:
                        raise TracegymError(
                            f"side: task {task.task_id!r} {kind} pair {i} {which} is a "
                            f"{shape[0]}x{shape[1]} grid, larger than the {side}x{side} canvas "
                            f"(side={side}); use a larger side (at most {SIDE}) or a family "
                            "of smaller grids")


def test_puzzles_json(tasks: list[ArcTask]) -> str:
    """The text of ``test_puzzles.json`` as TRM's build writes it: each task's official JSON
    (demos and test pairs with their outputs) keyed by task id; TRM's evaluator scores every test
    pair of every task in it, with its grids unaugmented."""
    hidden = [t.task_id for t in tasks if any(y is None for _, y in t.test)]
    if hidden:
        raise TracegymError(f"{TEST_PUZZLES}: evaluation tasks {hidden[:5]} have hidden test "
                            "outputs, so nothing could score them")
    # compact (TRM's evaluator needs no indent): 1.6 MB for ARC-AGI-1's 400 tasks
    return json.dumps({t.task_id: task_to_json(t) for t in tasks}, sort_keys=True,
                      separators=(",", ":"))


def build_arc_dataset(out, *, arc_set: str = "arc-agi-1", augment: int = 0, seed: int = 0,
                      shard: tuple[int, int] = (0, 1), translate: bool = True,
                      tasks: tuple[int, int] | None = None, concept: bool | None = None,
                      overwrite: bool = False, progress: bool = True,
                      engine: str | Engine = "local", workers: int | None = None,
                      ray_address: str | None = None, side: int | None = None) -> dict:
    """Build the ARC dataset of ``arc_set`` into ``out`` (see the module docstring).

    ``arc_set`` is ``"arc-agi-1"``, ``"arc-agi-2"``, ``"procedural"`` or
    ``"procedural/<family>"``; ``tasks`` = (train, test) counts, for procedural sets only
    (default 400, 400); ``concept``: add ConceptARC to train, for ARC-AGI sets only (default
    True, as TRM and HRM train). ``engine``, ``workers``, ``ray_address``: where the tasks'
    copies and examples are made (:mod:`.engines`: ``"local"`` with ``workers`` processes,
    default 1, or ``"ray"``); the files are the same on every engine. ``side``: the token
    canvas, 1..30 (default 30, TRM's); seq_len is ``side * side`` and every grid must fit.
    """
    procedural = arc_set == PROCEDURAL or arc_set.startswith(PROCEDURAL + "/")
    if not procedural and arc_set not in SETS:
        raise TracegymError(f"set must be one of {[*SETS, PROCEDURAL, PROCEDURAL + '/<family>']}, "
                            f"got {arc_set!r}")
    augment = check_int("augment", augment, 0)
    seed = check_int("seed", seed, 0)
    side = SIDE if side is None else check_int("side", side, 1, SIDE)
    shard = check_shard(shard)
    engine = check_engine(engine, workers, ray_address)
    if procedural:
        train_tasks, test_tasks = DEFAULT_PROCEDURAL_TASKS if tasks is None else tasks
        train_tasks = check_int("train", train_tasks, 1)
        test_tasks = check_int("test", test_tasks, 1)
        family = arc_set.partition("/")[2]
        if family not in ("", "all"):
            from tracegym.envs.arc.generator import get_family

            with user_options():  # an unknown name fails here, listing the valid ones
                get_family(family)
        if concept is not None:
            raise TracegymError(f"concept: only ARC-AGI sets take ConceptARC, got "
                                f"concept={concept!r} for {arc_set!r}")
    elif tasks is not None:
        raise TracegymError(f"tasks: only procedural sets take task counts, got {tasks!r} for "
                            f"{arc_set!r}")
    elif concept is None:
        concept = True
    elif not isinstance(concept, bool):
        raise TracegymError(f"concept: expected True or False, got {concept!r}")
    # fail before the slow part; one writer of OUT from here to the end
    with locked_output(out, overwrite=overwrite) as out, open_engine(*engine) as engine:
        if procedural:
            tasks = procedural_tasks(arc_set, seed, train_tasks, test_tasks)
            subsets = ["training", TEST_SUBSET]
        else:
            subsets = ["training", TEST_SUBSET, *([CONCEPTARC] if concept else [])]
            # appended in this order, so adding ConceptARC moves no ARC-AGI identifier or stream
            tasks = [(t, subset) for subset in subsets
                     for t in load_tasks(f"{arc_set}/{subset}" if subset != CONCEPTARC else subset)]
        if side < SIDE:  # before the slow part: a grid that does not fit fails the build
            check_fits([t for t, _ in tasks], side)
        lo, hi = shard_slice(len(tasks), shard)

        # every shard draws every task's copies: identifiers and the forbidden pairs depend on them
        names, first_id, copies, forbidden = [BLANK_IDENTIFIER], [], [], set()
        with tqdm(total=len(tasks), desc="arc augmentations", unit="task", disable=not progress,
                  delay=1.0, leave=False) as bar:
            per = _tasks_per_chunk(len(tasks), engine, augment)
            drawn = engine.map(_Copies(tasks, seed, augment, side), chunks(0, len(tasks), per),
                               bar=bar)
            for augs, keys in (task for part in drawn for task in part):
                copies.append(augs)
                first_id.append(len(names))
                names.extend(augmentation_name(tasks[len(copies) - 1][0].task_id, a)
                             for a in augs)
                forbidden.update(keys)

        # named by our pid, as the staging directory: what a killed build leaves, the next removes
        spill_dir = temporary_sibling(out, "spill")
        shutil.rmtree(spill_dir, ignore_errors=True)
        spill_dir.mkdir()
        try:
            train = _Split(spill_dir, "train", SPILL_MEMORY, side * side)
            test = _Split(spill_dir, "test", SPILL_MEMORY, side * side)
            dropped, test_tasks = 0, []
            task = _Examples(tasks, copies, frozenset(forbidden), seed, translate, side)
            del forbidden  # the task holds it (a local engine) or the workers do (ray)
            with tqdm(total=hi - lo, desc="arc tasks", unit="task", disable=not progress,
                      delay=1.0, leave=False) as bar:
                per = _tasks_per_chunk(hi - lo, engine, augment)
                parts = engine.map(task, chunks(lo, hi, per), bar=bar)
                for g, (to_train, to_test) in enumerate((r for part in parts for r in part),
                                                        lo):
                    arc_task = tasks[g][0]
                    task_names = names[first_id[g]:first_id[g] + len(copies[g])]
                    demos = len(arc_task.train)
                    moved, copy_of, pair, offsets, lost = to_train
                    dropped += lost
                    train.add_task(arc_task.task_id, task_names, first_id[g], moved, copy_of,
                                   pair, demos, offsets)
                    if to_test is not None:
                        test_tasks.append(arc_task)
                        tokens, copy_of, pair = to_test
                        test.add_task(arc_task.task_id, task_names, first_id[g], tokens,
                                      copy_of, pair, demos,
                                      np.zeros((len(copy_of), 2), np.int8))
                    pause_point("generate")

            splits = {"train": train.data(), "test": test.data()}
            metadata = {name: split.metadata(vocab_size=VOCAB_SIZE,
                                             num_puzzle_identifiers=len(names))
                        for name, split in splits.items()}
            write_dataset(out, splits, metadata, names, overwrite=overwrite, progress=progress,
                          extra_files={TEST_PUZZLES: test_puzzles_json(test_tasks)})
        finally:
            shutil.rmtree(spill_dir, ignore_errors=True)
        counts = {s: sum(subset == s for _, subset in tasks[lo:hi]) for s in subsets}
        return {"out": str(out), "set": arc_set, "augment": augment, "seed": seed, "side": side,
                "shard": list(shard), "subsets": counts, "concept": bool(concept),
                "tasks": hi - lo, "puzzles": len(names) - 1,
                "train_examples": splits["train"].num_examples,
                "test_examples": splits["test"].num_examples, "dropped_train_examples": dropped}
