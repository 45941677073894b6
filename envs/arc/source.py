"""ARC task sources for the env: :func:`tracegym.sources.make_source` with ARC checks.

A source draws one :class:`~.data.ArcTask` per reset (tasks are single items to the shared
sources, see ``ArcTask.shape``). Every task is checked when the source is made (a list) or
drawn (a generator, a callable, an iterator): grids of 1..30 x 1..30 colours 0..9, and a test
output for every test input, since the env scores answers against it.
"""

from __future__ import annotations

import os

import numpy as np

from tracegym.errors import PuzzleFormatError
from tracegym.grid import check_cells
from tracegym.sources import CallableSource, PuzzleSource
from tracegym.sources import make_source as _make_source

from .constants import MAX_SIDE, NUM_COLOURS
from .data import ArcTask, load_tasks

DEFAULT_DATASET = "arc-agi-1/training"
PROCEDURAL = "procedural"


def _grid(value, field: str) -> np.ndarray:
    grid = np.asarray(value)
    if grid.ndim != 2 or not all(1 <= side <= MAX_SIDE for side in grid.shape):
        raise PuzzleFormatError(f"{field}: expected a grid of 1..{MAX_SIDE} x 1..{MAX_SIDE} "
                                f"cells, got shape {grid.shape}")
    return check_cells(grid, NUM_COLOURS - 1, field=field, name="colour")


def check_task(item, field: str = "dataset") -> ArcTask:
    """An ARC task (an :class:`ArcTask`, or any object with ``task_id``, ``train`` and ``test``
    pairs) checked and returned as an ArcTask of int8 grids."""
    if not all(hasattr(item, key) for key in ("task_id", "train", "test")):
        raise PuzzleFormatError(f"{field}: expected an ARC task (task_id, train, test), got "
                                f"{type(item).__name__}")
    missing = [i for i, (_, out) in enumerate(item.test) if out is None]
    if missing or not len(item.test):
        raise PuzzleFormatError(f"{field}: task {item.task_id} has no test output to score "
                                "answers with")
    pairs = {}
    for split in ("train", "test"):
        pairs[split] = tuple(
            (_grid(x, f"{field}: task {item.task_id} {split} pair {i + 1} input"),
             _grid(y, f"{field}: task {item.task_id} {split} pair {i + 1} output"))
            for i, (x, y) in enumerate(getattr(item, split)))
    return ArcTask(str(item.task_id), pairs["train"], pairs["test"])


def _is_single(item) -> bool:
    return hasattr(item, "task_id") and hasattr(item, "train") and hasattr(item, "test")


def _read_file(path) -> list[ArcTask]:
    return [check_task(task, f"dataset {str(path)!r}") for task in load_tasks(path)]


def _procedural(name: str):
    """``"procedural"``, ``"procedural/all"`` (a family per task) or ``"procedural/<family>"``
    -> ``rng -> task``."""
    from .generator import FAMILIES, generate_task

    family = name.partition("/")[2] or "all"
    if family == "all":
        names = sorted(FAMILIES)
        return lambda rng: generate_task(names[int(rng.integers(len(names)))], rng).task
    if family not in FAMILIES:
        raise ValueError(f"dataset: unknown procedural family {family!r}; valid: "
                         f"{', '.join(['all', *sorted(FAMILIES)])}")
    return lambda rng: generate_task(family, rng).task


def make_source(dataset) -> PuzzleSource:
    """The env's ``dataset=`` option as a source of tasks.

    ``dataset``: None (:data:`DEFAULT_DATASET`); a set name (``"arc-agi-1/training"``...), a
    directory or file of ARC JSON; ``"procedural"`` / ``"procedural/<family>"`` (a fresh
    generated task per reset); one task or a list of tasks; a callable ``rng -> task``; an
    iterator of tasks; or a source.
    """
    if isinstance(dataset, str) and (dataset == PROCEDURAL
                                     or dataset.startswith(PROCEDURAL + "/")):
        return CallableSource(_procedural(dataset), check_task)
    if isinstance(dataset, str) and not os.path.isfile(dataset):
        dataset = _read_file(dataset)  # a set name or a directory: its tasks, as a list
    return _make_source(dataset, convert=check_task, read_file=_read_file, is_single=_is_single,
                        default=lambda: make_source(DEFAULT_DATASET), field="dataset")
