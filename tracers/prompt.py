"""The trace models' prompt format: what a model reads, in :class:`TraceTokenizer` ids, and
where its target sits in a training example. The data builder (``tracegym data trace_lm``), the
trace models' decoding and their evaluation all use these rules, so a prompt at evaluation is
the prompt seen in training.

Prompts start with ``BOS`` (:func:`prompt_ids`):

* next frame: ``BOS`` + the header (``<|trace_context_start|>`` marked source ``<|frame_sep|>``)
  + the frames before, left-truncated by whole frames to a budget (:func:`fit_prompt`);
* answer mode (CRUXEval-O): ``BOS`` + :func:`answer_prompt` (the source, a blank line, the call:
  the ExecTrace env's answer-mode observation).

Label convention (shifted, for a causal LM; :func:`encode_example`). With ``p`` prompt tokens and
target ``y_0..y_m-1`` (a trained model ends its target with ``EOS``, or ``<|frame_sep|>`` for a
whole-trace window), ``inputs[:p]`` = the prompt and ``inputs[p:]`` = PAD (0): the target is not
in the inputs. ``labels[p-1+j] = y_j``: the label at position ``i`` is token ``i + 1`` of prompt +
target; every other label is 0 (ignored). A teacher-forced model rebuilds the sequence as
``x[i+1] = labels[i]`` where ``labels[i] != 0``.

>>> from tracegym.tracers.tokenizer import TraceTokenizer
>>> prompt, dropped = fit_prompt(prompt_ids(TraceTokenizer(), "ab"), [[9, 9], [8]], budget=5)
>>> prompt.tolist(), dropped  # BOS, "a", "b", then the newest frame that fits
([1, 101, 102, 8], 1)
>>> inputs, labels = encode_example(prompt[:2], [7, 2], seq_len=5)
>>> inputs.tolist(), labels.tolist()
([1, 101, 0, 0, 0], [0, 7, 2, 0, 0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tracegym.errors import TracegymError
from tracegym.tracers.tokenizer import BOS, TraceTokenizer

EXAMPLE_DTYPE = np.uint16  # TraceTokenizer has 268 ids, more than uint8 holds


def prompt_ids(tokenizer: TraceTokenizer, text: str) -> np.ndarray:
    """``BOS`` + the ids of ``text`` (int64): the start of every prompt."""
    return np.concatenate([[BOS], tokenizer.encode(text)]).astype(np.int64)


def answer_prompt(source: str, entry: str, args_repr: str) -> str:
    """The answer-mode text: as ``ExecTraceEnv``'s observation (source, blank line, call)."""
    return f"{source.rstrip()}\n\n{entry}({args_repr})\n"


def fit_prompt(head: np.ndarray, frames: Sequence[np.ndarray], budget: int
               ) -> tuple[np.ndarray, int]:
    """``(prompt ids, frames dropped)``: ``head`` then the most recent ``frames`` that fit in
    ``budget`` ids (whole frames only; older ones dropped). TracegymError when ``head`` alone does
    not fit."""
    if len(head) > budget:
        raise TracegymError(f"prompt: the head (BOS + source context) has {len(head)} tokens, more "
                            f"than the {budget} available")
    room, keep = budget - len(head), 0
    for ids in reversed(frames):
        if len(ids) > room:
            break
        room -= len(ids)
        keep += 1
    kept = list(frames[len(frames) - keep:]) if keep else []
    return np.concatenate([head, *kept]).astype(np.int64), len(frames) - keep


def encode_example(prompt: np.ndarray, target: np.ndarray, seq_len: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, labels)`` of length ``seq_len`` (:data:`EXAMPLE_DTYPE`) under the shifted label
    convention. TracegymError when prompt or target is empty or they do not fit together."""
    p, m = len(prompt), len(target)
    if p < 1 or m < 1 or p + m > seq_len:
        raise TracegymError(f"example: prompt {p} + target {m} tokens must be >= 1 each and fit "
                            f"seq_len {seq_len}")
    inputs = np.zeros(seq_len, EXAMPLE_DTYPE)
    labels = np.zeros(seq_len, EXAMPLE_DTYPE)
    inputs[:p] = prompt
    labels[p - 1:p - 1 + m] = target
    return inputs, labels
