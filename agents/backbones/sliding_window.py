"""Sliding-window attention (the local layer of Gated DeltaNet-H1 and of many hybrids).

Query i sees key j when ``i - window < j <= i`` (causal) or ``|i - j| < window`` (bidirectional):
``window`` keys causally, ``2 window - 1`` both ways. Long sequences run block-local: queries in
blocks of ``window``, each against the 2 (causal) or 3 (bidirectional) key blocks around it, so
time and memory grow linearly in T. The decoding cache keeps the last ``window - 1`` keys and
values, all a later token can see, so it never holds more than ``window`` keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tracegym.checks import check_positive_int

from .cache import WindowCache
from .transformer import Attention


def window_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int, causal: bool):
    """Boolean mask (..., Tq, Tk): True where query position ``q_pos`` may see key ``k_pos``."""
    d = q_pos[..., :, None] - k_pos[..., None, :]
    return (d >= 0) & (d < window) if causal else d.abs() < window


class SlidingWindowAttention(Attention):
    """:class:`Attention` restricted to a window of positions.

    Args:
        dim (int): model width D.
        heads (int): number of heads.
        causal (bool): one-sided window (True) or two-sided (False).
        window (int): see the module doc; >= 1 (1 = each token sees only itself).
        qk_norm (bool, default True): RMSNorm per head on q and k.
        rope (bool, default True): rotary position embeddings.
        rope_base (float, default 10000.0): rotary frequency base.
    Parameters: ``4 D^2`` plus ``2 D / heads`` for QK-norm.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        window: int,
        qk_norm: bool = True,
        rope: bool = True,
        rope_base: float = 10000.0,
    ):
        window = check_positive_int("window", window)
        super().__init__(
            dim, heads, causal, gate=False, qk_norm=qk_norm, rope=rope, rope_base=rope_base
        )
        self.window = window

    def empty_cache(self) -> WindowCache:
        return WindowCache()

    def _blocked(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_old: int):
        """Block-local attention. q (B, H, T, hd) at positions 0 .. T-1; k, v (B, H, n_old + T, hd)
        at positions -n_old .. T-1 (the first n_old from the cache, n_old < window)."""
        B, H, T, hd = q.shape
        w = self.window
        nb = -(-T // w)
        span = 2 * w if self.causal else 3 * w  # keys a block of queries can reach
        # After padding, key index p holds position p - w; block n reads p in [n w, n w + span),
        # i.e. positions n w - w .. n w - w + span - 1.
        right = (nb - 1) * w + span - w - T  # so that unfold yields exactly nb blocks
        k, v = (F.pad(t, (0, 0, w - n_old, right)) for t in (k, v))
        k, v = (t.unfold(2, span, w).transpose(-1, -2) for t in (k, v))  # (B, H, nb, span, hd)
        q = F.pad(q, (0, 0, 0, nb * w - T)).view(B, H, nb, w, hd)
        start = torch.arange(nb, device=q.device)[:, None] * w  # (nb, 1)
        q_pos = start + torch.arange(w, device=q.device)  # (nb, w)
        k_pos = start - w + torch.arange(span, device=q.device)  # (nb, span)
        valid = ((k_pos >= -n_old) & (k_pos < T))[:, None, :]
        mask = window_mask(q_pos, k_pos, w, self.causal) & valid  # (nb, w, span)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, nb, w, hd)
        return y.reshape(B, H, nb * w, hd)[:, :, :T]

    def forward(self, x: torch.Tensor, cache: WindowCache | None = None) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_dim).unbind(2)  # (B, T, H, hd)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        seen = 0 if cache is None else cache.seen
        if self.rotary is not None:
            q, k = self.rotary(q, seen), self.rotary(k, seen)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        n_old = 0
        if cache is not None:
            if cache.k is not None:
                n_old = cache.k.shape[2]
                k, v = torch.cat((cache.k, k), dim=2), torch.cat((cache.v, v), dim=2)
            keep = max(0, k.shape[2] - (self.window - 1))  # all a next token can see but itself
            # clone: a slice would keep the whole concatenated storage (n_old + T keys) alive
            cache.k, cache.v = k[:, :, keep:].clone(), v[:, :, keep:].clone()
            cache.seen = seen + T
        if T > 2 * self.window:  # long: block-local, linear in T
            y = self._blocked(q, k, v, n_old)
        else:  # short (decoding steps, small inputs): one masked call
            q_pos = torch.arange(T, device=x.device)
            k_pos = torch.arange(-n_old, T, device=x.device)
            mask = window_mask(q_pos, k_pos, self.window, self.causal)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, D)
        return self.out(y)
