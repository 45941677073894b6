"""Gated DeltaNet layer (Yang et al., 2024), the linear-time mixer of Qwen3-Next's hybrid.

One scalar decay per head, ``g = -exp(A_log) * softplus(W_a x + dt_bias)``, write strength
``beta = sigmoid(W_b x)`` and a SiLU output gate; the short convolution, the scans, the cache (a
``DeltaCache``) and the bidirectional mode are shared with KDA (see delta_mixer.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .delta_mixer import DeltaMixer
from .delta_rule import gated_delta_rule


class GatedDeltaNet(DeltaMixer):
    """Gated DeltaNet mixer over (B, T, D).

    Args:
        dim (int): model width D.
        heads (int): number of heads H; key width ``dk = dim // heads``.
        causal (bool): one forward scan (True) or forward + reversed scans averaged (False).
        expand_v (float, default 1.0): value width ``dv = int(dk * expand_v)`` (fla uses 2).
        conv_size (int, default 4): short depthwise convolution kernel on q, k, v.
        chunk_size (int, default 64): longest chunk of the chunked op (fitted to T).
        impl (str, default "auto"): one of ``IMPLS``; see ``delta_rule.gated_delta_rule``.
    The options after ``causal`` are keyword-only.
    Parameters: ``D (2 H dk + 2 H dv) + 2 D H`` (projections: q, k, v, output gate; a, b)
    ``+ H dv D`` (output) ``+ (2 H dk + H dv) conv_size`` (x2 bidirectional) ``+ 2 H + dv``.
    """

    per_channel = False
    rule = staticmethod(gated_delta_rule)

    def _make_gates(self, dim: int) -> None:
        H, dv = self.heads, self.dv
        self.a_proj = nn.Linear(dim, H, bias=False)  # decay input
        self.b_proj = nn.Linear(dim, H, bias=False)  # write strength input
        self.g_proj = nn.Linear(dim, H * dv, bias=False)  # output gate

    def _log_decay(self, x: torch.Tensor, gate_dtype: torch.dtype) -> torch.Tensor:
        dt = self.a_proj(x).to(gate_dtype) + self.dt_bias.to(gate_dtype)
        return -self.A_log.to(gate_dtype).exp() * F.softplus(dt)  # (B, T, H)

    def _output_gate(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return F.silu(self.g_proj(x).view(B, T, self.heads, self.dv))
