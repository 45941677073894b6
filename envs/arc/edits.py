"""The canvas edits of the ARC step mode (in the spirit of ARCLE), as pure functions.

A canvas is an ``(h, w)`` int8 grid of colours 0..9 (1..30 per side). Every edit returns a new
canvas (or selection/clipboard) and never changes its arguments, so the env, the tests and a
planner can share them.
"""

from __future__ import annotations

import numpy as np


def resize(canvas: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or extend to ``height x width``; new cells are colour 0."""
    out = np.zeros((height, width), np.int8)
    h, w = min(height, canvas.shape[0]), min(width, canvas.shape[1])
    out[:h, :w] = canvas[:h, :w]
    return out


def paint(canvas: np.ndarray, row: int, col: int, colour: int) -> np.ndarray:
    out = canvas.copy()
    out[row, col] = colour
    return out


def flood_fill(canvas: np.ndarray, row: int, col: int, colour: int) -> np.ndarray:
    """Recolour the 4-connected region of the cell's colour that holds ``(row, col)``."""
    out = canvas.copy()
    old = out[row, col]
    if old == colour:
        return out
    h, w = out.shape
    stack = [(row, col)]
    out[row, col] = colour
    while stack:
        r, c = stack.pop()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < h and 0 <= nc < w and out[nr, nc] == old:
                out[nr, nc] = colour
                stack.append((nr, nc))
    return out


def transform_selection(canvas: np.ndarray, box: tuple[int, int, int, int], op: str
                        ) -> np.ndarray:
    """Rotate (square boxes only) or flip the cells inside ``box`` = (r0, c0, r1, c1) inclusive."""
    r0, c0, r1, c1 = box
    out = canvas.copy()
    patch = out[r0:r1 + 1, c0:c1 + 1]
    if op == "rotate":
        patch = np.rot90(patch, -1)  # clockwise
    elif op == "flip_h":
        patch = patch[:, ::-1]
    elif op == "flip_v":
        patch = patch[::-1, :]
    else:
        raise ValueError(f"op must be rotate, flip_h or flip_v, got {op!r}")
    out[r0:r1 + 1, c0:c1 + 1] = patch
    return out


def paste(canvas: np.ndarray, clipboard: np.ndarray, row: int, col: int) -> np.ndarray:
    """Write ``clipboard`` with its top-left at ``(row, col)``, clipped at the canvas edge."""
    out = canvas.copy()
    h = min(clipboard.shape[0], out.shape[0] - row)
    w = min(clipboard.shape[1], out.shape[1] - col)
    out[row:row + h, col:col + w] = clipboard[:h, :w]
    return out
