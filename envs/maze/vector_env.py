"""Native batched mazes: ``gym.make_vec("tracegym/Maze-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The moves of :mod:`.rules` run over the batch axis in numpy. Semantics match ``SyncVectorEnv``
of :class:`~.env.MazeEnv` exactly: env ``i`` is seeded with ``seed + i``, draws its mazes from its
own ``np_random``, and resets on the step after it ends (next-step autoreset: that step ignores
the action and returns the new maze with reward 0).

Step mode moves every agent and rebuilds every action mask in one compiled pass (the results of
:func:`.rules.move` and :func:`.rules.action_masks`), so a step costs little beyond Gymnasium's
bookkeeping.
"""

from __future__ import annotations

import numba
import numpy as np
from gymnasium.vector import AutoresetMode

from tracegym.sources import CallableSource
from tracegym.vector import NativeVectorEnv

from . import rules
from .board import GOAL, START, WALL, strip_path
from .env import (
    RESET_OPTIONS,
    action_space,
    check_answer,
    configure,
    draw_maze,
    observation_space,
)
from .generator import MazeGenerator
from .render import render_ansi, render_rgb
from .solver import path_verdict, solve_batch

_DY = rules.DELTAS[:, 0].copy()
_DX = rules.DELTAS[:, 1].copy()


@numba.njit(cache=True, inline="always")
def _open(grids, r, y, x):
    return 0 <= y < grids.shape[1] and 0 <= x < grids.shape[2] and grids[r, y, x] != WALL


@numba.njit(cache=True)
def _move(grids, pos, goal, rows, actions, dy, dx, masks, moved, reached):
    """:func:`.rules.move` for the live ``rows`` (actions indexed by env), in place, and their
    rows of ``masks`` (:func:`.rules.action_masks`) at the new positions."""
    for k in range(rows.shape[0]):
        r = rows[k]
        a = actions[r]
        y, x = pos[r, 0] + dy[a], pos[r, 1] + dx[a]
        if _open(grids, r, y, x):
            pos[r, 0], pos[r, 1] = y, x
            moved[k] = True
            for b in range(4):  # the mask changes only where the agent moved
                masks[r, b] = _open(grids, r, y + dy[b], x + dx[b])
        reached[k] = pos[r, 0] == goal[r, 0] and pos[r, 1] == goal[r, 1]


@numba.njit(cache=True)
def _load_rows(grids, pos, goal, rows, new):
    """:func:`.rules.load_rows`: the mazes ``new`` into ``rows``, the agent on S."""
    for k in range(rows.shape[0]):
        r = rows[k]
        grids[r] = new[k]
        for y in range(new.shape[1]):
            for x in range(new.shape[2]):
                if new[k, y, x] == START:
                    pos[r, 0], pos[r, 1] = y, x
                elif new[k, y, x] == GOAL:
                    goal[r, 0], goal[r, 1] = y, x


@numba.njit(cache=True)
def _masks(grids, pos, rows, dy, dx, masks):
    """The rows ``rows`` of ``masks`` (B, 4) int8, as :func:`.rules.action_masks`."""
    for r in rows:
        for a in range(4):
            masks[r, a] = _open(grids, r, pos[r, 0] + dy[a], pos[r, 1] + dx[a])


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
        self._masks = np.zeros((self.num_envs, 4), np.int8)  # kept up to date by every move

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
        moved, reached = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
        st = self._state
        _move(st.grids, st.pos, st.goal, rows, actions, _DY, _DX, self._masks, moved, reached)
        rewards = np.where(reached, 1.0, self.step_reward)
        return rewards, reached, {"blocked": ~moved, "reached": reached}

    def _draw(self, rng, options):
        return draw_maze(self, rng, options)

    def _load(self, rows, options=None):
        gen = getattr(self.source, "fn", None)
        if options or type(self.source) is not CallableSource \
                or not isinstance(gen, MazeGenerator):
            return super()._load(rows, options)
        # generated mazes: what the source's draw gives (the generator's item 0 of a seed from
        # the env's stream, path marks stripped) without re-checking the generator's own output
        grids = np.concatenate([gen.generate_arrays(int(self._rngs[i].integers(2**63)), 1)[0]
                                for i in rows])
        self._start(rows, strip_path(grids))
        self._steps[rows] = 0

    def _start(self, rows, grids):
        st = self._state
        _load_rows(st.grids, st.pos, st.goal, rows, grids.astype(np.int8, copy=False))
        _masks(self._state.grids, self._state.pos, rows, _DY, _DX, self._masks)

    def _obs(self):
        return {"grid": self._state.grids.copy(), "position": self._state.pos.copy()}

    def _extra_info(self):
        if self.mode == "answer":  # as the single env: no mask for a Box action
            return {}
        return {"action_mask": self._masks.copy()}

    def render(self):
        if self.render_mode == "ansi":
            return [render_ansi(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        if self.render_mode == "rgb_array":
            return [render_rgb(g, p) for g, p in zip(self._state.grids, self._state.pos)]
        return None
