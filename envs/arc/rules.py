"""ARC rules: the checks of answer and edit actions, which edits are possible, what an edit does
and when a submission is correct. The env keeps an :class:`EditState` and calls these.

An edit is ``(op, row, col, row2, col2, colour)`` with ``op`` an index of :data:`OPS`; the
canvas, selection and clipboard change through the pure functions of :mod:`.edits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracegym.errors import ActionError
from tracegym.grid import check_cells

from . import edits
from .constants import MAX_SIDE, NUM_COLOURS

OUTSIDE = 10  # observation value of cells outside a grid (colours are 0..9)
OPS = ("resize", "paint", "fill", "select", "copy", "paste", "rotate", "flip_h", "flip_v",
       "reset", "submit")
OP = {name: i for i, name in enumerate(OPS)}
# the keys of a step-mode action and how many values each takes (0..n-1)
EDIT_KEYS = {"op": len(OPS), "row": MAX_SIDE, "col": MAX_SIDE, "row2": MAX_SIDE,
             "col2": MAX_SIDE, "colour": NUM_COLOURS}


def pad(grid: np.ndarray | None) -> np.ndarray:
    """A grid on the 30x30 observation canvas, ``OUTSIDE`` beyond its edge."""
    out = np.full((MAX_SIDE, MAX_SIDE), OUTSIDE, np.int8)
    if grid is not None:
        out[:grid.shape[0], :grid.shape[1]] = grid
    return out


def crop(canvas: np.ndarray) -> np.ndarray:
    """An observation canvas (grid top-left, ``OUTSIDE`` beyond it) -> the grid; the inverse
    of :func:`pad`."""
    h = int((canvas[:, 0] != OUTSIDE).sum())
    w = int((canvas[0] != OUTSIDE).sum())
    return canvas[:h, :w].astype(np.int8)


def check_answer(action, field: str = "action") -> np.ndarray:
    """An answer as an ``(h, w)`` int8 grid.

    Takes the action space's form, ``{"height": h, "width": w, "grid": (30, 30) colours}`` (the
    answer is ``grid[:h, :w]``), or a plain ``(h, w)`` array of colours. A wrong shape, size or
    colour raises :class:`ActionError`.
    """
    if isinstance(action, dict):
        missing = sorted({"height", "width", "grid"} - set(action))
        if missing:
            raise ActionError(f"{field}: missing keys {missing}")
        h, w = action["height"], action["width"]
        for key, value in (("height", h), ("width", w)):
            if not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= MAX_SIDE:
                raise ActionError(f"{field}[{key!r}]: expected an int in 1..{MAX_SIDE}, "
                                  f"got {value!r}")
        grid = np.asarray(action["grid"])
        if grid.shape != (MAX_SIDE, MAX_SIDE):
            raise ActionError(f"{field}['grid']: expected shape (30, 30), got {grid.shape}")
        grid = grid[:int(h), :int(w)]
    else:
        grid = np.asarray(action)
        if grid.ndim != 2 or not all(1 <= side <= MAX_SIDE for side in grid.shape):
            raise ActionError(f"{field}: expected a grid of 1..30 x 1..30 cells, got shape "
                              f"{grid.shape}")
    return check_cells(grid, NUM_COLOURS - 1, field=field, name="colour", error=ActionError)


def check_edit(action, field: str = "action") -> tuple[int, ...]:
    """A step-mode action as ``(op, row, col, row2, col2, colour)`` ints; a missing key or a
    value outside its range raises :class:`ActionError`."""
    if not isinstance(action, dict):
        raise ActionError(f"{field}: expected a dict with keys {sorted(EDIT_KEYS)}, "
                          f"got {type(action).__name__}")
    missing = sorted(set(EDIT_KEYS) - set(action))
    if missing:
        raise ActionError(f"{field}: missing keys {missing}")
    values = []
    for key, n in EDIT_KEYS.items():
        value = action[key]
        if not isinstance(value, (int, np.integer)) and not (
                isinstance(value, np.ndarray) and value.shape == ()
                and np.issubdtype(value.dtype, np.integer)):
            raise ActionError(f"{field}[{key!r}]: expected an int in 0..{n - 1}, got {value!r}")
        if not 0 <= int(value) < n:
            raise ActionError(f"{field}[{key!r}]: {int(value)} is outside 0..{n - 1}")
        values.append(int(value))
    return tuple(values)


@dataclass
class EditState:
    """The step mode's working state: the canvas, the selection ``(r0, c0, r1, c1)`` inclusive
    (or None) and the clipboard (or None); ``test_input`` is what ``reset`` restores."""

    test_input: np.ndarray
    canvas: np.ndarray
    selection: tuple[int, int, int, int] | None = None
    clipboard: np.ndarray | None = None

    @classmethod
    def start(cls, test_input) -> EditState:
        grid = np.asarray(test_input, np.int8)
        return cls(grid, grid.copy())


def op_mask(state: EditState) -> np.ndarray:
    """``(len(OPS),)`` int8: 1 for the operations possible now (``copy``/``rotate``/``flip``
    need a selection, ``rotate`` a square one, ``paste`` a clipboard)."""
    mask = np.ones(len(OPS), np.int8)
    sel = state.selection
    for name in ("copy", "flip_h", "flip_v"):
        mask[OP[name]] = sel is not None
    mask[OP["rotate"]] = sel is not None and sel[2] - sel[0] == sel[3] - sel[1]
    mask[OP["paste"]] = state.clipboard is not None
    return mask


def apply_edit(state: EditState, op: int, row: int, col: int, row2: int, col2: int,
               colour: int) -> bool:
    """Apply a possible edit (not ``submit``) to ``state``; False, and nothing changed, when it
    is impossible now or its cells are off the canvas."""
    if not op_mask(state)[op]:
        return False
    h, w = state.canvas.shape
    name = OPS[op]
    if name == "resize":
        state.canvas = edits.resize(state.canvas, row + 1, col + 1)
        if state.selection is not None and (state.selection[2] > row
                                            or state.selection[3] > col):
            state.selection = None
        return True
    if name in ("reset", "copy", "rotate", "flip_h", "flip_v"):
        if name == "reset":
            state.canvas = state.test_input.copy()
            state.selection = None
        elif name == "copy":
            r0, c0, r1, c1 = state.selection
            state.clipboard = state.canvas[r0:r1 + 1, c0:c1 + 1].copy()
        else:
            state.canvas = edits.transform_selection(state.canvas, state.selection, name)
        return True
    if not (row < h and col < w):
        return False
    if name == "paint":
        state.canvas = edits.paint(state.canvas, row, col, colour)
    elif name == "fill":
        state.canvas = edits.flood_fill(state.canvas, row, col, colour)
    elif name == "paste":
        state.canvas = edits.paste(state.canvas, state.clipboard, row, col)
    elif name == "select":
        if not (row2 < h and col2 < w):
            return False
        state.selection = (min(row, row2), min(col, col2), max(row, row2), max(col, col2))
    return True


def is_correct(answer: np.ndarray, target: np.ndarray) -> bool:
    """A submission is correct when it has the target's shape and every cell."""
    return answer.shape == np.shape(target) and bool((answer == target).all())
