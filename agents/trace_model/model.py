"""Trace models: a causal LM (:class:`TraceLM`) and a masked-diffusion infiller
(:class:`TraceDiffusion`) over :class:`~tracegym.tracers.tokenizer.TraceTokenizer` ids.

Both are :class:`~tracegym.agents.reasoners.Reasoner` s, so the Trainer trains them on the
``tracegym data trace_lm`` arrays. The data convention (:mod:`tracegym.tracers.prompt`):
``inputs`` hold the prompt then PAD; ``labels[i]`` is token ``i + 1`` of prompt + target (target
ends with EOS), 0 (ignored) elsewhere. ``solve(inputs)`` returns ``(B, T)`` predictions in the
same shifted layout (``pred[i]`` = predicted token ``i + 1``; 0 before the target and after the
predicted EOS), so the Trainer's exact accuracy is exact match of the whole target.

The config (:class:`TraceLMConfig`, :class:`TraceDiffusionConfig`) records the tokenizer
(``config["tokenizer"]`` = ``TraceTokenizer().to_dict()``); building a model from a config made
with another tokenizer raises ValueError (``check_compatible``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from tracegym.agents.reasoners.base import (
    Reasoner,
    StepOutput,
    answer_metrics,
    check_causal,
    token_loss,
)
from tracegym.agents.reasoners.config import (
    LOSSES,
    ReasonerConfig,
    ReasonerConfigError,
    option,
)
from tracegym.agents.reasoners.tasks import TaskSpec
from tracegym.checks import check_positive_int
from tracegym.tracers.cwm import FRAME_SEP
from tracegym.tracers.tokenizer import EOS, MASK, PAD, TraceTokenizer

FRAME_SEP_ID = TraceTokenizer().token_to_id[FRAME_SEP]
MASK_EPS = 1e-3  # lower bound of the diffusion mask rate t, so 1/t stays finite


def teacher_forced(inputs: torch.Tensor, labels: torch.Tensor, ignore: int = 0) -> torch.Tensor:
    """The full sequence prompt + target: ``x[:, i+1] = labels[:, i]`` where labelled. (B, T)"""
    x = inputs.clone()
    valid = labels[:, :-1] != ignore
    x[:, 1:] = torch.where(valid, labels[:, :-1], x[:, 1:])
    return x


def prompt_lengths(inputs: torch.Tensor) -> torch.Tensor:
    """(B,) prompt length: non-PAD ids (a prompt holds none); ValueError for an empty prompt."""
    lengths = (inputs != PAD).sum(-1)
    if (lengths == 0).any():
        raise ValueError("inputs: a row has no prompt token (all PAD)")
    return lengths


@dataclass(frozen=True, kw_only=True)
class TraceLMConfig(ReasonerConfig):
    """A trace model's keys: the common ones (softmax loss by default, no puzzle embedding) and
    the tokenizer."""

    loss: str = option("softmax", choices=LOSSES)
    """answer cross-entropy: "softmax" (the default here) or "stablemax" """
    tokenizer: dict | None = None
    """the TraceTokenizer the model reads (``TraceTokenizer().to_dict()``, recorded when the
    model is built); None = this code's. Another tokenizer's dict raises"""

    def _check(self) -> None:
        super()._check()
        if self.puzzle_emb_len:
            raise ReasonerConfigError(f"puzzle_emb_len must be 0 for a trace model, got "
                                      f"puzzle_emb_len={self.puzzle_emb_len}")


@dataclass(frozen=True, kw_only=True)
class TraceDiffusionConfig(TraceLMConfig):
    """:class:`TraceDiffusion`'s keys: a trace model's and these."""

    decode_steps: int = option(8, low=1)
    """K: denoising steps of :meth:`TraceDiffusion.solve`"""
    span_len: int = option(128, low=1)
    """positions after the prompt that :meth:`TraceDiffusion.solve` fills"""


class _TraceModel(Reasoner):
    """Shared setup: tokenizer check, embedding, head. Config: :class:`TraceLMConfig`."""

    CAUSAL = True
    Config = TraceLMConfig

    def __init__(self, backbone: str, task: TaskSpec, **config):
        super().__init__(backbone, task, **config)
        tok = TraceTokenizer()
        if self.cfg.tokenizer is not None:
            tok.check_compatible(self.cfg.tokenizer)  # a checkpoint of another tokenizer stops
        self.tokenizer = tok
        self.cfg = replace(self.cfg, tokenizer=tok.to_dict())
        if task.vocab_size != tok.vocab_size:
            raise ValueError(f"task.vocab_size must be the tokenizer's {tok.vocab_size}, got "
                             f"{task.vocab_size}")
        if task.pad_id != PAD or task.ignore_label_id != 0:
            raise ValueError(f"task must have pad_id 0 and ignore_label_id 0, got "
                             f"{task.pad_id} and {task.ignore_label_id}")
        if self.CAUSAL:
            check_causal(self.NAME, backbone, self.cfg.pattern, self.cfg.depth)
        self.embed = self.make_embedding()
        self.net = self.make_backbone(task.seq_len, causal=self.CAUSAL)
        self.head = self.make_head()

    def logits_of(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) logits."""
        return self.head(self.net(self.embed(x, None), cache))

    def _check_ids(self, ids, name: str) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be a non-empty 1-D integer sequence, got shape "
                             f"{arr.shape} dtype {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr >= self.task.vocab_size))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {int(arr[bad[0]])} is outside "
                             f"0..{self.task.vocab_size - 1}")
        return arr.astype(np.int64)

    @torch.no_grad()
    def complete(self, prompts: Sequence, max_new_tokens: int | None = None, *,
                 frame: bool = False) -> list[np.ndarray]:
        """The predicted target ids (EOS and what follows cut off) of each prompt (1-D ids,
        BOS first, no PAD), at most ``max_new_tokens`` each (the LM; the diffusion model fills
        ``span_len``); each prompt must leave room in ``seq_len`` (ValueError otherwise).
        ``frame``: a frame is wanted, so the first ``<|frame_sep|>`` also ends it (kept): a
        model trained on whole-trace windows (task ``trace``) writes no EOS after a frame. (A
        string value holding the literal text ``<|frame_sep|>`` would end it early.)"""
        t = self.task.seq_len
        rows = torch.zeros(len(prompts), t, dtype=torch.long)
        for r, p in enumerate(prompts):
            p = self._check_ids(p, f"prompts[{r}]")
            if len(p) >= t:
                raise ValueError(f"prompts[{r}] has {len(p)} tokens; the model's context is "
                                 f"{t}, so at most {t - 1} (left-truncate with fit_prompt)")
            if (p == PAD).any():
                raise ValueError(f"prompts[{r}] holds the PAD id 0")
            rows[r, :len(p)] = torch.from_numpy(p)
        kwargs = {} if not self.CAUSAL else {"max_new_tokens": max_new_tokens,
                                             "stop_at_frame_sep": frame}
        pred = self.solve(rows, **kwargs).cpu().numpy()  # (B, T) shifted layout
        out = []
        for r, p in enumerate(prompts):
            y = pred[r, len(p) - 1:]
            end = np.flatnonzero(y == EOS)
            y = y[:end[0]] if end.size else y[y != PAD]
            sep = np.flatnonzero(y == FRAME_SEP_ID) if frame else ()
            out.append(y[:sep[0] + 1] if len(sep) else y)
        return out


