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
from torch import nn

from .base import ACTState, Reasoner, StepOutput, halting_head
from .config import ReasonerConfig, option
from .tasks import TaskSpec


@dataclass(frozen=True, kw_only=True)
class TRMConfig(ReasonerConfig):
    """TRM's keys: the common ones (:class:`~.config.ReasonerConfig`) and these."""

    H_cycles: int = option(3, low=1)
    """T: full recursions per supervision step (the first T-1 without grad)"""
    L_cycles: int = option(6, low=1)
    """n: z updates per full recursion (TRM: Sudoku 6, maze and ARC 4)"""
    N_sup: int = option(16, low=1)
    """most supervision steps per batch, one optimizer step each"""
    halt_exploration_prob: float = option(0.1, low=0, high=1)
    """chance that a sample must run a random 2..N_sup steps before it may halt (training)"""


@dataclass
class TRMCarry:
    """The latents carried from one supervision step to the next, each (B, P+T, D), detached."""

    y: torch.Tensor
    z: torch.Tensor


class TRM(Reasoner):
    """Tiny Recursive Model with deep supervision and a learned halting head.

    Config: :class:`TRMConfig` (H_cycles, L_cycles, N_sup, halt_exploration_prob beyond the
    common keys).

    Training, as TRM (:meth:`carry_step`): a persistent carry of batch_size slots; each
    optimizer step runs one supervision step on every slot, a slot halts when its Q-halt logit is
    > 0 (past its exploration minimum) or after N_sup steps, and halted slots take the next
    batch's examples. The older flow (:meth:`supervision_steps`) runs each batch until all its
    samples halt or N_sup steps, halted samples dropping out of later steps' losses. Losses are
    summed over the live samples and divided by the full batch size.

    Eval (:meth:`solve`, and :meth:`supervision_steps` in eval mode): every sample runs all N_sup
    steps, so a batch halts together and the answer does not depend on batch composition.
    """

    NAME = "trm"
    Config = TRMConfig

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        dim = self.cfg.dim
        self.embed = self.make_embedding()
        self.net = self.make_backbone(self.prefix + task.seq_len, causal=False)  # one net, y and z
        self.head = self.make_head()
        self.q_head = halting_head(dim, 1)
        # learned initial latents, broadcast over batch and positions
        self.y_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(dim), std=1.0))
        self.z_init = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(dim), std=1.0))

    @property
    def max_supervision_steps(self) -> int:
        return self.cfg.N_sup

    def initial_carry(self, batch: int) -> TRMCarry:
        shape = (batch, self.prefix + self.task.seq_len, self.cfg.dim)
        return TRMCarry(self.y_init.expand(shape), self.z_init.expand(shape))

    def latent_recursion(self, x, y, z):
        for _ in range(self.cfg.L_cycles):
            z = self.net(x + y + z)  # (B, P+T, D)
        y = self.net(y + z)
        return y, z

    def deep_recursion(self, x, carry: TRMCarry):
        """One supervision step: ``(new carry (detached), logits (B, T, V), q_halt (B,))``."""
        y, z = carry.y, carry.z
        # The first T-1 recursions run without grad: they move y, z towards a better answer at
        # no memory cost, and only the last recursion is backpropagated (TRM, sec. 4).
        with torch.no_grad():
            for _ in range(self.cfg.H_cycles - 1):
                y, z = self.latent_recursion(x, y, z)
        y, z = self.latent_recursion(x, y, z)
        logits = self.head(y[:, self.prefix:])  # (B, T, V)
        q_halt = self.q_head(y[:, 0]).squeeze(-1).float()  # (B,) from the first position
        return TRMCarry(y.detach(), z.detach()), logits, q_halt

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        # halt when q_halt > 0 (TRM has no "continue" logit)
        return self.act_steps(batch, self.deep_recursion, self.cfg.N_sup,
                              self.cfg.halt_exploration_prob)

    def carry_step(self, state: ACTState | None, batch) -> tuple[ACTState, StepOutput]:
        """One optimizer step of TRM's persistent carry (:meth:`~.base.Reasoner.act_carry_step`),
        the Trainer's default (``act_flow="carry"``)."""
        return self.act_carry_step(state, batch, self.deep_recursion, self.cfg.N_sup,
                                   self.cfg.halt_exploration_prob)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None) -> torch.Tensor:
        return self.act_solve(inputs, puzzle_identifiers, self.deep_recursion, self.cfg.N_sup)

    def solve_with_confidence(self, inputs, puzzle_identifiers=None):
        """``(answers (B, T), q_halt (B,))``: :meth:`solve` and the last step's halting logit."""
        return self.act_solve_with_confidence(inputs, puzzle_identifiers, self.deep_recursion,
                                              self.cfg.N_sup)
