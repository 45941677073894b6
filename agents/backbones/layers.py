"""Shared building blocks: RMSNorm, SwiGLU, rotary position embeddings, TRM's weight init.

Follows TRM's ``models/layers.py`` and ``models/common.py`` in the numbers (SwiGLU hidden size
rounded up to a multiple of 256, rotary with base 10000 and the "rotate half" layout, RMSNorm with
or without a gain, truncated LeCun-normal init) but not in the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def find_multiple(a: int, b: int) -> int:
    """Smallest multiple of ``b`` that is >= ``a``."""
    return -(a // -b) * b


def swiglu_hidden(dim: int, expansion: float, multiple_of: int) -> int:
    """TRM's SwiGLU width: round(expansion * dim * 2/3) rounded up to ``multiple_of``.

    The 2/3 keeps the parameter count of a plain ``expansion``-wide MLP (SwiGLU has three
    matrices instead of two).
    """
    return find_multiple(round(expansion * dim * 2 / 3), multiple_of)


# Truncation of the LeCun-normal init, in standard deviations of the normal before truncation
# (TRM's trunc_normal_init_, as JAX/Flax's default initialiser).
TRUNC_BOUND = 2.0


def _truncated_std_factor(bound: float = TRUNC_BOUND) -> float:
    """sigma / std of a normal of std sigma truncated to [-bound sigma, bound sigma]: the factor
    TRM's ``trunc_normal_init_`` multiplies by so the truncated values have the requested std
    (1.1369 at bound 2; truncation alone would leave 0.880 of it)."""
    z = math.erf(bound / math.sqrt(2))  # mass inside the bounds
    pdf = math.exp(-0.5 * bound**2) / math.sqrt(2 * math.pi)
    return 1 / math.sqrt(1 - 2 * bound * pdf / z)


TRUNC_STD_FACTOR = _truncated_std_factor()


def trunc_normal_std_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Fill ``tensor`` in place with a truncated normal whose std is ``std`` (TRM / JAX).

    The underlying normal has std ``std * TRUNC_STD_FACTOR`` and is cut at ``TRUNC_BOUND`` of its
    own std (so no value exceeds ``2 * 1.1369 * std``). PyTorch's ``trunc_normal_`` takes its
    bounds in absolute units and does not correct the std; this passes it both.
    """
    sigma = std * TRUNC_STD_FACTOR
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        return nn.init.trunc_normal_(tensor, 0.0, sigma, -TRUNC_BOUND * sigma,
                                     TRUNC_BOUND * sigma)


def lecun_normal_(linear: nn.Linear) -> nn.Linear:
    """TRM's ``CastedLinear`` init: weight truncated LeCun normal (std 1/sqrt(fan_in)), bias 0."""
    trunc_normal_std_(linear.weight, 1 / math.sqrt(linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


class RMSNorm(nn.Module):
    """RMSNorm over one axis, with or without a learnable scale (initialised to ones).

    Args:
        dim (int): size of the normalised axis.
        eps (float, default 1e-5): added to the mean square.
        gain (bool, default True): a learnable per-element scale; TRM's ``rms_norm`` has none.
        axis (int, default -1): the normalised axis, -1 (channels of (B, T, D)) or -2 (the
            sequence of (B, T, D), as TRM's mlp_t post-norm on its transposed states).
    Parameters: ``dim`` with a gain, else none.
    """

    def __init__(self, dim: int, eps: float = 1e-5, gain: bool = True, axis: int = -1):
        super().__init__()
        if axis not in (-1, -2):
            raise ValueError(f"RMSNorm axis must be -1 or -2, got axis={axis}")
        self.eps, self.axis = eps, axis
        self.weight = nn.Parameter(torch.ones(dim)) if gain else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The statistic is taken in float32 so bf16 activations do not underflow; the output keeps
        # the input dtype.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.square().mean(self.axis, keepdim=True) + self.eps)
        y = xf.to(x.dtype)
        if self.weight is None:
            return y
        w = self.weight.to(x.dtype)
        return y * (w if self.axis == -1 else w[:, None])


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``, the gate and up projections fused in one matrix.

    Args:
        dim (int): input and output width.
        expansion (float, default 4.0): nominal width ratio (TRM uses 4).
        multiple_of (int, default 256): the hidden width is rounded up to a multiple of this (TRM).
    Parameters: ``3 * dim * hidden`` with ``hidden = swiglu_hidden(dim, expansion, multiple_of)``.
    """

    def __init__(self, dim: int, expansion: float = 4.0, multiple_of: int = 256):
        super().__init__()
        self.hidden = swiglu_hidden(dim, expansion, multiple_of)
        self.gate_up = nn.Linear(dim, 2 * self.hidden, bias=False)
        self.down = nn.Linear(self.hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two products with the halves of the fused weight rather than one product cut in two:
        # gate and up come out contiguous, and the backward sums two input gradients instead of
        # concatenating the (..., 2 * hidden) gradient, the largest copy of a small CPU step.
        w = self.gate_up.weight  # (2 * hidden, dim): gate rows, then up rows
        gate, up = F.linear(x, w[:self.hidden]), F.linear(x, w[self.hidden:])
        return self.down(F.silu(gate) * up)


class Rotary(nn.Module):
    """Rotary position embedding (RoPE), "rotate half" layout as in TRM / Llama.

    cos and sin are computed for the requested positions on each call (cheap next to attention),
    so decoding past any fixed length needs no table.

    Args:
        head_dim (int): per-head width; must be even.
        base (float, default 10000.0): frequency base.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head_dim, got head_dim={head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x`` of shape (B, T, ..., hd) (e.g. (B, T, H, hd), or (B, T, 2, H, hd) for q
        and k at once) as positions ``offset .. offset + T - 1``."""
        t = torch.arange(offset, offset + x.shape[1], device=x.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)  # (T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd)
        emb = emb.view(emb.shape[0], *([1] * (x.dim() - 3)), emb.shape[1])  # (T, 1.., hd)
        cos, sin = emb.cos(), emb.sin()
        xf = x.float()
        x1, x2 = xf.chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
        return (xf * cos + rotated * sin).to(x.dtype)
