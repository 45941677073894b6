"""Reasoners: models that map a puzzle's input tokens to its answer tokens.

>>> import torch
>>> from tracegym.agents.reasoners import TaskSpec, build_policy
>>> sudoku4 = TaskSpec("sudoku4", vocab_size=6, seq_len=16)
>>> model = build_policy("trm", "mlp_mixer", sudoku4, dim=32, depth=1, N_sup=2)
>>> batch = {"inputs": torch.ones(2, 16, dtype=torch.long), "labels": torch.full((2, 16), 2)}
>>> [round(out.metrics["steps"]) for out in model.supervision_steps(batch)]
[1, 2]
>>> model.solve(batch["inputs"]).shape
torch.Size([2, 16])

``REASONERS`` names every model the Trainer trains: the puzzle reasoners here and the trace
models of ``tracegym.agents.trace_model`` (``TRACE_REASONERS``), which read CWM trace text.

``NAMED_CONFIGS["trm-sudoku-extreme"]`` is a paper configuration; its ``"task"`` names the env
task, whose TaskSpec the training layer builds (``tracegym.training.tasks.task_spec``), and
``build_policy(**model.config)`` rebuilds a model's architecture (checkpoints store ``config``).
Each reasoner's keys are the fields of its config dataclass (``TRMConfig``, ``HRMConfig``, ...;
:mod:`.config`), checked on construction and read as ``model.cfg.H_cycles``.
A named config with a file ``configs/<name>.yaml`` agrees with it (tests/training/test_configs.py
checks reasoner, backbone, loss and every model key).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .autoregressive import Autoregressive
from .base import (
    InputEmbedding,
    Reasoner,
    StepOutput,
    log_stablemax,
    sequence_loss,
    token_loss,
)
from .config import LOSSES, ReasonerConfig, ReasonerConfigError, UnknownKeyError
from .diffusion import DiffusionConfig, MaskedDiffusion
from .feedforward import FeedForward
from .hrm import HRM, HRMConfig
from .tasks import TaskSpec, resolve_task
from .trm import TRM, TRMConfig


class Registry(Mapping[str, type[Reasoner]]):
    """Reasoner classes by name, each given as ``"module:Class"`` and imported on first lookup.

    By string, so the registry can list the trace models (``tracegym.agents.trace_model``, whose
    classes import :mod:`.base`) without this package importing theirs: the imports point one
    way. ``name in REASONERS`` and listing the names import nothing.
    """

    def __init__(self, paths: dict[str, str]):
        self._paths = dict(paths)
        self._classes: dict[str, type[Reasoner]] = {}

    def __getitem__(self, name: str) -> type[Reasoner]:
        if name not in self._classes:
            module, _, attr = self._paths[name].partition(":")  # KeyError for an unknown name
            self._classes[name] = getattr(importlib.import_module(module), attr)
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"Registry({self._paths!r})"


# grid puzzles (input tokens -> answer tokens) and trace models (CWM trace text: a causal LM and a
# masked-diffusion infiller); all train with the same Trainer
PUZZLE_REASONERS = ("feedforward", "trm", "hrm", "diffusion", "autoregressive")
TRACE_REASONERS = ("trace_lm", "trace_diffusion")
REASONERS = Registry({
    "feedforward": f"{__name__}.feedforward:FeedForward",
    "trm": f"{__name__}.trm:TRM",
    "hrm": f"{__name__}.hrm:HRM",
    "diffusion": f"{__name__}.diffusion:MaskedDiffusion",
    "autoregressive": f"{__name__}.autoregressive:Autoregressive",
    "trace_lm": "tracegym.agents.trace_model.model:TraceLM",
    "trace_diffusion": "tracegym.agents.trace_model.model:TraceDiffusion",
})

# TRM (config/arch/trm.yaml and the README's commands): 2 layers, hidden 512, 8 heads, expansion 4,
# stablemax, halt exploration 0.1, up to 16 supervision steps, a 16-token puzzle embedding of
# hidden size (for Sudoku and maze there is one identifier, so it is a learned prefix).
# Sudoku uses the attention-free mlp_t (our mlp_mixer) with T=3, n=6; maze and ARC attention
# with T=3, n=4.
# Both papers' layers (TRM's models/layers.py, from HRM's) have a weightless rms_norm and a
# truncated LeCun-normal init: norm_gain=False, init="lecun_normal".
_PAPER_LAYERS = dict(norm_gain=False, init="lecun_normal")
_TRM = dict(reasoner="trm", dim=512, depth=2, heads=8, norm="post", expansion=4.0,
            loss="stablemax", N_sup=16, halt_exploration_prob=0.1, puzzle_emb_len=16,
            **_PAPER_LAYERS)
# HRM (config/arch/hrm_v1.yaml): 4 + 4 transformer layers, hidden 512, 8 heads, H_cycles 2,
# L_cycles 2, 16 ACT segments, one puzzle-embedding token of hidden size.
_HRM = dict(reasoner="hrm", backbone="transformer", dim=512, heads=8, norm="post",
            expansion=4.0, loss="stablemax", H_cycles=2, L_cycles=2, H_layers=4, L_layers=4,
            halt_max_steps=16, halt_exploration_prob=0.1, puzzle_emb_len=1, **_PAPER_LAYERS)
# "task" names the env task (and size: sudoku4); the agents cannot turn it into a TaskSpec, the
# training layer does: build_policy(**{**cfg, "task": training.tasks.task_spec(cfg["task"])}).
NAMED_CONFIGS: dict[str, dict] = {
    "trm-sudoku-extreme": {**_TRM, "backbone": "mlp_mixer", "task": "sudoku",
                           "H_cycles": 3, "L_cycles": 6},
    "trm-att-sudoku-extreme": {**_TRM, "backbone": "transformer", "task": "sudoku",
                               "H_cycles": 3, "L_cycles": 6},
    "trm-maze-hard": {**_TRM, "backbone": "transformer", "task": "maze",
                      "H_cycles": 3, "L_cycles": 4},
    # ARC: pass the dataset's task, TaskSpec.from_metadata("arc", meta), so the puzzle table has
    # one row per augmented task identifier.
    "trm-arc-agi-1": {**_TRM, "backbone": "transformer", "task": "arc",
                      "H_cycles": 3, "L_cycles": 4},
    "hrm-sudoku-extreme": {**_HRM, "task": "sudoku"},
    "hrm-maze-hard": {**_HRM, "task": "maze"},
    "hrm-arc-agi-1": {**_HRM, "task": "arc"},
    # The CPU recipe: a tiny TRM that learns 4x4 Sudoku in about a minute on 2 cores.
    "trm-sudoku4-cpu": dict(reasoner="trm", backbone="mlp_mixer", task="sudoku4", dim=64,
                            depth=2, heads=4, multiple_of=16, H_cycles=2, L_cycles=2, N_sup=4,
                            loss="stablemax"),
    # Its 6x6 twin: the same network, >= 95% of 6x6 minimal puzzles in about 4 minutes.
    "trm-sudoku6-cpu": dict(reasoner="trm", backbone="mlp_mixer", task="sudoku6", dim=64,
                            depth=2, heads=4, multiple_of=16, H_cycles=2, L_cycles=2, N_sup=4,
                            loss="stablemax"),
    # ... and for 9x9, an hour on 2 cores.
    "trm-sudoku9-cpu": dict(reasoner="trm", backbone="mlp_mixer", task="sudoku", dim=64,
                            depth=2, heads=4, multiple_of=16, H_cycles=2, L_cycles=2, N_sup=4,
                            loss="stablemax"),
    # The same TRM on attention (4x4: attention needs more data and steps than the mixer).
    "trm-att-sudoku4-cpu": dict(reasoner="trm", backbone="transformer", task="sudoku4", dim=64,
                                depth=2, heads=4, multiple_of=16, H_cycles=2, L_cycles=2,
                                N_sup=4, loss="stablemax"),
}

__all__ = [
    "LOSSES", "NAMED_CONFIGS", "PUZZLE_REASONERS", "REASONERS", "TRACE_REASONERS", "HRM",
    "TRM", "Autoregressive", "DiffusionConfig", "FeedForward", "HRMConfig", "InputEmbedding",
    "MaskedDiffusion", "Reasoner", "ReasonerConfig", "ReasonerConfigError", "Registry",
    "StepOutput", "TRMConfig", "TaskSpec", "UnknownKeyError", "build_policy", "log_stablemax",
    "sequence_loss", "token_loss",
]


def build_policy(reasoner: str, backbone: str, task: TaskSpec | dict, **config) -> Reasoner:
    """Build a reasoner by name over a backbone by name for a task.

    Args:
        reasoner (str): one of ``REASONERS``.
        backbone (str): one of ``tracegym.agents.backbones.BACKBONES``.
        task (TaskSpec | dict): a spec or a stored spec dict (a task name is resolved above
            this layer: ``tracegym.training.tasks.task_spec("sudoku4")``).
        **config: the fields of the reasoner's config dataclass (``REASONERS[name].Config``, e.g.
            :class:`TRMConfig`; ``REASONERS[name].valid_keys()`` lists them). An unknown key
            raises :class:`UnknownKeyError` naming the valid ones, a bad value
            :class:`ReasonerConfigError` naming the key and the value (both ValueErrors).
    """
    if reasoner not in REASONERS:
        raise ReasonerConfigError(f"unknown reasoner {reasoner!r}; valid names: "
                                  f"{', '.join(REASONERS)}")
    return REASONERS[reasoner](backbone, resolve_task(task), **config)
