"""Gated attention (Qwen3-Next): attention * sigmoid(W_g x) before the output projection;
QK-norm."""

from __future__ import annotations

from .transformer import Attention


class GatedAttention(Attention):
    """:class:`Attention` with the output gate on and QK-norm on by default.

    Args:
        dim (int): model width D.
        heads (int): number of heads.
        causal (bool): mask future positions.
        qk_norm (bool, default True): RMSNorm per head on q and k.
        rope (bool, default True): rotary position embeddings.
        rope_base (float, default 10000.0): rotary frequency base.
    Parameters: ``5 D^2 + 2 D / heads``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool,
        qk_norm: bool = True,
        rope: bool = True,
        rope_base: float = 10000.0,
    ):
        super().__init__(
            dim, heads, causal, gate=True, qk_norm=qk_norm, rope=rope, rope_base=rope_base
        )
