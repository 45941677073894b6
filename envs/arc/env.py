"""The ARC environment, ``tracegym/ARC-v0``: a task per episode, answered whole or edit by edit."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
from gymnasium import spaces

from tracegym.checks import check_int, check_positive_int
from tracegym.episode import EpisodicEnv, check_reward
from tracegym.errors import TracegymError
from tracegym.sources import ListSource

from . import rules
from .constants import MAX_DEMOS, MAX_SIDE, NUM_COLOURS
from .data import ArcTask
from .rules import OP, OPS, OUTSIDE, check_answer, pad  # noqa: F401 - public here too
from .source import DEFAULT_DATASET, make_source

MODES = ("step", "answer")
DEFAULT_MAX_STEPS = 1000
RESET_OPTIONS = ("task_id", "test_index")


def configure(env, *, dataset, mode, attempts, step_reward, illegal_reward, max_steps,
              render_mode) -> None:
    """Check the options and set them on ``env`` (the shape of Sudoku's and Maze's)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    check_positive_int("attempts", attempts)
    check_positive_int("max_steps", max_steps, optional=True)
    render_modes = env.metadata["render_modes"]
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {render_modes}, got {render_mode!r}")
    env.source = make_source(dataset)
    env.mode, env.attempts = mode, int(attempts)
    env.step_reward = check_reward("step_reward", step_reward)
    env.illegal_reward = check_reward("illegal_reward", illegal_reward)
    env.max_steps = DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)
    env.render_mode = render_mode


