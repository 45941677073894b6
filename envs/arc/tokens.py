"""TRM's ARC token layout: a grid on a square canvas, 30x30 (900 tokens) by default.

Token ids: ``0`` pad, ``1`` end-of-grid marker, colour ``c`` -> ``c + 2`` (vocab 12). The grid sits
at the top-left; a column of markers right of the last column (rows ``0..h-1``) and a row of
markers under the last row (columns ``0..w-1``), each only when it fits on the canvas. The corner
``(h, w)`` stays pad. This matches ``np_grid_to_seq_translational_augment`` in TRM's
``dataset/build_arc_dataset.py`` (SamsungSAILMontreal/TinyRecursiveModels). TRM also shifts
training grids by a random offset (its translational augmentation): :func:`translate` does that to
encoded canvases, and :func:`decode` finds a grid wherever it sits. A smaller canvas
(``encode(grid, side=10)``: 100 tokens) holds grids up to ``side x side`` in the same layout;
:func:`translate` and :func:`decode` read the side off the tokens' length.

>>> import numpy as np
>>> tokens = encode(np.array([[3, 0]], dtype=np.int8))
>>> tokens.reshape(30, 30)[:2, :4].tolist()
[[5, 2, 1, 0], [1, 1, 0, 0]]
>>> decode(tokens).tolist()
[[3, 0]]
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .constants import MAX_SIDE

SIDE = MAX_SIDE  # TRM's canvas holds the largest ARC grid
SEQ_LEN = SIDE * SIDE
VOCAB_SIZE = 12
PAD_ID = 0
EOS_ID = 1
COLOUR_OFFSET = 2


def side_of(seq_len: int) -> int:
    """The canvas side of ``seq_len`` tokens (a perfect square, at least 1), or ValueError."""
    n = int(seq_len) if isinstance(seq_len, (int, np.integer)) and seq_len > 0 else 0
    side = math.isqrt(n)
    if side == 0 or side * side != n:
        raise ValueError(f"tokens: {seq_len!r} tokens are no square canvas (side x side)")
    return side


def encode(grid: np.ndarray, side: int = SIDE) -> np.ndarray:
    """A (h, w) grid of colours 0..9 -> (side * side,) uint8 tokens (900 by default)."""
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < 1:
        raise ValueError(f"side: expected an int >= 1, got {side!r}")
    side = int(side)
    grid = np.asarray(grid)
    if grid.ndim != 2 or not (1 <= grid.shape[0] <= side and 1 <= grid.shape[1] <= side):
        raise ValueError(f"grid: expected a 2-D shape with sides 1..{side}, got {grid.shape}"
                         + ("" if side == SIDE else f" (canvas side {side})"))
    if grid.min() < 0 or grid.max() > 9:
        raise ValueError(f"grid: colours must be 0..9, got {int(grid.min())}..{int(grid.max())}")
    h, w = grid.shape
    canvas = np.zeros((side, side), dtype=np.uint8)
    canvas[:h, :w] = grid.astype(np.uint8) + COLOUR_OFFSET
    if h < side:
        canvas[h, :w] = EOS_ID  # stops at column w-1, as TRM does: the corner stays pad
    if w < side:
        canvas[:h, w] = EOS_ID
    return canvas.reshape(side * side)


def translate(tokens: np.ndarray, rows, cols) -> np.ndarray:
    """Shift encoded canvases down by ``rows`` and right by ``cols`` cells (0..side), filling
    with pad.

    ``tokens`` is ``(..., side * side)``; ``rows``/``cols`` broadcast against its leading axes.
    Whatever moves past the canvas edge is dropped: for a grid that still fits, that is only the
    end markers that no longer have room, as in TRM's layout.
    """
    tokens = np.asarray(tokens)
    side = side_of(tokens.shape[-1])
    lead = tokens.shape[:-1]
    rows = np.broadcast_to(np.asarray(rows, dtype=np.intp), lead).reshape(-1)
    cols = np.broadcast_to(np.asarray(cols, dtype=np.intp), lead).reshape(-1)
    if rows.size and not (0 <= rows.min() and rows.max() <= side
                          and 0 <= cols.min() and cols.max() <= side):
        raise ValueError(f"rows, cols: shifts must be in 0..{side}")
    # each canvas in the bottom-right quarter of a pad twice its side; a shift is a window of it
    padded = np.zeros((rows.size, 2 * side, 2 * side), tokens.dtype)
    padded[:, side:, side:] = tokens.reshape(-1, side, side)
    windows = sliding_window_view(padded, (side, side), axis=(1, 2))  # (n, s+1, s+1, s, s)
    return windows[np.arange(rows.size), side - rows, side - cols].reshape(tokens.shape)


def _first(line: np.ndarray) -> int:
    """Index of the first end marker in a row/column, or its length when there is none."""
    hits = np.flatnonzero(line == EOS_ID)
    return int(hits[0]) if hits.size else len(line)


def decode(tokens: np.ndarray) -> np.ndarray:
    """(side * side,) tokens in the layout of :func:`encode` -> the (h, w) int8 grid.

    The grid's top-left corner is the first row and column holding a non-pad token (``(0, 0)``
    unless the canvas was shifted by :func:`translate`). From there, the width is the first marker
    in the grid's top row (up to the edge if none), the height the first in its left column; the
    canvas must then equal the grid encoded at that offset, or ValueError says why.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"tokens: expected shape (side * side,), got {tokens.shape}")
    side = side_of(tokens.shape[0])
    full = tokens.reshape(side, side)
    used = full != PAD_ID
    if not used.any():
        raise ValueError("tokens: the canvas is all pad, there is no grid")
    top, left = int(np.argmax(used.any(axis=1))), int(np.argmax(used.any(axis=0)))
    canvas = full[top:, left:]  # the grid's corner at (0, 0); markers may be cut at the edge
    w, h = _first(canvas[0]), _first(canvas[:, 0])
    if h == 0 or w == 0:
        raise ValueError("tokens: end marker at (0, 0), the grid would be empty")
    box = canvas[:h, :w].astype(np.int16) - COLOUR_OFFSET
    bad = np.argwhere((box < 0) | (box > 9))
    if bad.size:
        r, c = bad[0]
        raise ValueError(
            f"tokens: cell (row {r + top}, col {c + left}) inside the {h}x{w} grid holds token "
            f"{int(canvas[r, c])}, expected a colour token 2..11"
        )
    grid = box.astype(np.int8)
    expected = translate(encode(grid, side), top, left).reshape(side, side)[top:, left:]
    diff = np.argwhere(expected != canvas)
    if diff.size:
        r, c = diff[0]
        what = "colour token outside the grid box" if canvas[r, c] >= COLOUR_OFFSET else (
            "no consistent end-marker border"
        )
        raise ValueError(
            f"tokens: {what} for a {h}x{w} grid: (row {r + top}, col {c + left}) holds "
            f"{int(canvas[r, c])}, expected {int(expected[r, c])}"
        )
    return grid
