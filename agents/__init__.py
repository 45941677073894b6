"""tracegym.agents: sequence backbones and the reasoners built on them.

``build_policy(reasoner, backbone, task, **config)`` makes a model (see ``reasoners``);
``build_backbone(name, dim, depth, heads, seq_len, causal)`` the bare (B, T, D) network.
"""

from .backbones import BACKBONES, build_backbone
from .reasoners import NAMED_CONFIGS, REASONERS, Reasoner, StepOutput, TaskSpec, build_policy

__all__ = ["BACKBONES", "NAMED_CONFIGS", "REASONERS", "Reasoner", "StepOutput",
           "TaskSpec", "build_backbone", "build_policy"]
