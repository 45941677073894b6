"""Residual blocks (norm + mixer + SwiGLU channel MLP) and the stack that every backbone is."""

from __future__ import annotations

import torch
from torch import nn

from .cache import Cache
from .layers import RMSNorm, SwiGLU
from .mlp_mixer import TokenMixer

NORMS = ("pre", "post")


class Block(nn.Module):
    """One residual block.

    ``norm="post"`` (TRM): ``x = n1(x + mixer(x)); x = n2(x + mlp(x))``.
    ``norm="pre"``: ``x = x + mixer(n1(x)); x = x + mlp(n2(x))``.

    After the MLP token mixer (mlp_mixer) the post-norm ``n1`` normalises over the sequence axis,
    not the channels: TRM's mlp_t block works on the transposed states (B, D, T) and its
    ``rms_norm(h + mlp_t(h))`` takes the last axis of those, T. Its gain (``norm_gain``) is then
    one per position, shape (T,). ``norm_gain=False`` drops the gains of the block norms (and of
    the pre-norm stack's final norm) as TRM's ``rms_norm``; norms inside mixers keep theirs.
    """

    def __init__(self, mixer: nn.Module, dim: int, norm: str, expansion: float, multiple_of: int,
                 norm_gain: bool = True):
        super().__init__()
        self.mixer, self.pre = mixer, norm == "pre"
        if isinstance(mixer, TokenMixer) and not self.pre:
            self.norm1 = RMSNorm(mixer.seq_len, gain=norm_gain, axis=-2)
        else:
            self.norm1 = RMSNorm(dim, gain=norm_gain)
        self.norm2 = RMSNorm(dim, gain=norm_gain)
        self.mlp = SwiGLU(dim, expansion, multiple_of)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        if self.pre:
            x = x + self.mixer(self.norm1(x), cache)
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.mixer(x, cache))
        return self.norm2(x + self.mlp(x))


class Backbone(nn.Module):
    """A stack of blocks mapping (B, T, D) -> (B, T, D); build one with ``build_backbone``.

    ``backbone(x)`` runs the whole sequence. For incremental decoding (causal only):
    ``cache = backbone.init_cache()``, then ``backbone(x_chunk, cache)`` for a prefill and
    ``backbone(x_token, cache)`` per step; the cache is updated in place. Pre-norm stacks end with
    a final RMSNorm so both norm placements hand normalised features to the head.
    """

    def __init__(
        self,
        mixers: list[nn.Module],
        dim: int,
        seq_len: int,
        causal: bool,
        norm: str,
        expansion: float,
        multiple_of: int,
        norm_gain: bool = True,
    ):
        super().__init__()
        self.dim, self.seq_len, self.causal, self.norm = dim, seq_len, causal, norm
        self.blocks = nn.ModuleList(Block(m, dim, norm, expansion, multiple_of, norm_gain)
                                    for m in mixers)
        self.final_norm = RMSNorm(dim, gain=norm_gain) if norm == "pre" else None

    def init_cache(self) -> Cache:
        if not self.causal:
            raise ValueError("a decoding cache needs causal=True; this backbone is bidirectional")
        return Cache([block.mixer.empty_cache() for block in self.blocks])

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape (B, T, {self.dim}), got {tuple(x.shape)}")
        if cache is not None and not self.causal:
            raise ValueError("a decoding cache needs causal=True; this backbone is bidirectional")
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.seen += x.shape[1]
        return x if self.final_norm is None else self.final_norm(x)
