"""Multi-head self-attention with rotary embeddings, optional output gate and QK-norm, KV cache.

The plain transformer mixer is ``Attention(gate=False, qk_norm=False)``; the Qwen3-Next gated
attention (gated_attention.py) is the same module with both switched on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache
from .layers import RMSNorm, Rotary


class Attention(nn.Module):
    """Self-attention over (B, T, D) through ``F.scaled_dot_product_attention``.

    Args:
        dim (int): model width D.
        heads (int): number of heads; ``dim % heads == 0`` and ``dim // heads`` even (rotary).
        causal (bool): mask future positions.
        gate (bool, default False): multiply the attention output element-wise by
            ``sigmoid(W_g x)`` before the output projection (Qwen3-Next).
        qk_norm (bool, default False): RMSNorm per head on q and k (before rotary).
        rope (bool, default True): rotary position embeddings on q and k.
        rope_base (float, default 10000.0): rotary frequency base.
    Parameters: ``4 D^2`` (``5 D^2`` with the gate) plus ``2 D / heads`` for QK-norm.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        gate: bool = False,
        qk_norm: bool = False,
        rope: bool = True,
        rope_base: float = 10000.0,
    ):
        super().__init__()
        self.heads, self.head_dim, self.causal = heads, dim // heads, causal
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.g_proj = nn.Linear(dim, dim, bias=False) if gate else None
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else None
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else None
        self.rotary = Rotary(self.head_dim, rope_base) if rope else None
        self.out = nn.Linear(dim, dim, bias=False)

    def empty_cache(self) -> KVCache:
        return KVCache()

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, self.head_dim)
        q, k, v = qkv.unbind(2)  # (B, T, H, hd)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        past = 0 if cache is None else cache.length
        if self.rotary is not None:
            # q and k rotated in one call (half the ops; the angles are computed once)
            qk = qkv[:, :, :2] if self.q_norm is None else torch.stack((q, k), dim=2)
            q, k = self.rotary(qk, past).unbind(2)  # (B, T, 2, H, hd) -> 2 x (B, T, H, hd)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if cache is not None:
            if past:
                k, v = torch.cat((cache.k, k), dim=2), torch.cat((cache.v, v), dim=2)
            else:  # own storage: a view would keep the whole qkv projection (queries too) alive
                k, v = k.contiguous(), v.contiguous()
            cache.k, cache.v = k, v
        mask, is_causal = None, self.causal
        if self.causal and past:
            # SDPA's is_causal aligns the mask top-left; with a prefix of `past` keys, query i
            # (absolute position past + i) must see keys 0 .. past + i.
            is_causal = False
            if T > 1:
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        if self.g_proj is not None:
            y = y * torch.sigmoid(self.g_proj(x))
        return self.out(y)
