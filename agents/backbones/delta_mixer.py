"""What the Gated DeltaNet and KDA layers share: q, k, v from one projection through a causal
short convolution and SiLU, q and k L2-normalised per head, a gated delta-rule scan (one over the
sequence, plus one over the reversed sequence when bidirectional), a per-head RMSNorm times an
output gate, and the output projection. A subclass brings its gates: the decay and output-gate
projections, the decay's shape (one per head or one per key channel) and its op.

Bidirectional mode (grid tasks): the same q/k/v projections and gates feed two scans, one over the
sequence and one over the reversed sequence; the reversed scan has its own short convolution,
causal in the reversed order, i.e. anti-causal in the original one. The two outputs are averaged
before the output norm. It doubles the scan cost (both run as one scan over 2B sequences) and
adds only ``C * conv_size`` parameters.
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

    def _short_conv(self, full: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv + SiLU: ``full`` (..., conv_size - 1 + T, C) holds the inputs
        with ``conv_size - 1`` earlier ones (zeros before the start) in front; ``weight``
        (..., C, conv_size) broadcasts against it. Returns (..., T, C).

        One multiply-add per tap on the (B, T, C) layout instead of ``F.conv1d``: no transposes,
        and autograd's backward is elementwise too, where depthwise conv1d's backward was the
        slowest op of a small Gated DeltaNet training step on CPU (about 5 ms of 60 per layer).
        """
        T = full.shape[-2] - (self.conv_size - 1)
        w = weight.to(full.dtype)
        y = full[..., :T, :] * w[..., 0]
        for i in range(1, self.conv_size):  # tap i reads input t + i - (conv_size - 1)
            y = torch.addcmul(y, full[..., i:i + T, :], w[..., i])
        return F.silu(y)

    def _heads(self, u: torch.Tensor):
        """q, k L2-normalised per head (one op for both) and v, from u (N, T, C)."""
        N, T, _ = u.shape
        hk = self.heads * self.dk
        qk = u[..., :2 * hk].unflatten(-1, (2 * self.heads, self.dk))  # (N, T, 2H, dk)
        # x / max(|x|, eps) as F.normalize, through rsqrt of the sum of squares: one reduction,
        # cheaper than linalg.vector_norm's at dk = 16
        qk = qk * torch.rsqrt(qk.square().sum(-1, keepdim=True).clamp_min(1e-12))
        q, k = qk.split(self.heads, dim=-2)
        return q, k, u[..., 2 * hk:].view(N, T, self.heads, self.dv)

    def forward(self, x: torch.Tensor, cache: DeltaCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        K = self.conv_size
        u = self.in_proj(x)  # (B, T, C)
        # Gates in at least float32: exp of a sum of many small log decays is the sensitive part.
        gate_dtype = torch.promote_types(x.dtype, torch.float32)
        g = self._log_decay(x, gate_dtype)
        beta = torch.sigmoid(self.b_proj(x).to(gate_dtype))  # (B, T, H)
        op = dict(scale=self.dk**-0.5, impl=self.impl, chunk_size=self.chunk_size)
        weight = self.conv[:, 0]  # (C, K)
        if self.causal:
            left = u.new_zeros(B, K - 1, u.shape[-1]) if cache is None or cache.conv is None \
                else cache.conv.transpose(1, 2).to(u.dtype)
            full = torch.cat((left, u), dim=1)  # (B, K - 1 + T, C)
            q, k, v = self._heads(self._short_conv(full, weight))
            o, state = self.rule(q, k, v, g, beta,
                                 initial_state=None if cache is None else cache.state, **op)
            if cache is not None:
                # (B, C, K - 1), its own storage: it must not keep the whole input alive
                cache.conv = full[:, full.shape[1] - (K - 1):].transpose(1, 2).clone()
                cache.state, cache.length = state, cache.length + T
        else:
            if cache is not None:
                raise ValueError("a decoding cache needs causal=True; this layer is "
                                 "bidirectional")
            # Both directions in one batched pass: the reversed sequence stacked under the
            # forward one, each with its own convolution; one scan over 2B sequences.
            full = F.pad(torch.stack((u, u.flip(1))), (0, 0, K - 1, 0))  # (2, B, K-1+T, C)
            weights = torch.stack((weight, self.conv_rev[:, 0]))[:, None, None]  # (2,1,1,C,K)
            uf = self._short_conv(full, weights).flatten(0, 1)  # (2B, T, C)
            q, k, v = self._heads(uf)
            o2, _ = self.rule(q, k, v, torch.cat((g, g.flip(1))), torch.cat((beta, beta.flip(1))),
                              **op)
            o = 0.5 * (o2[:B] + o2[B:].flip(1))
        o = self.o_norm(o) * self._output_gate(x)
        return self.out(o.reshape(B, T, self.heads * self.dv))
