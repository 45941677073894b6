"""A map-style torch ``Dataset`` over one split of the TRM layout (see :mod:`.writer`)."""

from __future__ import annotations

import operator
import os
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ModuleNotFoundError as exc:  # torch is the `train` extra, not a core dependency
    if exc.name != "torch":
        raise
    raise ModuleNotFoundError(
        "tracegym.datasets.PuzzleDataset needs torch, which the `train` extra installs: "
        "pip install 'tracegym[train]' (README: Install)", name="torch") from exc

from .writer import read_split


class PuzzleDataset(Dataset):
    """Examples of ``path/split`` as tensors; the ``.npy`` arrays are memory-mapped.

    ``dataset[i]`` is a dict: ``inputs`` and ``labels`` (int64 ``[seq_len]``) and
    ``puzzle_identifiers`` (int64 scalar, the identifier of the puzzle example ``i`` belongs to).
    ``metadata`` is ``dataset.json`` as a dict; the raw arrays are the attributes ``inputs``,
    ``labels``, ``puzzle_identifiers``, ``puzzle_indices`` and ``group_indices``, for samplers
    that draw per puzzle or per group.

    Args:
        path: the dataset directory (the one holding ``identifiers.json``).
        split: the split folder, ``"train"`` or ``"test"``.

    Raises FileNotFoundError naming a missing directory or file.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train"):
        self.path = Path(path)
        self.split = split
        self._open()

    def _open(self) -> None:
        self.metadata, arrays = read_split(self.path, self.split, mmap=True)
        self.inputs = arrays["inputs"]  # (N, seq_len) uint8, memory-mapped
        self.labels = arrays["labels"]
        self.puzzle_identifiers = arrays["puzzle_identifiers"]  # (P,)
        self.puzzle_indices = arrays["puzzle_indices"]  # (P+1,) example offsets
        self.group_indices = arrays["group_indices"]  # (G+1,) puzzle offsets

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index) -> dict[str, torch.Tensor]:
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} examples")
        index %= n
        # the puzzle whose example range [start, next start) holds `index`
        puzzle = int(np.searchsorted(self.puzzle_indices, index, side="right")) - 1
        return {
            "inputs": torch.from_numpy(self.inputs[index].astype(np.int64)),
            "labels": torch.from_numpy(self.labels[index].astype(np.int64)),
            "puzzle_identifiers": torch.tensor(int(self.puzzle_identifiers[puzzle]),
                                               dtype=torch.int64),
        }

    # Workers started with "spawn" receive a pickled dataset: send the path, not the mapped
    # arrays (pickling a memmap copies all of its data), and map the files again on arrival.
    def __getstate__(self) -> dict:
        return {"path": self.path, "split": self.split}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]
        self.split = state["split"]
        self._open()

    def __repr__(self) -> str:
        return f"PuzzleDataset({str(self.path)!r}, split={self.split!r}, examples={len(self)})"
