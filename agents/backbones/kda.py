"""Kimi Delta Attention layer (Kimi Linear, 2025): Gated DeltaNet with a per-channel forget gate.

Follows fla's ``layers/kda.py`` in structure: q, k, v projections through causal short
convolutions and SiLU, q and k L2-normalised, a channel-wise log decay from a low-rank projection
``g = -exp(A_log[h]) * softplus(W_f2 W_f1 x + dt_bias)`` (one value per key channel; A_log per
head, dt_bias per channel), ``beta = sigmoid(W_b x)``, then per-head RMSNorm times a sigmoid
output gate from a second low-rank projection, and the output projection. The short convolution,
the scans, the cache (a ``DeltaCache``) and the bidirectional mode are shared with Gated DeltaNet
(see delta_mixer.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .delta_mixer import DeltaMixer
from .kda_rule import kda


class KimiDeltaAttention(DeltaMixer):
    """KDA mixer over (B, T, D).

    Args:
        dim (int): model width D.
        heads (int): number of heads H; key width ``dk = dim // heads``.
        causal (bool): one forward scan (True) or forward + reversed scans averaged (False).
        expand_v (float, default 1.0): value width ``dv = int(dk * expand_v)``.
        conv_size (int, default 4): short depthwise convolution kernel on q, k, v.
        chunk_size (int, default 64): longest chunk of the chunked op (fitted to T).
        impl (str, default "auto"): one of ``delta_rule.IMPLS``; see ``kda_rule.kda``.
    The options after ``causal`` are keyword-only.
    Parameters: ``D (2 H dk + H dv)`` (q, k, v) ``+ D H`` (beta) ``+ dv (D + H dk)`` (decay,
    low rank dv) ``+ dv (D + H dv) + H dv`` (output gate, low rank dv, with bias) ``+ H dv D``
    (output) ``+ (2 H dk + H dv) conv_size`` (x2 bidirectional) ``+ H + H dk + dv``.
    """

    per_channel = True
    rule = staticmethod(kda)

    def _make_gates(self, dim: int) -> None:
        H, dk, dv = self.heads, self.dk, self.dv
        # As fla: the decay and output-gate projections are low rank, rank dv.
        self.f_proj = nn.Sequential(
            nn.Linear(dim, dv, bias=False), nn.Linear(dv, H * dk, bias=False)
        )  # decay input, (B, T, H dk)
        self.b_proj = nn.Linear(dim, H, bias=False)  # write strength input
        self.g_proj = nn.Sequential(
            nn.Linear(dim, dv, bias=False), nn.Linear(dv, H * dv, bias=True)
        )  # output gate input, (B, T, H dv)

    def _log_decay(self, x: torch.Tensor, gate_dtype: torch.dtype) -> torch.Tensor:
        B, T, _ = x.shape
        f = F.softplus(self.f_proj(x).to(gate_dtype) + self.dt_bias.to(gate_dtype))
        f = f.view(B, T, self.heads, self.dk)
        return -self.A_log.to(gate_dtype).exp()[:, None] * f  # (B, T, H, dk)

    def _output_gate(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return torch.sigmoid(self.g_proj(x).view(B, T, self.heads, self.dv))
