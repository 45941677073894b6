"""Native batched mazes: ``gym.make_vec("tracegym/Maze-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The moves of :mod:`.rules` run over the batch axis in numpy. Semantics match ``SyncVectorEnv``
of :class:`~.env.MazeEnv` exactly: env ``i`` is seeded with ``seed + i``, draws its mazes from its
own ``np_random``, and resets on the step after it ends (next-step autoreset: that step ignores
the action and returns the new maze with reward 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tracegym.errors import ActionError
from tracegym.vector import reseed

from . import rules
from .env import action_space, check_answer, configure, observation_space
from .render import render_ansi, render_rgb
from .solver import path_verdict, solve_batch


class MazeVectorEnv(VectorEnv):
    """``num_envs`` mazes stepped together; same options as :class:`~.env.MazeEnv`.

    ``info`` holds arrays over the batch: ``action_mask`` (num_envs, 4) int8, ``blocked`` and
    ``reached`` (num_envs,) bool, and in answer mode ``verdict`` (num_envs,) object.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, size: int | None = None, kind: str = "hard", mazes=None,
                 mode: str = "step", step_reward: float = 0.0, max_steps: int | None = None,
                 render_mode: str | None = None):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(num_envs)
        configure(self, size=size, kind=kind, mazes=mazes, mode=mode, step_reward=step_reward,
                  max_steps=max_steps, render_mode=render_mode)
        self.single_observation_space = observation_space(self.shape)
        self.single_action_space = action_space(self.shape, mode)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._state = rules.MazeState.empty(self.num_envs, self.shape)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._steps = np.zeros(self.num_envs, np.int64)
        self._prev_done = np.zeros(self.num_envs, bool)
        self._all = np.arange(self.num_envs)

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        reseed(self._rngs, seed)
        self._load(self._all)
        self._prev_done[:] = False
        none = np.zeros(self.num_envs, bool)
        return self._obs(), self._info(none, none, [None] * self.num_envs)

    def step(self, actions):
        b = self.num_envs
        reset_rows = np.flatnonzero(self._prev_done)
        live = ~self._prev_done
        rows = np.flatnonzero(live)
        rewards = np.zeros(b)
        terminated = np.zeros(b, bool)
        blocked = np.zeros(b, bool)
        reached = np.zeros(b, bool)
        verdicts: list[str | None] = [None] * b
        if self.mode == "step":
            actions = self._check_actions(actions)
            moved, hit = rules.move(self._state, rows, actions[rows])
            blocked[rows], reached[rows] = ~moved, hit
            rewards[rows] = np.where(hit, 1.0, self.step_reward)
            terminated[rows] = hit
        else:
            answers = [check_answer(a, self.shape, f"actions[{i}]") for i, a in enumerate(actions)]
            _, lengths = solve_batch(self._state.grids[rows])
            for i, length in zip(rows, lengths):
                verdicts[i] = path_verdict(self._state.grids[i], answers[i], int(length))
                rewards[i] = float(verdicts[i] is None)
            terminated[rows] = True
        self._steps[rows] += 1
        truncated = live & ~terminated & (self._steps >= self.max_steps)
        if len(reset_rows):
            self._load(reset_rows)
        self._prev_done = terminated | truncated
        return self._obs(), rewards, terminated, truncated, self._info(blocked, reached, verdicts)

    def render(self):
        if self.render_mode == "ansi":
            return [render_ansi(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        if self.render_mode == "rgb_array":
            return [render_rgb(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        return None

    def _check_actions(self, actions) -> np.ndarray:
        arr = np.asarray(actions)
        if arr.shape != (self.num_envs,) or not np.issubdtype(arr.dtype, np.integer):
            raise ActionError(f"actions: expected {self.num_envs} ints, got shape {arr.shape} "
                              f"dtype {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr > 3))
        if len(bad):
            raise ActionError(f"actions[{bad[0]}]: {int(arr[bad[0]])} is outside 0..3")
        return arr

    def _load(self, rows: np.ndarray) -> None:
        grids = np.stack([self.source.draw(self._rngs[i]) for i in rows])
        rules.load_rows(self._state, rows, grids)
        self._steps[rows] = 0

    def _obs(self):
        return {"grid": self._state.grids.copy(), "position": self._state.pos.copy()}

    def _info(self, blocked, reached, verdicts):
        info = {"action_mask": rules.action_masks(self._state, self._all), "blocked": blocked,
                "reached": reached}
        if self.mode == "answer":
            info["verdict"] = np.array(verdicts, dtype=object)
        return info
