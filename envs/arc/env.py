"""The ARC environment, ``tracegym/ARC-v0``: a task per episode, answered whole or edit by edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tracegym.checks import check_positive_int
from tracegym.errors import ActionError
from tracegym.grid import check_cells

from . import edits
from .constants import MAX_DEMOS, MAX_SIDE

OUTSIDE = 10  # observation value of cells outside a grid (colours are 0..9)
MODES = ("step", "answer")
OPS = ("resize", "paint", "fill", "select", "copy", "paste", "rotate", "flip_h", "flip_v",
       "reset", "submit")
OP = {name: i for i, name in enumerate(OPS)}


def pad(grid: np.ndarray | None) -> np.ndarray:
    """A grid on the 30x30 observation canvas, ``OUTSIDE`` beyond its edge."""
    out = np.full((MAX_SIDE, MAX_SIDE), OUTSIDE, np.int8)
    if grid is not None:
        out[:grid.shape[0], :grid.shape[1]] = grid
    return out


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
    return check_cells(grid, 9, field=field, name="colour", error=ActionError)


def _task_source(dataset) -> Callable[[np.random.Generator], object]:
    """``dataset`` -> ``rng -> task``: a set name, a path, a list of tasks, a callable, or
    ``"procedural/<family>"`` (``"procedural"`` or ``"procedural/all"``: a family per task)."""
    if callable(dataset):
        return dataset
    if isinstance(dataset, str) and (dataset == "procedural" or dataset.startswith("procedural/")):
        from .generator import FAMILIES, generate_task

        family = dataset.partition("/")[2] or "all"
        if family == "all":
            names = sorted(FAMILIES)
            return lambda rng: generate_task(names[int(rng.integers(len(names)))], rng).task
        if family not in FAMILIES:
            raise ValueError(f"dataset: unknown procedural family {family!r}; valid: "
                             f"{', '.join(['all', *sorted(FAMILIES)])}")
        return lambda rng: generate_task(family, rng).task
    if isinstance(dataset, (list, tuple)):
        tasks = list(dataset)
    else:
        from .data import load_tasks

        tasks = load_tasks(dataset)
    if not tasks:
        raise ValueError(f"dataset: no task in {dataset!r}")
    missing = [t.task_id for t in tasks if any(out is None for _, out in t.test)]
    if missing:
        raise ValueError(f"dataset: task {missing[0]} has no test output to score answers with")
    return lambda rng: tasks[int(rng.integers(len(tasks)))]


class ArcEnv(gym.Env):
    """Solve one ARC task: see the demonstration pairs, produce the test output.

    ## Description
    An episode is one task (up to ``MAX_DEMOS`` demonstration pairs and one of its test inputs,
    drawn with the env's seed). In answer mode the agent submits output grids; in step mode it
    edits a working canvas, ARCLE-style, and submits the canvas. Up to ``attempts`` submissions
    (2: the official pass@2 rule).

    ## Observation Space
    ``Dict``; grids sit top-left on a 30x30 canvas with ``10`` outside the grid:

    ============  ======================================  ===================================
    key           space                                   meaning
    ============  ======================================  ===================================
    demo_inputs   ``Box(0, 10, (10, 30, 30), int8)``      demonstration inputs (unused slots 10)
    demo_outputs  ``Box(0, 10, (10, 30, 30), int8)``      demonstration outputs
    num_demos     ``Discrete(11)``                        how many demonstrations are real
    test_input    ``Box(0, 10, (30, 30), int8)``          the test input
    canvas        ``Box(0, 10, (30, 30), int8)``          the working grid (step mode; in answer
                                                          mode the last submission)
    selection     ``Box(-1, 29, (4,), int64)``            r0, c0, r1, c1 inclusive; -1 = none
    clipboard     ``Box(0, 10, (30, 30), int8)``          copied cells (all 10 = empty)
    attempts      ``Discrete(attempts + 1)``              submissions left
    ============  ======================================  ===================================

    ## Action Space
    - answer mode: ``Dict(height=Discrete(30, start=1), width=Discrete(30, start=1),
      grid=Box(0, 9, (30, 30), int8))``: the answer is ``grid[:height, :width]``; a plain
      ``(h, w)`` array of colours is accepted too.
    - step mode: ``Dict(op=Discrete(11), row, col, row2, col2 = Discrete(30), colour =
      Discrete(10))``. Operations (``OPS``): ``resize`` to ``(row+1) x (col+1)`` (new cells 0);
      ``paint`` cell (row, col); ``fill`` the 4-connected same-colour region of (row, col);
      ``select`` the rectangle spanned by (row, col) and (row2, col2); ``copy`` the selection
      to the clipboard; ``paste`` the clipboard at (row, col), clipped; ``rotate`` (square
      selections, clockwise), ``flip_h``, ``flip_v`` the selection in place; ``reset`` the canvas
      to the test input; ``submit`` the canvas. ``info["action_mask"]`` is a dict of int8 masks
      with the action's keys, so ``action_space.sample(mask=info["action_mask"])`` works:
      ``"op"`` (11) marks the operations possible now (``copy``/``rotate``/``flip`` need a
      selection, ``rotate`` a square one, ``paste`` a clipboard); the cell and colour masks are
      all ones, as ``resize`` takes any cell. A possible operation with a cell outside the
      canvas is illegal: nothing changes and ``info["illegal"]`` is set. Answer mode has no
      ``action_mask`` (its grid is a Box, which takes no mask).

    ## Rewards
    ``1`` for a submission equal to the test output (shape and every cell); ``0`` for a wrong
    one; ``step_reward`` (default 0) for every edit; ``illegal_reward`` (default 0) for an
    illegal edit.

    ## Episode End
    terminated on a correct submission or when the attempts run out; truncated after
    ``max_steps`` steps (default 1000).

    ## Arguments
    ``dataset`` (``"arc-agi-1/training"``; also ``arc-agi-1/evaluation``, ``arc-agi-2/...``, a
    directory or file of ARC JSON, a list of tasks, a callable ``rng -> task``, or
    ``"procedural/<family>"``: a fresh generated task of that family per episode, ``"procedural"``
    a uniform mix of families, see ``generator.FAMILIES``), ``mode``, ``attempts`` (2),
    ``step_reward``, ``illegal_reward``, ``max_steps``, ``render_mode`` (``"ansi"``,
    ``"rgb_array"``).

    ## Version History
    - v0: first release.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, dataset="arc-agi-1/training", mode: str = "step", attempts: int = 2,
                 step_reward: float = 0.0, illegal_reward: float = 0.0, max_steps: int = 1000,
                 render_mode: str | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        check_positive_int("attempts", attempts)
        check_positive_int("max_steps", max_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        self.draw_task = _task_source(dataset)
        self.mode, self.attempts = mode, int(attempts)
        self.step_reward, self.illegal_reward = float(step_reward), float(illegal_reward)
        self.max_steps, self.render_mode = int(max_steps), render_mode
        grid = spaces.Box(0, OUTSIDE, (MAX_SIDE, MAX_SIDE), np.int8)
        self.observation_space = spaces.Dict({
            "demo_inputs": spaces.Box(0, OUTSIDE, (MAX_DEMOS, MAX_SIDE, MAX_SIDE), np.int8),
            "demo_outputs": spaces.Box(0, OUTSIDE, (MAX_DEMOS, MAX_SIDE, MAX_SIDE), np.int8),
            "num_demos": spaces.Discrete(MAX_DEMOS + 1),
            "test_input": grid,
            "canvas": grid,
            "selection": spaces.Box(-1, MAX_SIDE - 1, (4,), np.int64),
            "clipboard": grid,
            "attempts": spaces.Discrete(self.attempts + 1),
        })
        cell = spaces.Discrete(MAX_SIDE)
        side = spaces.Discrete(MAX_SIDE, start=1)
        self.action_space = spaces.Dict({
            "height": side, "width": side,
            "grid": spaces.Box(0, 9, (MAX_SIDE, MAX_SIDE), np.int8)}) if mode == "answer" \
            else spaces.Dict({
            "op": spaces.Discrete(len(OPS)), "row": cell, "col": cell, "row2": cell,
            "col2": cell, "colour": spaces.Discrete(10)})

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task = self.draw_task(self.np_random)
        self.test_index = int(self.np_random.integers(len(self.task.test)))
        self.test_input, self.test_output = self.task.test[self.test_index]
        self.canvas = np.asarray(self.test_input, np.int8).copy()
        self.selection: tuple[int, int, int, int] | None = None
        self.clipboard: np.ndarray | None = None
        self.attempts_left = self.attempts
        self._steps = 0
        self._demos = self._padded_demos()
        return self._obs(), self._info()

    def step(self, action):
        self._steps += 1
        if self.mode == "answer":
            self.canvas = check_answer(action)
            return self._submit()
        op, row, col, row2, col2, colour = self._check_edit(action)
        if OPS[op] == "submit":
            return self._submit()
        legal = bool(self._mask()[op]) and self._apply(op, row, col, row2, col2, colour)
        reward = self.step_reward if legal else self.illegal_reward
        truncated = self._steps >= self.max_steps
        return self._obs(), reward, False, truncated, self._info(illegal=not legal)

    def render(self):
        from .render import render_ansi, render_rgb

        if self.render_mode == "ansi":
            return render_ansi(self.task, self.test_input, self.canvas)
        if self.render_mode == "rgb_array":
            return render_rgb(self.task, self.test_input, self.canvas)
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def _submit(self):
        correct = self.canvas.shape == np.shape(self.test_output) and bool(
            (self.canvas == self.test_output).all())
        self.attempts_left -= 1
        terminated = correct or self.attempts_left == 0
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs(), float(correct), terminated, truncated, self._info(correct=correct)

    def _check_edit(self, action) -> tuple[int, ...]:
        if not isinstance(action, dict):
            raise ActionError(f"action: expected a dict with keys {sorted(self.action_space)}, "
                              f"got {type(action).__name__}")
        missing = sorted(set(self.action_space) - set(action))
        if missing:
            raise ActionError(f"action: missing keys {missing}")
        values = []
        for key in ("op", "row", "col", "row2", "col2", "colour"):
            value = action[key]
            n = self.action_space[key].n
            if not isinstance(value, (int, np.integer)) and not (
                    isinstance(value, np.ndarray) and value.shape == ()
                    and np.issubdtype(value.dtype, np.integer)):
                raise ActionError(f"action[{key!r}]: expected an int in 0..{n - 1}, "
                                  f"got {value!r}")
            if not 0 <= int(value) < n:
                raise ActionError(f"action[{key!r}]: {int(value)} is outside 0..{n - 1}")
            values.append(int(value))
        return tuple(values)

    def _apply(self, op, row, col, row2, col2, colour) -> bool:
        """Apply a possible edit; False (nothing changed) when its cells are off the canvas."""
        h, w = self.canvas.shape
        name = OPS[op]
        if name == "resize":
            self.canvas = edits.resize(self.canvas, row + 1, col + 1)
            if self.selection is not None and (self.selection[2] > row or self.selection[3] > col):
                self.selection = None
            return True
        if name in ("reset", "copy", "rotate", "flip_h", "flip_v"):
            if name == "reset":
                self.canvas = np.asarray(self.test_input, np.int8).copy()
                self.selection = None
            elif name == "copy":
                r0, c0, r1, c1 = self.selection
                self.clipboard = self.canvas[r0:r1 + 1, c0:c1 + 1].copy()
            else:
                self.canvas = edits.transform_selection(self.canvas, self.selection, name)
            return True
        if not (row < h and col < w):
            return False
        if name == "paint":
            self.canvas = edits.paint(self.canvas, row, col, colour)
        elif name == "fill":
            self.canvas = edits.flood_fill(self.canvas, row, col, colour)
        elif name == "paste":
            self.canvas = edits.paste(self.canvas, self.clipboard, row, col)
        elif name == "select":
            if not (row2 < h and col2 < w):
                return False
            self.selection = (min(row, row2), min(col, col2), max(row, row2), max(col, col2))
        return True

    def _mask(self) -> np.ndarray:
        mask = np.ones(len(OPS), np.int8)
        has_sel = self.selection is not None
        for name in ("copy", "flip_h", "flip_v"):
            mask[OP[name]] = has_sel
        mask[OP["rotate"]] = has_sel and (
            self.selection[2] - self.selection[0] == self.selection[3] - self.selection[1])
        mask[OP["paste"]] = self.clipboard is not None
        return mask

    def _padded_demos(self) -> tuple[np.ndarray, np.ndarray, int]:
        pairs = list(self.task.train)[:MAX_DEMOS]
        inputs = np.full((MAX_DEMOS, MAX_SIDE, MAX_SIDE), OUTSIDE, np.int8)
        outputs = inputs.copy()
        for i, (x, y) in enumerate(pairs):
            inputs[i], outputs[i] = pad(np.asarray(x)), pad(np.asarray(y))
        return inputs, outputs, len(pairs)

    def _obs(self) -> dict[str, Any]:
        inputs, outputs, count = self._demos
        selection = np.array(self.selection if self.selection is not None else (-1,) * 4,
                             np.int64)
        return {"demo_inputs": inputs.copy(), "demo_outputs": outputs.copy(),
                "num_demos": count, "test_input": pad(np.asarray(self.test_input)),
                "canvas": pad(self.canvas), "selection": selection,
                "clipboard": pad(self.clipboard), "attempts": self.attempts_left}

    def _info(self, illegal: bool = False, correct: bool = False) -> dict[str, Any]:
        info = {"task_id": self.task.task_id, "test_index": self.test_index, "correct": correct}
        if self.mode == "step":
            # One mask per key of the Dict action, the form Dict.sample(mask=...) takes; every
            # cell and colour is taken by some possible operation (resize takes any cell).
            info["action_mask"] = {key: self._mask() if key == "op"
                                   else np.ones(space.n, np.int8)
                                   for key, space in self.action_space.items()}
            info["illegal"] = illegal
        return info
