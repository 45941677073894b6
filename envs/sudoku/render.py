"""Text and image views of a Sudoku board (``render_mode="ansi"`` and ``"rgb_array"``)."""

from __future__ import annotations

import numpy as np

from tracegym.grid import DIGIT_CHARS
from tracegym.render import BLACK, draw_char_grid

from .board import geometry

FILLED_COLOR = (30, 90, 220)  # digits written by the agent; givens are black


def render_ansi(board: np.ndarray, givens: np.ndarray | None = None) -> str:
    """Board as text with box separators, ``.`` for blanks (givens and written digits look alike
    here; ``rgb_array`` draws them in different colours)."""
    n = board.shape[0]
    geo = geometry(n)
    lines = []
    for r in range(n):
        if r and r % geo.box_rows == 0:
            lines.append("+".join("-" * (2 * geo.box_cols + 1) for _ in range(n // geo.box_cols)))
        cells = [DIGIT_CHARS[v - 1] if v else "." for v in board[r]]
        groups = [" ".join(cells[c:c + geo.box_cols]) for c in range(0, n, geo.box_cols)]
        lines.append(" " + " | ".join(groups) + " ")
    return "\n".join(lines) + "\n"


def render_rgb(board: np.ndarray, givens: np.ndarray, cell: int = 24) -> np.ndarray:
    """Board as an ``(H, W, 3)`` uint8 image: givens black, written digits blue."""
    n = board.shape[0]
    geo = geometry(n)
    chars = [[DIGIT_CHARS[v - 1] if v else " " for v in row] for row in board]
    colors = np.where(np.asarray(givens, bool)[..., None], np.array(BLACK, np.uint8),
                      np.array(FILLED_COLOR, np.uint8))
    return draw_char_grid(chars, colors, cell=cell, thick_every=(geo.box_rows, geo.box_cols))
