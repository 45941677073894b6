"""Decoding caches. A :class:`Cache` holds one small mutable record per layer.

Design: ``backbone(x, cache)`` *mutates* the cache and returns only the output tensor, so the
plain call ``backbone(x)`` stays a one-argument tensor -> tensor map for reasoners. Each layer
fills its record lazily on first use, taking device and dtype from the input, so a cache is made
without knowing either: ``cache = backbone.init_cache()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class KVCache:
    """Keys and values seen so far, each (B, H, T_seen, hd) after rotary."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]


@dataclass
class DeltaCache:
    """Gated DeltaNet and KDA decoding state.

    conv: the last ``conv_size - 1`` pre-convolution q/k/v projections, (B, C, conv_size - 1)
        with C = 2 * H * dk + H * dv; zeros stand for positions before the start.
    state: the delta-rule memory S, (B, H, dk, dv), kept in float32.
    """

    conv: torch.Tensor | None = None
    state: torch.Tensor | None = None
    length: int = 0


@dataclass
class WindowCache:
    """Sliding-window attention: at most the last ``window - 1`` keys and values, each
    (B, H, n, hd) after rotary, plus the count of tokens seen (rotary positions are absolute)."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    seen: int = 0

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]


@dataclass
class LatentCache:
    """Multi-head latent attention: the compressed key-value latent, (B, T_seen, latent_dim), and
    the decoupled rotary key shared by all heads, (B, T_seen, rope_dim) after rotary (None with
    NoPE). Keys and values are re-expanded from the latent at each call."""

    latent: torch.Tensor | None = None
    k_rope: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.latent is None else self.latent.shape[1]


@dataclass
class Cache:
    """One record per layer (``KVCache``, ``WindowCache``, ``LatentCache`` or ``DeltaCache``) and
    the count of tokens seen."""

    layers: list = field(default_factory=list)
    seen: int = 0
