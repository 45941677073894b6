"""Shared building blocks: RMSNorm, SwiGLU, rotary position embeddings.

Follows TRM's ``models/layers.py`` in the numbers (SwiGLU hidden size rounded up to a multiple of
256, rotary with base 10000 and the "rotate half" layout) but not in the code.
"""

from __future__ import annotations

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


class RMSNorm(nn.Module):
    """RMSNorm over the last axis with a learnable scale (initialised to ones).

    Args:
        dim (int): size of the normalised axis.
        eps (float, default 1e-5): added to the mean square.
    Parameters: ``dim``.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The statistic is taken in float32 so bf16 activations do not underflow; the output keeps
        # the input dtype.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps)
        return xf.to(x.dtype) * self.weight.to(x.dtype)


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
        gate, up = self.gate_up(x).chunk(2, dim=-1)
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
        """Rotate ``x`` of shape (B, T, H, hd) as positions ``offset .. offset + T - 1``."""
        t = torch.arange(offset, offset + x.shape[1], device=x.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)  # (T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]  # (T, 1, hd)
        cos, sin = emb.cos(), emb.sin()
        xf = x.float()
        x1, x2 = xf.chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
        return (xf * cos + rotated * sin).to(x.dtype)
