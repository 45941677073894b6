"""Trace models: a causal LM and a masked-diffusion infiller over CWM trace tokens.

>>> from tracegym.agents.reasoners import build_policy
>>> from tracegym.agents.trace_model import trace_task
>>> model = build_policy("trace_lm", "transformer", trace_task(128), dim=32, depth=1)
>>> model.config["tokenizer"]["vocab_size"]
268

* :mod:`.model`: :class:`TraceLM` (cached greedy ``generate``), :class:`TraceDiffusion`.
* :mod:`.decode`: prompts (the format of :mod:`tracegym.tracers.prompt`), ``complete_texts``,
  ``rollout`` (the model's own frames fed back), ``predict_output``.

Both are reasoners listed in ``tracegym.agents.reasoners.REASONERS`` (``trace_lm``,
``trace_diffusion``), so ``build_policy`` builds them, ``build_policy(**model.config)`` rebuilds
one and the Trainer trains them by name (``tracegym train --task exectrace --reasoner
trace_lm``). Loading a checkpoint (``tracegym.training.checkpoint.load_trace_model``) and the
ExecTrace evaluation (``tracegym.training.evaluate_traces``) live in ``tracegym.training``.
"""

from __future__ import annotations

from tracegym.agents.reasoners.tasks import TaskSpec
from tracegym.tracers.tokenizer import TraceTokenizer

from .model import FRAME_SEP_ID, TraceDiffusion, TraceLM, prompt_lengths, teacher_forced

TASK_NAME = "exectrace"  # the env folder: the Trainer's task name for these datasets

__all__ = ["FRAME_SEP_ID", "TASK_NAME", "TraceDiffusion", "TraceLM", "prompt_lengths",
           "teacher_forced", "trace_task"]


def trace_task(seq_len: int) -> TaskSpec:
    """The TaskSpec of a ``tracegym data trace_lm`` dataset of ``seq_len`` tokens."""
    return TaskSpec(TASK_NAME, vocab_size=TraceTokenizer().vocab_size, seq_len=seq_len)
