"""Pieces every reasoner shares: config checking, embeddings, the output head, losses, metrics,
:class:`StepOutput` and the :class:`Reasoner` base class.

A reasoner maps a batch ``{"inputs", "labels", "puzzle_identifiers"}`` (int64, ``(B, T)``,
``(B, T)``, ``(B,)``) to one loss per *supervision step* (:meth:`Reasoner.supervision_steps`) and
an input ``(B, T)`` to answer tokens ``(B, T)`` (:meth:`Reasoner.solve`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import BACKBONE_DEFAULTS, BACKBONES, build_backbone, layer_kinds
from .tasks import TaskSpec

LOSSES = ("stablemax", "softmax")

# Backbone options a reasoner passes through unchanged (norm, pattern, expansion, ...) are
# BACKBONE_DEFAULTS, the fields of BackboneConfig: an option added there is a reasoner key too.
# Keys every reasoner takes; each subclass adds its own in DEFAULTS.
COMMON_DEFAULTS = dict(
    dim=64,
    depth=2,
    heads=4,
    loss="stablemax",
    puzzle_emb_len=0,  # learned per-identifier prefix tokens; 0 = none (TRM uses 16)
    puzzle_emb_dim=None,  # width of one identifier's embedding; None = dim (TRM's default)
    **BACKBONE_DEFAULTS,
)


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
        raise ValueError(f"loss must be one of {LOSSES}, got loss={kind!r}")
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return torch.where(valid, nll, 0.0).float()


def sequence_loss(logits, labels, ignore_label_id, kind="stablemax") -> torch.Tensor:
    """Per-sample mean token loss ``(B,)`` over the non-ignored labels (TRM's loss_divisor)."""
    count = (labels != ignore_label_id).sum(-1).clamp_min(1)
    return token_loss(logits, labels, ignore_label_id, kind).sum(-1) / count


def correctness(logits, labels, ignore_label_id) -> tuple[torch.Tensor, torch.Tensor]:
    """``(correct tokens (B, T) bool over valid labels, exact (B,) bool)``; exact = every valid
    label predicted (a sample with no valid label counts as not exact)."""
    valid = labels != ignore_label_id
    correct = (logits.argmax(-1) == labels) & valid
    exact = (correct.sum(-1) == valid.sum(-1)) & valid.any(-1)
    return correct, exact


def answer_metrics(logits, labels, ignore_label_id, rows: torch.Tensor | None = None) -> dict:
    """token_acc and exact_acc (floats) over the samples selected by ``rows`` (B,) bool."""
    correct, exact = correctness(logits, labels, ignore_label_id)
    valid = labels != ignore_label_id
    if rows is not None:
        correct, exact, valid = correct[rows], exact[rows], valid[rows]
    return {
        "token_acc": correct.sum().item() / max(valid.sum().item(), 1),
        "exact_acc": exact.float().mean().item() if exact.numel() else 0.0,
    }


# ----------------------------------------------------------------------------- outputs

@dataclass
class StepOutput:
    """One supervision step: ``loss`` to ``.backward()``, the answer ``logits`` (B, T, vocab),
    float ``metrics``, and ``halted`` when the whole batch has halted (no further step comes)."""

    loss: torch.Tensor
    logits: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    halted: bool = False


# ----------------------------------------------------------------------------- embeddings

class InputEmbedding(nn.Module):
    """Token embedding, optionally preceded by ``puzzle_emb_len`` learned per-identifier tokens.

    ``(B, T) tokens, (B,) identifiers -> (B, P + T, D)`` with ``P = puzzle_emb_len``. As TRM:
    token vectors are scaled by sqrt(D) (init std 1/sqrt(D), so unit scale); the puzzle table is
    zero-initialised and its ``puzzle_emb_dim`` values are zero-padded to ``P * D`` and cut into
    ``P`` tokens.
    """

    def __init__(self, vocab_size: int, dim: int, num_identifiers: int, puzzle_emb_len: int,
                 puzzle_emb_dim: int):
        super().__init__()
        self.dim, self.puzzle_emb_len, self.scale = dim, puzzle_emb_len, math.sqrt(dim)
        self.tokens = nn.Embedding(vocab_size, dim)
        nn.init.trunc_normal_(self.tokens.weight, std=1 / self.scale)
        self.puzzle = None
        if puzzle_emb_len:
            self.puzzle = nn.Embedding(num_identifiers, puzzle_emb_dim)
            nn.init.zeros_(self.puzzle.weight)

    def forward(self, tokens: torch.Tensor, identifiers: torch.Tensor | None) -> torch.Tensor:
        x = self.scale * self.tokens(tokens)  # (B, T, D)
        if self.puzzle is None:
            return x
        if identifiers is None:
            identifiers = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        p = self.puzzle(identifiers)  # (B, puzzle_emb_dim)
        p = F.pad(p, (0, self.puzzle_emb_len * self.dim - p.shape[-1]))
        return torch.cat([p.view(-1, self.puzzle_emb_len, self.dim), x], dim=1)  # (B, P+T, D)


def halting_head(dim: int, outputs: int) -> nn.Linear:
    """A Q head initialised to weights 0, bias -5: sigmoid(-5) ~ 0.007, so early steps continue."""
    head = nn.Linear(dim, outputs)
    nn.init.zeros_(head.weight)
    nn.init.constant_(head.bias, -5.0)
    return head


# ----------------------------------------------------------------------------- base class

def _positive_int(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {name}={value!r}")


def _probability(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {name}={value!r}")


def check_causal(reasoner: str, backbone: str, pattern: str | None, depth: int) -> None:
    """ValueError unless ``backbone`` (its ``pattern`` when given) at ``depth`` can run causally:
    mlp_mixer layers (letter "M") mix every position and have no causal mode."""
    pattern = pattern or BACKBONES[backbone]
    if "M" in layer_kinds(pattern, depth):
        causal = ", ".join(name for name, kinds in BACKBONES.items() if "M" not in kinds)
        raise ValueError(f"the {reasoner} reasoner needs a causal backbone; {backbone!r} "
                         f"(pattern {pattern!r}) contains mlp_mixer layers, which have no causal "
                         f"mode; use one of {causal}")


class Reasoner(nn.Module):
    """Base of every reasoner. Subclasses set ``NAME`` and ``DEFAULTS`` (their own config keys)
    and implement :meth:`supervision_steps` and :meth:`solve`.

    ``config`` holds every constructor argument (JSON-serialisable), so
    ``build_policy(**model.config)`` rebuilds the same architecture.
    """

    NAME = "reasoner"
    DEFAULTS: dict = {}
    EXCLUDED: tuple = ()  # common keys a subclass does not take (HRM sizes its modules itself)

    @classmethod
    def valid_keys(cls) -> list[str]:
        common = [k for k in COMMON_DEFAULTS if k not in cls.EXCLUDED]
        return common + list(cls.DEFAULTS)

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__()
        valid = self.valid_keys()
        unknown = sorted(set(config) - set(valid))
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown} for reasoner {self.NAME!r}; "
                             f"valid keys: {', '.join(valid)}")
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; valid names: {', '.join(BACKBONES)}")
        cfg = {k: v for k, v in {**COMMON_DEFAULTS, **self.DEFAULTS}.items() if k in valid}
        cfg.update(config)
        for key in ("dim", "depth", "heads"):  # checked again by build_backbone, but the
            if key in cfg:                     # embeddings are built first
                _positive_int(key, cfg[key])
        if cfg["loss"] not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got loss={cfg['loss']!r}")
        _positive_int("puzzle_emb_len", cfg["puzzle_emb_len"], 0)
        if cfg["puzzle_emb_dim"] is None:
            cfg["puzzle_emb_dim"] = cfg["dim"]
        _positive_int("puzzle_emb_dim", cfg["puzzle_emb_dim"])
        if cfg["puzzle_emb_len"] and cfg["puzzle_emb_dim"] > cfg["puzzle_emb_len"] * cfg["dim"]:
            raise ValueError(f"puzzle_emb_dim must be <= puzzle_emb_len * dim = "
                             f"{cfg['puzzle_emb_len'] * cfg['dim']}, got {cfg['puzzle_emb_dim']}")
        self.task, self.backbone_name, self.cfg = task, backbone, cfg
        self.config = {"reasoner": self.NAME, "backbone": backbone, "task": asdict(task), **cfg}
        self.prefix = cfg["puzzle_emb_len"]  # P: puzzle tokens in front of the sequence

    # -- builders used by subclasses
    def make_backbone(self, seq_len: int, causal: bool, depth: int | None = None):
        c = self.cfg
        extras = {k: c[k] for k in BACKBONE_DEFAULTS}
        return build_backbone(self.backbone_name, c["dim"], c["depth"] if depth is None else depth,
                              c["heads"], seq_len, causal, **extras)

    def make_embedding(self, vocab_size: int | None = None) -> InputEmbedding:
        c, t = self.cfg, self.task
        return InputEmbedding(vocab_size or t.vocab_size, c["dim"], t.num_puzzle_identifiers,
                              c["puzzle_emb_len"], c["puzzle_emb_dim"])

    def make_head(self) -> nn.Linear:
        return nn.Linear(self.cfg["dim"], self.task.vocab_size, bias=False)

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
        return sequence_loss(logits, labels, self.task.ignore_label_id, self.cfg["loss"])

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


def min_halt_steps(batch: int, max_steps: int, prob: float, device) -> torch.Tensor:
    """Halting exploration (TRM/HRM ACT): with probability ``prob`` a sample must run a random
    number of steps in 2..max_steps before it may halt; otherwise 1. Returns ``(B,)`` int64."""
    explore = torch.rand(batch, device=device) < prob
    forced = torch.randint(2, max_steps + 1, (batch,), device=device) if max_steps > 1 else \
        torch.ones(batch, dtype=torch.long, device=device)
    return torch.where(explore, forced, 1)
