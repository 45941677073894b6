"""Kimi Delta Attention layer (Kimi Linear, 2025): Gated DeltaNet with a per-channel forget gate.

Follows fla's ``layers/kda.py`` in structure: q, k, v projections through causal short
convolutions and SiLU, q and k L2-normalised, a channel-wise log decay from a low-rank projection
``g = -exp(A_log[h]) * softplus(W_f2 W_f1 x + dt_bias)`` (one value per key channel; A_log per
head, dt_bias per channel), ``beta = sigmoid(W_b x)``, then per-head RMSNorm times a sigmoid
output gate from a second low-rank projection, and the output projection. The short convolution,
the cache (a ``DeltaCache``) and the bidirectional mode (a second, reversed scan) are those of
:class:`GatedDeltaNet`, which this class extends.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cache import DeltaCache
from .gated_deltanet import GatedDeltaNet
from .kda_rule import kda


class KimiDeltaAttention(GatedDeltaNet):
    """KDA mixer over (B, T, D).

    Args:
        dim (int): model width D.
        heads (int): number of heads H; key width ``dk = dim // heads``.
        causal (bool): one forward scan (True) or forward + reversed scans averaged (False).
        expand_v (float, default 1.0): value width ``dv = int(dk * expand_v)``.
        conv_size (int, default 4): short depthwise convolution kernel on q, k, v.
        chunk_size (int, default 64): chunk length of the chunked op.
        impl (str, default "auto"): one of ``delta_rule.IMPLS``; see ``kda_rule.kda``.
    Parameters: ``D (2 H dk + H dv)`` (q, k, v) ``+ D H`` (beta) ``+ dv (D + H dk)`` (decay,
    low rank dv) ``+ dv (D + H dv) + H dv`` (output gate, low rank dv, with bias) ``+ H dv D``
    (output) ``+ (2 H dk + H dv) conv_size`` (x2 bidirectional) ``+ H + H dk + dv``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        expand_v: float = 1.0,
        conv_size: int = 4,
        chunk_size: int = 64,
        impl: str = "auto",
    ):
        super().__init__(dim, heads, causal, expand_v, conv_size, chunk_size, impl)
        H, dk, dv = heads, self.dk, self.dv
        # Replace the parent's scalar-per-head gates with KDA's channel-wise ones (as fla: the
        # decay and output-gate projections are low rank, rank dv).
        del self.a_proj
        self.f_proj = nn.Sequential(
            nn.Linear(dim, dv, bias=False), nn.Linear(dv, H * dk, bias=False)
        )  # decay input, (B, T, H dk)
        self.g_proj = nn.Sequential(
            nn.Linear(dim, dv, bias=False), nn.Linear(dv, H * dv, bias=True)
        )  # output gate input, (B, T, H dv)
        # Decay rate per head exp(A_log) in [1, 16] (as GatedDeltaNet); step softplus(dt_bias)
        # log-uniform in [1e-3, 1e-1] per channel, so channels start with a spread of memories.
        dt = torch.exp(torch.empty(H * dk).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def empty_cache(self) -> DeltaCache:
        return DeltaCache()

    def _short_conv(self, u: torch.Tensor, weight: torch.Tensor, left: torch.Tensor | None):
        y, tail = super()._short_conv(u, weight, left)
        # The tail is a slice of the whole (B, C, conv_size - 1 + T) input: copy it so a long
        # prefill does not keep that input alive in the cache.
        return y, tail.clone()

    def forward(self, x: torch.Tensor, cache: DeltaCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, dk, dv = self.heads, self.dk, self.dv
        u = self.in_proj(x)  # (B, T, C)
        # Gates in at least float32 (see GatedDeltaNet).
        gd = torch.promote_types(x.dtype, torch.float32)
        f = F.softplus(self.f_proj(x).to(gd) + self.dt_bias.to(gd)).view(B, T, H, dk)
        g = -self.A_log.to(gd).exp()[:, None] * f  # (B, T, H, dk) log decays
        beta = torch.sigmoid(self.b_proj(x).to(gd))  # (B, T, H)
        op = dict(scale=dk**-0.5, impl=self.impl, chunk_size=self.chunk_size)

        uf, conv_state = self._short_conv(u, self.conv, None if cache is None else cache.conv)
        q, k, v = self._heads(uf)
        o, state = kda(q, k, v, g, beta, initial_state=None if cache is None else cache.state, **op)
        if cache is not None:
            cache.conv, cache.state, cache.length = conv_state, state, cache.length + T
        if not self.causal:
            ur, _ = self._short_conv(u.flip(1), self.conv_rev, None)
            qr, kr, vr = self._heads(ur)
            o_rev, _ = kda(qr, kr, vr, g.flip(1), beta.flip(1), **op)
            o = 0.5 * (o + o_rev.flip(1))
        o = self.o_norm(o) * torch.sigmoid(self.g_proj(x).view(B, T, H, dv))
        return self.out(o.reshape(B, T, H * dv))
