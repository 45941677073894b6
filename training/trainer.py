"""The Trainer: one visible loop for every reasoner (deep supervision, EMA, AMP, DDP, resume).

Data order. Batches are a pure function of ``(seed, position)`` (:class:`.sampling.TrainOrder`:
``sampler="examples"`` shuffles all examples each epoch; ``"groups"`` is TRM's sampler, every
example of one random puzzle per group), and checkpoints store the position, so a resumed run
sees exactly the batches the straight run would have seen. Under DDP (``torchrun
--nproc_per_node=K``), rank r takes slice r of each global batch.

Steps. ``step`` counts optimizer steps and ``lr = peak * lr_factor(step)``. A reasoner with a
persistent ACT carry (TRM, HRM: ``carry_step``) trains as TRM does with ``act_flow="carry"``
(the default): every optimizer step draws one batch and runs one supervision step on every slot
of the carry, halted slots taking that batch's rows (:meth:`Reasoner.act_carry_step`); the
carry is saved in checkpoints. Otherwise (``act_flow="batch"``, or a reasoner without a carry)
one batch gives up to ``N_sup`` supervision steps (``policy.supervision_steps``), each one
optimizer step. ``max_steps`` is exact: the run stops at that step even inside a batch. Without
``max_steps`` the run makes ``epochs`` passes, and the schedule's length is the number of
batches in ``epochs`` (TRM's ``epochs x total_groups x mean_puzzle_examples / batch_size`` for
the groups sampler), times ``N_sup`` in the batch flow (every batch assumed to run all its
supervision steps). ``time_budget_s`` is checked between batches. The first limit reached ends
the run and ``train()``'s result names it (``stopped_by``).

Throughput. Each log line has ``examples_per_s``: examples whose supervision finished (halted)
per second since the line before, and ``active``: the fraction of computed rows that count in
the loss (1 with the carry; the batch flow keeps computing halted rows at weight 0). Train and
eval lines have ``elapsed_s``: wall seconds since ``train()`` began (a resumed run counts from
its resume), for learning curves against time.

Checkpoints. ``OUT/checkpoint.safetensors`` is written at the end, every ``checkpoint_every``
steps and every ``checkpoint_minutes`` (both between batches, so resuming from them is exact),
and when SIGINT or SIGTERM arrives: the step in progress finishes, the checkpoint is written and
``train()`` returns with ``stopped_by="interrupt"`` (a second signal stops at once). A checkpoint
written inside a batch (interrupt, ``max_steps``) resumes with the next batch. Only rank 0 writes
checkpoints and metrics; a resumed run drops the metrics lines past the checkpoint's step.

Evaluation during training (``eval_every``) runs ``policy.solve`` with the EMA weights on the
first ``eval_examples`` test examples, on rank 0 while the other ranks wait; ``tracegym eval``
scores a checkpoint in the environments (:mod:`.evaluate`).

Host reads. On one process nothing in a step waits for the device: the loss, the metrics a
reasoner returns as tensors and the gradient norm stay on it, queued, and are read in one go
every ``log_every`` steps (nanoGPT's ``log_interval``), before each checkpoint and eval, and at
the end. The NaN/inf check reads them then too: :class:`NonFiniteError` is raised at the next
read, naming the first step and value that was not finite (the weights may have taken further
steps in between, but no checkpoint or log line holds them). Under DDP each step reads the few
flags the ranks agreed on, as the loop needs them to go on. A reasoner's own reads (its
``halted`` flag, metrics it returns as Python numbers) are its business; the Trainer adds none.

DDP. ``supervision_steps`` is not ``forward``, so ``DistributedDataParallel``'s hooks would not
see it: after each backward, :meth:`.distributed.Distributed.sync_step` averages the gradients
in bucketed all-reduces (as DDP's reducer does) that also carry the flags the ranks agree on (a
rank whose batch halted early contributes zero gradients until all have halted). The puzzle
tables are buffers, outside those buckets: :class:`~.optim.SparseSignSGD` all-gathers every
rank's rows and their gradients and sums them per row, as TRM does. Between batches one more
all-reduce agrees on a signal and on ``time_budget_s``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

from tracegym.errors import TracegymError

from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig, config_differences
from .distributed import Distributed
from .optim import EMA, build_optimizer, build_sparse_optimizer, lr_factor
from .prepare import (
    SPEC_FIELDS,
    check_dataset_task,
    check_task,
    dataset_task,
    default_policy_factory,
    example_identifiers,
    is_accelerator,
    load_split_checked,
    pick_device,
    policy_from_checkpoint,
    seed_everything,
    supervision_steps_per_batch,
    task_spec_dict,
)
from .rundir import check_writable_dir, lock_run_dir
from .sampling import TrainOrder

# The setup helpers live in .prepare; these are imported from here by callers that predate it
# (and tests patch ``trainer.default_policy_factory``, which the Trainer looks up here).
__all__ = ["CHECKPOINT_NAME", "NonFiniteError", "Trainer", "dataset_task",
           "default_policy_factory", "pick_device", "policy_from_checkpoint",
           "supervision_steps_per_batch"]

CHECKPOINT_NAME = "checkpoint.safetensors"
MAX_UNREAD_STEPS = 1000  # a read at least this often, whatever log_every: the queue stays small


class NonFiniteError(TracegymError, RuntimeError):
    """A loss, metric or gradient norm became NaN or infinite (the settings' fault, as a rule:
    a TracegymError, so the CLI prints its advice as one line)."""


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
        self.dist = Distributed(cfg.device)
        if self.dist.is_main:  # before the slow part: a bad OUT fails now, not after training
            check_writable_dir(self.out)
            # one process writes a run directory: another Trainer on OUT is refused, naming
            # this one's pid
            lock_run_dir(self.out, owner=self)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
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
        self.example_ids = example_identifiers(self.train_data)
        self.local_batch = cfg.batch_size // self.dist.world
        if self.local_batch * self.dist.world != cfg.batch_size:
            raise TracegymError(f"batch_size {cfg.batch_size} is not divisible by the "
                                f"{self.dist.world} DDP ranks")
        data = self.train_data
        self.order = TrainOrder(len(data), data.puzzle_indices, data.group_indices,
                                sampler=cfg.sampler, batch_size=cfg.batch_size, seed=cfg.seed)
        if self.order.examples_per_epoch < cfg.batch_size:
            raise TracegymError(f"batch_size {cfg.batch_size} exceeds the "
                                f"{self.order.examples_per_epoch:g} examples of an epoch "
                                f"(sampler {cfg.sampler!r})")

        # the same initial weights on every rank: build under the base seed, then broadcast
        seed_everything(cfg.seed)
        self.policy = (policy_factory or default_policy_factory)(self.spec, cfg).to(self.device)
        self.dist.broadcast_parameters(self.policy)
        seed_everything(cfg.seed + self.dist.rank)
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.policy, name=cfg.optimizer, lr=cfg.lr,
                                         weight_decay=cfg.weight_decay, betas=cfg.betas)
        # the per-puzzle tables: sign-SGD on the rows each step used (None without tables); it
        # has no state a checkpoint needs (its lr comes from the schedule every step)
        self.sparse_optimizer = build_sparse_optimizer(
            self.policy, lr=cfg.puzzle_emb_lr, weight_decay=cfg.puzzle_emb_weight_decay,
            world_size=self.dist.world)
        self.ema = EMA(self.policy, cfg.ema) if cfg.ema > 0 else None
        # TRM's persistent carry (None until the first step fills it), when the policy has one
        self.carry = cfg.act_flow == "carry" and hasattr(self.policy, "carry_step")
        self.act_state = None
        self.step = 0  # optimizer steps done
        self.batches = 0  # batches consumed (the data position is self.order's)
        self.best = None  # best eval exact accuracy
        self._finished = 0.0  # examples this rank finished since the last train log line
        self.stop_after: int | None = None
        self.signal: int | None = None  # SIGINT/SIGTERM received during train()
        # (step, names, 0-d tensors on the device, Python-number metrics) of the steps not read
        self._unread: list[tuple[int, list[str], list[torch.Tensor], dict[str, float]]] = []
        if cfg.max_steps is not None:
            self.total_steps = cfg.max_steps
        else:
            per_batch = 1 if self.carry else supervision_steps_per_batch(self.policy)
            self.total_steps = self.order.batches_for(cfg.epochs) * per_batch
        if resume is not None:
            self._resume(resume)
        if cfg.compile:
            for module in self.policy.children():
                module.compile()  # in place: state_dict keys keep their names

    # -- data ------------------------------------------------------------------------------------
    def next_batch(self) -> dict[str, torch.Tensor]:
        """This rank's share of the next global batch (advances ``self.order``)."""
        start = self.dist.rank * self.local_batch
        idx = self.order.next_batch()[start:start + self.local_batch]
        data = self.train_data

        def tensor(a):
            return torch.from_numpy(np.asarray(a, dtype=np.int64)).to(self.device)

        return {"inputs": tensor(data.inputs[idx]), "labels": tensor(data.labels[idx]),
                "puzzle_identifiers": tensor(self.example_ids[idx])}

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only); returns its path. Reads the queued step values
        first: no checkpoint holds weights a non-finite step wrote."""
        self._read()
        if not self.dist.is_main:
            return None
        path = Path(path) if path is not None else self.out / CHECKPOINT_NAME
        return save_checkpoint(
            path, model=self.policy, optimizer=self.optimizer, ema=self.ema,
            config=self.cfg.to_dict(), task_spec=self.spec,
            policy_config=getattr(self.policy, "config", {}),
            trainer_state={"step": self.step, "batches": self.batches, "best": self.best,
                           "data_position": self.order.state(),
                           "act_carry": self.act_state is not None},
            extra_tensors=self._carry_tensors())

    def _carry_tensors(self) -> dict[str, torch.Tensor]:
        """The ACT carry as ``act.*`` tensors (rank 0's; the other ranks restart theirs)."""
        if self.act_state is None:
            return {}
        return {f"act.{k}": v for k, v in self.act_state.tensors().items()}

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
        position = ckpt.trainer_state.get("data_position")
        if position is None:  # written before positions were saved: fixed-length epochs
            per_epoch = max(int(self.order.examples_per_epoch) // self.cfg.batch_size, 1)
            epoch, offset = divmod(self.batches, per_epoch)
            position = {"epoch": epoch, "offset": offset * (
                1 if self.cfg.sampler == "examples" else self.cfg.batch_size)}
        self.order.load_state(position)
        if self.carry and ckpt.trainer_state.get("act_carry") and self.dist.is_main:
            from tracegym.agents.reasoners.base import ACTState

            tensors = {k: v.to(self.device) for k, v in ckpt.section("act").items()}
            self.act_state = ACTState.from_tensors(tensors, type(self.policy.initial_carry(1)))
        if self.dist.is_main:
            ckpt.restore_rng()
        else:  # only rank 0's generators were saved; the others restart from a derived seed
            seed_everything(self.cfg.seed + self.dist.rank + 7919 * self.step)

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Exact and token accuracy of ``policy.solve`` (EMA weights) on the test split, as the
        reasoners' metrics count them (``answer_correctness``: exact accuracy is over the
        examples with a valid label; ``examples`` counts every example evaluated)."""
        from tracegym.agents.reasoners.base import answer_correctness

        if self.test_data is None:
            return {}
        data, ignore = self.test_data, self.spec["ignore_label_id"]
        n = len(data) if self.cfg.eval_examples is None else min(len(data), self.cfg.eval_examples)
        ids = example_identifiers(data)
        was_training = self.policy.training
        self.policy.eval()
        if self.ema is not None:
            self.ema.swap(self.policy)
        # exact, correct tokens, valid tokens, examples with a valid label
        counts = torch.zeros(4, dtype=torch.int64, device=self.device)
        try:
            for lo in range(0, n, self.local_batch):
                hi = min(lo + self.local_batch, n)
                inputs = torch.from_numpy(np.asarray(data.inputs[lo:hi], np.int64)).to(self.device)
                labels = torch.from_numpy(np.asarray(data.labels[lo:hi], np.int64)).to(self.device)
                pid = torch.from_numpy(ids[lo:hi].astype(np.int64)).to(self.device)
                with self._autocast():
                    pred = self.policy.solve(inputs, pid)
                correct, exact, valid = answer_correctness(pred, labels, ignore)
                counts += torch.stack([exact.sum(), correct.sum(), valid.sum(),
                                       (valid > 0).sum()])
        finally:
            if self.ema is not None:
                self.ema.swap(self.policy)
            self.policy.train(was_training)
        exact, correct, total, labelled = counts.tolist()  # the eval's one host read
        return {"exact_acc": exact / max(labelled, 1), "token_acc": correct / max(total, 1),
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

    @staticmethod
    def _check_finite(step: int, name: str, value: float) -> None:
        if not math.isfinite(value):
            raise NonFiniteError(f"step {step}: {name} is {value} (not finite); try a lower "
                                 "lr, grad_clip > 0, amp=off, or check the data")

    def _keep(self, out, loss: torch.Tensor | None, norm: torch.Tensor) -> None:
        """Queue this step's loss, tensor metrics and gradient norm for the next read, as they
        are (no kernel, no host read). Python-number metrics are on the host already, so they
        are checked now."""
        names, values, numbers = [], [], {}
        if out is not None:
            names.append("loss")
            values.append(loss.detach())
            for k, v in out.metrics.items():
                if isinstance(v, torch.Tensor):
                    names.append(k)
                    values.append(v.detach().reshape(()))
                else:
                    numbers[k] = float(v)
                    self._check_finite(self.step, k, numbers[k])
        names.append("grad_norm")
        values.append(norm.detach())
        self._unread.append((self.step, names, values, numbers))

    def _read(self) -> dict[str, float]:
        """Read every queued step value in one host read; raise :class:`NonFiniteError` naming
        the first step and value that is not finite. Returns the newest step's values (loss,
        metrics, grad_norm), or ``{}`` when nothing was queued."""
        if not self._unread:
            return {}
        unread, self._unread = self._unread, []
        # stack promotes to the widest dtype, so each value reads back exactly as float(value)
        flat = torch.stack([v for _, _, values, _ in unread for v in values]).tolist()
        at = 0
        for step, names, _, _ in unread:
            for name, value in zip(names, flat[at:at + len(names)]):
                self._check_finite(step, name, value)
            if "finished" in names:
                self._finished += flat[at + names.index("finished")]
            elif "loss" in names:  # a one-pass policy: every example of the step is done
                self._finished += self.local_batch
            at += len(names)
        _, names, _, numbers = unread[-1]
        # a reasoner's own "loss" metric, when it has one, is what the log shows
        return {**dict(zip(names, flat[len(flat) - len(names):])), **numbers}

    def _step_limit(self) -> str | None:
        """The step limit reached, if any: exact, so checked after every optimizer step."""
        if self.stop_after is not None and self.step >= self.stop_after:
            return "stop_after"
        if self.cfg.max_steps is not None and self.step >= self.cfg.max_steps:
            return "max_steps"
        return None

    def _stop_reason(self) -> str | None:
        """Why the run must end now (checked between batches), or None to go on. Every rank
        gets the same answer: one all-reduce agrees on a signal and on the time budget."""
        out_of_time = (self.cfg.time_budget_s is not None
                       and time.perf_counter() - self.started >= self.cfg.time_budget_s)
        interrupted, out_of_time = self.dist.agree([self.signal is not None, out_of_time],
                                                   self.device)
        if interrupted:
            return "interrupt"
        reason = self._step_limit()
        if reason is not None:
            return reason
        if self.cfg.max_steps is None and self.order.position >= self.cfg.epochs:
            return "epochs"
        if out_of_time:
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
                interrupted = self._train_carry_step(bar) if self.carry else \
                    self._train_batch(bar)
                self.batches += 1
                if self._step_limit() is not None or interrupted:
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
            result["signal"] = signal.Signals(self.signal).name if self.signal else None
        else:
            result.update(self._eval_and_log())
        # DDP: no rank tears the group down while another still uses it (gloo can abort a
        # rank whose peer closed its connections first)
        self.dist.barrier()
        return result

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """The network's optimizer, then the puzzle tables' sign-SGD when the policy has one."""
        if self.sparse_optimizer is None:
            return [self.optimizer]
        return [self.optimizer, self.sparse_optimizer]

    def _train_batch(self, bar) -> bool:
        """The supervision steps of one batch, one optimizer step each, until the batch halts or
        a step limit or a signal says stop. Returns whether a signal stopped it (on every rank
        alike)."""
        steps = self.policy.supervision_steps(self.next_batch())
        local_done = False
        try:
            while True:
                out = loss = None
                if not local_done:
                    with self._autocast():
                        out = next(steps, None)  # the model's forward runs inside next()
                    local_done = out is None or out.halted
                if out is not None:
                    loss = out.loss.float()
                    loss.backward()
                # the ranks' gradients averaged, and in the same all-reduce: does any rank have
                # a step now, does any want another, has any seen a signal (no-op on one rank)
                has_step, more, signalled = self.dist.sync_step(
                    self.params, [out is not None, not local_done, self.signal is not None],
                    self.device)
                if not has_step:  # every rank's batch ended without saying halted
                    break
                self._optimizer_step(out, loss, bar)
                if self.dist.world == 1:  # a signal during this step stops after it
                    signalled = self.signal is not None
                # max_steps is exact, and a signal should not wait for the batch to end
                if not more or signalled or self._step_limit() is not None:
                    return bool(signalled)
        finally:
            steps.close()
        return False

    def _train_carry_step(self, bar) -> bool:
        """One optimizer step of the persistent ACT carry (TRM's data flow): one batch, one
        supervision step of every slot. Returns whether a signal arrived (every rank alike)."""
        batch = self.next_batch()
        with self._autocast():
            self.act_state, out = self.policy.carry_step(self.act_state, batch)
        loss = out.loss.float()
        loss.backward()
        (signalled,) = self.dist.sync_step(self.params, [self.signal is not None], self.device)
        self._optimizer_step(out, loss, bar)
        return bool(signalled) if self.dist.world > 1 else self.signal is not None

    def _optimizer_step(self, out, loss: torch.Tensor | None, bar) -> None:
        """lr from the schedule, clipping, every optimizer's step, EMA, and the log when due;
        ``out`` is None on a DDP rank whose batch has already halted (zero gradients)."""
        cfg = self.cfg
        factor = lr_factor(self.step, warmup_steps=cfg.warmup_steps,
                           total_steps=self.total_steps, min_ratio=cfg.min_lr_ratio)
        for optimizer in self._optimizers():
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * factor
        norm = torch.nn.utils.clip_grad_norm_(
            self.params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        self._keep(out, loss, norm)
        for optimizer in self._optimizers():  # the sparse one all-gathers its rows
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.policy)
        self.step += 1
        bar.update(1)
        if self.step % cfg.log_every == 0 or len(self._unread) >= MAX_UNREAD_STEPS:
            values = self._read()  # the step's one host read, every log_every steps
            if out is not None and self.step % cfg.log_every == 0:
                self._log_train(values, cfg.lr * factor, bar)

    def _log_train(self, values: dict[str, float], lr: float, bar) -> None:
        now = time.perf_counter()
        seconds = now - self._tick
        # every rank finishes about as many as this one: the global figure, without a reduce
        rate = self._finished * self.dist.world / max(seconds, 1e-9)
        self._finished = 0.0
        self._log({"split": "train", "step": self.step, "epoch": round(self.order.position, 6),
                   "lr": lr, "sec": seconds, "elapsed_s": round(now - self.started, 3),
                   "examples_per_s": rate, **values})
        bar.set_postfix(loss=f"{values['loss']:.4f}")
        self._tick = now

    def _eval_and_log(self) -> dict:
        self._read()  # a run that went non-finite stops here, not in the eval
        if not self.dist.is_main or self.test_data is None:
            return {}
        metrics = self.evaluate()
        if metrics:
            self.best = max(self.best or 0.0, metrics["exact_acc"])
            # elapsed_s: wall seconds since train() began here (a resumed run counts anew),
            # the eval included: learning curves against time
            self._log({"split": "eval", "step": self.step,
                       "elapsed_s": round(time.perf_counter() - self.started, 3), **metrics})
        return metrics

    def close(self) -> None:
        self.dist.close()
