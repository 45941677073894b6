"""Pieces every reasoner shares: embeddings, the output head, losses, metrics, :class:`StepOutput`,
the :class:`Reasoner` base class and the ACT deep-supervision loop of TRM and HRM
(:meth:`Reasoner.act_steps`). The configs are in :mod:`.config`.

A reasoner maps a batch ``{"inputs", "labels", "puzzle_identifiers"}`` (int64, ``(B, T)``,
``(B, T)``, ``(B,)``) to one loss per *supervision step* (:meth:`Reasoner.supervision_steps`) and
an input ``(B, T)`` to answer tokens ``(B, T)`` (:meth:`Reasoner.solve`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import BACKBONES, build_backbone, layer_kinds
from ..backbones.config import BackboneConfigError
from ..backbones.layers import lecun_normal_, trunc_normal_std_
from .config import LOSSES, ReasonerConfig, ReasonerConfigError
from .puzzle_embedding import SparsePuzzleEmbedding
from .tasks import TaskSpec

# ----------------------------------------------------------------------------- losses

def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log of stablemax: s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0, normalised over ``dim``.

    Stablemax (Prieto et al. 2025, used by TRM) grows linearly instead of exponentially, which
    avoids the softmax collapse of long training; callers pass float64 as TRM does.
    """
    negative = x < 0
    # each branch sees only its own inputs: 1 / (1 - x) at a positive x (x = 1 gives 1/0) would
    # put inf into the gradient of the branch torch.where discards, and inf * 0 is nan
    s = torch.where(negative, 1 / (1 - torch.where(negative, x, 0)), x + 1)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def token_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_label_id: int,
               kind: str = "stablemax") -> torch.Tensor:
    """Per-token cross-entropy ``(B, T)`` (float32), 0 where ``labels == ignore_label_id``.

    logits (B, T, V), labels (B, T) int64. ``kind`` is "stablemax" (computed in float64, as TRM's
    losses.py) or "softmax".
    """
    valid = labels != ignore_label_id
    safe = torch.where(valid, labels, 0)  # gather needs an in-range index at ignored positions
    if kind == "stablemax":
        logp = log_stablemax(logits.to(torch.float64), dim=-1)
    elif kind == "softmax":
        logp = F.log_softmax(logits.float(), dim=-1)
    else:
        raise ReasonerConfigError(f"loss must be one of {LOSSES}, got loss={kind!r}")
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return torch.where(valid, nll, 0.0).float()


def sequence_loss(logits, labels, ignore_label_id, kind="stablemax") -> torch.Tensor:
    """Per-sample mean token loss ``(B,)`` over the non-ignored labels (TRM's loss_divisor)."""
    count = (labels != ignore_label_id).sum(-1).clamp_min(1)
    return token_loss(logits, labels, ignore_label_id, kind).sum(-1) / count


