"""Using a trace model: prompts, frame prediction, rollout and answer prediction.

Prompts follow :mod:`tracegym.tracers.prompt`, the format the data builder trains on: ``BOS`` +
header + frames, left-truncated by whole frames (:func:`~tracegym.tracers.prompt.fit_prompt`) to
leave ``reserve`` tokens for the predicted frame (default: the diffusion span, else
``DEFAULT_RESERVE``, at most half the context). A header (source context) that does not fit
raises ValueError. The ExecTrace metrics built on these functions are in
``tracegym.training.evaluate_traces``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tracegym.tracers.cwm import ACTION_SEP, CALL_SEP, EXCEPTION_SEP, FRAME_SEP, RETURN_SEP
from tracegym.tracers.prompt import answer_prompt, fit_prompt, prompt_ids

DEFAULT_RESERVE = 160  # tokens left for a predicted frame (90% of generated frames are < 100)
BATCH = 32  # prompts decoded at once


def reserve_of(model, reserve: int | None = None) -> int:
    if reserve is None:
        reserve = getattr(model.cfg, "span_len", DEFAULT_RESERVE)
    return max(1, min(int(reserve), model.task.seq_len // 2))


def frame_prompt(model, header: str, frames: Sequence[np.ndarray],
                 reserve: int | None = None) -> np.ndarray:
    """``BOS`` + header + the most recent ``frames`` (ids) that fit before ``reserve``."""
    head = prompt_ids(model.tokenizer, header)
    budget = model.task.seq_len - reserve_of(model, reserve)
    return fit_prompt(head, frames, budget)[0]


def complete_texts(model, prompts: Sequence[np.ndarray], max_new_tokens: int | None = None,
                   *, frame: bool = True) -> list[str]:
    """The decoded completion of each prompt (invalid UTF-8 replaced), BATCH at a time, at
    most ``max_new_tokens`` ids each (default: :func:`reserve_of`)."""
    if max_new_tokens is None:
        max_new_tokens = reserve_of(model)
    out: list[str] = []
    for lo in range(0, len(prompts), BATCH):
        for ids in model.complete(prompts[lo:lo + BATCH], max_new_tokens, frame=frame):
            out.append(model.tokenizer.decode(ids, errors="replace"))
    return out


def trace_ended(frames: Sequence[str]) -> bool:
    """True once the entry call has returned (call/return frames balance) or raised out, or a
    frame is empty or does not end with ``<|frame_sep|>`` (the rollout left the grammar)."""
    depth = 0
    for text in frames:
        if text.startswith(CALL_SEP):
            depth += 1
        elif text.startswith(RETURN_SEP):
            depth -= 1
            if depth <= 0:
                return True
        elif text.startswith(EXCEPTION_SEP) and depth <= 1:
            return True
        elif not text or not text.endswith(FRAME_SEP):
            return True  # not a whole frame: the rollout has gone off the grammar
    return False


def rollout(model, header: str, max_frames: int, reserve: int | None = None,
            given: Sequence[str] = ()) -> list[str]:
    """Predict a whole trace from its header, feeding each predicted frame back (no teacher
    forcing), until :func:`trace_ended` or ``max_frames`` frames. ``given``: frames known in
    advance (the call frame, holding the arguments); they start the returned list."""
    frames: list[str] = list(given)
    ids: list[np.ndarray] = [model.tokenizer.encode(text) for text in frames]
    while len(frames) < max_frames and not trace_ended(frames):
        text = complete_texts(model, [frame_prompt(model, header, ids, reserve)],
                              reserve_of(model, reserve))[0]
        frames.append(text)
        ids.append(model.tokenizer.encode(text))
    return frames


def predict_output(model, source: str, entry: str, args_repr: str) -> str:
    """The predicted return value repr of ``entry(args)``."""
    prompt = prompt_ids(model.tokenizer, answer_prompt(source, entry, args_repr))
    return complete_texts(model, [prompt], frame=False)[0]


def frame_parts(text: str) -> tuple[str, str | None]:
    """``(state, action)``: a frame's text before and after its first ``<|action_sep|>``
    (action None when there is none)."""
    state, sep, action = text.partition(ACTION_SEP)
    return state, (action if sep else None)
