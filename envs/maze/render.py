"""Text and image views of a maze (``render_mode="ansi"`` and ``"rgb_array"``)."""

from __future__ import annotations

import numpy as np

from .board import CHARS, GOAL, OPEN, PATH, START, WALL

AGENT = "@"
COLORS = np.zeros((6, 3), np.uint8)
COLORS[WALL] = (40, 40, 40)
COLORS[OPEN] = (255, 255, 255)
COLORS[START] = (60, 160, 60)
COLORS[GOAL] = (220, 60, 60)
COLORS[PATH] = (250, 210, 90)
AGENT_COLOR = np.array((40, 90, 230), np.uint8)


def render_ansi(grid: np.ndarray, pos=None) -> str:
    """The maze in its text format, the agent drawn as ``@``."""
    rows = [[CHARS[v] for v in row] for row in grid]
    if pos is not None:
        rows[pos[0]][pos[1]] = AGENT
    return "\n".join("".join(row) for row in rows) + "\n"


def render_rgb(grid: np.ndarray, pos=None, cell: int = 8) -> np.ndarray:
    """The maze as an ``(H*cell, W*cell, 3)`` uint8 image; the agent is a blue square."""
    img = COLORS[np.asarray(grid, np.intp)]
    if pos is not None:
        img = img.copy()
        img[pos[0], pos[1]] = AGENT_COLOR
    return np.repeat(np.repeat(img, cell, axis=0), cell, axis=1)
