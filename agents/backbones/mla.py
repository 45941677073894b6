"""Multi-head latent attention (MLA, DeepSeek-V2/V3), the global layer of Kimi Linear.

Keys and values pass through a shared low-rank latent ``c = RMSNorm(W_dkv x)`` (latent_dim per
token) and are expanded per head, ``k = W_uk c``, ``v = W_uv c``; the decoding cache stores only
``c`` (plus, with rotary, one ``rope_dim`` key shared by all heads), instead of the
``2 * heads * head_dim`` numbers per token of a KV cache. Rotary embeddings cannot act on the
latent (they would not commute with ``W_uk``), so, as DeepSeek-V2, position enters through a
*decoupled* rotary part: ``rope_dim`` extra query dims per head and one extra key from x, shared by
the heads. With ``rope=False`` (NoPE, Kimi Linear's global layers) that part is dropped and
order comes only from the causal mask and the linear-attention layers around it.

Decoding re-expands the cached latent to keys and values at every call (no weight absorption):
simple and exact; the absorbed form that attends in latent space is a later optimisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tracegym.checks import check_positive_int

from .cache import LatentCache
from .layers import RMSNorm, Rotary


def default_rope_dim(head_dim: int) -> int:
    """Decoupled rotary width: half the head width, rounded to an even number (DeepSeek-V2 uses 64
    with 128-wide heads)."""
    return max(2, 2 * (head_dim // 4))


class MultiHeadLatentAttention(nn.Module):
    """MLA over (B, T, D) through ``F.scaled_dot_product_attention``.

    Args:
        dim (int): model width D.
        heads (int): number of heads H; ``head_dim = dim // heads``.
        causal (bool): mask future positions.
        latent_dim (int): width L of the key-value latent; >= 1.
        rope (bool, default True): decoupled rotary part on; False is NoPE.
        rope_base (float, default 10000.0): rotary frequency base.
        gate (bool, default False): multiply the attention output by ``sigmoid(W_g x)`` before the
            output projection (as gated attention).
    Parameters, with R = ``default_rope_dim(head_dim)`` (0 with NoPE) and hd = head_dim:
    ``D H (hd + R)`` (q) ``+ D (L + R)`` (down) ``+ L`` (latent norm) ``+ 2 L H hd`` (up)
    ``+ D^2`` (output) ``+ D^2`` with the gate.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        latent_dim: int,
        rope: bool = True,
        rope_base: float = 10000.0,
        gate: bool = False,
    ):
        super().__init__()
        latent_dim = check_positive_int("latent_dim", latent_dim)
        self.heads, self.head_dim, self.causal = heads, dim // heads, causal
        self.latent_dim = latent_dim
        self.rope_dim = default_rope_dim(self.head_dim) if rope else 0
        H, hd, R = heads, self.head_dim, self.rope_dim
        self.q_proj = nn.Linear(dim, H * (hd + R), bias=False)
        self.kv_down = nn.Linear(dim, latent_dim + R, bias=False)  # latent and shared rope key
        self.kv_norm = RMSNorm(latent_dim)
        self.kv_up = nn.Linear(latent_dim, 2 * H * hd, bias=False)  # per-head k (no rope) and v
        self.rotary = Rotary(R, rope_base) if rope else None
        self.g_proj = nn.Linear(dim, H * hd, bias=False) if gate else None
        self.out = nn.Linear(H * hd, dim, bias=False)

    def empty_cache(self) -> LatentCache:
        return LatentCache()

    def forward(self, x: torch.Tensor, cache: LatentCache | None = None) -> torch.Tensor:
        B, T, D = x.shape
        H, hd, R, L = self.heads, self.head_dim, self.rope_dim, self.latent_dim
        past = 0 if cache is None else cache.length
        q = self.q_proj(x).view(B, T, H, hd + R)
        latent, k_rope = self.kv_down(x).split((L, R), dim=-1)  # (B, T, L), (B, T, R)
        latent = self.kv_norm(latent)
        if self.rotary is not None:
            q = torch.cat((q[..., :hd], self.rotary(q[..., hd:], past)), dim=-1)
            k_rope = self.rotary(k_rope[:, :, None], past)[:, :, 0]  # one key for all heads
        if cache is not None:
            if past:
                latent = torch.cat((cache.latent, latent), dim=1)
                if self.rotary is not None:
                    k_rope = torch.cat((cache.k_rope, k_rope), dim=1)
            cache.latent = latent
            cache.k_rope = k_rope if self.rotary is not None else None
        S = latent.shape[1]  # keys: cached + new
        k, v = self.kv_up(latent).view(B, S, 2, H, hd).unbind(2)  # (B, S, H, hd)
        if self.rotary is not None:
            k = torch.cat((k, k_rope[:, :, None].expand(B, S, H, R)), dim=-1)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T|S, hd + R | hd)
        mask, is_causal = None, self.causal
        if self.causal and past:
            # Queries at absolute positions past .. past + T - 1 (see transformer.Attention).
            is_causal = False
            if T > 1:
                mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)
        if R:
            # Zero-pad v to the query/key width: SDPA's fused (flash) kernels want one head
            # width for q, k and v and otherwise fall back to the math path, which builds the
            # T x S score matrix (CPU: 3x slower at T = 4096, quadratic memory). The padded
            # output columns are zero and dropped; the 1/sqrt(hd + R) scale is unchanged.
            v = F.pad(v, (0, R))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        y = y[..., :hd].transpose(1, 2).reshape(B, T, H * hd)  # (B, T, H hd)
        if self.g_proj is not None:
            y = y * torch.sigmoid(self.g_proj(x))
        return self.out(y)
