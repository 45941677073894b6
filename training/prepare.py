"""What the Trainer builds before its loop: the device, seeds, the checked dataset splits and
their task, the policy and the per-step count of a batch.

Each helper is a plain function, usable without a Trainer (``tracegym eval`` rebuilds a policy
from a checkpoint with :func:`policy_from_checkpoint` and picks its device with
:func:`pick_device`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tracegym.errors import TracegymError
from tracegym.packages import subpackages

from .checkpoint import Checkpoint
from .config import TrainConfig, from_dict

ACCELERATOR = "cuda"  # the one device type the Trainer accelerates (bf16 autocast, compile)
SPEC_FIELDS = ("vocab_size", "seq_len", "num_puzzle_identifiers", "pad_id", "ignore_label_id")


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> the accelerator when present, else CPU; a bare accelerator name gets the
    local rank's index."""
    if name == "auto":
        name = ACCELERATOR if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise TracegymError(f"device: {name!r} is not a device ({err})") from err
    if device.type == ACCELERATOR:
        if not torch.cuda.is_available():
            raise TracegymError(f"device: {name!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device(ACCELERATOR, local_rank)
    return device


def is_accelerator(device: torch.device) -> bool:
    return device.type == ACCELERATOR


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def task_names() -> list[str]:
    return subpackages("tracegym.envs")


def check_task(task: str) -> None:
    valid = task_names()
    base = task.rstrip("0123456789")  # "sudoku4" is a 4x4 sudoku dataset
    if task not in valid and base not in valid:
        raise TracegymError(f"task: unknown task {task!r}; valid names: {', '.join(valid)}")


# Parquet columns that only one task's builder writes (datasets/sudoku.py, maze.py, arc.py):
# how a dataset whose dataset.json does not name its task is recognised
TASK_COLUMNS = {"sudoku": {"puzzle", "solution", "clues"}, "maze": {"maze", "label", "length"},
                "arc": {"task_id", "pair"}}


def dataset_task(path: str | os.PathLike, metadata: dict) -> str | None:
    """The env task a dataset was built for, or None when it cannot be told.

    ``metadata`` (train dataset.json) names it in ``"task"`` when that is an env task; a
    ``tracegym data trace_lm`` dataset (it has a ``"tokenizer"``) is ``exectrace``; otherwise
    the builder's own Parquet columns tell (the schema only is read).
    """
    if metadata.get("task") in task_names():
        return metadata["task"]
    if "tokenizer" in metadata:
        return "exectrace"
    parquet = Path(path) / "train" / "all.parquet"
    if not parquet.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        columns = set(pq.read_schema(parquet).names)
    except Exception:  # noqa: BLE001 - an unreadable Parquet copy: the .npy arrays still train
        return None
    found = [task for task, marks in TASK_COLUMNS.items() if marks <= columns]
    return found[0] if len(found) == 1 else None


def check_dataset_task(task: str, path: str | os.PathLike, metadata: dict) -> None:
    """Raise TracegymError when the dataset at ``path`` was built for another task."""
    found = dataset_task(path, metadata)
    if found is not None and task != found and task.rstrip("0123456789") != found:
        raise TracegymError(f"task: {task!r} does not match the dataset {str(path)!r}, which "
                            f"holds {found} data; use task {found!r} (--task {found}) or a "
                            f"{task} dataset")


def load_split_checked(path: str | os.PathLike, split: str):
    """``PuzzleDataset`` with dataset.json checked: required fields present, arrays agreeing."""
    from tracegym.datasets.torch_dataset import PuzzleDataset

    data = PuzzleDataset(path, split)
    where = f"{Path(path) / split / 'dataset.json'}"
    missing = [k for k in SPEC_FIELDS if k not in data.metadata]
    if missing:
        raise TracegymError(f"dataset: {where}: missing field(s) {missing}")
    vocab = data.metadata["vocab_size"]
    if not isinstance(vocab, int) or vocab < 2:
        raise TracegymError(f"dataset: {where}: vocab_size must be an int >= 2, got {vocab!r}")
    sample = np.asarray(data.inputs[:4096])
    if sample.size and int(sample.max()) >= vocab:
        raise TracegymError(f"dataset: {where}: input token {int(sample.max())} >= vocab_size "
                            f"{vocab}")
    ids = np.asarray(data.puzzle_identifiers)
    n_ids = data.metadata["num_puzzle_identifiers"]
    if ids.size and int(ids.max()) >= n_ids:
        raise TracegymError(f"dataset: {where}: puzzle identifier {int(ids.max())} >= "
                            f"num_puzzle_identifiers {n_ids}")
    return data


def example_identifiers(data) -> np.ndarray:
    """Each example's puzzle identifier ``(N,)``: a dataset stores one identifier per puzzle and
    the examples of puzzle ``i`` at ``puzzle_indices[i]:puzzle_indices[i + 1]``."""
    sizes = np.diff(np.asarray(data.puzzle_indices))
    return np.repeat(np.asarray(data.puzzle_identifiers), sizes)


def task_spec_dict(task: str, metadata: dict) -> dict:
    """The TaskSpec fields of a split (``TaskSpec(**spec)``), ``null`` ignore id as -100."""
    spec = {"name": task, **{k: metadata[k] for k in SPEC_FIELDS}}
    if spec["ignore_label_id"] is None:
        spec["ignore_label_id"] = -100
    return spec


def default_policy_factory(spec: dict, cfg: TrainConfig) -> nn.Module:
    """``build_policy(reasoner, backbone, TaskSpec(**spec), loss=cfg.loss, **cfg.model)``."""
    from tracegym.agents.reasoners import REASONERS, TaskSpec, build_policy

    if cfg.reasoner not in REASONERS:
        raise TracegymError(f"reasoner: unknown reasoner {cfg.reasoner!r}; valid names: "
                            f"{', '.join(REASONERS)}")
    if "loss" in cfg.model and cfg.model["loss"] != cfg.loss:
        raise TracegymError(f"model.loss={cfg.model['loss']!r} disagrees with "
                            f"loss={cfg.loss!r}; set loss only")
    model = {k: v for k, v in cfg.model.items() if k != "loss"}
    try:
        return build_policy(cfg.reasoner, cfg.backbone, TaskSpec(**spec), loss=cfg.loss,
                            **model)
    except TracegymError:
        raise
    except ValueError as err:  # TaskSpec checks its arguments with plain ValueErrors
        raise TracegymError(str(err)) from err


def policy_from_checkpoint(ckpt: Checkpoint, device: torch.device, *, weights: str = "ema",
                           factory: Callable | None = None) -> nn.Module:
    """Rebuild the policy a checkpoint was trained with and load its (EMA) weights."""
    cfg = from_dict(ckpt.config)
    policy = (factory or default_policy_factory)(ckpt.task_spec, cfg)
    ckpt.load_model(policy, weights=weights)
    return policy.to(device).eval()


def supervision_steps_per_batch(policy: nn.Module) -> int:
    """Most optimizer steps one batch can give: the reasoner's ``max_supervision_steps`` (1 for
    a policy that does not say)."""
    return int(getattr(policy, "max_supervision_steps", 1))