class TraceLM(_TraceModel):
    """Causal LM: embedding -> causal backbone (transformer, hybrid, gated_deltanet, ...) -> head.

    Training: teacher forcing, loss on the target tokens only. ``solve``: greedy cached decoding
    of every row at once: all rows step through positions together; a row still inside its
    prompt is fed its prompt token, the others their own prediction, until each has written EOS.

    >>> from tracegym.agents.reasoners import build_policy
    >>> from tracegym.agents.trace_model import trace_task
    >>> m = build_policy("trace_lm", "transformer", trace_task(64), dim=32, depth=1)
    >>> m.generate([1, 264], max_new_tokens=3, stop_ids=()).shape
    (3,)
    """

    NAME = "trace_lm"

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, _ = self.unpack(batch)
        labelled = (labels != 0).any(0).nonzero()
        # causal: positions past the last label change no logit that is scored
        used = int(labelled.max()) + 1 if labelled.numel() else labels.shape[1]
        x = teacher_forced(inputs, labels)[:, :used]
        logits = self.logits_of(x)  # (B, used, V): position i predicts token i + 1
        logits = F.pad(logits, (0, 0, 0, labels.shape[1] - used))  # (B, T, V)
        loss = self.loss_of(logits, labels).mean()
        metrics = {"loss": loss.detach(), "steps": 1.0,
                   **answer_metrics(logits.detach(), labels, 0)}
        yield StepOutput(loss, logits, metrics, halted=True)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None, max_new_tokens: int | None = None,
              stop_at_frame_sep: bool = False):
        """Greedy targets in the shifted layout; a row stops at EOS (or ``<|frame_sep|>``
        when asked) or after ``max_new_tokens`` (default: the end of the context)."""
        inputs, _ = self.check_inputs(inputs, None)
        b, t = inputs.shape
        lengths = prompt_lengths(inputs)  # (B,)
        last = lengths - 2 + (t if max_new_tokens is None else max_new_tokens)  # last pos written
        out = torch.zeros_like(inputs)
        done = torch.zeros(b, dtype=torch.bool, device=inputs.device)
        cache = self.net.init_cache()
        pos = int(lengths.min()) - 1
        h = self.net(self.embed(inputs[:, :pos + 1], None), cache)  # prefill (B, pos+1, D)
        while pos < t - 1:
            token = self.head(h[:, -1]).argmax(-1)  # (B,) predicts position pos + 1
            active = (pos >= lengths - 1) & ~done  # rows past their prompt, not finished
            out[:, pos] = torch.where(active, token, out[:, pos])
            stop = (token == EOS) | (pos >= last)
            if stop_at_frame_sep:
                stop |= token == FRAME_SEP_ID
            done |= active & stop
            if bool(done.all()) or pos + 1 >= t - 1:
                break
            fed = torch.where(pos + 1 < lengths, inputs[:, pos + 1], token)
            h = self.net(self.embed(fed[:, None], None), cache)  # (B, 1, D)
            pos += 1
        return out

    @torch.no_grad()
    def generate(self, prefix_ids, max_new_tokens: int, stop_ids: Sequence[int] = (FRAME_SEP_ID,),
                 *, use_cache: bool = True) -> np.ndarray:
        """Greedy continuation of one 1-D prefix: the new ids, through the first stop id.

        ``max_new_tokens`` is capped at ``seq_len - len(prefix)`` (the backbone's context); a
        prefix longer than ``seq_len`` raises ValueError (left-truncate it with ``fit_prompt``).
        ``use_cache=False`` recomputes the whole sequence each step (the reference).
        """
        prefix = self._check_ids(prefix_ids, "prefix_ids")
        check_positive_int("max_new_tokens", max_new_tokens)
        t = self.task.seq_len
        if len(prefix) > t:
            raise ValueError(f"prefix_ids has {len(prefix)} tokens, more than the model's "
                             f"context seq_len={t}; left-truncate it (fit_prompt)")
        steps = min(max_new_tokens, t - len(prefix))
        stops = set(int(s) for s in stop_ids)
        seq = torch.from_numpy(prefix).to(self.device)[None]  # (1, P)
        cache = self.net.init_cache() if use_cache else None
        h = self.net(self.embed(seq, None), cache) if use_cache else None
        new: list[int] = []
        for _ in range(steps):
            logits = self.head(h[:, -1]) if use_cache else self.logits_of(seq)[:, -1]
            token = int(logits.argmax(-1))
            new.append(token)
            if token in stops or len(new) == steps:
                break
            step = torch.tensor([[token]], device=self.device)
            if use_cache:
                h = self.net(self.embed(step, None), cache)
            else:
                seq = torch.cat([seq, step], dim=1)
        return np.asarray(new, np.int64)


