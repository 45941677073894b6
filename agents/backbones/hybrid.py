"""Layer patterns: which mixer each block gets. Qwen3-Next's hybrid is "GGGA" (3 Gated DeltaNet :
1 gated attention) repeated to the depth; the single-mixer backbones are one-letter patterns."""

from __future__ import annotations

from torch import nn

from .gated_attention import GatedAttention
from .gated_deltanet import GatedDeltaNet
from .mlp_mixer import TokenMixer
from .transformer import Attention

MIXERS = {
    "T": "attention (transformer)",
    "A": "gated attention",
    "G": "Gated DeltaNet",
    "M": "MLP token mixer",
}
DEFAULT_HYBRID_PATTERN = "GGGA"


def layer_kinds(pattern: str, depth: int) -> str:
    """``pattern`` repeated and cut to ``depth`` letters: ``layer_kinds("GGGA", 6) == "GGGAGG"``."""
    if not pattern or set(pattern) - set(MIXERS):
        raise ValueError(
            f"pattern must be a non-empty string over {sorted(MIXERS)}, got {pattern!r}"
        )
    return (pattern * (depth // len(pattern) + 1))[:depth]


def make_mixer(
    kind: str,
    dim: int,
    heads: int,
    seq_len: int,
    causal: bool,
    qk_norm: bool,
    rope_base: float,
    expansion: float,
    multiple_of: int,
    expand_v: float,
    conv_size: int,
    chunk_size: int,
    impl: str,
) -> nn.Module:
    if kind == "T":
        return Attention(dim, heads, causal, gate=False, qk_norm=qk_norm, rope_base=rope_base)
    if kind == "A":
        return GatedAttention(dim, heads, causal, qk_norm=qk_norm, rope_base=rope_base)
    if kind == "G":
        return GatedDeltaNet(dim, heads, causal, expand_v, conv_size, chunk_size, impl)
    if causal:
        raise ValueError(
            "mlp_mixer is bidirectional only (causal=True is not supported): its token-mixing "
            "MLP reads the whole sequence"
        )
    return TokenMixer(seq_len, expansion, multiple_of)
