"""Layer patterns: which mixer each block gets, and the stack built from a ``BackboneConfig``.

Qwen3-Next's hybrid is "GGGA" (3 Gated DeltaNet : 1 gated attention) repeated to the depth, Kimi
Linear's "KKKL" (3 KDA : 1 MLA without rotary); the single-mixer backbones are one-letter
patterns. The letters (``MIXERS``) and ``layer_kinds`` live in config.py with the other rules of
a valid configuration.
"""

from __future__ import annotations

import warnings

from torch import nn

from .blocks import Backbone
from .config import (
    BACKBONES,
    DEFAULT_HYBRID_PATTERN,
    MIXERS,
    BackboneConfig,
    BackboneConfigError,
    layer_kinds,
    min_depth_for_pattern,
)
from .gated_attention import GatedAttention
from .gated_deltanet import GatedDeltaNet
from .kda import KimiDeltaAttention
from .layers import lecun_normal_
from .mla import MultiHeadLatentAttention
from .mlp_mixer import TokenMixer
from .sliding_window import SlidingWindowAttention
from .transformer import Attention

__all__ = ["DEFAULT_HYBRID_PATTERN", "MIXERS", "build_from_config", "layer_kinds", "make_mixer",
           "warn_if_pattern_cut"]


def make_mixer(kind: str, config: BackboneConfig) -> nn.Module:
    """One mixer for layer letter ``kind`` (see ``MIXERS``), its options read from ``config``
    by name: ``rotary`` switches rotary embeddings in every attention layer (T, A, S, L), QK-norm
    applies to A and S, ``latent_dim`` (None: dim // 2) and ``mla_gate`` are for L, ``window`` for
    S, ``expand_v``, ``conv_size``, ``chunk_size`` and ``impl`` for G and K."""
    c = config
    qk_norm = c.qk_norm and kind in "AS"
    if kind == "T":
        return Attention(c.dim, c.heads, c.causal, gate=False, qk_norm=qk_norm, rope=c.rotary,
                         rope_base=c.rope_base)
    if kind == "A":
        return GatedAttention(c.dim, c.heads, c.causal, qk_norm=qk_norm, rope=c.rotary,
                              rope_base=c.rope_base)
    if kind in "GK":
        layer = GatedDeltaNet if kind == "G" else KimiDeltaAttention
        return layer(c.dim, c.heads, c.causal, expand_v=c.expand_v, conv_size=c.conv_size,
                     chunk_size=c.chunk_size, impl=c.impl)
    if kind == "L":
        latent = max(1, c.dim // 2) if c.latent_dim is None else c.latent_dim
        return MultiHeadLatentAttention(c.dim, c.heads, c.causal, latent_dim=latent, rope=c.rotary,
                                        rope_base=c.rope_base, gate=c.mla_gate)
    if kind == "S":
        return SlidingWindowAttention(c.dim, c.heads, c.causal, window=c.window, qk_norm=qk_norm,
                                      rope=c.rotary, rope_base=c.rope_base)
    if kind != "M":
        raise BackboneConfigError(
            f"unknown layer letter {kind!r}; valid letters: {', '.join(MIXERS)}"
        )
    # BackboneConfig rejects a causal config with M layers.
    return TokenMixer(c.seq_len, c.expansion, c.multiple_of)


def warn_if_pattern_cut(config: BackboneConfig, stacklevel: int = 1) -> None:
    """Warn when ``depth`` cuts the pattern so that a layer kind is lost (hybrid at depth 2 is
    "GG": no attention layer at all). ``stacklevel`` counts from the caller of this function."""
    full = config.pattern or BACKBONES[config.name]
    kinds = config.layers
    lost = sorted(set(full) - set(kinds))
    if lost:
        depth = min_depth_for_pattern(config.name, config.depth, config.pattern)
        warnings.warn(
            f"{config.name} at depth={config.depth} has layers {kinds!r}: the pattern {full!r} "
            f"cut to {config.depth} loses its {lost} layer(s); use depth >= {depth} or (hybrid) "
            "a shorter pattern such as 'GA'",
            stacklevel=stacklevel + 1,
        )


def build_from_config(config: BackboneConfig) -> Backbone:
    """The backbone ``config`` describes (warns as ``build_backbone`` does)."""
    warn_if_pattern_cut(config, stacklevel=2)
    return assemble(config)


def assemble(config: BackboneConfig) -> Backbone:
    """Build the stack of blocks, one mixer per letter of ``config.layers``, and initialise it as
    ``config.init`` says; no warning."""
    c = config
    mixers = [make_mixer(kind, c) for kind in c.layers]
    net = Backbone(mixers, c.dim, c.seq_len, c.causal, c.norm, c.expansion, c.multiple_of,
                   norm_gain=c.norm_gain)
    if c.init == "lecun_normal":
        for module in net.modules():
            if isinstance(module, nn.Linear):
                lecun_normal_(module)
    net.config = c  # what it was built from (a frozen BackboneConfig)
    return net
