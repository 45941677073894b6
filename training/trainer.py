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
one optimizer step, so ``step`` counts optimizer steps and ``lr = peak * lr_factor(step)``. A run
stops between batches once ``step >= max_steps`` (or after ``epochs`` passes), so it may overshoot
``max_steps`` by less than ``N_sup``. Without ``max_steps`` the schedule's length is
``epochs * batches per epoch * N_sup`` (every batch assumed to run all its supervision steps; a
reasoner that halts early ends the run before the cosine reaches its floor). Checkpoints are
written between batches, and only rank 0 writes them and the metrics.

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
import pkgutil
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig, config_differences, from_dict
from .optim import EMA, build_optimizer, lr_factor

ACCELERATOR = "cuda"  # the one device type the Trainer accelerates (bf16 autocast, compile)
CHECKPOINT_NAME = "checkpoint.safetensors"
SPEC_FIELDS = ("vocab_size", "seq_len", "num_puzzle_identifiers", "pad_id", "ignore_label_id")


class NonFiniteError(RuntimeError):
    """A loss, metric or gradient norm became NaN or infinite."""


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
        raise ValueError(f"device: {name!r} is not a device ({err})") from err
    if device.type == ACCELERATOR:
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} requested but CUDA is not available")
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
    from tracegym import envs

    return sorted(m.name for m in pkgutil.iter_modules(envs.__path__) if m.ispkg)


def check_task(task: str) -> None:
    valid = task_names()
    base = task.rstrip("0123456789")  # "sudoku4" is a 4x4 sudoku dataset
    if task not in valid and base not in valid:
        raise ValueError(f"task: unknown task {task!r}; valid names: {', '.join(valid)}")


