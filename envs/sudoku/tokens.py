"""Token layout of Sudoku for sequence models (the TRM/HRM convention).

A board becomes ``size*size`` tokens, row-major: ``0`` pad (never produced for a board, kept for
batching), ``1`` blank, ``d + 1`` for digit ``d``. So 9x9 boards use ids 0..10 (vocab 11,
seq_len 81) and 16x16 boards ids 0..17 (vocab 18, seq_len 256).
"""

from __future__ import annotations

import numpy as np

from tracegym.grid import PAD_ID

BLANK_ID = 1


def vocab_size(size: int) -> int:
    return size + 2


def seq_len(size: int) -> int:
    return size * size


def encode(grids: np.ndarray) -> np.ndarray:
    """``(..., n, n)`` boards (0 = blank) -> ``(..., n*n)`` uint8 token ids."""
    grids = np.asarray(grids)
    n = grids.shape[-1]
    return (grids.reshape(*grids.shape[:-2], n * n) + 1).astype(np.uint8)  # n*n: empty batches too


def decode(tokens: np.ndarray, size: int) -> np.ndarray:
    """``(..., n*n)`` token ids -> ``(..., n, n)`` int8 boards; pad and blank both become 0."""
    tokens = np.asarray(tokens)
    if tokens.shape[-1] != size * size:
        raise ValueError(f"tokens: expected a last axis of {size * size}, got {tokens.shape}")
    if (tokens > size + 1).any() or (tokens < 0).any():
        raise ValueError(f"tokens: ids must be in 0..{size + 1}")
    board = np.where(tokens <= BLANK_ID, 0, tokens.astype(np.int16) - 1)
    return board.astype(np.int8).reshape(*tokens.shape[:-1], size, size)


assert PAD_ID == 0 and BLANK_ID == PAD_ID + 1  # the TRM layout the datasets rely on
