"""The one-pass baseline: embed -> bidirectional backbone -> head, one supervision step."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .base import Reasoner, StepOutput, answer_metrics
from .tasks import TaskSpec


class FeedForward(Reasoner):
    """``logits = head(net(embed(inputs)))``: the same network as TRM's, run once.

    Config: the common keys only (:class:`~.config.ReasonerConfig`: dim, depth, heads, loss,
    puzzle_emb_len, norm, pattern, ...).
    """

    NAME = "feedforward"

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        self.embed = self.make_embedding()
        self.net = self.make_backbone(self.prefix + task.seq_len, causal=False)
        self.head = self.make_head()

    def logits(self, inputs, identifiers) -> torch.Tensor:
        h = self.net(self.embed(inputs, identifiers))  # (B, P+T, D)
        return self.head(h[:, self.prefix:])  # (B, T, V)

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, ids = self.unpack(batch)
        logits = self.logits(inputs, ids)
        loss = self.loss_of(logits, labels).mean()
        metrics = {"loss": loss.detach(), "lm_loss": loss.detach(), "steps": 1.0,
                   **answer_metrics(logits.detach(), labels, self.task.ignore_label_id)}
        yield StepOutput(loss, logits, metrics, halted=True)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None) -> torch.Tensor:
        return self.logits(*self.check_inputs(inputs, puzzle_identifiers)).argmax(-1)
