"""Sequence backbones: one interface, (B, T, D) -> (B, T, D).

>>> import torch
>>> from tracegym.agents.backbones import build_backbone
>>> net = build_backbone("hybrid", dim=64, depth=4, heads=4, seq_len=81, causal=False)
>>> net(torch.randn(2, 81, 64)).shape
torch.Size([2, 81, 64])

Hybrid recipes by name: ``qwen3_next`` "GGGA" (3 Gated DeltaNet : 1 gated attention),
``kimi_linear`` "KKKL" (3 KDA : 1 MLA without rotary, NoPE), ``gdn_h1`` "GS" (Gated DeltaNet and
sliding-window attention alternating, Gated DeltaNet-H1); any other pattern through
``build_backbone("hybrid", ..., pattern="KKKL")``. Layer letters are listed in ``hybrid.MIXERS``.

Decoding (causal backbones except mlp_mixer): ``cache = net.init_cache()``, then ``net(x, cache)``
on a prefix and on each new token; the cache is updated in place (see cache.py).
"""

from __future__ import annotations

import warnings

from .blocks import NORMS, Backbone
from .cache import Cache, DeltaCache, KVCache, LatentCache, WindowCache
from .delta_rule import (
    HAS_FLA,
    IMPLS,
    chunk_gated_delta_rule,
    gated_delta_rule,
    recurrent_gated_delta_rule,
)
from .hybrid import DEFAULT_HYBRID_PATTERN, MIXERS, layer_kinds, make_mixer
from .kda_rule import HAS_FLA_KDA, chunk_kda, kda, recurrent_kda

# name -> layer pattern (letters in hybrid.MIXERS); "hybrid" takes `pattern`.
BACKBONES = {
    "transformer": "T",
    "mlp_mixer": "M",
    "gated_attention": "A",
    "gated_deltanet": "G",
    "hybrid": DEFAULT_HYBRID_PATTERN,
    "kda": "K",
    "mla": "L",
    "sliding_window": "S",
    "qwen3_next": "GGGA",
    "kimi_linear": "KKKL",
    "gdn_h1": "GS",
}
RECIPES = ("qwen3_next", "kimi_linear", "gdn_h1")  # published hybrids, run whole by benchmarks


def whole_depth(name: str, depth: int, pattern: str | None = None) -> int:
    """The smallest depth >= ``depth`` that holds every layer kind of ``name``'s pattern (a
    pattern cut shorter drops its last letters: hybrid "GGGA" at depth 2 is "GG")."""
    return max(depth, len(pattern or BACKBONES[name]))


__all__ = [
    "BACKBONES",
    "RECIPES",
    "Backbone",
    "Cache",
    "DeltaCache",
    "HAS_FLA",
    "HAS_FLA_KDA",
    "IMPLS",
    "KVCache",
    "LatentCache",
    "MIXERS",
    "WindowCache",
    "build_backbone",
    "chunk_gated_delta_rule",
    "chunk_kda",
    "gated_delta_rule",
    "kda",
    "recurrent_gated_delta_rule",
    "recurrent_kda",
    "whole_depth",
]


def build_backbone(
    name: str,
    dim: int,
    depth: int,
    heads: int,
    seq_len: int,
    causal: bool,
    *,
    norm: str = "post",
    expansion: float = 4.0,
    multiple_of: int = 256,
    pattern: str | None = None,
    qk_norm: bool = True,
    rope_base: float = 10000.0,
    expand_v: float = 1.0,
    conv_size: int = 4,
    chunk_size: int = 64,
    impl: str = "auto",
    latent_dim: int | None = None,
    window: int = 64,
    rope: bool | None = None,
    mla_gate: bool = False,
) -> Backbone:
    """Build a backbone by name.

    Args:
        name (str): one of ``BACKBONES``.
        dim (int): model width D; divisible by ``heads``.
        depth (int): number of residual blocks.
        heads (int): attention / Gated DeltaNet heads (unused by mlp_mixer, still checked).
        seq_len (int): sequence length; fixed for mlp_mixer, informational otherwise.
        causal (bool): causal (decodable) or bidirectional.
        norm (str, default "post"): "post" (TRM) or "pre" norm blocks.
        expansion (float, default 4.0): SwiGLU width ratio, channel and token MLPs.
        multiple_of (int, default 256): SwiGLU hidden width rounding (TRM).
        pattern (str | None, default None): hybrid only; layer letters from ``hybrid.MIXERS``
            repeated to ``depth``; None means "GGGA" (3 Gated DeltaNet : 1 gated attention).
        qk_norm (bool, default True): QK-norm in gated and sliding-window attention (the plain
            transformer and MLA have none).
        rope_base (float, default 10000.0): rotary base of the attention layers.
        expand_v (float, default 1.0): Gated DeltaNet / KDA value width over key width.
        conv_size (int, default 4): Gated DeltaNet / KDA short convolution kernel.
        chunk_size (int, default 64): Gated DeltaNet / KDA chunk length.
        impl (str, default "auto"): gated delta rule / KDA implementation, one of ``IMPLS``.
        latent_dim (int | None, default None): MLA key-value latent width; None means dim // 2.
        window (int, default 64): sliding-window attention window (keys seen per query causally).
        rope (bool | None, default None): rotary embeddings in the attention layers (T, A, S, L);
            None means on, except off (NoPE) for ``kimi_linear``, as in Kimi Linear's MLA layers.
        mla_gate (bool, default False): sigmoid output gate in the MLA layers.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONES)}")
    for field, value in (("dim", dim), ("depth", depth), ("heads", heads), ("seq_len", seq_len)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{field} must be a positive int, got {field}={value!r}")
    if dim % heads:
        raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got norm={norm!r}")
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got window={window!r}")
    if latent_dim is not None and (not isinstance(latent_dim, int) or latent_dim < 1):
        raise ValueError(f"latent_dim must be a positive int, got latent_dim={latent_dim!r}")
    if rope is None:
        rope = name != "kimi_linear"
    if pattern is not None and name != "hybrid":
        raise ValueError(
            f"pattern is for the hybrid backbone only, got pattern={pattern!r} for {name!r}"
        )
    full = pattern or BACKBONES[name]
    kinds = layer_kinds(full, depth)
    lost = sorted(set(full) - set(kinds))
    if lost:  # e.g. hybrid at depth 2 is "GG": no attention layer at all
        warnings.warn(
            f"{name} at depth={depth} has layers {kinds!r}: the pattern {full!r} cut to {depth} "
            f"loses its {lost} layer(s); use depth >= {whole_depth(name, depth, pattern)} or "
            "(hybrid) a shorter pattern such as 'GA'",
            stacklevel=2,
        )
    mixers = [
        make_mixer(
            kind,
            dim,
            heads,
            seq_len,
            causal,
            qk_norm and kind in "AS",
            rope_base,
            expansion,
            multiple_of,
            expand_v,
            conv_size,
            chunk_size,
            impl,
            latent_dim=latent_dim,
            window=window,
            rope=rope,
            mla_gate=mla_gate,
        )
        for kind in kinds
    ]
    return Backbone(mixers, dim, seq_len, causal, norm, expansion, multiple_of)
