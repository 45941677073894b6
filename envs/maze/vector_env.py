"""Native batched mazes: ``gym.make_vec("tracegym/Maze-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The moves of :mod:`.rules` run over the batch axis in numpy. Semantics match ``SyncVectorEnv``
of :class:`~.env.MazeEnv` exactly: env ``i`` is seeded with ``seed + i``, draws its mazes from its
own ``np_random``, and resets on the step after it ends (next-step autoreset: that step ignores
the action and returns the new maze with reward 0).
"""

from __future__ import annotations

import numpy as np
from gymnasium.vector import AutoresetMode

from tracegym.vector import NativeVectorEnv

from . import rules
from .env import (
    RESET_OPTIONS,
    action_space,
    check_answer,
    configure,
    draw_maze,
    observation_space,
)
from .render import render_ansi, render_rgb
from .solver import path_verdict, solve_batch


class MazeVectorEnv(NativeVectorEnv):
    """``num_envs`` mazes stepped together; same options as :class:`~.env.MazeEnv`.

    ``info`` holds arrays over the batch: ``blocked`` and ``reached`` (num_envs,) bool; in step
    mode ``action_mask`` (num_envs, 4) int8, stacked as ``SyncVectorEnv`` stacks it (sample
    with ``action_space.sample(mask=tuple(info["action_mask"]))``); in answer mode ``verdict``
    (num_envs,) object. ``reset(options=...)`` takes the single env's options and applies them
    to every env (as ``SyncVectorEnv`` passes them to each); autoresets draw from the source as
    usual.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    reset_options = RESET_OPTIONS

    def __init__(self, num_envs: int, size: int | None = None, kind: str = "hard", mazes=None,
                 mode: str = "step", step_reward: float = 0.0, max_steps: int | None = None,
                 render_mode: str | None = None):
        configure(self, size=size, kind=kind, mazes=mazes, mode=mode, step_reward=step_reward,
                  max_steps=max_steps, render_mode=render_mode)
        self.info_flags = {"blocked": bool, "reached": bool}
        if mode == "answer":
            self.info_flags["verdict"] = object
        self._setup(num_envs, observation_space(self.shape), action_space(self.shape, mode))
        self._state = rules.MazeState.empty(self.num_envs, self.shape)

    def _advance(self, rows, actions):
        if self.mode == "answer":
            answers = [check_answer(a, self.shape, f"actions[{i}]") for i, a in enumerate(actions)]
            _, lengths = solve_batch(self._state.grids[rows])
            verdicts = np.empty(len(rows), object)  # None = a shortest path, else what is wrong
            verdicts[:] = [path_verdict(self._state.grids[i], answers[i], int(length))
                           for i, length in zip(rows, lengths)]
            correct = np.array([v is None for v in verdicts], np.float64)
            return correct, True, {"verdict": verdicts}
        actions = self.check_int_actions(actions, 4)
        moved, reached = rules.move(self._state, rows, actions[rows])
        rewards = np.where(reached, 1.0, self.step_reward)
        return rewards, reached, {"blocked": ~moved, "reached": reached}

    def _draw(self, rng, options):
        return draw_maze(self, rng, options)

    def _start(self, rows, grids):
        rules.load_rows(self._state, rows, grids)

    def _obs(self):
        return {"grid": self._state.grids.copy(), "position": self._state.pos.copy()}

    def _extra_info(self):
        if self.mode == "answer":  # as the single env: no mask for a Box action
            return {}
        return {"action_mask": rules.action_masks(self._state, self._all)}

    def render(self):
        if self.render_mode == "ansi":
            return [render_ansi(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        if self.render_mode == "rgb_array":
            return [render_rgb(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        return None