def answer_correctness(pred: torch.Tensor, labels: torch.Tensor, ignore_label_id: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per example of answer tokens ``pred`` (B, T) against ``labels`` (B, T): ``(correct (B,)
    int64, exact (B,) bool, valid (B,) int64)``: the valid labels (``!= ignore_label_id``)
    predicted right, whether all are, and how many there are.

    The one definition of token and exact accuracy (the reasoners' metrics, the halting target
    of TRM and HRM, ``Trainer.evaluate``). An example with no valid label has nothing to check:
    the accuracies leave it out (token accuracy by itself; exact accuracy is over the examples
    with ``valid > 0``), so a perfect model scores 1 whatever the data, and a masked-diffusion
    step that masks none of a sample's answer neither helps nor hurts. Its ``exact`` flag is
    False, which is also what TRM's and HRM's halting head learns for it (no reason to stop).
    """
    if pred.shape != labels.shape:
        raise ValueError(f"pred and labels must have one shape, got {tuple(pred.shape)} and "
                         f"{tuple(labels.shape)}")
    is_valid = labels != ignore_label_id
    correct = ((pred == labels) & is_valid).sum(-1)
    valid = is_valid.sum(-1)
    return correct, (correct == valid) & (valid > 0), valid


def masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B,) over the rows where ``rows`` (B,) is true, as a float32 0-d tensor
    (0 when none is): no boolean indexing, whose output size the host would have to read."""
    return (values * rows).sum() / rows.sum().clamp_min(1).to(torch.float32)


def answer_metrics(logits, labels, ignore_label_id, rows: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
    """token_acc and exact_acc (float32 0-d tensors, no host read) of the answer ``logits``
    (B, T, V) over the samples selected by ``rows`` (B,) bool (all when None) that have a valid
    label (:func:`answer_correctness`)."""
    correct, exact, valid = answer_correctness(logits.argmax(-1), labels, ignore_label_id)
    labelled = valid > 0
    if rows is not None:
        correct, valid, labelled = correct * rows, valid * rows, labelled & rows
    return {"token_acc": correct.sum() / valid.sum().clamp_min(1).to(torch.float32),
            "exact_acc": masked_mean(exact, labelled)}


# ----------------------------------------------------------------------------- outputs

@dataclass
class StepOutput:
    """One supervision step: ``loss`` to ``.backward()``, the answer ``logits`` (B, T, vocab),
    ``metrics``, and ``halted``: whether the whole batch has halted (no further step comes).

    ``metrics`` are detached 0-d tensors, left on the device for the caller to read when it logs
    (the Trainer reads them once per ``log_every`` steps: reading one here would make the host
    wait for the device every step), or Python numbers the host knows already (``steps``)."""

    loss: torch.Tensor
    logits: torch.Tensor
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)
    halted: bool = False


@dataclass
class ACTState:
    """TRM's persistent carry between optimizer steps (:meth:`Reasoner.act_carry_step`): per
    slot, the example it holds (``inputs``, ``labels`` (B, T), ``identifiers`` (B,) or None),
    the reasoner's latents ``carry`` (a dataclass of (B, P+T, D) tensors, detached), the
    supervision ``steps`` it has run (B,) and whether it ``halted`` at the last one (B,)."""

    carry: Any
    inputs: torch.Tensor
    labels: torch.Tensor
    identifiers: torch.Tensor | None
    steps: torch.Tensor
    halted: torch.Tensor

    @classmethod
    def empty(cls, carry, inputs, labels, identifiers) -> ACTState:
        """Every slot halted (so the first step fills all of them from its batch)."""
        b = inputs.shape[0]
        return cls(carry=carry, inputs=torch.zeros_like(inputs), labels=torch.zeros_like(labels),
                   identifiers=None if identifiers is None else torch.zeros_like(identifiers),
                   steps=torch.zeros(b, dtype=torch.long, device=inputs.device),
                   halted=torch.ones(b, dtype=torch.bool, device=inputs.device))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat ``{name: tensor}`` (checkpoints): ``carry.<field>`` and the slot fields."""
        out = {f"carry.{f.name}": getattr(self.carry, f.name) for f in fields(self.carry)}
        for name in ("inputs", "labels", "identifiers", "steps", "halted"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], carry_type: type) -> ACTState:
        """The inverse of :meth:`tensors`; ``carry_type`` is the reasoner's carry dataclass."""
        carry = carry_type(**{f.name: tensors[f"carry.{f.name}"] for f in fields(carry_type)})
        return cls(carry=carry, inputs=tensors["inputs"], labels=tensors["labels"],
                   identifiers=tensors.get("identifiers"), steps=tensors["steps"],
                   halted=tensors["halted"])


# ----------------------------------------------------------------------------- embeddings

class InputEmbedding(nn.Module):
    """Token embedding, optionally preceded by ``puzzle_emb_len`` learned per-identifier tokens.

    ``(B, T) tokens, (B,) identifiers -> (B, P + T, D)`` with ``P = puzzle_emb_len``. As TRM:
    token vectors are scaled by sqrt(D) (init std 1/sqrt(D), so unit scale); the puzzle table
    (a :class:`~.puzzle_embedding.SparsePuzzleEmbedding`, trained by sign-SGD on the rows a batch
    uses) is zero-initialised, its ``puzzle_emb_dim`` values are zero-padded to ``P * D``, cut
    into ``P`` tokens and scaled by the same sqrt(D) (TRM scales the concatenation).
    """

    def __init__(self, vocab_size: int, dim: int, num_identifiers: int, puzzle_emb_len: int,
                 puzzle_emb_dim: int):
        super().__init__()
        self.dim, self.puzzle_emb_len, self.scale = dim, puzzle_emb_len, math.sqrt(dim)
        self.tokens = nn.Embedding(vocab_size, dim)
        nn.init.trunc_normal_(self.tokens.weight, std=1 / self.scale)
        self.puzzle = None
        if puzzle_emb_len:
            self.puzzle = SparsePuzzleEmbedding(num_identifiers, puzzle_emb_dim)

    def forward(self, tokens: torch.Tensor, identifiers: torch.Tensor | None) -> torch.Tensor:
        x = self.scale * self.tokens(tokens)  # (B, T, D)
        if self.puzzle is None:
            return x
        if identifiers is None:
            identifiers = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        p = self.puzzle(identifiers)  # (B, puzzle_emb_dim)
        p = F.pad(self.scale * p, (0, self.puzzle_emb_len * self.dim - p.shape[-1]))
        return torch.cat([p.view(-1, self.puzzle_emb_len, self.dim), x], dim=1)  # (B, P+T, D)


def halting_head(dim: int, outputs: int) -> nn.Linear:
    """A Q head initialised to weights 0, bias -5: sigmoid(-5) ~ 0.007, so early steps continue."""
    head = nn.Linear(dim, outputs)
    nn.init.zeros_(head.weight)
    nn.init.constant_(head.bias, -5.0)
    return head


# ----------------------------------------------------------------------------- base class

def check_causal(reasoner: str, backbone: str, pattern: str | None, depth: int) -> None:
    """ReasonerConfigError unless ``backbone`` (its ``pattern`` when given) at ``depth`` can run
    causally: mlp_mixer layers (letter "M") mix every position and have no causal mode."""
    pattern = pattern or BACKBONES[backbone]
    if "M" in layer_kinds(pattern, depth):
        causal = ", ".join(name for name, kinds in BACKBONES.items() if "M" not in kinds)
        raise ReasonerConfigError(
            f"the {reasoner} reasoner needs a causal backbone; {backbone!r} (pattern {pattern!r}) "
            f"contains mlp_mixer layers, which have no causal mode; use one of {causal}"
        )


class Reasoner(nn.Module):
    """Base of every reasoner. Subclasses set ``NAME`` and ``Config`` (their config dataclass, a
    :class:`~.config.ReasonerConfig` or a subclass) and implement :meth:`supervision_steps` and
    :meth:`solve`.

    ``cfg`` is the checked, frozen config (``self.cfg.H_cycles``); ``config`` the JSON-ready dict
    of every constructor argument that checkpoints store, so ``build_policy(**model.config)``
    rebuilds the same architecture.
    """

    NAME = "reasoner"
    Config: type = ReasonerConfig

    @classmethod
    def valid_keys(cls) -> list[str]:
        """The config keys ``build_policy`` takes for this reasoner."""
        return cls.Config.keys()

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__()
        self.cfg = self.Config.from_options(self.NAME, config)
        if backbone not in BACKBONES:
            raise BackboneConfigError(f"unknown backbone {backbone!r}; valid names: "
                                      f"{', '.join(BACKBONES)}")
        self.task, self.backbone_name = task, backbone
        self.prefix = self.cfg.puzzle_emb_len  # P: puzzle tokens in front of the sequence

    @property
    def config(self) -> dict:
        """``{"reasoner", "backbone", "task": TaskSpec fields, **every config key}``: JSON-ready,
        stored in checkpoints, and ``build_policy(**config)`` rebuilds the architecture."""
        return {"reasoner": self.NAME, "backbone": self.backbone_name, "task": asdict(self.task),
                **self.cfg.to_dict()}

    # -- builders used by subclasses
    def make_backbone(self, seq_len: int, causal: bool, depth: int | None = None):
        c = self.cfg
        return build_backbone(self.backbone_name, c.dim, c.depth if depth is None else depth,
                              c.heads, seq_len, causal, **c.backbone_options())

    def make_embedding(self, vocab_size: int | None = None) -> InputEmbedding:
        c, t = self.cfg, self.task
        embedding = InputEmbedding(vocab_size or t.vocab_size, c.dim, t.num_puzzle_identifiers,
                                   c.puzzle_emb_len, c.puzzle_emb_dim)
        if c.init == "lecun_normal":  # TRM's CastedEmbedding: truncated at 2 of its own std
            trunc_normal_std_(embedding.tokens.weight, 1 / embedding.scale)
        return embedding

    def make_head(self) -> nn.Linear:
        head = nn.Linear(self.cfg.dim, self.task.vocab_size, bias=False)
        return lecun_normal_(head) if self.cfg.init == "lecun_normal" else head  # TRM's lm_head

    # -- helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def unpack(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(inputs (B, T), labels (B, T), identifiers (B,) or None)`` on the model's device."""
        for key in ("inputs", "labels"):
            if key not in batch:
                raise ValueError(f"batch lacks {key!r} (keys: {sorted(batch)})")
        inputs, labels = batch["inputs"], batch["labels"]
        n = self.task.seq_len
        if inputs.dim() != 2 or inputs.shape[1] != n or labels.shape != inputs.shape:
            raise ValueError(f"inputs and labels must be (B, {self.task.seq_len}), got "
                             f"{tuple(inputs.shape)} and {tuple(labels.shape)}")
        ids = batch.get("puzzle_identifiers")
        dev = self.device
        return (inputs.to(dev, torch.long), labels.to(dev, torch.long),
                None if ids is None else ids.to(dev, torch.long).view(-1))

    def check_inputs(self, inputs: torch.Tensor, identifiers: torch.Tensor | None = None):
        """``solve``'s arguments on the model's device: ``(inputs (B, T), identifiers or None)``."""
        if inputs.dim() != 2 or inputs.shape[1] != self.task.seq_len:
            raise ValueError(f"inputs must be (B, {self.task.seq_len}), got {tuple(inputs.shape)}")
        if identifiers is not None:
            identifiers = identifiers.to(self.device, torch.long).view(-1)
        return inputs.to(self.device, torch.long), identifiers

    def loss_of(self, logits, labels) -> torch.Tensor:
        """Per-sample loss ``(B,)`` with the configured loss kind."""
        return sequence_loss(logits, labels, self.task.ignore_label_id, self.cfg.loss)

    # -- the interface
    @property
    def max_supervision_steps(self) -> int:
        """The most :class:`StepOutput` s (optimizer steps) :meth:`supervision_steps` yields for
        one batch: 1 here, for one-pass reasoners; a reasoner with deep supervision overrides it
        (the Trainer sizes an epoch-long lr schedule with it)."""
        return 1

    def supervision_steps(self, batch: dict[str, torch.Tensor]) -> Iterator[StepOutput]:
        """Yield one :class:`StepOutput` per supervision step; the caller runs backward and an
        optimiser step after each yield (state between steps is carried detached)."""
        raise NotImplementedError

    @torch.no_grad()
    def solve(self, inputs: torch.Tensor,
              puzzle_identifiers: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T)`` input tokens -> ``(B, T)`` predicted answer tokens."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> StepOutput:
        """The first supervision step's output (a plain one-pass use of the model)."""
        steps = self.supervision_steps(batch)
        try:
            return next(steps)
        finally:
            steps.close()

    # -- deep supervision with adaptive computation time (TRM, HRM)
    def act_steps(self, batch: dict, segment: Callable, max_steps: int,
                  exploration_prob: float) -> Iterator[StepOutput]:
        """The ACT training loop TRM and HRM share (as TRM's code serves both): up to
        ``max_steps`` supervision steps, each one ``segment(x, carry) -> (carry, logits (B, T, V),
        q)`` from the carry of the step before (``self.initial_carry(B)`` first).

        ``q`` is ``(B,)`` halt logits (TRM: halt when q_halt > 0) or ``(B, 2)`` halt and continue
        logits (HRM: halt when q_halt > q_continue; q_continue is Q-learned towards the sigmoid of
        the best next-step value, from one more segment without grad; after the last step only
        halting remains, so its target is next q_halt). q_halt learns "the answer is exact".

        In training a sample halts once it says so and has run its :func:`min_halt_steps`; it
        then weighs 0 in later steps. Losses are summed over the active samples and divided by
        the full batch size, so every sample weighs the same in every step. The batch ends when
        all have halted or after ``max_steps``; in eval mode it always runs every step.
        """
        inputs, labels, ids = self.unpack(batch)
        b = inputs.shape[0]
        carry = self.initial_carry(b)
        active = torch.ones(b, dtype=torch.bool, device=inputs.device)  # not yet halted
        min_steps = min_halt_steps(b, max_steps, exploration_prob, inputs.device)
        for step in range(1, max_steps + 1):
            x = self.embed(inputs, ids)  # (B, P+T, D), re-embedded: each step has its own graph
            carry, logits, q = segment(x, carry)
            q_halt, q_continue = (q, None) if q.dim() == 1 else q.unbind(-1)
            last = step == max_steps
            _, exact, _ = answer_correctness(logits.detach().argmax(-1), labels,
                                             self.task.ignore_label_id)
            w = active.float() / b  # per-sample weight; halted samples weigh 0
            lm_loss = (self.loss_of(logits, labels) * w).sum()
            halt_loss = (F.binary_cross_entropy_with_logits(
                q_halt, exact.float(), reduction="none") * w).sum()
            loss = lm_loss + 0.5 * halt_loss
            extra = {}
            if q_continue is not None:
                continue_loss = q.new_zeros(())
                if self.training:
                    with torch.no_grad():
                        _, _, q_next = segment(x.detach(), carry)
                        target = torch.sigmoid(q_next[:, 0] if last else q_next.max(-1).values)
                    continue_loss = (F.binary_cross_entropy_with_logits(
                        q_continue, target, reduction="none") * w).sum()
                    loss = loss + 0.5 * continue_loss
                extra["continue_loss"] = continue_loss.detach()
            halt_now = torch.full_like(active, last)
            if self.training:
                threshold = 0 if q_continue is None else q_continue.detach()
                halt_now |= (q_halt.detach() > threshold) & (step >= min_steps)
            # tensors, not read here (see StepOutput); the accuracies are over the active samples
            metrics = {
                "loss": loss.detach(), "lm_loss": lm_loss.detach(),
                "halt_loss": halt_loss.detach(), **extra,
                "q_halt_acc": masked_mean((q_halt.detach() > 0) == exact, active),
                "steps": float(step), "active": active.float().mean(),
                "finished": (active & halt_now).sum().float(),
                **answer_metrics(logits.detach(), labels, self.task.ignore_label_id, active),
            }
            active = active & ~halt_now
            if last:
                done = True
            elif not self.training:  # eval halts nothing before the last step
                done = False
            else:
                # The one host read of a step: whether another step runs (and the caller runs
                # another optimizer step) depends on it, so early halting needs it now.
                done = not bool(active.any())
            yield StepOutput(loss, logits, metrics, halted=done)
            if done:
                return

    def act_carry_step(self, state: ACTState | None, batch: dict, segment: Callable,
                       max_steps: int, exploration_prob: float) -> tuple[ACTState, StepOutput]:
        """One optimizer step of TRM's persistent carry (its ``ACTV1`` wrapper's forward):
        ``batch_size`` slots, each holding an example part-way through its supervision steps.

        The slots that halted at the step before are reset (initial latents, step count 0) and
        take the example at their row of ``batch``; the other rows of ``batch`` go unused, as in
        TRM. Then every slot runs one segment, so every row of the batch is live: the losses
        (:meth:`act_steps`' terms) are summed over all slots and divided by the batch size. A
        slot halts when its step count reaches ``max_steps``, or when it says so (TRM: q_halt >
        0; HRM: q_halt > q_continue) past a minimum drawn afresh each step (with probability
        ``exploration_prob`` a random 2..max_steps, else 1). ``state`` None starts with every
        slot empty. Training only: :meth:`solve` evaluates.

        Metrics: the losses; token_acc and exact_acc of every slot's current answer;
        ``finished`` (slots that halted), their ``steps`` (mean) and ``finished_exact_acc``, and
        ``q_halt_acc``; all tensors (no host read here).
        """
        inputs, labels, ids = self.unpack(batch)
        b = inputs.shape[0]
        if state is None:
            state = ACTState.empty(self.initial_carry(b), inputs, labels, ids)
        if state.halted.shape[0] != b:
            raise ValueError(f"the ACT carry has {state.halted.shape[0]} slots but the batch has "
                             f"{b} rows")
        refill = state.halted

        def fill(new, old):
            return torch.where(refill.view(-1, *([1] * (new.dim() - 1))), new, old)

        inputs, labels = fill(inputs, state.inputs), fill(labels, state.labels)
        ids = None if ids is None else fill(ids, state.identifiers)
        fresh = self.initial_carry(b)
        carry = type(fresh)(**{f.name: fill(getattr(fresh, f.name), getattr(state.carry, f.name))
                               for f in fields(fresh)})
        steps = torch.where(refill, 0, state.steps) + 1

        x = self.embed(inputs, ids)  # (B, P+T, D)
        carry, logits, q = segment(x, carry)
        q_halt, q_continue = (q, None) if q.dim() == 1 else q.unbind(-1)
        last = steps >= max_steps
        _, exact, _ = answer_correctness(logits.detach().argmax(-1), labels,
                                         self.task.ignore_label_id)
        lm_loss = self.loss_of(logits, labels).sum() / b
        halt_loss = F.binary_cross_entropy_with_logits(q_halt, exact.float(),
                                                       reduction="sum") / b
        loss = lm_loss + 0.5 * halt_loss
        extra = {}
        if q_continue is not None:  # HRM: Q-learn "continue" from one more segment's value
            with torch.no_grad():
                _, _, q_next = segment(x.detach(), carry)
                target = torch.sigmoid(torch.where(last, q_next[:, 0], q_next.max(-1).values))
            continue_loss = F.binary_cross_entropy_with_logits(q_continue, target,
                                                               reduction="sum") / b
            loss = loss + 0.5 * continue_loss
            extra["continue_loss"] = continue_loss.detach()

        halted = last
        if max_steps > 1:
            threshold = 0 if q_continue is None else q_continue.detach()
            halted = halted | (q_halt.detach() > threshold)
            min_steps = min_halt_steps(b, max_steps, exploration_prob, inputs.device)
            halted = halted & (steps >= min_steps)
        metrics = {
            "loss": loss.detach(), "lm_loss": lm_loss.detach(), "halt_loss": halt_loss.detach(),
            **extra, "q_halt_acc": ((q_halt.detach() > 0) == exact).float().mean(),
            "active": 1.0, "finished": halted.sum().float(),
            "steps": masked_mean(steps.float(), halted),
            "finished_exact_acc": masked_mean(exact, halted),
            **answer_metrics(logits.detach(), labels, self.task.ignore_label_id),
        }
        new_state = ACTState(carry=carry, inputs=inputs, labels=labels, identifiers=ids,
                             steps=steps, halted=halted)
        return new_state, StepOutput(loss, logits, metrics, halted=False)

    @torch.no_grad()
    def act_solve(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor | None,
                  segment: Callable, steps: int) -> torch.Tensor:
        """:meth:`solve` of an ACT reasoner: every sample runs all ``steps`` segments (the batch
        halts together, so an answer does not depend on the batch it is in)."""
        return self.act_solve_with_confidence(inputs, puzzle_identifiers, segment, steps)[0]

    @torch.no_grad()
    def act_solve_with_confidence(self, inputs: torch.Tensor,
                                  puzzle_identifiers: torch.Tensor | None, segment: Callable,
                                  steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`act_solve`'s answers ``(B, T)`` and the last segment's halting logit ``(B,)``
        float32 (HRM: its q_halt): TRM's ARC evaluator ranks tied votes by its sigmoid."""
        inputs, ids = self.check_inputs(inputs, puzzle_identifiers)
        carry = self.initial_carry(inputs.shape[0])
        x = self.embed(inputs, ids)
        for _ in range(steps):
            carry, logits, q = segment(x, carry)
        return logits.argmax(-1), (q if q.dim() == 1 else q[:, 0]).float()


def min_halt_steps(batch: int, max_steps: int, prob: float, device) -> torch.Tensor:
    """Halting exploration (TRM/HRM ACT): with probability ``prob`` a sample must run a random
    number of steps in 2..max_steps before it may halt; otherwise 1. Returns ``(B,)`` int64."""
    explore = torch.rand(batch, device=device) < prob
    forced = torch.randint(2, max_steps + 1, (batch,), device=device) if max_steps > 1 else \
        torch.ones(batch, dtype=torch.long, device=device)
    return torch.where(explore, forced, 1)
