"""Token layout of Maze for sequence models (TRM's ``build_maze_dataset.py``).

A maze's cell codes (:mod:`tracegym.envs.maze.board`) are its token ids, row-major: ``0`` pad
(never a cell, kept for batching), ``1`` wall, ``2`` open, ``3`` start, ``4`` goal, ``5`` path (in
labels and answers). So an ``n x n`` maze is ``n*n`` tokens of a vocabulary of 6: 900 at TRM's
30x30.

>>> import numpy as np
>>> encode(np.array([[3, 2], [1, 4]], dtype=np.int8)).tolist()
[3, 2, 1, 4]
>>> decode(np.array([3, 5, 1, 4]), 2).tolist()
[[3, 5], [1, 4]]
"""

from __future__ import annotations

import numpy as np

from tracegym.grid import PAD_ID

from .board import PATH, WALL

VOCAB_SIZE = PATH + 1  # pad plus the five cell codes


def seq_len(size: int) -> int:
    return size * size


def encode(grids: np.ndarray) -> np.ndarray:
    """``(..., H, W)`` mazes (cell codes) -> ``(..., H*W)`` uint8 token ids."""
    grids = np.asarray(grids)
    h, w = grids.shape[-2:]
    return grids.reshape(*grids.shape[:-2], h * w).astype(np.uint8)  # h*w: empty batches too


def decode(tokens: np.ndarray, size: int) -> np.ndarray:
    """``(..., n*n)`` token ids -> ``(..., n, n)`` int8 grids of cell codes (pad stays 0, which
    no maze cell is: the env refuses such an answer)."""
    tokens = np.asarray(tokens)
    if tokens.shape[-1] != size * size:
        raise ValueError(f"tokens: expected a last axis of {size * size}, got {tokens.shape}")
    if (tokens < 0).any() or (tokens >= VOCAB_SIZE).any():
        raise ValueError(f"tokens: ids must be in 0..{VOCAB_SIZE - 1}")
    return tokens.astype(np.int8).reshape(*tokens.shape[:-1], size, size)


assert PAD_ID == 0 and WALL == PAD_ID + 1  # the cell codes start right after pad, as in TRM
