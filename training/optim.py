"""Optimisers and schedules of the Trainer: AdamATan2 in plain torch, sign-SGD on the puzzle
table rows a step used (:class:`SparseSignSGD`, as TRM), warm-up + cosine lr as a pure function
of the step, and an exponential moving average (EMA) of the weights."""

from __future__ import annotations

import math

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


def build_optimizer(model: nn.Module, *, name: str, lr: float, weight_decay: float,
                    betas) -> torch.optim.Optimizer:
    """AdamW or AdamATan2 over the network's parameters (``lr``; the per-puzzle tables are
    buffers, trained by :class:`SparseSignSGD`). Each group keeps its peak lr in
    ``group["peak_lr"]``; the Trainer sets ``group["lr"] = peak_lr * lr_factor(step)`` before
    every step."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": params, "lr": lr, "peak_lr": lr}]
    betas = tuple(betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adam_atan2":
        return AdamATan2(groups, lr=lr, betas=betas, weight_decay=weight_decay)
    raise TracegymError(f"optimizer must be one of ['adamw', 'adam_atan2'], got {name!r}")


class SparseSignSGD(torch.optim.Optimizer):
    """Sign-SGD on the rows of per-puzzle tables that the step's batches used, as TRM trains its
    puzzle embeddings (``CastedSparseEmbeddingSignSGD_Distributed``).

    Per table, with ``g`` the gradient of a used row summed over its lookups and over the DDP
    ranks::

        row <- row * (1 - lr * weight_decay) - lr * sign(g)

    A row no batch used is not touched (no decay either). With a gradient this sparse Adam is
    about sign-SGD, and sign-SGD needs no state: the optimiser's only state is ``lr``, which the
    Trainer sets from the schedule every step, so a checkpoint needs nothing of it.

    Args:
        tables: modules with a ``weight`` buffer, ``row_gradients()`` and ``clear()``
            (:class:`tracegym.agents.reasoners.puzzle_embedding.SparsePuzzleEmbedding`).
        lr (float): learning rate (``puzzle_emb_lr``).
        weight_decay (float): decoupled decay of the used rows (``puzzle_emb_weight_decay``).
        world_size (int, 1): DDP ranks; above 1 each step all-gathers the ranks' rows and
            gradients (``torch.distributed`` initialised), so every rank applies the same sums.
    """

    def __init__(self, tables: list[nn.Module], lr: float, weight_decay: float = 0.0,
                 world_size: int = 1):
        if not lr >= 0:
            raise TracegymError(f"puzzle_emb_lr must be >= 0, got {lr!r}")
        if not weight_decay >= 0:
            raise TracegymError(f"puzzle_emb_weight_decay must be >= 0, got {weight_decay!r}")
        self.tables = list(tables)
        self.world_size = world_size
        super().__init__([t.weight for t in self.tables],
                         {"lr": lr, "peak_lr": lr, "weight_decay": weight_decay})

    def zero_grad(self, set_to_none: bool = True) -> None:
        for table in self.tables:
            table.clear()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        lr, wd = group["lr"], group["weight_decay"]
        for table in self.tables:
            ids, grads = table.row_gradients()
            if self.world_size > 1:
                ids, grads = _all_gather_rows(ids, grads, self.world_size)
            if not len(ids):
                continue
            weight = table.weight
            rows, where = ids.unique(return_inverse=True)
            summed = torch.zeros(len(rows), weight.shape[1], dtype=grads.dtype,
                                 device=grads.device).index_add_(0, where, grads)
            p = weight[rows]
            p.mul_(1 - lr * wd).add_(torch.sign(summed).to(p.dtype), alpha=-lr)
            weight[rows] = p
        return loss


def _all_gather_rows(ids: torch.Tensor, grads: torch.Tensor,
                     world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(ids, grads)``, concatenated. TRM all-gathers equal-sized batches; here a
    rank whose batch halted early has no rows, so the counts are gathered first and each rank
    pads to the largest (padding rows carry id -1 and are dropped)."""
    import torch.distributed as dist

    count = torch.tensor([len(ids)], dtype=torch.long, device=ids.device)
    counts = [torch.zeros_like(count) for _ in range(world_size)]
    dist.all_gather(counts, count)
    most = int(max(c.item() for c in counts))
    if most == 0:
        return ids, grads
    pad = most - len(ids)
    ids = torch.cat([ids, ids.new_full((pad,), -1)])
    grads = torch.cat([grads, grads.new_zeros(pad, grads.shape[1])])
    all_ids = ids.new_empty(world_size * most)
    all_grads = grads.new_empty(world_size * most, grads.shape[1])
    dist.all_gather_into_tensor(all_ids, ids)
    dist.all_gather_into_tensor(all_grads, grads)
    keep = all_ids >= 0
    return all_ids[keep], all_grads[keep]


def sparse_tables(model: nn.Module) -> list[nn.Module]:
    """The model's per-puzzle tables trained by :class:`SparseSignSGD` (modules with a
    ``row_gradients`` method), in module order."""
    return [m for m in model.modules() if callable(getattr(m, "row_gradients", None))]


def build_sparse_optimizer(model: nn.Module, *, lr: float, weight_decay: float,
                           world_size: int = 1) -> SparseSignSGD | None:
    """:class:`SparseSignSGD` over the model's puzzle tables, or None when it has none."""
    tables = sparse_tables(model)
    if not tables:
        return None
    return SparseSignSGD(tables, lr=lr, weight_decay=weight_decay, world_size=world_size)


class EMA:
    """Shadow weights ``s <- decay * s + (1 - decay) * w`` after every optimizer step.

    Only trainable parameters are averaged, as TRM's ``EMAHelper`` (``named_parameters``): every
    other state-dict entry (buffers, the sparse puzzle tables) is not copied but shared, so the
    shadow reads the live values and evaluation uses the live puzzle table, as TRM's EMA copy
    does. ``swap(model)`` exchanges the live and shadow weights in place (call twice to undo):
    evaluation uses the shadow. ``state_dict()`` is a full state dict of the model.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise TracegymError(f"decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        averaged = {name for name, p in model.named_parameters(remove_duplicate=False)
                    if p.requires_grad and p.dtype.is_floating_point}
        self.averaged = [k for k in model.state_dict() if k in averaged]
        self.shadow = {k: v.detach().clone() if k in averaged else v.detach()
                       for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        state = model.state_dict()
        for k in self.averaged:
            self.shadow[k].lerp_(state[k].detach(), 1 - self.decay)

    @torch.no_grad()
    def swap(self, model: nn.Module) -> None:
        state = model.state_dict()
        for k in self.averaged:
            v = state[k]
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
