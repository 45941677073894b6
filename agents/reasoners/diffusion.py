"""Masked diffusion over the answer (LLaDA, Nie et al. 2025; Ye et al. 2024 for Sudoku).

What the network sees: the puzzle input is always visible, the answer is partly masked. Each
position gets the sum of two embeddings, ``input_embed(inputs) + answer_embed(noisy answer)``,
where the noisy answer is the label with some positions replaced by ``MASK = vocab_size`` (the
answer table has vocab_size + 1 rows). For Sudoku the clues are visible through the input and the
answer grid (the label) is what is denoised; positions are aligned, so adding beats concatenating
(half the sequence, and mlp_mixer keeps its fixed length).

Training (one supervision step)::

    t ~ U(eps, 1)                                  # per sample
    masked = rand(B, T) < t                        # every answer position, independently
    logits = head(net(input_embed(x) + answer_embed(where(masked, MASK, labels))))
    loss = sum(CE(logits, labels) * masked * valid / t) / sum(valid)

``valid`` drops ignored labels (pad): they may be masked, as at decoding time where nothing is
known, but carry no loss. Decoding with K = ``decode_steps``: start fully masked; at step k predict
every masked position, keep the ceil(T * (k+1) / K) - (already kept) most confident predictions and
leave the rest masked (low-confidence remasking).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .base import Reasoner, StepOutput, answer_metrics, token_loss
from .config import ReasonerConfig, option
from .tasks import TaskSpec

MASK_EPS = 1e-3  # lower bound of t, so 1/t stays finite


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig(ReasonerConfig):
    """The masked-diffusion reasoner's keys: the common ones and ``decode_steps``."""

    decode_steps: int = option(8, low=1)
    """K: denoising steps of :meth:`MaskedDiffusion.solve` (1 = one pass)"""


class MaskedDiffusion(Reasoner):
    """Masked-diffusion denoiser of the answer, bidirectional backbone.

    Config: :class:`DiffusionConfig` (``decode_steps`` beyond the common keys).
    """

    NAME = "diffusion"
    Config = DiffusionConfig

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        dim = self.cfg.dim
        self.mask_id = task.vocab_size
        self.embed = self.make_embedding()  # the puzzle input (and puzzle prefix)
        self.answer_embed = nn.Embedding(task.vocab_size + 1, dim)  # + the mask token
        nn.init.trunc_normal_(self.answer_embed.weight, std=1 / math.sqrt(dim))
        self.net = self.make_backbone(self.prefix + task.seq_len, causal=False)
        self.head = self.make_head()

    def logits(self, inputs, noisy, identifiers) -> torch.Tensor:
        x = self.embed(inputs, identifiers)  # (B, P+T, D)
        a = self.embed.scale * self.answer_embed(noisy)  # (B, T, D)
        a = torch.cat([a.new_zeros(a.shape[0], self.prefix, a.shape[2]), a], dim=1)
        return self.head(self.net(x + a)[:, self.prefix:])  # (B, T, V)

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, ids = self.unpack(batch)
        b, n = labels.shape
        t = MASK_EPS + (1 - MASK_EPS) * torch.rand(b, 1, device=labels.device)  # (B, 1)
        masked = torch.rand(b, n, device=labels.device) < t  # (B, T)
        noisy = torch.where(masked, self.mask_id, labels)
        logits = self.logits(inputs, noisy, ids)
        ignore = self.task.ignore_label_id
        valid = labels != ignore
        nll = token_loss(logits, labels, ignore, self.cfg.loss)  # (B, T), 0 where ignored
        loss = (nll * masked / t).sum() / valid.sum().clamp_min(1)
        # the accuracies score the masked answer tokens only (the visible ones are given), so
        # exact = every masked token right, over the samples with a masked answer token
        scored = torch.where(masked, labels, ignore)
        metrics = {"loss": loss.detach(), "lm_loss": loss.detach(),
                   **answer_metrics(logits.detach(), scored, ignore),
                   "mask_rate": masked.float().mean(), "steps": 1.0}
        yield StepOutput(loss, logits, metrics, halted=True)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None, decode_steps: int | None = None):
        inputs, ids = self.check_inputs(inputs, puzzle_identifiers)
        k_steps = decode_steps or self.cfg.decode_steps
        b, n = inputs.shape
        noisy = torch.full_like(inputs, self.mask_id)  # (B, T) all masked
        kept = 0
        for k in range(k_steps):
            probs = self.logits(inputs, noisy, ids).float().softmax(-1)  # (B, T, V)
            confidence, prediction = probs.max(-1)  # (B, T)
            target = math.ceil(n * (k + 1) / k_steps)  # positions unmasked after this step
            confidence = confidence.masked_fill(noisy != self.mask_id, -1.0)  # keep what's kept
            chosen = confidence.topk(target - kept, dim=-1).indices  # (B, new)
            noisy.scatter_(1, chosen, prediction.gather(1, chosen))
            kept = target
        return noisy
