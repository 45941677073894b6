"""tracegym.training: one Trainer for every reasoner, and evaluation in the environments.

:mod:`.config` (``TrainConfig``), :mod:`.trainer` (the loop: deep supervision, EMA, AMP, DDP,
exact resume), :mod:`.optim` (AdamATan2, lr schedule, EMA), :mod:`.checkpoint` (safetensors),
:mod:`.evaluate` (``evaluate_in_env``), :mod:`.evaluate_traces` (trace models scored on
ExecTrace), :mod:`.plot`, :mod:`.cli` (``tracegym train/eval/plot``), :mod:`.trace_model_cli`
(``tracegym trace-model``), :mod:`.prepare` (device, seeds, checked data, policy factories),
:mod:`.distributed` (DDP collectives).
Names below load on first use, so the CLI can list commands without importing torch.
"""

from __future__ import annotations

import importlib

# public name -> submodule defining it
_EXPORTS = {
    "TrainConfig": "config", "load_config": "config", "apply_overrides": "config",
    "Trainer": "trainer", "NonFiniteError": "trainer", "policy_from_checkpoint": "prepare",
    "AdamATan2": "optim", "EMA": "optim", "lr_factor": "optim", "build_optimizer": "optim",
    "Checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "load_trace_model": "checkpoint",
    "evaluate_exectrace": "evaluate_traces",
    "evaluate_in_env": "evaluate", "evaluate_split": "evaluate",
    "solve_with_confidence": "evaluate", "evaluate_arc_split": "arc_eval",
    "evaluate_arc_env": "arc_eval", "TrainOrder": "sampling",
    "plot_run": "plot", "task_spec": "tasks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
