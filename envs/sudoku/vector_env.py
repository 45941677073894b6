"""Native batched Sudoku: ``gym.make_vec("tracegym/Sudoku-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The rules of :mod:`.rules` run over the batch axis in numpy, so one ``step`` moves every board
at once. Semantics match ``SyncVectorEnv`` of :class:`~.env.SudokuEnv` exactly: env ``i`` is seeded
with ``seed + i``, draws its puzzles from its own ``np_random``, and resets on the step after it
ends (Gymnasium's next-step autoreset: that step ignores the action and returns the new puzzle
with reward 0).
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
    draw_puzzle,
    observation_space,
)
from .generator import DEFAULT_DIFFICULTY
from .render import render_ansi, render_rgb


class SudokuVectorEnv(NativeVectorEnv):
    """``num_envs`` Sudoku boards stepped together; same options as :class:`~.env.SudokuEnv`.

    ``info`` holds arrays over the batch: ``illegal``, ``solved``, ``dead_end`` (num_envs,)
    bool, and in step mode ``action_mask`` (num_envs, n**3) int8, stacked as ``SyncVectorEnv``
    stacks it; ``action_space.sample(mask=tuple(info["action_mask"]))`` draws legal writes.
    ``reset(options=...)`` takes the single env's options and applies them to every env (as
    ``SyncVectorEnv`` passes them to each); autoresets draw from the source as usual.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    info_flags = {"illegal": bool, "solved": bool, "dead_end": bool}
    reset_options = RESET_OPTIONS

    def __init__(self, num_envs: int, size: int | None = None,
                 difficulty: str = DEFAULT_DIFFICULTY, puzzles=None, mode: str = "step",
                 illegal_action: str = "penalize", illegal_reward: float = -0.1,
                 max_steps: int | None = None, render_mode: str | None = None):
        configure(self, size=size, difficulty=difficulty, puzzles=puzzles, mode=mode,
                  illegal_action=illegal_action, illegal_reward=illegal_reward,
                  max_steps=max_steps, render_mode=render_mode)
        self._setup(num_envs, observation_space(self.size), action_space(self.size, mode))
        self._state = rules.BoardState.empty(self.num_envs, self.geometry)

    def _advance(self, rows, actions):
        if self.mode == "answer":
            answers = np.stack([check_answer(a, self.size, f"actions[{i}]")
                                for i, a in enumerate(actions)]).reshape(self.num_envs, -1)
            givens = np.where(self._state.givens[rows], self._state.board[rows], 0)
            correct = rules.valid_completions(answers[rows], givens, self.geometry)
            return correct.astype(np.float64), True, {"solved": correct}
        actions = self.check_int_actions(actions, self.size ** 3)
        cells, digits = np.divmod(actions[rows], self.size)
        legal, solved, dead_end = rules.apply_moves(self._state, rows, cells, digits + 1,
                                                    self.geometry)
        rewards = np.where(legal, solved.astype(np.float64), self.illegal_reward)
        terminated = np.where(legal, solved | dead_end, self.illegal_action == "terminate")
        return rewards, terminated, {"illegal": ~legal, "solved": solved, "dead_end": dead_end}

    def _draw(self, rng, options):
        return draw_puzzle(self, rng, options)

    def _start(self, rows, puzzles):
        rules.load_rows(self._state, rows, puzzles, self.geometry)

    def _obs(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"board": self._state.board.reshape(-1, n, n).copy(),
                "givens": self._state.givens.reshape(-1, n, n).astype(np.int8)}

    def _extra_info(self) -> dict[str, np.ndarray]:
        if self.mode == "answer":  # as the single env: no mask for a Box action
            return {}
        return {"action_mask": self._state.mask.reshape(self.num_envs, -1).copy()}

    def render(self):
        n = self.size
        boards = self._state.board.reshape(-1, n, n)
        givens = self._state.givens.reshape(-1, n, n)
        if self.render_mode == "ansi":
            return [render_ansi(bd, gv) for bd, gv in zip(boards, givens)]
        if self.render_mode == "rgb_array":
            return [render_rgb(bd, gv) for bd, gv in zip(boards, givens)]
        return None
