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
from torch import nn

from .base import ACTState, Reasoner, StepOutput, halting_head
from .config import common_config, option
from .tasks import TaskSpec

# HRM sizes its two backbones with H_layers and L_layers: the common keys less depth
_HRMCommon = common_config("_HRMCommon", without=("depth",))


@dataclass(frozen=True, kw_only=True)
class HRMConfig(_HRMCommon):
    """HRM's keys: the common ones less ``depth`` (H_layers and L_layers size the two modules)
    and these."""

    H_cycles: int = option(2, low=1)
    """high-level (H) updates per segment"""
    L_cycles: int = option(2, low=1)
    """low-level (L) updates per H update"""
    H_layers: int = option(4, low=1)
    """blocks of the H backbone"""
    L_layers: int = option(4, low=1)
    """blocks of the L backbone"""
    halt_max_steps: int = option(16, low=1)
    """most segments (supervision steps) per batch, one optimizer step each"""
    halt_exploration_prob: float = option(0.1, low=0, high=1)
    """chance that a sample must run a random 2..halt_max_steps segments before it may halt
    (training)"""


@dataclass
class HRMCarry:
    """High- and low-level states, each (B, P+T, D), detached between segments."""

    z_H: torch.Tensor
    z_L: torch.Tensor


class HRM(Reasoner):
    """Hierarchical Reasoning Model with ACT (Q-learned halting) and deep supervision.

    Config: :class:`HRMConfig` (H_cycles, L_cycles, H_layers, L_layers, halt_max_steps,
    halt_exploration_prob beyond the common keys, without ``depth``).

    Training halts a sample when q_halt > q_continue (after its exploration minimum), with the
    persistent carry (:meth:`carry_step`, HRM's and the Trainer's default) or per batch
    (:meth:`supervision_steps`). Eval runs all ``halt_max_steps`` segments.
    """

    NAME = "hrm"
    Config = HRMConfig

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        c = self.cfg
        length = self.prefix + task.seq_len
        self.embed = self.make_embedding()
        self.H_net = self.make_backbone(length, causal=False, depth=c.H_layers)
        self.L_net = self.make_backbone(length, causal=False, depth=c.L_layers)
        self.head = self.make_head()
        self.q_head = halting_head(c.dim, 2)  # (halt, continue) logits
        self.H_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c.dim), std=1.0))
        self.L_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(c.dim), std=1.0))

    @property
    def max_supervision_steps(self) -> int:
        return self.cfg.halt_max_steps

    def initial_carry(self, batch: int) -> HRMCarry:
        shape = (batch, self.prefix + self.task.seq_len, self.cfg.dim)
        return HRMCarry(self.H_init.expand(shape), self.L_init.expand(shape))

    def segment(self, x, carry: HRMCarry):
        """One segment: ``(new carry (detached), logits (B, T, V), q (B, 2))``."""
        z_H, z_L = carry.z_H, carry.z_L
        H, L = self.cfg.H_cycles, self.cfg.L_cycles
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
        # q is (halt, continue): halt when q_halt > q_continue, continue learned by Q-learning
        return self.act_steps(batch, self.segment, self.cfg.halt_max_steps,
                              self.cfg.halt_exploration_prob)

    def carry_step(self, state: ACTState | None, batch) -> tuple[ACTState, StepOutput]:
        """One optimizer step of the persistent carry (:meth:`~.base.Reasoner.act_carry_step`),
        as HRM trains; the Trainer's default (``act_flow="carry"``)."""
        return self.act_carry_step(state, batch, self.segment, self.cfg.halt_max_steps,
                                   self.cfg.halt_exploration_prob)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None) -> torch.Tensor:
        return self.act_solve(inputs, puzzle_identifiers, self.segment, self.cfg.halt_max_steps)

    def solve_with_confidence(self, inputs, puzzle_identifiers=None):
        """``(answers (B, T), q_halt (B,))``: :meth:`solve` and the last segment's halt logit."""
        return self.act_solve_with_confidence(inputs, puzzle_identifiers, self.segment,
                                              self.cfg.halt_max_steps)
