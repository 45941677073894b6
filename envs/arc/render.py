"""Text and image views of an ARC episode: the demonstration pairs, the test input and the canvas
side by side (``render_mode="ansi"`` and ``"rgb_array"``), in the usual ARC palette."""

from __future__ import annotations

import numpy as np

# the palette of the ARC testing interface: black, blue, red, green, yellow, grey, magenta,
# orange, sky, maroon
PALETTE = np.array([
    (0, 0, 0), (0, 116, 217), (255, 65, 54), (46, 204, 64), (255, 220, 0), (170, 170, 170),
    (240, 18, 190), (255, 133, 27), (127, 219, 255), (135, 12, 37)], np.uint8)
BACKGROUND = np.array((255, 255, 255), np.uint8)
LINE = np.array((85, 85, 85), np.uint8)


def _rows(task, test_input, canvas):
    pairs = [(np.asarray(x), np.asarray(y)) for x, y in task.train]
    return pairs + [(np.asarray(test_input), np.asarray(canvas))]


def render_ansi(task, test_input, canvas) -> str:
    """Each demonstration as ``input -> output``, then ``test -> canvas``, digits per cell."""
    blocks = []
    for i, (left, right) in enumerate(_rows(task, test_input, canvas)):
        title = f"demo {i + 1}" if i < len(task.train) else "test -> canvas"
        lines = [title]
        for r in range(max(left.shape[0], right.shape[0])):
            a = "".join(map(str, left[r])) if r < left.shape[0] else ""
            b = "".join(map(str, right[r])) if r < right.shape[0] else ""
            lines.append(f"{a.ljust(left.shape[1])}   {b}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _grid_image(grid: np.ndarray, cell: int) -> np.ndarray:
    img = np.repeat(np.repeat(PALETTE[grid], cell, axis=0), cell, axis=1)
    img[::cell, :] = LINE
    img[:, ::cell] = LINE
    return img


def render_rgb(task, test_input, canvas, cell: int = 6, gap: int = 8) -> np.ndarray:
    """One row per demonstration (input, output), then (test input, canvas), as uint8 RGB."""
    rows = []
    for left, right in _rows(task, test_input, canvas):
        a, b = _grid_image(left, cell), _grid_image(right, cell)
        h = max(a.shape[0], b.shape[0])
        row = np.empty((h, a.shape[1] + gap + b.shape[1], 3), np.uint8)
        row[:] = BACKGROUND
        row[:a.shape[0], :a.shape[1]] = a
        row[:b.shape[0], a.shape[1] + gap:] = b
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    out = np.empty((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), np.uint8)
    out[:] = BACKGROUND
    y = 0
    for r in rows:
        out[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + gap
    return out