class TraceDiffusion(_TraceModel):
    """Masked diffusion that fills in the target span after the prompt (LLaDA), bidirectional.

    The span is ``span_len`` positions after the prompt (clipped to ``seq_len``; a longer target
    is used whole in training but cannot be produced by ``solve``); positions past the target's
    EOS hold EOS, as LLaDA pads its answers. Training: per sample ``t ~ U(eps, 1)``, each span
    position masked (``MASK`` id 3) with probability t, loss = CE on masked positions / t,
    normalised by the span size. ``solve``: the span starts fully masked and is filled in
    ``decode_steps`` (K) steps, keeping the most confident predictions each step (low-confidence
    remasking); the output is cut at the first EOS.

    Config: :class:`TraceDiffusionConfig` (``decode_steps``, ``span_len`` beyond a trace
    model's keys).
    """

    NAME = "trace_diffusion"
    CAUSAL = False
    Config = TraceDiffusionConfig

    def _span(self, lengths: torch.Tensor, t: int, labels=None):
        """(B, T) bool: the positions to fill (span after each prompt, and any target)."""
        pos = torch.arange(t, device=lengths.device)[None]
        span = (pos >= lengths[:, None]) & (pos < lengths[:, None] + self.cfg.span_len)
        if labels is not None:
            span[:, 1:] |= labels[:, :-1] != 0
        return span

    def supervision_steps(self, batch) -> Iterator[StepOutput]:
        inputs, labels, _ = self.unpack(batch)
        b, t = inputs.shape
        lengths = prompt_lengths(inputs)
        span = self._span(lengths, t, labels)  # (B, T)
        target = teacher_forced(inputs, labels)
        is_target = torch.zeros_like(span)
        is_target[:, 1:] = labels[:, :-1] != 0
        clean = torch.where(span & ~is_target, EOS, target)  # EOS padding after the target
        used = int(span.any(0).nonzero().max()) + 1
        rate = MASK_EPS + (1 - MASK_EPS) * torch.rand(b, 1, device=inputs.device)  # (B, 1)
        masked = span & (torch.rand(b, t, device=inputs.device) < rate)
        noisy = torch.where(masked, MASK, clean)[:, :used]
        logits = self.logits_of(noisy)  # (B, used, V): position j predicts token j
        goal = torch.where(span, clean, 0)[:, :used]
        nll = token_loss(logits, goal, 0, self.cfg.loss)  # (B, used)
        loss = (nll * masked[:, :used] / rate).sum() / span.sum().clamp_min(1)
        shifted = F.pad(logits[:, 1:], (0, 0, 0, t - used + 1))  # (B, T, V) label layout
        metrics = {"loss": loss.detach(), "steps": 1.0, "mask_rate": masked.float().mean(),
                   **answer_metrics(shifted.detach(), labels, 0)}
        yield StepOutput(loss, shifted, metrics, halted=True)

    @torch.no_grad()
    def solve(self, inputs, puzzle_identifiers=None, decode_steps: int | None = None):
        inputs, _ = self.check_inputs(inputs, None)
        b, t = inputs.shape
        k_steps = decode_steps or self.cfg.decode_steps
        lengths = prompt_lengths(inputs)
        span = self._span(lengths, t)
        used = int(span.any(0).nonzero().max()) + 1 if span.any() else t
        seq = torch.where(span, MASK, inputs)[:, :used]  # (B, used)
        span = span[:, :used]
        sizes = span.sum(-1)  # (B,)
        kept = torch.zeros_like(sizes)
        for k in range(k_steps):
            probs = self.logits_of(seq).float().softmax(-1)  # (B, used, V)
            probs[..., MASK] = 0  # never predict the mask itself
            confidence, prediction = probs.max(-1)
            open_ = seq == MASK
            target = torch.ceil(sizes * (k + 1) / k_steps).long()  # filled after this step
            confidence = confidence.masked_fill(~open_, -1.0)
            rank = confidence.argsort(-1, descending=True).argsort(-1)  # 0 = most confident
            choose = open_ & (rank < (target - kept)[:, None])
            seq = torch.where(choose, prediction, seq)
            kept = target
        out = torch.zeros_like(inputs)
        filled = torch.where(span, seq, 0)  # (B, used) the filled span, 0 elsewhere
        # cut at the first EOS of each span
        eos_seen = ((filled == EOS).long().cumsum(-1) - (filled == EOS).long()) > 0
        filled = torch.where(eos_seen, 0, filled)
        out[:, :used - 1] = filled[:, 1:]  # shifted: out[i] = token i + 1
        return out
