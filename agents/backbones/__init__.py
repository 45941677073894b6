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

Options: ``build_backbone(name, dim, depth, heads, seq_len, causal, **options)`` takes the
keyword-only fields of :class:`BackboneConfig` (config.py), validated there; ``BACKBONE_DEFAULTS``
lists them with their defaults. ``build_from_config(BackboneConfig(...))`` is the same build.

Decoding (causal backbones except mlp_mixer): ``cache = net.init_cache()``, then ``net(x, cache)``
on a prefix and on each new token; the cache is updated in place (see cache.py).
"""

from __future__ import annotations

import inspect

from .blocks import NORMS, Backbone
from .cache import Cache, DeltaCache, KVCache, LatentCache, WindowCache
from .config import (
    BACKBONE_DEFAULTS,
    BACKBONES,
    MIXERS,
    RECIPES,
    BackboneConfig,
    BackboneConfigError,
    UnknownOptionError,
    layer_kinds,
    min_depth_for_pattern,
)
from .delta_rule import (
    HAS_FLA,
    IMPLS,
    chunk_gated_delta_rule,
    gated_delta_rule,
    recurrent_gated_delta_rule,
)
from .hybrid import assemble, build_from_config, make_mixer, warn_if_pattern_cut
from .kda_rule import HAS_FLA_KDA, chunk_kda, kda, recurrent_kda

__all__ = [
    "BACKBONES",
    "BACKBONE_DEFAULTS",
    "RECIPES",
    "Backbone",
    "BackboneConfig",
    "BackboneConfigError",
    "Cache",
    "DeltaCache",
    "HAS_FLA",
    "HAS_FLA_KDA",
    "IMPLS",
    "KVCache",
    "LatentCache",
    "MIXERS",
    "NORMS",
    "UnknownOptionError",
    "WindowCache",
    "build_backbone",
    "build_from_config",
    "chunk_gated_delta_rule",
    "chunk_kda",
    "gated_delta_rule",
    "kda",
    "layer_kinds",
    "make_mixer",
    "min_depth_for_pattern",
    "recurrent_gated_delta_rule",
    "recurrent_kda",
]


def build_backbone(
    name: str, dim: int, depth: int, heads: int, seq_len: int, causal: bool, **options
) -> Backbone:
    """Build a backbone by name: ``BackboneConfig(name, dim, depth, heads, seq_len, causal,
    **options)`` validated, then built (see :class:`BackboneConfig` for each field, its meaning
    and default; ``BACKBONE_DEFAULTS`` for the options).

    Raises :class:`BackboneConfigError` (a ValueError) naming a bad field and its value, and
    :class:`UnknownOptionError` (also a TypeError) naming an unknown option. Warns when ``depth``
    cuts the pattern so that a layer kind is lost (hybrid "GGGA" at depth 2 is "GG").
    """
    BackboneConfig.check_options(options)
    config = BackboneConfig(name, dim, depth, heads, seq_len, causal, **options)
    warn_if_pattern_cut(config, stacklevel=2)
    return assemble(config)


# help() and inspect show every option with its default, read from the dataclass.
build_backbone.__signature__ = inspect.signature(BackboneConfig).replace(
    return_annotation="Backbone"
)
