"""TRM's ARC token layout: a grid on a 30x30 canvas as 900 tokens.

Token ids: ``0`` pad, ``1`` end-of-grid marker, colour ``c`` -> ``c + 2`` (vocab 12). The grid sits
at the top-left; a column of markers right of the last column (rows ``0..h-1``) and a row of
markers under the last row (columns ``0..w-1``), each only when it fits on the canvas. The corner
``(h, w)`` stays pad. This matches ``np_grid_to_seq_translational_augment`` in TRM's
``dataset/build_arc_dataset.py`` (SamsungSAILMontreal/TinyRecursiveModels). TRM also shifts
training grids by a random offset (its translational augmentation): :func:`translate` does that to
encoded canvases, and :func:`decode` finds a grid wherever it sits.

>>> import numpy as np
>>> tokens = encode(np.array([[3, 0]], dtype=np.int8))
>>> tokens.reshape(30, 30)[:2, :4].tolist()
[[5, 2, 1, 0], [1, 1, 0, 0]]
>>> decode(tokens).tolist()
[[3, 0]]
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .constants import MAX_SIDE

SIDE = MAX_SIDE  # TRM's canvas holds the largest ARC grid
SEQ_LEN = SIDE * SIDE
VOCAB_SIZE = 12
PAD_ID = 0
EOS_ID = 1
COLOUR_OFFSET = 2


def encode(grid: np.ndarray) -> np.ndarray:
    """A (h, w) grid of colours 0..9 -> (900,) uint8 tokens."""
    grid = np.asarray(grid)
    if grid.ndim != 2 or not (1 <= grid.shape[0] <= SIDE and 1 <= grid.shape[1] <= SIDE):
        raise ValueError(f"grid: expected a 2-D shape with sides 1..{SIDE}, got {grid.shape}")
    if grid.min() < 0 or grid.max() > 9:
        raise ValueError(f"grid: colours must be 0..9, got {int(grid.min())}..{int(grid.max())}")
    h, w = grid.shape
    canvas = np.zeros((SIDE, SIDE), dtype=np.uint8)
    canvas[:h, :w] = grid.astype(np.uint8) + COLOUR_OFFSET
    if h < SIDE:
        canvas[h, :w] = EOS_ID  # stops at column w-1, as TRM does: the corner stays pad
    if w < SIDE:
        canvas[:h, w] = EOS_ID
    return canvas.reshape(SEQ_LEN)


def translate(tokens: np.ndarray, rows, cols) -> np.ndarray:
    """Shift encoded canvases down by ``rows`` and right by ``cols`` cells (0..30), filling
    with pad.

    ``tokens`` is ``(..., 900)``; ``rows``/``cols`` broadcast against its leading axes. Whatever
    moves past the canvas edge is dropped: for a grid that still fits, that is only the end
    markers that no longer have room, as in TRM's layout.
    """
    tokens = np.asarray(tokens)
    lead = tokens.shape[:-1]
    rows = np.broadcast_to(np.asarray(rows, dtype=np.intp), lead).reshape(-1)
    cols = np.broadcast_to(np.asarray(cols, dtype=np.intp), lead).reshape(-1)
    if rows.size and not (0 <= rows.min() and rows.max() <= SIDE
                          and 0 <= cols.min() and cols.max() <= SIDE):
        raise ValueError(f"rows, cols: shifts must be in 0..{SIDE}")
    # each canvas in the bottom-right quarter of a 60x60 pad; a shift is a 30x30 window of it
    padded = np.zeros((rows.size, 2 * SIDE, 2 * SIDE), tokens.dtype)
    padded[:, SIDE:, SIDE:] = tokens.reshape(-1, SIDE, SIDE)
    windows = sliding_window_view(padded, (SIDE, SIDE), axis=(1, 2))  # (n, 31, 31, 30, 30)
    return windows[np.arange(rows.size), SIDE - rows, SIDE - cols].reshape(tokens.shape)


def _first(line: np.ndarray) -> int:
    """Index of the first end marker in a row/column, or its length when there is none."""
    hits = np.flatnonzero(line == EOS_ID)
    return int(hits[0]) if hits.size else len(line)


def decode(tokens: np.ndarray) -> np.ndarray:
    """(900,) tokens in the layout of :func:`encode` -> the (h, w) int8 grid.

    The grid's top-left corner is the first row and column holding a non-pad token (``(0, 0)``
    unless the canvas was shifted by :func:`translate`). From there, the width is the first marker
    in the grid's top row (up to the edge if none), the height the first in its left column; the
    canvas must then equal the grid encoded at that offset, or ValueError says why.
    """
    tokens = np.asarray(tokens)
    if tokens.shape != (SEQ_LEN,):
        raise ValueError(f"tokens: expected shape ({SEQ_LEN},), got {tokens.shape}")
    full = tokens.reshape(SIDE, SIDE)
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
    expected = translate(encode(grid), top, left).reshape(SIDE, SIDE)[top:, left:]
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
