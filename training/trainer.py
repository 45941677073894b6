"""The Trainer: one visible loop for every reasoner (deep supervision, EMA, AMP, DDP, resume).

Data order. Batches are a pure function of ``(seed, epoch)`` and the batch index, so a resumed
run sees exactly the batches the straight run would have seen:

* ``sampler="examples"``: each epoch is a permutation of all train examples
  (``default_rng([seed, epoch])``), cut into batches of ``batch_size``; the last partial batch
  is dropped.
* ``sampler="groups"``: each epoch visits every group once in a shuffled order and takes one
  example of a random puzzle of the group (a group = one original puzzle and its augmentations).
  TRM's loader takes *all* examples of the chosen puzzle; one example per group keeps the epoch
  length fixed, which the pure step -> batch mapping needs.

Under DDP (``torchrun --nproc_per_node=K``), rank r takes slice r of each global batch.

Steps. One batch gives up to ``N_sup`` supervision steps (``policy.supervision_steps``); each is
one optimizer step, so ``step`` counts optimizer steps and ``lr = peak * lr_factor(step)``.
``max_steps`` is exact: the run stops at that step even inside a batch (the rest of that batch's
supervision steps are skipped). Without ``max_steps`` the run makes ``epochs`` passes, and the
schedule's length is ``epochs * batches per epoch * N_sup`` (every batch assumed to run all its
supervision steps; a reasoner that halts early ends the run before the cosine reaches its floor).
``time_budget_s`` is checked between batches. The first limit reached ends the run and
``train()``'s result names it (``stopped_by``).

Checkpoints. ``OUT/checkpoint.safetensors`` is written at the end, every ``checkpoint_every``
steps and every ``checkpoint_minutes`` (both between batches, so resuming from them is exact),
and when SIGINT or SIGTERM arrives: the step in progress finishes, the checkpoint is written and
``train()`` returns with ``stopped_by="interrupt"`` (a second signal stops at once). A checkpoint
written inside a batch (interrupt, ``max_steps``) resumes with the next batch. Only rank 0 writes
checkpoints and metrics; a resumed run drops the metrics lines past the checkpoint's step.

Evaluation during training (``eval_every``) runs ``policy.solve`` with the EMA weights on the
first ``eval_examples`` test examples, on rank 0 while the other ranks wait; ``tracegym eval``
scores a checkpoint in the environments (:mod:`.evaluate`).

DDP. ``supervision_steps`` is not ``forward``, so ``DistributedDataParallel``'s hooks would not
see it: gradients are averaged by an explicit all-reduce after each backward, and ranks agree on
each step (a rank whose batch halted early contributes zero gradients until all have halted).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from tracegym.errors import TracegymError
from tracegym.packages import subpackages

from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig, config_differences, from_dict
from .optim import EMA, build_optimizer, lr_factor
from .rundir import check_writable_dir

ACCELERATOR = "cuda"  # the one device type the Trainer accelerates (bf16 autocast, compile)
CHECKPOINT_NAME = "checkpoint.safetensors"
SPEC_FIELDS = ("vocab_size", "seq_len", "num_puzzle_identifiers", "pad_id", "ignore_label_id")


class NonFiniteError(TracegymError, RuntimeError):
    """A loss, metric or gradient norm became NaN or infinite (the settings' fault, as a rule:
    a TracegymError, so the CLI prints its advice as one line)."""


# ---------------------------------------------------------------------------------------------
# setup helpers

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
    except ValueError as err:  # the reasoners check their arguments with plain ValueErrors
        raise TracegymError(str(err)) from err


def policy_from_checkpoint(ckpt: Checkpoint, device: torch.device, *, weights: str = "ema",
                           factory: Callable | None = None) -> nn.Module:
    """Rebuild the policy a checkpoint was trained with and load its (EMA) weights."""
    cfg = from_dict(ckpt.config)
    policy = (factory or default_policy_factory)(ckpt.task_spec, cfg)
    ckpt.load_model(policy, weights=weights)
    return policy.to(device).eval()


def supervision_steps_per_batch(policy: nn.Module) -> int:
    """Most optimizer steps one batch can give (``N_sup``; 1 for one-pass reasoners)."""
    config = getattr(policy, "config", {}) or {}
    for key in ("N_sup", "halt_max_steps", "n_sup"):
        if config.get(key):
            return int(config[key])
    return 1


class _Distributed:
    """Rank, world size and the collectives the loop needs; a no-op on one process."""

    def __init__(self, device_hint: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            wants_gpu = device_hint != "cpu" and torch.cuda.is_available()
            dist.init_process_group(backend="nccl" if wants_gpu else "gloo")
            self.owns_group = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool, device) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        if self.world == 1:
            return
        for p in params:
            if p.grad is None:  # every rank must join every all-reduce
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(self.world)

    def broadcast_parameters(self, module: nn.Module) -> None:
        if self.world > 1:
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# the Trainer

class Trainer:
    """Train ``cfg.reasoner`` x ``cfg.backbone`` on ``cfg.data`` (see the module docstring).

    Args:
        cfg: the run's :class:`TrainConfig` (validated here).
        resume: a checkpoint file or run directory to continue exactly; its config must match
            ``cfg`` except for :data:`~tracegym.training.config.RESUMABLE_FIELDS`.
        policy_factory: ``(spec dict, cfg) -> policy``; default :func:`default_policy_factory`.

    >>> Trainer(TrainConfig(task="sudoku", data=DIR, max_steps=100)).train()  # doctest: +SKIP
    """

    def __init__(self, cfg: TrainConfig, *, resume: str | os.PathLike | None = None,
                 policy_factory: Callable | None = None):
        self.cfg = cfg.validate()
        check_task(cfg.task)
        self.out = Path(cfg.out)
        self.dist = _Distributed(cfg.device)
        if self.dist.is_main:  # before the slow part: a bad OUT fails now, not after training
            check_writable_dir(self.out)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        self.amp = cfg.amp == "bf16" or (cfg.amp == "auto" and is_accelerator(self.device))

        self.train_data = load_split_checked(cfg.data, "train")
        check_dataset_task(cfg.task, cfg.data, self.train_data.metadata)
        self.test_data = load_split_checked(cfg.data, "test") \
            if (Path(cfg.data) / "test").is_dir() else None
        self.spec = task_spec_dict(cfg.task, self.train_data.metadata)
        if self.test_data is not None:
            test_spec = task_spec_dict(cfg.task, self.test_data.metadata)
            diff = [k for k in SPEC_FIELDS if k != "num_puzzle_identifiers"
                    and test_spec[k] != self.spec[k]]
            if diff:
                raise TracegymError(f"dataset: {cfg.data}: train and test dataset.json disagree "
                                    "on " + ", ".join(f"{k} ({self.spec[k]} vs {test_spec[k]})"
                                                      for k in diff))
        # example -> its puzzle's identifier, for batches drawn by example index
        sizes = np.diff(np.asarray(self.train_data.puzzle_indices))
        self.example_ids = np.repeat(np.asarray(self.train_data.puzzle_identifiers), sizes)
        self.local_batch = cfg.batch_size // self.dist.world
        if self.local_batch * self.dist.world != cfg.batch_size:
            raise TracegymError(f"batch_size {cfg.batch_size} is not divisible by the "
                                f"{self.dist.world} DDP ranks")
        self.batches_per_epoch = self._epoch_length() // cfg.batch_size
        if self.batches_per_epoch < 1:
            raise TracegymError(f"batch_size {cfg.batch_size} exceeds the "
                                f"{self._epoch_length()} train "
                                f"{'groups' if cfg.sampler == 'groups' else 'examples'}")

        # the same initial weights on every rank: build under the base seed, then broadcast
        seed_everything(cfg.seed)
        self.policy = (policy_factory or default_policy_factory)(self.spec, cfg).to(self.device)
        self.dist.broadcast_parameters(self.policy)
        seed_everything(cfg.seed + self.dist.rank)
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.policy, name=cfg.optimizer, lr=cfg.lr,
                                         lr_embed=cfg.lr_embed, weight_decay=cfg.weight_decay,
                                         betas=cfg.betas)
        self.ema = EMA(self.policy, cfg.ema) if cfg.ema > 0 else None
        self.step = 0  # optimizer steps done
        self.batches = 0  # batches consumed (the data position)
        self.best = None  # best eval exact accuracy
        self._order_epoch, self._order = -1, None
        self.stop_after: int | None = None
        self.signal: int | None = None  # SIGINT/SIGTERM received during train()
        if cfg.max_steps is not None:
            self.total_steps = cfg.max_steps
        else:
            self.total_steps = (cfg.epochs * self.batches_per_epoch
                                * supervision_steps_per_batch(self.policy))
        if resume is not None:
            self._resume(resume)
        if cfg.compile and is_accelerator(self.device):
            for module in self.policy.children():
                module.compile()  # in place: state_dict keys keep their names

    # -- data ------------------------------------------------------------------------------------
    def _epoch_length(self) -> int:
        if self.cfg.sampler == "groups":
            return len(self.train_data.group_indices) - 1
        return len(self.train_data)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Example indices of one epoch: a pure function of ``(seed, epoch)``."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        if self.cfg.sampler == "examples":
            return rng.permutation(len(self.train_data))
        groups = np.asarray(self.train_data.group_indices)
        puzzles = np.asarray(self.train_data.puzzle_indices)
        order = rng.permutation(len(groups) - 1)
        lo, hi = groups[order], groups[order + 1]
        puzzle = lo + (rng.random(len(order)) * (hi - lo)).astype(np.int64)
        first, last = puzzles[puzzle], puzzles[puzzle + 1]
        return first + (rng.random(len(order)) * (last - first)).astype(np.int64)

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        """This rank's share of global batch ``index``."""
        epoch, i = divmod(index, self.batches_per_epoch)
        if epoch != self._order_epoch:
            self._order_epoch, self._order = epoch, self.epoch_order(epoch)
        start = i * self.cfg.batch_size + self.dist.rank * self.local_batch
        idx = self._order[start:start + self.local_batch]
        data = self.train_data

        def tensor(a):
            return torch.from_numpy(np.asarray(a, dtype=np.int64)).to(self.device)

        return {"inputs": tensor(data.inputs[idx]), "labels": tensor(data.labels[idx]),
                "puzzle_identifiers": tensor(self.example_ids[idx])}

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only); returns its path."""
        if not self.dist.is_main:
            return None
        path = Path(path) if path is not None else self.out / CHECKPOINT_NAME
        return save_checkpoint(
            path, model=self.policy, optimizer=self.optimizer, ema=self.ema,
            config=self.cfg.to_dict(), task_spec=self.spec,
            policy_config=getattr(self.policy, "config", {}),
            trainer_state={"step": self.step, "batches": self.batches, "best": self.best})

    def _resume(self, path) -> None:
        ckpt = Checkpoint(path)
        diffs = config_differences(ckpt.config, self.cfg.to_dict())
        if diffs:
            raise TracegymError(f"checkpoint {str(ckpt.path)!r} was written by a different "
                                f"config; fields that differ: {'; '.join(diffs)}")
        spec_diffs = [f"{k}: {ckpt.task_spec.get(k)!r} -> {self.spec[k]!r}" for k in self.spec
                      if ckpt.task_spec.get(k) != self.spec[k]]
        if spec_diffs:
            raise TracegymError(f"checkpoint {str(ckpt.path)!r} was trained on another "
                                f"dataset layout; dataset.json fields that differ: "
                                f"{'; '.join(spec_diffs)}")
        ckpt.load_model(self.policy)
        ckpt.load_optimizer(self.optimizer)
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.section("ema"))
        self.step = int(ckpt.trainer_state["step"])
        self.batches = int(ckpt.trainer_state["batches"])
        self.best = ckpt.trainer_state.get("best")
        if self.dist.is_main:
            ckpt.restore_rng()
        else:  # only rank 0's generators were saved; the others restart from a derived seed
            seed_everything(self.cfg.seed + self.dist.rank + 7919 * self.step)

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Exact and token accuracy of ``policy.solve`` (EMA weights) on the test split."""
        if self.test_data is None:
            return {}
        data, ignore = self.test_data, self.spec["ignore_label_id"]
        n = len(data) if self.cfg.eval_examples is None else min(len(data), self.cfg.eval_examples)
        sizes = np.diff(np.asarray(data.puzzle_indices))
        ids = np.repeat(np.asarray(data.puzzle_identifiers), sizes)
        was_training = self.policy.training
        self.policy.eval()
        if self.ema is not None:
            self.ema.swap(self.policy)
        exact = correct = total = 0
        try:
            for lo in range(0, n, self.local_batch):
                hi = min(lo + self.local_batch, n)
                inputs = torch.from_numpy(np.asarray(data.inputs[lo:hi], np.int64)).to(self.device)
                labels = torch.from_numpy(np.asarray(data.labels[lo:hi], np.int64)).to(self.device)
                pid = torch.from_numpy(ids[lo:hi].astype(np.int64)).to(self.device)
                with self._autocast():
                    pred = self.policy.solve(inputs, pid)
                valid = labels != ignore
                hit = (pred == labels) & valid
                exact += int((hit.sum(-1) == valid.sum(-1)).sum())
                correct += int(hit.sum())
                total += int(valid.sum())
        finally:
            if self.ema is not None:
                self.ema.swap(self.policy)
            self.policy.train(was_training)
        return {"exact_acc": exact / max(n, 1), "token_acc": correct / max(total, 1),
                "examples": n}

    # -- the loop ----------------------------------------------------------------------------------
    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _log(self, record: dict) -> None:
        if self.dist.is_main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def _check_finite(self, name: str, value: float) -> None:
        if not math.isfinite(value):
            raise NonFiniteError(f"step {self.step}: {name} is {value} (not finite); try a lower "
                                 "lr, grad_clip > 0, amp=off, or check the data")

    def _step_limit(self) -> str | None:
        """The step limit reached, if any: exact, so checked after every optimizer step."""
        if self.stop_after is not None and self.step >= self.stop_after:
            return "stop_after"
        if self.cfg.max_steps is not None and self.step >= self.cfg.max_steps:
            return "max_steps"
        return None

    def _interrupted(self) -> bool:
        return self.dist.any(self.signal is not None, self.device)  # every rank stops together

    def _stop_reason(self) -> str | None:
        """Why the run must end now (checked between batches), or None to go on."""
        if self._interrupted():
            return "interrupt"
        reason = self._step_limit()
        if reason is not None:
            return reason
        if self.cfg.max_steps is None and self.batches >= self.cfg.epochs * self.batches_per_epoch:
            return "epochs"
        if self.cfg.time_budget_s is not None and self.dist.any(
                time.perf_counter() - self.started >= self.cfg.time_budget_s, self.device):
            return "time_budget_s"
        return None

    @contextmanager
    def _signals_caught(self):
        """SIGINT/SIGTERM set ``self.signal`` (the loop then stops and saves) instead of killing
        the run; a second one raises KeyboardInterrupt. Handlers live in the main thread only."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signal is not None:
                raise KeyboardInterrupt
            self.signal = signum
            if self.dist.is_main:
                print(("\n" if self.cfg.progress else "")  # off the progress bar's line
                      + f"{signal.Signals(signum).name}: stopping after this step and writing a "
                      "checkpoint (send it again to stop at once)", file=sys.stderr, flush=True)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _trim_log(self) -> None:
        """A resumed run continues the log from the checkpoint's step: lines written after that
        checkpoint (by a run killed later) would be duplicated, so they go."""
        path = self.out / "metrics.jsonl"
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a killed run
                continue
            if record.get("step", 0) <= self.step:
                kept.append(line + "\n")
        path.write_text("".join(kept), encoding="utf-8")

    def train(self, stop_after: int | None = None) -> dict:
        """Run until the first limit (``max_steps`` or ``epochs``, ``time_budget_s``, a signal),
        or only until ``stop_after`` steps (the schedule still follows ``max_steps``/``epochs``,
        as for a job cut short and resumed later). Saves a checkpoint and, unless interrupted,
        evaluates. Returns the eval metrics with ``step``, ``stopped_by`` (the limit that ended
        the run: ``"max_steps"``, ``"epochs"``, ``"time_budget_s"``, ``"stop_after"`` or
        ``"interrupt"``), ``signal`` (its name, when interrupted), ``seconds`` and
        ``checkpoint``."""
        from tqdm import tqdm

        cfg = self.cfg
        self.stop_after = stop_after
        self.signal = None
        self.started = time.perf_counter()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            if self.step == 0:  # a fresh run starts a fresh log
                (self.out / "metrics.jsonl").write_text("")
            else:
                self._trim_log()
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.dist.is_main and cfg.progress))
        self.policy.train()
        self._tick, last_eval, last_ckpt = time.perf_counter(), self.step, self.step
        saved_at = time.monotonic()
        with self._signals_caught():
            while (stopped_by := self._stop_reason()) is None:
                self._train_batch(bar)
                self.batches += 1
                if self._step_limit() is not None or self._interrupted():
                    continue  # the loop ends here; the final checkpoint follows
                # between batches: checkpoints then evals, at the first boundary past each
                # multiple of *_every, or once checkpoint_minutes have passed
                due = cfg.checkpoint_every and \
                    self.step // cfg.checkpoint_every > last_ckpt // cfg.checkpoint_every
                due = due or (cfg.checkpoint_minutes
                              and time.monotonic() - saved_at >= 60 * cfg.checkpoint_minutes)
                if due:
                    self.save()
                    last_ckpt, saved_at = self.step, time.monotonic()
                if cfg.eval_every and self.step // cfg.eval_every > last_eval // cfg.eval_every:
                    self._eval_and_log()
                    last_eval = self.step
            if stopped_by == "epochs":  # the bar's total was an estimate (early halting)
                bar.total = self.step
                bar.refresh()
            bar.close()
            path = self.save()  # before the final eval, so the saved RNG state is the loop's
        result = {"step": self.step, "stopped_by": stopped_by,
                  "seconds": round(time.perf_counter() - self.started, 3),
                  "checkpoint": str(path) if path is not None else None}
        if stopped_by == "interrupt":
            return {**result, "signal": signal.Signals(self.signal).name if self.signal else None}
        return {**result, **self._eval_and_log()}

    def _train_batch(self, bar) -> None:
        """The supervision steps of one batch, one optimizer step each, until the batch halts or
        a step limit or a signal says stop."""
        cfg = self.cfg
        steps = self.policy.supervision_steps(self.batch(self.batches))
        local_done = False
        try:
            while True:
                out = None
                if not local_done:
                    with self._autocast():
                        out = next(steps, None)  # the model's forward runs inside next()
                    local_done = out is None
                if not self.dist.any(out is not None, self.device):
                    break
                factor = lr_factor(self.step, warmup_steps=cfg.warmup_steps,
                                   total_steps=self.total_steps, min_ratio=cfg.min_lr_ratio)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["peak_lr"] * factor
                metrics = {}
                if out is not None:
                    loss = out.loss.float()
                    self._check_finite("loss", loss.item())
                    metrics = {k: float(v) for k, v in out.metrics.items()}
                    for k, v in metrics.items():
                        self._check_finite(k, v)
                    loss.backward()
                self.dist.average_gradients(self.params)
                norm = torch.nn.utils.clip_grad_norm_(
                    self.params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
                self._check_finite("grad_norm", float(norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update(self.policy)
                self.step += 1
                bar.update(1)
                if out is not None and self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    self._log({"split": "train", "step": self.step, "epoch":
                               self.batches / self.batches_per_epoch, "lr": cfg.lr * factor,
                               "grad_norm": float(norm), "sec": now - self._tick, **metrics})
                    bar.set_postfix(loss=f"{metrics.get('loss', loss.item()):.4f}")
                    self._tick = now
                if out is not None and out.halted:
                    local_done = True
                # max_steps is exact, and a signal should not wait for the batch to end
                if self._step_limit() is not None or self._interrupted():
                    break
        finally:
            steps.close()

    def _eval_and_log(self) -> dict:
        if not self.dist.is_main or self.test_data is None:
            return {}
        metrics = self.evaluate()
        if metrics:
            self.best = max(self.best or 0.0, metrics["exact_acc"])
            self._log({"split": "eval", "step": self.step, **metrics})
        return metrics

    def close(self) -> None:
        self.dist.close()
