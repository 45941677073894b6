"""Trace models (issue 9): a causal LM and a masked-diffusion infiller over CWM trace tokens.

>>> from tracegym.agents.trace_model import build_trace_model
>>> model = build_trace_model("trace_lm", "transformer", seq_len=128, dim=32, depth=1)
>>> model.config["tokenizer"]["vocab_size"]
268

* :mod:`.model`: :class:`TraceLM` (cached greedy ``generate``), :class:`TraceDiffusion`.
* :mod:`.decode`: prompts (the data builder's truncation rule), ``rollout`` (the model's own
  frames fed back), ``evaluate_exectrace`` (the three ExecTrace metrics beside the copy baseline),
  ``load_trace_model`` (a checkpoint; another tokenizer's raises).

The Trainer trains them with ``Trainer(cfg, policy_factory=trace_model_factory)`` (or by name once
``REASONERS`` lists them).
"""

from __future__ import annotations

from tracegym.agents.reasoners.tasks import TaskSpec, resolve_task
from tracegym.tracers.tokenizer import TraceTokenizer

from .model import FRAME_SEP_ID, TraceDiffusion, TraceLM, prompt_lengths, teacher_forced

TRACE_MODELS = {cls.NAME: cls for cls in (TraceLM, TraceDiffusion)}
TASK_NAME = "exectrace"  # the env folder: the Trainer's task name for these datasets

__all__ = ["FRAME_SEP_ID", "TRACE_MODELS", "TraceDiffusion", "TraceLM", "build_trace_model",
           "load_trace_model", "prompt_lengths", "teacher_forced", "trace_model_factory",
           "trace_task"]


def trace_task(seq_len: int) -> TaskSpec:
    """The TaskSpec of a ``tracegym data trace_lm`` dataset of ``seq_len`` tokens."""
    return TaskSpec(TASK_NAME, vocab_size=TraceTokenizer().vocab_size, seq_len=seq_len)


def build_trace_model(reasoner: str, backbone: str, task: TaskSpec | dict | None = None, *,
                      seq_len: int | None = None, **config):
    """``TRACE_MODELS[reasoner](backbone, task, **config)``; ``task`` defaults to
    ``trace_task(seq_len)``. ``build_trace_model(**model.config)`` rebuilds a model."""
    if reasoner not in TRACE_MODELS:
        raise ValueError(f"unknown trace model {reasoner!r}; valid names: "
                         f"{', '.join(TRACE_MODELS)}")
    if task is None:
        if seq_len is None:
            raise ValueError("pass task or seq_len")
        task = trace_task(seq_len)
    return TRACE_MODELS[reasoner](backbone, resolve_task(task), **config)


def trace_model_factory(spec: dict, cfg):
    """The Trainer's ``policy_factory`` for trace models: ``(task spec dict, TrainConfig)``."""
    model = {k: v for k, v in cfg.model.items() if k != "loss"}
    return build_trace_model(cfg.reasoner, cfg.backbone, TaskSpec(**spec), loss=cfg.loss,
                             **model)


def load_trace_model(path, device="cpu", *, weights: str = "ema"):
    """A trace model from a Trainer checkpoint (file or run directory), in eval mode.

    ValueError when the checkpoint is not a trace model or was made with another tokenizer.
    """
    from tracegym.training.checkpoint import Checkpoint

    ckpt = Checkpoint(path)
    config = dict(ckpt.policy_config)
    if config.get("reasoner") not in TRACE_MODELS:
        raise ValueError(f"checkpoint {str(ckpt.path)!r} holds a {config.get('reasoner')!r} "
                         f"model, not a trace model ({', '.join(TRACE_MODELS)})")
    if not isinstance(config.get("tokenizer"), dict):
        raise ValueError(f"checkpoint {str(ckpt.path)!r} records no tokenizer")
    TraceTokenizer().check_compatible(config["tokenizer"])
    model = build_trace_model(**config)
    ckpt.load_model(model, weights=weights)
    return model.to(device).eval()
