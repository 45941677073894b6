"""Drawing grids as RGB images, shared by the grid envs' ``rgb_array`` render mode.

Glyphs are 3x5 pixel bitmaps (digits, ``A``-``Z``) scaled by an integer factor, so rendering needs
no font file and no plotting library.
"""

from __future__ import annotations

import numpy as np

_GLYPH_ROWS = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
    "A": ("010", "101", "111", "101", "101"), "B": ("110", "101", "110", "101", "110"),
    "C": ("011", "100", "100", "100", "011"), "D": ("110", "101", "101", "101", "110"),
    "E": ("111", "100", "110", "100", "111"), "F": ("111", "100", "110", "100", "100"),
    "G": ("011", "100", "101", "101", "011"), "S": ("011", "100", "010", "001", "110"),
    "o": ("000", "010", "101", "010", "000"),
}
GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows]) for ch, rows in
          _GLYPH_ROWS.items()}

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (160, 160, 160)


def draw_char_grid(chars: list[list[str]], colors: np.ndarray, *, cell: int = 24,
                   background: np.ndarray | None = None, thick_every: tuple[int, int] = (0, 0)
                   ) -> np.ndarray:
    """Render an ``(rows, cols)`` grid of single characters to an ``(H, W, 3)`` uint8 image.

    ``colors`` (rows, cols, 3) colours each glyph; ``background`` (rows, cols, 3) fills cells
    (white by default); grid lines are grey, with black lines every ``thick_every`` (rows, cols)
    cells (Sudoku boxes), 0 for none.
    """
    rows, cols = len(chars), len(chars[0])
    scale = max(1, (cell - 4) // 6)
    img = np.empty((rows * cell + 1, cols * cell + 1, 3), np.uint8)
    bg = np.full((rows, cols, 3), WHITE, np.uint8) if background is None else background
    img[:-1, :-1] = np.repeat(np.repeat(bg, cell, axis=0), cell, axis=1)
    img[::cell, :] = GREY
    img[:, ::cell] = GREY
    br, bc = thick_every
    if br:
        img[:: cell * br, :] = BLACK
    if bc:
        img[:, :: cell * bc] = BLACK
    gh, gw = 5 * scale, 3 * scale
    for r in range(rows):
        for c in range(cols):
            glyph = GLYPHS.get(chars[r][c])
            if glyph is None:
                continue
            big = np.kron(glyph, np.ones((scale, scale), bool))
            y, x = r * cell + (cell - gh) // 2 + 1, c * cell + (cell - gw) // 2 + 1
            img[y:y + gh, x:x + gw][big] = colors[r, c]
    return img
