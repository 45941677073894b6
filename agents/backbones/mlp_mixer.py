"""Token mixing by an MLP over the sequence axis: TRM's attention-free ``mlp_t`` variant.

The SwiGLU acts on each channel's length-T column, so the module is tied to the sequence length it
was built for. It is bidirectional only: a SwiGLU whose hidden units each read the whole sequence
cannot be made causal by masking one matrix, so ``causal=True`` raises instead of silently
leaking the future (use ``transformer`` or ``gated_deltanet`` for causal models).

As in TRM's block, the post-norm after this mixer normalises over the sequence axis (blocks.py).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import SwiGLU


class TokenMixer(nn.Module):
    """SwiGLU over the sequence axis of (B, T, D).

    Args:
        seq_len (int): T, fixed at construction.
        expansion (float, default 4.0): SwiGLU width ratio over T.
        multiple_of (int, default 256): SwiGLU hidden width rounding (TRM).
    Parameters: ``3 * seq_len * hidden``.
    """

    def __init__(self, seq_len: int, expansion: float = 4.0, multiple_of: int = 256):
        super().__init__()
        self.seq_len = seq_len
        self.mlp = SwiGLU(seq_len, expansion, multiple_of)

    def empty_cache(self):
        raise ValueError(
            "mlp_mixer has no decoding cache: it mixes the whole fixed-length sequence"
        )

    def forward(self, x: torch.Tensor, cache: None = None) -> torch.Tensor:
        if cache is not None:
            self.empty_cache()
        if x.shape[1] != self.seq_len:
            raise ValueError(
                f"mlp_mixer was built for seq_len={self.seq_len}, got an input of length "
                f"{x.shape[1]}"
            )
        return self.mlp(x.transpose(1, 2)).transpose(1, 2)  # (B, D, T) -> (B, T, D)
