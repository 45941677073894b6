"""Maze moves over a batch axis, shared by the single env (a batch of one) and the vector env.

State of ``B`` mazes of ``H x W``: ``grids`` (B, H, W) int8 (the maze, S and G included),
``pos`` (B, 2) int64 the agent's (row, col), ``goal`` (B, 2) int64.
Actions: 0 up, 1 right, 2 down, 3 left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .board import GOAL, START, WALL

DELTAS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int64)  # up, right, down, left
ACTION_NAMES = ("up", "right", "down", "left")


@dataclass
class MazeState:
    grids: np.ndarray
    pos: np.ndarray
    goal: np.ndarray

    @classmethod
    def empty(cls, batch: int, shape: tuple[int, int]) -> MazeState:
        return cls(np.zeros((batch, *shape), np.int8), np.zeros((batch, 2), np.int64),
                   np.zeros((batch, 2), np.int64))


def load_rows(state: MazeState, rows: np.ndarray, grids: np.ndarray) -> None:
    """Start the mazes ``rows`` on ``grids`` ((k, H, W)) with the agent on S."""
    state.grids[rows] = grids
    w = grids.shape[2]
    flat = grids.reshape(len(grids), -1)
    start, goal = np.argmax(flat == START, axis=1), np.argmax(flat == GOAL, axis=1)
    state.pos[rows] = np.stack([start // w, start % w], axis=1)
    state.goal[rows] = np.stack([goal // w, goal % w], axis=1)


def _open_at(state: MazeState, rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Whether ``cells`` ((k, 2), possibly off the grid) of mazes ``rows`` can be entered."""
    h, w = state.grids.shape[1:]
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < h) & (cells[:, 1] >= 0) & (cells[:, 1] < w)
    r, c = np.clip(cells[:, 0], 0, h - 1), np.clip(cells[:, 1], 0, w - 1)
    return inside & (state.grids[rows, r, c] != WALL)


def action_masks(state: MazeState, rows: np.ndarray) -> np.ndarray:
    """(k, 4) int8: 1 for the moves of mazes ``rows`` that do not hit a wall or the edge."""
    pos = state.pos[rows]
    return np.stack([_open_at(state, rows, pos + d) for d in DELTAS], axis=1).astype(np.int8)


def move(state: MazeState, rows: np.ndarray, actions: np.ndarray):
    """Move agents ``rows`` by ``actions``; blocked moves stay put.

    Returns ``(moved, reached)`` bool arrays aligned with ``rows``.
    """
    target = state.pos[rows] + DELTAS[actions]
    moved = _open_at(state, rows, target)
    state.pos[rows[moved]] = target[moved]
    reached = (state.pos[rows] == state.goal[rows]).all(axis=1)
    return moved, reached
