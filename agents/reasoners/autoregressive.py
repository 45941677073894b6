"""Autoregressive baseline: a causal backbone reads the input, then writes the answer.

The sequence is ``[puzzle prefix (P), input (T), answer (T)]``; a learned segment vector marks
input vs answer positions. Training is teacher forcing: the output at position P + T - 1 + i
predicts answer token i. ``solve`` prefills the prefix and input into the backbone's cache and
decodes the T answer tokens greedily, one per call. The backbone is built for P + 2T positions.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .base import Reasoner, StepOutput, answer_metrics, check_causal
from .tasks import TaskSpec


class Autoregressive(Reasoner):
    """Left-to-right answer model. Config: the common keys (:class:`~.config.ReasonerConfig`).
    Needs a causal backbone, so ``mlp_mixer`` (and hybrid patterns holding "M") raise
    :class:`~.config.ReasonerConfigError`."""

    NAME = "autoregressive"

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        check_causal(self.NAME, backbone, self.cfg.pattern, self.cfg.depth)
        self.embed = self.make_embedding()
        self.segment = nn.Embedding(2, self.cfg.dim)  # 0 input, 1 answer
        nn.init.zeros_(self.segment.weight)
        self.net = self.make_backbone(self.prefix + 2 * task.seq_len, causal=True)
        self.head = self.make_head()

    def answer_embed(self, tokens):
        return self.embed.scale * self.embed.tokens(tokens) + self.segment.weight[1]

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, ids = self.unpack(batch)
        x = self.embed(inputs, ids) + self.segment.weight[0]  # (B, P+T, D)
        # teacher forcing: the answer tokens fed in are the labels (the last is never read)
        seq = torch.cat([x, self.answer_embed(labels[:, :-1])], dim=1)  # (B, P+2T-1, D)
        h = self.net(seq)
        start = self.prefix + self.task.seq_len - 1
        logits = self.head(h[:, start:])  # (B, T, V): position start + i predicts answer i
        loss = self.loss_of(logits, labels).mean()
        metrics = {"loss": loss.detach(), "lm_loss": loss.detach(), "steps": 1.0,
                   **answer_metrics(logits.detach(), labels, self.task.ignore_label_id)}
        yield StepOutput(loss, logits, metrics, halted=True)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None) -> torch.Tensor:
        inputs, ids = self.check_inputs(inputs, puzzle_identifiers)
        cache = self.net.init_cache()
        h = self.net(self.embed(inputs, ids) + self.segment.weight[0], cache)  # prefill
        out = []
        for i in range(self.task.seq_len):
            token = self.head(h[:, -1]).argmax(-1)  # (B,) greedy
            out.append(token)
            if i + 1 < self.task.seq_len:
                h = self.net(self.answer_embed(token)[:, None], cache)  # (B, 1, D)
        return torch.stack(out, dim=1)  # (B, T)
