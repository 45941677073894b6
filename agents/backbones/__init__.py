"""Sequence backbones: one interface, (B, T, D) -> (B, T, D).

>>> import torch
>>> from tracegym.agents.backbones import build_backbone
>>> net = build_backbone("hybrid", dim=64, depth=4, heads=4, seq_len=81, causal=False)
>>> net(torch.randn(2, 81, 64)).shape
torch.Size([2, 81, 64])

Decoding (causal backbones except mlp_mixer): ``cache = net.init_cache()``, then ``net(x, cache)``
on a prefix and on each new token; the cache is updated in place (see cache.py).
"""

from __future__ import annotations

from .blocks import NORMS, Backbone
from .cache import Cache, DeltaCache, KVCache
from .delta_rule import (
    HAS_FLA,
    IMPLS,
    chunk_gated_delta_rule,
    gated_delta_rule,
    recurrent_gated_delta_rule,
)
from .hybrid import DEFAULT_HYBRID_PATTERN, layer_kinds, make_mixer

# name -> layer pattern (letters in hybrid.MIXERS); "hybrid" takes `pattern`.
BACKBONES = {
    "transformer": "T",
    "mlp_mixer": "M",
    "gated_attention": "A",
    "gated_deltanet": "G",
    "hybrid": DEFAULT_HYBRID_PATTERN,
}

__all__ = [
    "BACKBONES",
    "Backbone",
    "Cache",
    "DeltaCache",
    "HAS_FLA",
    "IMPLS",
    "KVCache",
    "build_backbone",
    "chunk_gated_delta_rule",
    "gated_delta_rule",
    "recurrent_gated_delta_rule",
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
        qk_norm (bool, default True): QK-norm in gated attention (the plain transformer has none).
        rope_base (float, default 10000.0): rotary base of the attention layers.
        expand_v (float, default 1.0): Gated DeltaNet value width over key width.
        conv_size (int, default 4): Gated DeltaNet short convolution kernel.
        chunk_size (int, default 64): Gated DeltaNet chunk length.
        impl (str, default "auto"): gated delta rule implementation, one of ``IMPLS``.
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
    if pattern is not None and name != "hybrid":
        raise ValueError(
            f"pattern is for the hybrid backbone only, got pattern={pattern!r} for {name!r}"
        )
    kinds = layer_kinds(pattern or BACKBONES[name], depth)
    mixers = [
        make_mixer(
            kind,
            dim,
            heads,
            seq_len,
            causal,
            qk_norm and kind == "A",
            rope_base,
            expansion,
            multiple_of,
            expand_v,
            conv_size,
            chunk_size,
            impl,
        )
        for kind in kinds
    ]
    return Backbone(mixers, dim, seq_len, causal, norm, expansion, multiple_of)