class ArcEnv(EpisodicEnv):
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

    ## Starting State
    The drawn task's demonstrations and test input; in step mode the canvas is the test input,
    with no selection and an empty clipboard. ``reset(options=...)`` takes (each optional):

    - ``"task_id"`` (str): the task to play, by its id (``info["task_id"]``); the dataset must be
      a list of tasks, a file or a directory (not a generator or an iterator).
    - ``"test_index"`` (int): which of the task's test pairs to play, from 0 (default: drawn).

    Any other key raises a TracegymError naming it.

    ## Episode End
    terminated on a correct submission or when the attempts run out; truncated after
    ``max_steps`` steps (default 1000). Every step that returns counts toward ``max_steps``:
    edits, illegal edits (which change nothing but are played moves, with ``illegal_reward``)
    and submissions. An action rejected with an ActionError (outside the action space) is no
    step and does not count.

    After termination or truncation, ``step`` raises
    :class:`~tracegym.episode.ResetNeededError` until ``reset`` (as before the first ``reset``).

    ## Arguments
    ``dataset`` (``"arc-agi-1/training"``; also ``arc-agi-1/evaluation``, ``arc-agi-2/...``, a
    directory or file of ARC JSON, a list of tasks, a callable ``rng -> task``, an iterator of
    tasks, or ``"procedural/<family>"``: a fresh generated task of that family per episode,
    ``"procedural"`` a uniform mix of families, see ``generator.FAMILIES``), ``mode``,
    ``attempts`` (2), ``step_reward`` and ``illegal_reward`` (finite floats, 0),
    ``max_steps`` (int | None),
    ``render_mode`` (``"ansi"``, ``"rgb_array"``).

    ## Version History
    - v0: first release. Later in v0: ``reset`` honours its options (unknown keys raise); a
      step after the episode's end raises (it counted attempts below zero); rejected actions
      no longer count toward ``max_steps``; non-finite rewards are refused.

    >>> import gymnasium as gym, tracegym
    >>> env = gym.make("tracegym/ARC-v0", dataset="procedural/flip", mode="answer")
    >>> obs, info = env.reset(seed=0)
    >>> obs["test_input"].shape, info["task_id"]
    ((30, 30), 'procedural/flip')
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    reset_options = RESET_OPTIONS

    def __init__(self, dataset=DEFAULT_DATASET, mode: str = "step", attempts: int = 2,
                 step_reward: float = 0.0, illegal_reward: float = 0.0,
                 max_steps: int | None = None, render_mode: str | None = None):
        configure(self, dataset=dataset, mode=mode, attempts=attempts, step_reward=step_reward,
                  illegal_reward=illegal_reward, max_steps=max_steps, render_mode=render_mode)
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
        side = spaces.Discrete(MAX_SIDE, start=1)
        self.action_space = spaces.Dict({
            "height": side, "width": side,
            "grid": spaces.Box(0, NUM_COLOURS - 1, (MAX_SIDE, MAX_SIDE), np.int8)}) \
            if mode == "answer" else \
            spaces.Dict({key: spaces.Discrete(n) for key, n in rules.EDIT_KEYS.items()})
        self.task = None  # no episode before the first reset
        self._tasks_by_id: dict[str, ArcTask] | None = None  # built on the first task_id asked

    # the step mode's working state, read by tests and renderers
    @property
    def canvas(self) -> np.ndarray:
        return self._edit.canvas

    @property
    def selection(self) -> tuple[int, int, int, int] | None:
        return self._edit.selection

    @property
    def clipboard(self) -> np.ndarray | None:
        return self._edit.clipboard

    # -- gymnasium API (reset and step come from EpisodicEnv) --------------------------------
    def _reset(self, options: dict[str, Any]):
        task = self._find_task(options["task_id"]) if "task_id" in options \
            else self.source.draw(self.np_random)
        if "test_index" in options:
            test_index = check_int("options['test_index']", options["test_index"])
            if not 0 <= test_index < len(task.test):
                raise TracegymError(f"options['test_index'] must be in 0..{len(task.test) - 1} "
                                    f"(task {task.task_id} has {len(task.test)} test pairs), "
                                    f"got {test_index}")
        else:
            test_index = int(self.np_random.integers(len(task.test)))
        self.task, self.test_index = task, test_index
        self.test_input, self.test_output = self.task.test[self.test_index]
        self._edit = rules.EditState.start(self.test_input)
        self.attempts_left = self.attempts
        self._steps = 0
        self._demos = self._padded_demos()
        return self._obs(), self._info()

    def _step(self, action):
        # the action is checked before the step is counted: a rejected one is no step
        if self.mode == "answer":
            answer = check_answer(action)
            self._steps += 1
            self._edit.canvas = answer
            return self._submit()
        op, row, col, row2, col2, colour = rules.check_edit(action)
        self._steps += 1
        if OPS[op] == "submit":
            return self._submit()
        legal = rules.apply_edit(self._edit, op, row, col, row2, col2, colour)
        reward = self.step_reward if legal else self.illegal_reward
        truncated = self._steps >= self.max_steps
        return self._obs(), reward, False, truncated, self._info(illegal=not legal)

    def render(self):
        from .render import render_ansi, render_rgb

        if self.task is None:
            return None
        if self.render_mode == "ansi":
            return render_ansi(self.task, self.test_input, self.canvas)
        if self.render_mode == "rgb_array":
            return render_rgb(self.task, self.test_input, self.canvas)
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def _find_task(self, task_id) -> ArcTask:
        """The dataset's task of ``task_id`` (options["task_id"])."""
        field = "options['task_id']"
        if not isinstance(task_id, str):
            raise TracegymError(f"{field} must be a str, got {task_id!r}")
        if not isinstance(self.source, ListSource):
            raise TracegymError(f"{field}: this env draws its tasks from a generator or an "
                                "iterator; a task id needs a dataset of known tasks (a set "
                                "name, a directory, a file or a list)")
        if self._tasks_by_id is None:
            self._tasks_by_id = {}
            for task in self.source.grids:
                self._tasks_by_id.setdefault(task.task_id, task)
        if task_id not in self._tasks_by_id:
            close = difflib.get_close_matches(task_id, list(self._tasks_by_id), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TracegymError(f"{field}: no task {task_id!r} among the dataset's "
                                f"{len(self._tasks_by_id)} tasks{hint}")
        return self._tasks_by_id[task_id]

    def _submit(self):
        correct = rules.is_correct(self.canvas, self.test_output)
        self.attempts_left -= 1
        terminated = correct or self.attempts_left == 0
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs(), float(correct), terminated, truncated, self._info(correct=correct)

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
            info["action_mask"] = {key: rules.op_mask(self._edit) if key == "op"
                                   else np.ones(space.n, np.int8)
                                   for key, space in self.action_space.items()}
            info["illegal"] = illegal
        return info
