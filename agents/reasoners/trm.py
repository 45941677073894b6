"""TRM: the Tiny Recursive Model (Jolicoeur-Martineau, 2025; SamsungSAILMontreal/
TinyRecursiveModels).

One small network ``net`` refines two latents: y (the current answer, embedded) and z (a
reasoning state). In the paper's pseudocode::

    def latent_recursion(x, y, z, n):          # x, y, z: (B, P+T, D)
        for _ in range(n):
            z = net(x + y + z)                 # refine the reasoning state n times
        y = net(y + z)                         # then update the answer once
        return y, z

    def deep_recursion(x, y, z, n, T):
        with torch.no_grad():                  # T-1 recursions improve y, z for free
            for _ in range(T - 1):
                y, z = latent_recursion(x, y, z, n)
        y, z = latent_recursion(x, y, z, n)    # the last one is backpropagated through
        return (y.detach(), z.detach()), head(y), q_head(y[:, 0])

    for step in range(N_sup):                  # deep supervision
        (y, z), logits, q_halt = deep_recursion(x, y, z, n, T)
        loss = CE(logits, labels) + 0.5 * BCE(q_halt, logits.argmax(-1) == labels)
        loss.backward(); opt.step(); opt.zero_grad()
        if (q_halt > 0).all(): break
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    Reasoner,
    StepOutput,
    _positive_int,
    _probability,
    answer_metrics,
    correctness,
    halting_head,
    min_halt_steps,
)
from .tasks import TaskSpec


@dataclass
class TRMCarry:
    """The latents carried from one supervision step to the next, each (B, P+T, D), detached."""

    y: torch.Tensor
    z: torch.Tensor


class TRM(Reasoner):
    """Tiny Recursive Model with deep supervision and a learned halting head.

    Config (beyond the common keys):
        H_cycles (int, default 3): T, full recursions per supervision step (T-1 without grad).
        L_cycles (int, default 6): n, z updates per full recursion (TRM Sudoku 6, maze/ARC 4).
        N_sup (int, default 16): maximum supervision steps per batch.
        halt_exploration_prob (float, default 0.1): chance that a sample is made to run a random
            2..N_sup steps before it may halt (training only).

    Training (:meth:`supervision_steps`): a sample halts after a step when its Q-halt logit is
    > 0 (and its exploration minimum is met); halted samples drop out of later steps' losses, and
    the batch stops when all have halted or after N_sup steps. Losses are summed over active
    samples and divided by the full batch size, so every sample weighs the same in every step.

    Eval (:meth:`solve`, and :meth:`supervision_steps` in eval mode): every sample runs all N_sup
    steps, so a batch halts together and the answer does not depend on batch composition.
    """

    NAME = "trm"
    DEFAULTS = dict(H_cycles=3, L_cycles=6, N_sup=16, halt_exploration_prob=0.1)

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        c = self.cfg
        for key in ("H_cycles", "L_cycles", "N_sup"):
            _positive_int(key, c[key])
        _probability("halt_exploration_prob", c["halt_exploration_prob"])
        self.embed = self.make_embedding()
        self.net = self.make_backbone(self.prefix + task.seq_len, causal=False)  # one net, y and z
        self.head = self.make_head()
        self.q_head = halting_head(c["dim"], 1)
        # learned initial latents, broadcast over batch and positions
        self.y_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c["dim"]), std=1.0))
        self.z_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c["dim"]), std=1.0))

    @property
    def max_supervision_steps(self) -> int:
        return self.cfg["N_sup"]

    def initial_carry(self, batch: int) -> TRMCarry:
        shape = (batch, self.prefix + self.task.seq_len, self.cfg["dim"])
        return TRMCarry(self.y_init.expand(shape), self.z_init.expand(shape))

    def latent_recursion(self, x, y, z):
        for _ in range(self.cfg["L_cycles"]):
            z = self.net(x + y + z)  # (B, P+T, D)
        y = self.net(y + z)
        return y, z

    def deep_recursion(self, x, carry: TRMCarry):
        """One supervision step: ``(new carry (detached), logits (B, T, V), q_halt (B,))``."""
        y, z = carry.y, carry.z
        # The first T-1 recursions run without grad: they move y, z towards a better answer at
        # no memory cost, and only the last recursion is backpropagated (TRM, sec. 4).
        with torch.no_grad():
            for _ in range(self.cfg["H_cycles"] - 1):
                y, z = self.latent_recursion(x, y, z)
        y, z = self.latent_recursion(x, y, z)
        logits = self.head(y[:, self.prefix:])  # (B, T, V)
        q_halt = self.q_head(y[:, 0]).squeeze(-1).float()  # (B,) from the first position
        return TRMCarry(y.detach(), z.detach()), logits, q_halt

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, ids = self.unpack(batch)
        b, n_sup = inputs.shape[0], self.cfg["N_sup"]
        carry = self.initial_carry(b)
        active = torch.ones(b, dtype=torch.bool, device=inputs.device)  # not yet halted
        least = min_halt_steps(b, n_sup, self.cfg["halt_exploration_prob"], inputs.device)
        for step in range(1, n_sup + 1):
            x = self.embed(inputs, ids)  # (B, P+T, D), re-embedded: each step has its own graph
            carry, logits, q_halt = self.deep_recursion(x, carry)
            _, exact = correctness(logits.detach(), labels, self.task.ignore_label_id)
            w = active.float() / b  # per-sample weight; halted samples weigh 0
            lm_loss = (self.loss_of(logits, labels) * w).sum()
            halt_loss = (F.binary_cross_entropy_with_logits(
                q_halt, exact.float(), reduction="none") * w).sum()
            loss = lm_loss + 0.5 * halt_loss
            halt_now = torch.full_like(active, step == n_sup)
            if self.training:
                halt_now |= (q_halt.detach() > 0) & (step >= least)
            metrics = {
                "loss": loss.item(), "lm_loss": lm_loss.item(), "halt_loss": halt_loss.item(),
                "q_halt_acc": ((q_halt.detach() > 0) == exact)[active].float().mean().item(),
                "steps": float(step), "active": active.float().mean().item(),
                **answer_metrics(logits.detach(), labels, self.task.ignore_label_id, active),
            }
            active = active & ~halt_now
            done = not bool(active.any())
            yield StepOutput(loss, logits, metrics, halted=done)
            if done:
                return

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None) -> torch.Tensor:
        inputs, ids = self.check_inputs(inputs, puzzle_identifiers)
        carry = self.initial_carry(inputs.shape[0])
        x = self.embed(inputs, ids)
        for _ in range(self.cfg["N_sup"]):  # all steps: the batch halts together
            carry, logits, _ = self.deep_recursion(x, carry)
        return logits.argmax(-1)
