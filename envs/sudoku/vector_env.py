"""Native batched Sudoku: ``gym.make_vec("tracegym/Sudoku-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The rules of :mod:`.rules` run over the batch axis in numpy, so one ``step`` moves every board
at once. Semantics match ``SyncVectorEnv`` of :class:`~.env.SudokuEnv` exactly: env ``i`` is seeded
with ``seed + i``, draws its puzzles from its own ``np_random``, and resets on the step after it
ends (Gymnasium's next-step autoreset: that step ignores the action and returns the new puzzle
with reward 0).
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
from .generator import DEFAULT_DIFFICULTY
from .render import render_ansi, render_rgb


class SudokuVectorEnv(VectorEnv):
    """``num_envs`` Sudoku boards stepped together; same options as :class:`~.env.SudokuEnv`.

    ``info`` holds arrays over the batch: ``action_mask`` (num_envs, n**3) int8, ``illegal``,
    ``solved``, ``dead_end`` (num_envs,) bool.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, size: int | None = None,
                 difficulty: str = DEFAULT_DIFFICULTY, puzzles=None, mode: str = "step",
                 illegal_action: str = "penalize", illegal_reward: float = -0.1,
                 max_steps: int | None = None, render_mode: str | None = None):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(num_envs)
        configure(self, size=size, difficulty=difficulty, puzzles=puzzles, mode=mode,
                  illegal_action=illegal_action, illegal_reward=illegal_reward,
                  max_steps=max_steps, render_mode=render_mode)
        n = self.size
        self.single_observation_space = observation_space(n)
        self.single_action_space = action_space(n, mode)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        self._state = rules.BoardState.empty(self.num_envs, self.geometry)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._steps = np.zeros(self.num_envs, np.int64)
        self._prev_done = np.zeros(self.num_envs, bool)
        self._all = np.arange(self.num_envs)

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        reseed(self._rngs, seed)
        self._load(self._all)
        self._prev_done[:] = False
        return self._obs(), self._info(np.zeros(self.num_envs, bool),
                                       np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))

    def step(self, actions):
        b = self.num_envs
        reset_rows = np.flatnonzero(self._prev_done)
        live = ~self._prev_done
        rows = np.flatnonzero(live)
        rewards = np.zeros(b, np.float64)
        terminated = np.zeros(b, bool)
        illegal = np.zeros(b, bool)
        solved = np.zeros(b, bool)
        dead_end = np.zeros(b, bool)

        if self.mode == "step":
            actions = self._check_actions(actions)
            cells, digits = np.divmod(actions[rows], self.size)
            legal, solved_r, dead_r = rules.apply_moves(self._state, rows, cells, digits + 1,
                                                        self.geometry)
            illegal[rows] = ~legal
            solved[rows] = solved_r
            dead_end[rows] = dead_r
            rewards[rows] = np.where(legal, solved_r.astype(np.float64), self.illegal_reward)
            terminated[rows] = np.where(legal, solved_r | dead_r,
                                        self.illegal_action == "terminate")
        else:
            answers = np.stack([check_answer(a, self.size, f"actions[{i}]")
                                for i, a in enumerate(actions)]).reshape(b, -1)
            givens = np.where(self._state.givens[rows], self._state.board[rows], 0)
            correct = rules.valid_completions(answers[rows], givens, self.geometry)
            solved[rows] = correct
            rewards[rows] = correct
            terminated[rows] = True

        self._steps[rows] += 1
        truncated = live & ~terminated & (self._steps >= self.max_steps)
        if len(reset_rows):
            self._load(reset_rows)
        self._prev_done = terminated | truncated
        return self._obs(), rewards, terminated, truncated, self._info(illegal, solved, dead_end)

    def render(self):
        n = self.size
        boards = self._state.board.reshape(-1, n, n)
        givens = self._state.givens.reshape(-1, n, n)
        if self.render_mode == "ansi":
            return [render_ansi(bd, gv) for bd, gv in zip(boards, givens)]
        if self.render_mode == "rgb_array":
            return [render_rgb(bd, gv) for bd, gv in zip(boards, givens)]
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def _check_actions(self, actions) -> np.ndarray:
        arr = np.asarray(actions)
        limit = self.size ** 3
        if arr.shape != (self.num_envs,) or not np.issubdtype(arr.dtype, np.integer):
            raise ActionError(f"actions: expected {self.num_envs} ints, got shape {arr.shape} "
                              f"dtype {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr >= limit))
        if len(bad):
            raise ActionError(f"actions[{bad[0]}]: {int(arr[bad[0]])} is outside 0..{limit - 1}")
        return arr

    def _load(self, rows: np.ndarray) -> None:
        puzzles = np.stack([self.source.draw(self._rngs[i]) for i in rows])
        rules.load_rows(self._state, rows, puzzles, self.geometry)
        self._steps[rows] = 0

    def _obs(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"board": self._state.board.reshape(-1, n, n).copy(),
                "givens": self._state.givens.reshape(-1, n, n).astype(np.int8)}

    def _info(self, illegal, solved, dead_end) -> dict[str, np.ndarray]:
        return {"action_mask": self._state.mask.reshape(self.num_envs, -1).copy(),
                "illegal": illegal, "solved": solved, "dead_end": dead_end}
