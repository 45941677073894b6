"""Native batched Sudoku: ``gym.make_vec("tracegym/Sudoku-v0", num_envs=N,
vectorization_mode="vector_entry_point")``.

The rules of :mod:`.rules` run over the batch axis in numpy, so one ``step`` moves every board
at once. Semantics match ``SyncVectorEnv`` of :class:`~.env.SudokuEnv` exactly: env ``i`` is seeded
with ``seed + i``, draws its puzzles from its own ``np_random``, and resets on the step after it
ends (Gymnasium's next-step autoreset: that step ignores the action and returns the new puzzle
with reward 0).

Step mode runs one compiled pass over the batch (the moves of :func:`.rules.apply_moves`, the
same results), and an autoreset from the default buffered source copies the drawn puzzle's
board, mask and candidate counts from the buffer, so no puzzle is generated or analysed inside
``step``.
"""

from __future__ import annotations

import numba
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
from .source import BufferedSource


@numba.njit(cache=True)
def _apply_moves(board, mask, count, filled, rows, actions, peers, play_on, illegal_ends,
                 terminated, legal, solved, dead_end):
    """:func:`.rules.apply_moves` for the live ``rows`` (actions indexed by env), in place, and
    the termination rule; outputs aligned with ``rows``."""
    nn, n = mask.shape[1], mask.shape[2]
    for k in range(rows.shape[0]):
        r = rows[k]
        c, d = actions[r] // n, actions[r] % n
        if mask[r, c, d] == 0:  # illegal: nothing changes
            terminated[k] = illegal_ends
            continue
        legal[k] = True
        board[r, c] = d + 1
        mask[r, c, :] = 0
        count[r, c] = 0
        filled[r] += 1
        dead = False
        for p in peers[c]:
            if mask[r, p, d]:
                mask[r, p, d] = 0
                count[r, p] -= 1
            if count[r, p] == 0 and board[r, p] == 0:  # a blank peer with no digit left
                dead = True
        solved[k] = filled[r] == nn
        dead_end[k] = dead
        if solved[k]:
            terminated[k] = True
        elif not play_on:
            terminated[k] = dead
        else:  # play on while some blank cell still takes a digit
            stuck = True
            for cell in range(nn):
                if count[r, cell] > 0:
                    stuck = False
                    break
            terminated[k] = stuck


class SudokuVectorEnv(NativeVectorEnv):
    """``num_envs`` Sudoku boards stepped together; same options as :class:`~.env.SudokuEnv`.

    ``info`` holds arrays over the batch: ``illegal``, ``solved``, ``dead_end`` (num_envs,)
    bool, and in step mode ``action_mask`` (num_envs, n**3) int8, stacked as ``SyncVectorEnv``
    stacks it; ``action_space.sample(mask=tuple(info["action_mask"]))`` draws legal writes.
    ``reset(options=...)`` takes the single env's options and applies them to every env (as
    ``SyncVectorEnv`` passes them to each); autoresets draw from the source as usual.
    ``dead_end`` chooses whether a dead end ends the episode (the default) or play goes on
    until no legal write is left (see :class:`~.env.SudokuEnv`, Episode End).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    info_flags = {"illegal": bool, "solved": bool, "dead_end": bool}
    reset_options = RESET_OPTIONS

    def __init__(self, num_envs: int, size: int | None = None,
                 difficulty: str = DEFAULT_DIFFICULTY, puzzles=None, mode: str = "step",
                 illegal_action: str = "penalize", illegal_reward: float = -0.1,
                 max_steps: int | None = None, render_mode: str | None = None,
                 dead_end: str = "terminate"):
        configure(self, size=size, difficulty=difficulty, puzzles=puzzles, mode=mode,
                  illegal_action=illegal_action, illegal_reward=illegal_reward,
                  max_steps=max_steps, render_mode=render_mode, dead_end=dead_end)
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
        m = len(rows)
        terminated, legal = np.zeros(m, bool), np.zeros(m, bool)
        solved, dead_end = np.zeros(m, bool), np.zeros(m, bool)
        st = self._state
        _apply_moves(st.board, st.mask, st.cand_count, st.filled, rows, actions,
                     self.geometry.peers, self.dead_end == "play_on",
                     self.illegal_action == "terminate", terminated, legal, solved, dead_end)
        rewards = np.where(legal, solved.astype(np.float64), self.illegal_reward)
        return rewards, terminated, {"illegal": ~legal, "solved": solved, "dead_end": dead_end}

    def _load(self, rows, options=None):
        if options or not isinstance(self.source, BufferedSource):
            return super()._load(rows, options)
        # the buffer holds each puzzle's mask and counts: a reset is a copy of rows
        buffer = self.source.buffer
        idx = self.source.indices([self._rngs[i] for i in rows])
        st = self._state
        st.board[rows] = grids = buffer.grids[idx]
        st.givens[rows] = grids != 0
        st.mask[rows] = buffer.mask[idx]
        st.cand_count[rows] = buffer.count[idx]
        st.filled[rows] = (grids != 0).sum(axis=1)
        self._steps[rows] = 0

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
