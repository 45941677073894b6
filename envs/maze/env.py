"""The maze environment, ``tracegym/Maze-v0``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from tracegym.checks import check_positive_int
from tracegym.episode import EpisodicEnv, check_reward
from tracegym.errors import ActionError, TracegymError
from tracegym.grid import check_cells

from . import rules
from .board import PATH
from .generator import MazeGenerator
from .render import render_ansi, render_rgb
from .solver import path_verdict, solve_batch
from .source import check_maze_option, generated_source, make_source

MODES = ("step", "answer")
KINDS = ("hard", "backtracker", "kruskal", "perfect")
RESET_OPTIONS = ("maze", "kind")


def generator_kind(kind: str) -> str:
    """The generator's name for an env ``kind`` (``"perfect"`` is the backtracker)."""
    return "backtracker" if kind == "perfect" else kind


def observation_space(shape: tuple[int, int]) -> spaces.Dict:
    return spaces.Dict({
        "grid": spaces.Box(1, PATH, shape, np.int8),
        "position": spaces.Box(0, max(shape) - 1, (2,), np.int64),
    })


def action_space(shape: tuple[int, int], mode: str) -> spaces.Space:
    return spaces.Discrete(4) if mode == "step" else spaces.Box(0, PATH, shape, np.int8)


def configure(env, *, size, kind, mazes, mode, step_reward, max_steps, render_mode) -> None:
    """Check the options shared by the single and the vector env and set them on ``env``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    check_positive_int("max_steps", max_steps, optional=True)
    step_reward = check_reward("step_reward", step_reward)
    render_modes = env.metadata["render_modes"]
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {render_modes}, got {render_mode!r}")
    env.source = make_source(mazes, size, generator_kind(kind))
    env.shape = env.source.shape
    # options["kind"] asks the generator for a kind: only where the env generates
    env.generates = mazes is None or isinstance(mazes, MazeGenerator)
    env.generated = {}  # kind -> its source, made on the first reset that asks
    env.mode = mode
    env.step_reward = step_reward
    env.max_steps = 4 * env.shape[0] * env.shape[1] if max_steps is None else int(max_steps)
    env.render_mode = render_mode


def draw_maze(env, rng: np.random.Generator, options: dict[str, Any]) -> np.ndarray:
    """The maze a reset starts from: ``options["maze"]``, a generated one of
    ``options["kind"]``, or the next draw of the env's source (the single and the vector env
    alike, so their episodes match)."""
    if "maze" in options:
        if "kind" in options:
            raise TracegymError("options: give 'maze' or 'kind', not both")
        return check_maze_option(options["maze"], env.shape, "options['maze']")
    if "kind" in options:
        kind = options["kind"]
        if not env.generates:
            raise TracegymError("options['kind']: this env draws its mazes from mazes=...; a "
                                "kind applies only to generated mazes")
        if not isinstance(kind, str) or kind not in KINDS:
            raise TracegymError(f"options['kind'] must be one of {list(KINDS)}, got {kind!r}")
        if kind not in env.generated:
            env.generated[kind] = generated_source(env.shape, generator_kind(kind),
                                                   "options['kind']")
        return env.generated[kind].draw(rng)
    return env.source.draw(rng)


def check_answer(answer, shape: tuple[int, int], field: str = "action") -> np.ndarray:
    """An answer grid as int8; the wrong shape or codes outside 0..5 raise ActionError."""
    arr = np.asarray(answer)
    if arr.shape != shape:
        raise ActionError(f"{field}: expected an answer grid of shape {shape}, got {arr.shape}")
    return check_cells(arr, PATH, field=field, name="code", error=ActionError)


class MazeEnv(EpisodicEnv):
    """Walk from S to G, or submit a shortest path.

    ## Description
    A maze comes from ``mazes`` or the seeded generator (``kind``). In step mode the agent moves
    one cell at a time; in answer mode it submits the grid with a path marked and the BFS
    verifier scores it.

    ## Action Space
    - step mode: ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left. ``info["action_mask"]``
      (int8, 4) is 1 for moves that stay on the grid and do not enter a wall.
    - answer mode: ``Box(0, 5, (H, W), int8)``: the maze with path cells set to 5 (``o``).
      ``info`` has no ``action_mask``: a Box takes no sampling mask.

    ## Observation Space
    ``Dict`` of

    ========  ================================  =================================
    key       space                             meaning
    ========  ================================  =================================
    grid      ``Box(1, 5, (H, W), int8)``        the maze: 1 wall, 2 open, 3 S, 4 G
    position  ``Box(0, max(H, W) - 1, (2,))``    the agent's (row, col); S at reset
    ========  ================================  =================================

    ## Rewards
    - step mode: ``+1`` on reaching G; every other step costs ``step_reward`` (default 0, so no
      per-step cost unless asked; a negative value rewards short walks). A move into a wall or
      off the grid leaves the agent in place (``info["blocked"]``) and costs the same.
    - answer mode: ``1`` iff the marked cells form a shortest S-G path (any of several shortest
      paths counts), else ``0``; ``info["verdict"]`` says what is wrong.

    ## Starting State
    The drawn maze, the agent on S. ``reset(options=...)`` takes (each optional):

    - ``"maze"``: this episode's maze, as text (``#`` wall, space open, ``S``, ``G``; ``o``
      path marks are dropped) or an ``(H, W)`` int grid of codes, of the env's shape; checked
      for its codes, one S and one G, and a reachable goal.
    - ``"kind"``: generate this episode's maze of that kind (as the ``kind`` argument); only
      when the env generates (``mazes`` None or a generator), at the env's size.

    Any other key raises a TracegymError naming it.

    ## Episode End
    - terminated: G reached (step mode) or after the one submission (answer mode).
    - truncated: ``max_steps`` steps (default ``4 * H * W``). Blocked moves count as steps; an
      action that raises ActionError does not.

    After either, ``step`` raises :class:`~tracegym.episode.ResetNeededError` until ``reset``
    (as before the first ``reset``).

    ## Arguments
    - ``size`` (int): side of generated mazes, default 30 for ``"hard"`` and 29 for the perfect
      kinds (which need an odd side); taken from ``mazes`` when given.
    - ``kind`` (str, ``"hard"``): ``"hard"`` (Maze-Hard), ``"backtracker"``, ``"kruskal"``,
      or ``"perfect"`` (= backtracker); perfect mazes need an odd size.
    - ``mazes``: None (generate), a list of maze texts or grids, a file of maze blocks, a
      :class:`MazeGenerator` or any callable ``rng -> maze``, or an iterator.
    - ``mode`` (``"step"``), ``step_reward`` (0.0; finite), ``max_steps``, ``render_mode``
      (``"ansi"`` or ``"rgb_array"``).

    ## Version History
    - v0: first release. Later in v0: ``reset`` honours its options (unknown keys raise); a
      step after the episode's end raises; perfect kinds default to size 29 (30 failed); a
      non-finite ``step_reward`` is refused.

    >>> import gymnasium as gym, tracegym
    >>> env = gym.make("tracegym/Maze-v0", size=11, kind="kruskal")
    >>> obs, info = env.reset(seed=0)
    >>> obs["grid"].shape, info["action_mask"].shape
    ((11, 11), (4,))
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}
    reset_options = RESET_OPTIONS

    def __init__(self, size: int | None = None, kind: str = "hard", mazes=None,
                 mode: str = "step", step_reward: float = 0.0, max_steps: int | None = None,
                 render_mode: str | None = None):
        configure(self, size=size, kind=kind, mazes=mazes, mode=mode, step_reward=step_reward,
                  max_steps=max_steps, render_mode=render_mode)
        self.observation_space = observation_space(self.shape)
        self.action_space = action_space(self.shape, mode)
        self._state = rules.MazeState.empty(1, self.shape)
        self._rows = np.zeros(1, np.intp)
        self._steps = 0
        self._length = -1

    # -- gymnasium API (reset and step come from EpisodicEnv) --------------------------------
    def _reset(self, options: dict[str, Any]):
        grid = draw_maze(self, self.np_random, options)
        rules.load_rows(self._state, self._rows, grid[None])
        self._steps = 0
        self._length = -1  # shortest length, computed on the first answer
        return self._obs(), self._info()

    def _step(self, action):
        if self.mode == "answer":
            answer = check_answer(action, self.shape)
            grid = self._state.grids[0]
            if self._length < 0:
                self._length = int(solve_batch(grid[None])[1][0])
            verdict = path_verdict(grid, answer, self._length)
            self._steps += 1
            return self._obs(), float(verdict is None), True, False, self._info(verdict=verdict)
        if not isinstance(action, (int, np.integer)) and not (
                isinstance(action, np.ndarray) and action.shape == ()
                and np.issubdtype(action.dtype, np.integer)):
            raise ActionError(f"action: expected an int in 0..3, got {action!r}")
        if not 0 <= int(action) < 4:
            raise ActionError(f"action: {int(action)} is outside 0..3")
        self._steps += 1
        moved, reached = rules.move(self._state, self._rows, np.array([int(action)]))
        reached = bool(reached[0])
        reward = 1.0 if reached else self.step_reward
        truncated = not reached and self._steps >= self.max_steps
        return self._obs(), reward, reached, truncated, self._info(blocked=not moved[0],
                                                                   reached=reached)

    def render(self):
        grid, pos = self._state.grids[0], self._state.pos[0]
        if self.render_mode == "ansi":
            return render_ansi(grid, pos)
        if self.render_mode == "rgb_array":
            return render_rgb(grid, pos)
        return None

    def _obs(self):
        return {"grid": self._state.grids[0].copy(), "position": self._state.pos[0].copy()}

    def _info(self, blocked=False, reached=False, verdict=None):
        info = {"blocked": bool(blocked), "reached": bool(reached)}
        if self.mode == "answer":  # a mask must fit the action space: the answer Box takes none
            info["verdict"] = verdict
        else:
            info["action_mask"] = rules.action_masks(self._state, self._rows)[0]
        return info
