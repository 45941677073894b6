"""Text and image views of a Sudoku board (``render_mode="ansi"`` and ``"rgb_array"``).

The image draws each digit as a 3x5 pixel glyph scaled by an integer factor, so rendering needs
no font file and no plotting library.
"""

from __future__ import annotations

import numpy as np

from tracegym.grid import DIGIT_CHARS

from .board import geometry

FILLED_COLOR = (30, 90, 220)  # digits written by the agent; givens are black
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (160, 160, 160)

# the symbols of boards up to 16x16: 1-9, then A-G (DIGIT_CHARS)
_GLYPH_ROWS = {
    "1": ("010", "110", "010", "010", "111"), "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"), "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"), "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"), "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"), "A": ("010", "101", "111", "101", "101"),
    "B": ("110", "101", "110", "101", "110"), "C": ("011", "100", "100", "100", "011"),
    "D": ("110", "101", "101", "101", "110"), "E": ("111", "100", "110", "100", "111"),
    "F": ("111", "100", "110", "100", "100"), "G": ("011", "100", "101", "101", "011"),
}
GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows]) for ch, rows in
          _GLYPH_ROWS.items()}


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
    """Board as an ``(H, W, 3)`` uint8 image: givens black, written digits blue, box lines black
    and cell lines grey on white."""
    n = board.shape[0]
    geo = geometry(n)
    colors = np.where(np.asarray(givens, bool)[..., None], np.array(BLACK, np.uint8),
                      np.array(FILLED_COLOR, np.uint8))  # (n, n, 3)
    scale = max(1, (cell - 4) // 6)
    img = np.full((n * cell + 1, n * cell + 1, 3), WHITE, np.uint8)
    img[::cell, :] = GREY
    img[:, ::cell] = GREY
    img[:: cell * geo.box_rows, :] = BLACK
    img[:, :: cell * geo.box_cols] = BLACK
    gh, gw = 5 * scale, 3 * scale
    for r in range(n):
        for c in range(n):
            if not board[r, c]:
                continue
            big = np.kron(GLYPHS[DIGIT_CHARS[board[r, c] - 1]], np.ones((scale, scale), bool))
            y, x = r * cell + (cell - gh) // 2 + 1, c * cell + (cell - gw) // 2 + 1
            img[y:y + gh, x:x + gw][big] = colors[r, c]
    return img