def load_split_checked(path: str | os.PathLike, split: str):
    """``PuzzleDataset`` with dataset.json checked: required fields present, arrays agreeing."""
    from tracegym.datasets.torch_dataset import PuzzleDataset

    data = PuzzleDataset(path, split)
    where = f"{Path(path) / split / 'dataset.json'}"
    missing = [k for k in SPEC_FIELDS if k not in data.metadata]
    if missing:
        raise ValueError(f"dataset: {where}: missing field(s) {missing}")
    vocab = data.metadata["vocab_size"]
    if not isinstance(vocab, int) or vocab < 2:
        raise ValueError(f"dataset: {where}: vocab_size must be an int >= 2, got {vocab!r}")
    sample = np.asarray(data.inputs[:4096])
    if sample.size and int(sample.max()) >= vocab:
        raise ValueError(f"dataset: {where}: input token {int(sample.max())} >= vocab_size "
                         f"{vocab}")
    ids = np.asarray(data.puzzle_identifiers)
    n_ids = data.metadata["num_puzzle_identifiers"]
    if ids.size and int(ids.max()) >= n_ids:
        raise ValueError(f"dataset: {where}: puzzle identifier {int(ids.max())} >= "
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
        raise ValueError(f"reasoner: unknown reasoner {cfg.reasoner!r}; valid names: "
                         f"{', '.join(REASONERS)}")
    if "loss" in cfg.model and cfg.model["loss"] != cfg.loss:
        raise ValueError(f"model.loss={cfg.model['loss']!r} disagrees with loss={cfg.loss!r}; "
                         "set loss only")
    model = {k: v for k, v in cfg.model.items() if k != "loss"}
    return build_policy(cfg.reasoner, cfg.backbone, TaskSpec(**spec), loss=cfg.loss, **model)


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
        self.dist = _Distributed(cfg.device)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        self.amp = cfg.amp == "bf16" or (cfg.amp == "auto" and is_accelerator(self.device))

        self.train_data = load_split_checked(cfg.data, "train")
        self.test_data = load_split_checked(cfg.data, "test") \
            if (Path(cfg.data) / "test").is_dir() else None
        self.spec = task_spec_dict(cfg.task, self.train_data.metadata)
        if self.test_data is not None:
            test_spec = task_spec_dict(cfg.task, self.test_data.metadata)
            diff = [k for k in SPEC_FIELDS if k != "num_puzzle_identifiers"
                    and test_spec[k] != self.spec[k]]
            if diff:
                raise ValueError(f"dataset: {cfg.data}: train and test dataset.json disagree on "
                                 + ", ".join(f"{k} ({self.spec[k]} vs {test_spec[k]})"
                                             for k in diff))
        # example -> its puzzle's identifier, for batches drawn by example index
        sizes = np.diff(np.asarray(self.train_data.puzzle_indices))
        self.example_ids = np.repeat(np.asarray(self.train_data.puzzle_identifiers), sizes)
        self.local_batch = cfg.batch_size // self.dist.world
        if self.local_batch * self.dist.world != cfg.batch_size:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the "
                             f"{self.dist.world} DDP ranks")
        self.batches_per_epoch = self._epoch_length() // cfg.batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"batch_size {cfg.batch_size} exceeds the {self._epoch_length()} "
                             f"train {'groups' if cfg.sampler == 'groups' else 'examples'}")

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
        self.out = Path(cfg.out)

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
            raise ValueError(f"checkpoint {str(ckpt.path)!r} was written by a different config; "
                             f"fields that differ: {'; '.join(diffs)}")
        spec_diffs = [f"{k}: {ckpt.task_spec.get(k)!r} -> {self.spec[k]!r}" for k in self.spec
                      if ckpt.task_spec.get(k) != self.spec[k]]
        if spec_diffs:
            raise ValueError(f"checkpoint {str(ckpt.path)!r} was trained on another dataset "
                             f"layout; dataset.json fields that differ: {'; '.join(spec_diffs)}")
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

    def _done(self) -> bool:
        if self.stop_after is not None and self.step >= self.stop_after:
            return True
        if self.cfg.time_budget_s is not None and self.dist.any(  # every rank stops together
                time.perf_counter() - self.started >= self.cfg.time_budget_s, self.device):
            return True
        if self.cfg.max_steps is not None:
            return self.step >= self.cfg.max_steps
        return self.batches >= self.cfg.epochs * self.batches_per_epoch

    def train(self, stop_after: int | None = None) -> dict:
        """Run to the end, or only until ``stop_after`` steps (between batches; the schedule
        still follows ``max_steps``/``epochs``, as for a job cut short and resumed later).
        Saves a checkpoint, evaluates, and returns the eval metrics with ``step``."""
        from tqdm import tqdm

        cfg = self.cfg
        self.stop_after = stop_after
        self.started = time.perf_counter()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            if self.step == 0:  # a fresh run starts a fresh log
                (self.out / "metrics.jsonl").write_text("")
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.dist.is_main and cfg.progress))
        self.policy.train()
        tick, last_eval, last_ckpt = time.perf_counter(), self.step, self.step
        while not self._done():
            steps = self.policy.supervision_steps(self.batch(self.batches))
            local_done = False
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
                               "grad_norm": float(norm), "sec": now - tick, **metrics})
                    bar.set_postfix(loss=f"{metrics.get('loss', loss.item()):.4f}")
                    tick = now
                if out is not None and out.halted:
                    local_done = True
            steps.close()
            self.batches += 1
            # between batches: checkpoints then evals, at the first boundary past each multiple
            if cfg.checkpoint_every and self.step // cfg.checkpoint_every > \
                    last_ckpt // cfg.checkpoint_every and not self._done():
                self.save()
                last_ckpt = self.step
            if cfg.eval_every and self.step // cfg.eval_every > last_eval // cfg.eval_every \
                    and not self._done():
                self._eval_and_log()
                last_eval = self.step
        bar.close()
        self.save()  # before the final eval, so the saved RNG state is the loop's
        result = self._eval_and_log()
        return {"step": self.step, **result}

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
