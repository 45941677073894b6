"""Optimisers and schedules of the Trainer: AdamATan2 in plain torch, warm-up + cosine lr as a pure
function of the step, and an exponential moving average (EMA) of the weights."""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from tracegym.errors import TracegymError


class AdamATan2(torch.optim.Optimizer):
    """Adam with ``atan2`` in place of ``m / (sqrt(v) + eps)`` (Everett et al., 2024), as TRM uses.

    Per parameter, with bias corrections ``c1 = 1 - beta1**t``, ``c2 = 1 - beta2**t``::

        p     <- p * (1 - lr * weight_decay)            # decoupled decay, as AdamW
        m     <- beta1 m + (1 - beta1) g
        v     <- beta2 v + (1 - beta2) g^2
        p     <- p - (lr / c1) * atan2(m, sqrt(v / c2))

    This is the form of the ``adam-atan2`` CUDA package TRM imports (a = b = 1): no epsilon, the
    update of each coordinate is bounded by ``lr * pi/2 / c1`` and invariant to gradient scale.

    Args:
        params: parameters or parameter groups.
        lr (float, 1e-3): learning rate.
        betas (tuple[float, float], (0.9, 0.95)): moment decay rates.
        weight_decay (float, 0.0): decoupled weight decay.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.0):
        if not lr >= 0:
            raise TracegymError(f"lr must be >= 0, got {lr!r}")
        if not all(0 <= b < 1 for b in betas):
            raise TracegymError(f"betas must be in [0, 1), got {betas!r}")
        if not weight_decay >= 0:
            raise TracegymError(f"weight_decay must be >= 0, got {weight_decay!r}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    # step as a tensor, like torch's Adam, so checkpoints store it as a tensor
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                grad = p.grad
                if wd:
                    p.mul_(1 - lr * wd)
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v / (1 - beta2 ** t)).sqrt_()
                p.add_(torch.atan2(m, denom), alpha=-lr / (1 - beta1 ** t))
        return loss


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based): linear warm-up from 0 over
    ``warmup_steps``, then a cosine from 1 down to ``min_ratio`` at ``total_steps``.

    A pure function of its arguments, so a resumed run gets the same lr at the same step.

    >>> [round(lr_factor(s, warmup_steps=2, total_steps=6, min_ratio=0.0), 3) for s in range(7)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup_steps:
        return step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


_EMBED_NAME = re.compile(r"(^|\.)puzzle(_emb\w*)?\.")


def is_embedding_param(name: str) -> bool:
    """Per-puzzle embedding tables (``embed.puzzle.weight`` in the reasoners) get ``lr_embed``:
    each row sees a gradient only when its puzzle is in the batch, so it needs a larger lr."""
    return bool(_EMBED_NAME.search(name))


def build_optimizer(model: nn.Module, *, name: str, lr: float, lr_embed: float,
                    weight_decay: float, betas) -> torch.optim.Optimizer:
    """AdamW or AdamATan2 with two groups: network weights (``lr``) and puzzle embeddings
    (``lr_embed``). Each group keeps its peak lr in ``group["peak_lr"]``; the Trainer sets
    ``group["lr"] = peak_lr * lr_factor(step)`` before every step."""
    net, emb = [], []
    for pname, p in model.named_parameters():
        if p.requires_grad:
            (emb if is_embedding_param(pname) else net).append(p)
    groups = [{"params": net, "lr": lr, "peak_lr": lr}]
    if emb:
        groups.append({"params": emb, "lr": lr_embed, "peak_lr": lr_embed})
    betas = tuple(betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adam_atan2":
        return AdamATan2(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    raise TracegymError(f"optimizer must be one of ['adamw', 'adam_atan2'], got {name!r}")


class EMA:
    """Shadow weights ``s <- decay * s + (1 - decay) * w`` after every optimizer step.

    Buffers (e.g. running statistics) are copied, not averaged. ``swap(model)`` exchanges the
    live and shadow weights in place (call twice to undo): evaluation uses the shadow.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise TracegymError(f"decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.lerp_(v.detach(), 1 - self.decay)
            else:
                s.copy_(v)

    @torch.no_grad()
    def swap(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            tmp = v.detach().clone()
            v.copy_(self.shadow[k])
            self.shadow[k].copy_(tmp)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise TracegymError(f"checkpoint: EMA weights missing {missing[:5]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
