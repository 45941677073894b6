"""What the Gated DeltaNet and KDA layers share: q, k, v from one projection through a causal
short convolution and SiLU, q and k L2-normalised per head, a gated delta-rule scan (one over the
sequence, plus one over the reversed sequence when bidirectional), a per-head RMSNorm times an
output gate, and the output projection. A subclass brings its gates: the decay and output-gate
projections, the decay's shape (one per head or one per key channel) and its op.

Bidirectional mode (grid tasks): the same q/k/v projections and gates feed two scans, one over the
sequence and one over the reversed sequence; the reversed scan has its own short convolution,
causal in the reversed order, i.e. anti-causal in the original one. The two outputs are averaged
before the output norm. It doubles the scan cost and adds only ``C * conv_size`` parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tracegym.checks import check_positive_int

from .cache import DeltaCache
from .delta_rule import IMPLS
from .layers import RMSNorm


class DeltaMixer(nn.Module):
    """Base of :class:`~.gated_deltanet.GatedDeltaNet` and :class:`~.kda.KimiDeltaAttention`.

    A subclass sets ``per_channel`` (decay per key channel, else per head) and ``rule`` (the op,
    ``gated_delta_rule`` or ``kda``), and implements ``_make_gates`` (the decay-input, write
    strength ``b_proj`` and output-gate projections), ``_log_decay`` and ``_output_gate``. The
    arguments are those of the subclasses (see their Args); options are keyword-only, so two of
    the same type (``conv_size``, ``chunk_size``) cannot be swapped unnoticed.
    """

    per_channel: bool
    rule = None  # the op: (q, k, v, g, beta, scale=, initial_state=, impl=, chunk_size=)

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        *,
        expand_v: float = 1.0,
        conv_size: int = 4,
        chunk_size: int = 64,
        impl: str = "auto",
    ):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got impl={impl!r}")
        conv_size = check_positive_int("conv_size", conv_size)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        self.heads, self.causal, self.impl, self.chunk_size = heads, causal, impl, chunk_size
        self.dk = dim // heads
        self.dv = int(self.dk * expand_v)
        if self.dv < 1:
            raise ValueError(f"expand_v={expand_v} gives a value width of {self.dv}")
        self.conv_size = conv_size
        channels = heads * (2 * self.dk + self.dv)
        self.in_proj = nn.Linear(dim, channels, bias=False)  # q, k, v before the convolution
        self._make_gates(dim)
        bound = 1 / math.sqrt(conv_size)
        self.conv = nn.Parameter(torch.empty(channels, 1, conv_size).uniform_(-bound, bound))
        self.conv_rev = (
            None
            if causal
            else nn.Parameter(torch.empty(channels, 1, conv_size).uniform_(-bound, bound))
        )
        # Mamba-style gate init: decay rate exp(A_log) per head in [1, 16], step softplus(dt_bias)
        # log-uniform in [1e-3, 1e-1] (per head, or per key channel), so heads (channels) start
        # with a spread of memory lengths.
        self.A_log = nn.Parameter(torch.empty(heads).uniform_(1, 16).log())
        width = heads * self.dk if self.per_channel else heads
        dt = torch.exp(torch.empty(width).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.o_norm = RMSNorm(self.dv)
        self.out = nn.Linear(heads * self.dv, dim, bias=False)

    def _make_gates(self, dim: int) -> None:
        raise NotImplementedError

    def _log_decay(self, x: torch.Tensor, gate_dtype: torch.dtype) -> torch.Tensor:
        """Log decays g <= 0 in ``gate_dtype``: (B, T, H), or (B, T, H, dk) when per channel."""
        raise NotImplementedError

    def _output_gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate multiplying the normalised output, (B, T, H, dv)."""
        raise NotImplementedError

    def empty_cache(self) -> DeltaCache:
        return DeltaCache()

    def _short_conv(self, u: torch.Tensor, weight: torch.Tensor, left: torch.Tensor | None):
        """Causal depthwise conv + SiLU on u (B, T, C); ``left`` holds the previous inputs."""
        B, T, C = u.shape
        u = u.transpose(1, 2)  # (B, C, T)
        if left is None:
            left = u.new_zeros(B, C, self.conv_size - 1)
        full = torch.cat((left, u), dim=-1)  # (B, C, conv_size - 1 + T)
        y = F.conv1d(full, weight.to(u.dtype), groups=C)  # (B, C, T)
        # clone: the kept tail must not hold the whole (B, C, T) input alive in a cache
        return F.silu(y).transpose(1, 2), full[..., full.shape[-1] - (self.conv_size - 1) :].clone()

    def _heads(self, u: torch.Tensor):
        B, T, _ = u.shape
        hk = self.heads * self.dk
        q, k, v = u.split((hk, hk, self.heads * self.dv), dim=-1)
        q = F.normalize(q.view(B, T, self.heads, self.dk), dim=-1, eps=1e-6)
        k = F.normalize(k.view(B, T, self.heads, self.dk), dim=-1, eps=1e-6)
        return q, k, v.view(B, T, self.heads, self.dv)

    def forward(self, x: torch.Tensor, cache: DeltaCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        u = self.in_proj(x)  # (B, T, C)
        # Gates in at least float32: exp of a sum of many small log decays is the sensitive part.
        gate_dtype = torch.promote_types(x.dtype, torch.float32)
        g = self._log_decay(x, gate_dtype)
        beta = torch.sigmoid(self.b_proj(x).to(gate_dtype))  # (B, T, H)
        op = dict(scale=self.dk**-0.5, impl=self.impl, chunk_size=self.chunk_size)

        uf, conv_state = self._short_conv(u, self.conv, None if cache is None else cache.conv)
        q, k, v = self._heads(uf)
        state = None if cache is None else cache.state
        o, state = self.rule(q, k, v, g, beta, initial_state=state, **op)
        if cache is not None:
            cache.conv, cache.state, cache.length = conv_state, state, cache.length + T
        if not self.causal:
            ur, _ = self._short_conv(u.flip(1), self.conv_rev, None)
            qr, kr, vr = self._heads(ur)
            o_rev, _ = self.rule(qr, kr, vr, g.flip(1), beta.flip(1), **op)
            o = 0.5 * (o + o_rev.flip(1))
        o = self.o_norm(o) * self._output_gate(x)
        return self.out(o.reshape(B, T, self.heads * self.dv))
