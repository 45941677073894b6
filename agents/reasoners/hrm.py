"""HRM: the Hierarchical Reasoning Model (Wang et al., 2025, sapientinc/HRM).

Two recurrent modules: a slow high-level H and a fast low-level L, each its own backbone. One
segment (one supervision step)::

    for i in range(H_cycles * L_cycles):
        z_L = L_net(z_L + z_H + x)             # L updates every cycle, sees the input
        if (i + 1) % L_cycles == 0:
            z_H = H_net(z_H + z_L)             # H updates once per L_cycles
    # only the final z_L and z_H updates get gradient (one-step gradient approximation)
    logits = head(z_H); q_halt, q_continue = q_head(z_H[:, 0])

Adaptive computation time: up to ``halt_max_steps`` segments, carrying (z_H, z_L) detached; the Q
head is trained by Q-learning: q_halt towards "prediction fully correct", q_continue towards
sigmoid(max(next q_halt, next q_continue)) from one extra segment run without gradient (HRM's
target; after the last segment the target is next q_halt, as in HRM).
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
class HRMCarry:
    """High- and low-level states, each (B, P+T, D), detached between segments."""

    z_H: torch.Tensor
    z_L: torch.Tensor


class HRM(Reasoner):
    """Hierarchical Reasoning Model with ACT (Q-learned halting) and deep supervision.

    Config (beyond the common keys, without ``depth``):
        H_cycles (int, default 2), L_cycles (int, default 2): cycles per segment.
        H_layers (int, default 4), L_layers (int, default 4): blocks in the H and L backbones.
        halt_max_steps (int, default 16): maximum segments (supervision steps).
        halt_exploration_prob (float, default 0.1): as TRM's.

    Training halts a sample when q_halt > q_continue (after its exploration minimum); halted
    samples drop out of later losses. Eval runs all ``halt_max_steps`` segments.
    """

    NAME = "hrm"
    DEFAULTS = dict(H_cycles=2, L_cycles=2, H_layers=4, L_layers=4, halt_max_steps=16,
                    halt_exploration_prob=0.1)
    EXCLUDED = ("depth",)

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        c = self.cfg
        for key in ("H_cycles", "L_cycles", "H_layers", "L_layers", "halt_max_steps"):
            _positive_int(key, c[key])
        _probability("halt_exploration_prob", c["halt_exploration_prob"])
        length = self.prefix + task.seq_len
        self.embed = self.make_embedding()
        self.H_net = self.make_backbone(length, causal=False, depth=c["H_layers"])
        self.L_net = self.make_backbone(length, causal=False, depth=c["L_layers"])
        self.head = self.make_head()
        self.q_head = halting_head(c["dim"], 2)  # (halt, continue) logits
        self.H_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c["dim"]), std=1.0))
        self.L_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c["dim"]), std=1.0))

    @property
    def max_supervision_steps(self) -> int:
        return self.cfg["halt_max_steps"]

    def initial_carry(self, batch: int) -> HRMCarry:
        shape = (batch, self.prefix + self.task.seq_len, self.cfg["dim"])
        return HRMCarry(self.H_init.expand(shape), self.L_init.expand(shape))

    def segment(self, x, carry: HRMCarry):
        """One segment: ``(new carry (detached), logits (B, T, V), q (B, 2))``."""
        z_H, z_L = carry.z_H, carry.z_L
        H, L = self.cfg["H_cycles"], self.cfg["L_cycles"]
        # All but the last L and H updates run without grad: HRM's one-step gradient
        # approximation backpropagates through the final update of each module only.
        with torch.no_grad():
            for i in range(H * L - 1):
                z_L = self.L_net(z_L + z_H + x)
                if (i + 1) % L == 0:
                    z_H = self.H_net(z_H + z_L)
        z_L = self.L_net(z_L + z_H + x)
        z_H = self.H_net(z_H + z_L)
        logits = self.head(z_H[:, self.prefix:])  # (B, T, V)
        q = self.q_head(z_H[:, 0]).float()  # (B, 2): halt, continue
        return HRMCarry(z_H.detach(), z_L.detach()), logits, q

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, ids = self.unpack(batch)
        b, max_steps = inputs.shape[0], self.cfg["halt_max_steps"]
        carry = self.initial_carry(b)
        active = torch.ones(b, dtype=torch.bool, device=inputs.device)
        least = min_halt_steps(b, max_steps, self.cfg["halt_exploration_prob"], inputs.device)
        for step in range(1, max_steps + 1):
            x = self.embed(inputs, ids)  # (B, P+T, D)
            carry, logits, q = self.segment(x, carry)
            q_halt, q_continue = q.unbind(-1)
            last = step == max_steps
            _, exact = correctness(logits.detach(), labels, self.task.ignore_label_id)
            w = active.float() / b
            lm_loss = (self.loss_of(logits, labels) * w).sum()
            halt_loss = (F.binary_cross_entropy_with_logits(
                q_halt, exact.float(), reduction="none") * w).sum()
            loss = lm_loss + 0.5 * halt_loss
            continue_loss = q.new_zeros(())
            if self.training:
                # Q-learning target for "continue": the value of the best action one segment on;
                # after the last segment only halting remains, so its target is next q_halt.
                with torch.no_grad():
                    _, _, q_next = self.segment(x.detach(), carry)
                    target = torch.sigmoid(q_next[:, 0] if last else q_next.max(-1).values)
                continue_loss = (F.binary_cross_entropy_with_logits(
                    q_continue, target, reduction="none") * w).sum()
                loss = loss + 0.5 * continue_loss
            halt_now = torch.full_like(active, last)
            if self.training:
                halt_now |= (q_halt.detach() > q_continue.detach()) & (step >= least)
            metrics = {
                "loss": loss.item(), "lm_loss": lm_loss.item(), "halt_loss": halt_loss.item(),
                "continue_loss": continue_loss.item(),
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
        for _ in range(self.cfg["halt_max_steps"]):  # all segments: the batch halts together
            carry, logits, _ = self.segment(x, carry)
        return logits.argmax(-1)
