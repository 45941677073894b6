"""Layer patterns: which mixer each block gets. Qwen3-Next's hybrid is "GGGA" (3 Gated DeltaNet :
1 gated attention) repeated to the depth, Kimi Linear's "KKKL" (3 KDA : 1 MLA without rotary);
the single-mixer backbones are one-letter patterns.

Letters: T attention (transformer), A gated attention, G Gated DeltaNet, K Kimi Delta Attention,
L multi-head latent attention (MLA; "M" was already the MLP mixer), S sliding-window attention,
M MLP token mixer.
"""

from __future__ import annotations

from torch import nn

from .gated_attention import GatedAttention
from .gated_deltanet import GatedDeltaNet
from .kda import KimiDeltaAttention
from .mla import MultiHeadLatentAttention
from .mlp_mixer import TokenMixer
from .sliding_window import SlidingWindowAttention
from .transformer import Attention

MIXERS = {
    "T": "attention (transformer)",
    "A": "gated attention",
    "G": "Gated DeltaNet",
    "K": "Kimi Delta Attention",
    "L": "multi-head latent attention",
    "S": "sliding-window attention",
    "M": "MLP token mixer",
}
DEFAULT_HYBRID_PATTERN = "GGGA"


def layer_kinds(pattern: str, depth: int) -> str:
    """``pattern`` repeated and cut to ``depth`` letters: ``layer_kinds("GGGA", 6) == "GGGAGG"``."""
    if not isinstance(pattern, str) or not pattern or set(pattern) - set(MIXERS):
        letters = ", ".join(f"{k} ({v})" for k, v in MIXERS.items())
        raise ValueError(
            f"pattern must be a non-empty string over {sorted(MIXERS)}, got {pattern!r}; "
            f"letters: {letters}"
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
    *,
    latent_dim: int | None = None,
    window: int = 64,
    rope: bool = True,
    mla_gate: bool = False,
) -> nn.Module:
    """One mixer for layer letter ``kind`` (see ``MIXERS``). ``rope`` switches rotary embeddings
    in every attention layer (T, A, S, L); ``latent_dim`` (None: dim // 2) and ``mla_gate`` are
    for L, ``window`` for S."""
    if kind == "T":
        return Attention(
            dim, heads, causal, gate=False, qk_norm=qk_norm, rope=rope, rope_base=rope_base
        )
    if kind == "A":
        return GatedAttention(dim, heads, causal, qk_norm=qk_norm, rope=rope, rope_base=rope_base)
    if kind == "G":
        return GatedDeltaNet(dim, heads, causal, expand_v, conv_size, chunk_size, impl)
    if kind == "K":
        return KimiDeltaAttention(dim, heads, causal, expand_v, conv_size, chunk_size, impl)
    if kind == "L":
        latent = max(1, dim // 2) if latent_dim is None else latent_dim
        return MultiHeadLatentAttention(
            dim, heads, causal, latent, rope=rope, rope_base=rope_base, gate=mla_gate
        )
    if kind == "S":
        return SlidingWindowAttention(
            dim, heads, causal, window, qk_norm=qk_norm, rope=rope, rope_base=rope_base
        )
    if kind != "M":
        raise ValueError(f"unknown layer letter {kind!r}; valid letters: {', '.join(MIXERS)}")
    if causal:
        raise ValueError(
            "mlp_mixer is bidirectional only (causal=True is not supported): its token-mixing "
            "MLP reads the whole sequence"
        )
    return TokenMixer(seq_len, expansion, multiple_of)
