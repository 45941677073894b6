"""The Sudoku environment, ``tracegym/Sudoku-v0``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from tracegym.checks import check_positive_int
from tracegym.episode import EpisodicEnv, check_reward
from tracegym.errors import ActionError, TracegymError
from tracegym.grid import check_cells

from . import rules
from .board import geometry
from .generator import DEFAULT_DIFFICULTY, SudokuGenerator
from .render import render_ansi, render_rgb
from .source import check_puzzle, generated_source, make_source

MODES = ("step", "answer")
ILLEGAL_ACTIONS = ("penalize", "terminate")
DEAD_ENDS = ("terminate", "play_on")
RESET_OPTIONS = ("puzzle", "difficulty")


def observation_space(size: int) -> spaces.Dict:
    return spaces.Dict({
        "board": spaces.Box(0, size, (size, size), np.int8),
        "givens": spaces.MultiBinary((size, size)),
    })


def action_space(size: int, mode: str) -> spaces.Space:
    if mode == "step":
        return spaces.Discrete(size ** 3)
    return spaces.Box(0, size, (size, size), np.int8)


def configure(env, *, size, difficulty, puzzles, mode, illegal_action, illegal_reward,
              max_steps, render_mode, dead_end="terminate") -> None:
    """Check the options shared by the single and the vector env and set them on ``env``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if illegal_action not in ILLEGAL_ACTIONS:
        raise ValueError(f"illegal_action must be one of {list(ILLEGAL_ACTIONS)}, "
                         f"got {illegal_action!r}")
    if dead_end not in DEAD_ENDS:
        raise ValueError(f"dead_end must be one of {list(DEAD_ENDS)}, got {dead_end!r}")
    check_positive_int("max_steps", max_steps, optional=True)
    render_modes = env.metadata["render_modes"]
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {render_modes}, got {render_mode!r}")
    illegal_reward = check_reward("illegal_reward", illegal_reward)
    env.source = make_source(puzzles, size, difficulty)
    # options["difficulty"] asks the generator for a level: only where the env generates
    env.generates = puzzles is None or isinstance(puzzles, SudokuGenerator)
    env.generated = {}  # difficulty -> its source, made on the first reset that asks
    env.size = n = env.source.size
    env.geometry = geometry(n)
    env.mode = mode
    env.illegal_action = illegal_action
    env.illegal_reward = illegal_reward
    env.dead_end = dead_end
    env.max_steps = 2 * n * n if max_steps is None else int(max_steps)
    env.render_mode = render_mode


def draw_puzzle(env, rng: np.random.Generator, options: dict[str, Any]) -> np.ndarray:
    """The flat puzzle a reset starts from: ``options["puzzle"]``, a generated one of
    ``options["difficulty"]``, or the next draw of the env's source (the single and the vector
    env alike, so their episodes match)."""
    if "puzzle" in options:
        if "difficulty" in options:
            raise TracegymError("options: give 'puzzle' or 'difficulty', not both")
        return check_puzzle(options["puzzle"], env.size, "options['puzzle']")
    if "difficulty" in options:
        if not env.generates:
            raise TracegymError("options['difficulty']: this env draws its puzzles from "
                                "puzzles=...; a difficulty applies only to generated puzzles")
        level = options["difficulty"]
        if not isinstance(level, str) or level not in env.generated:  # (a list is no key)
            source = generated_source(env.size, level, "options['difficulty']")
            env.generated[level] = source
        return env.generated[level].draw(rng)
    return env.source.draw(rng)


def check_answer(answer, size: int, field: str = "action") -> np.ndarray:
    """An answer-mode action as an (n, n) int8 grid; wrong shape or values raise ActionError."""
    arr = np.asarray(answer)
    if arr.shape != (size, size):
        raise ActionError(f"{field}: expected an answer grid of shape ({size}, {size}), "
                          f"got {arr.shape}")
    return check_cells(arr, size, field=field, error=ActionError)


class SudokuEnv(EpisodicEnv):
    """Fill a Sudoku grid so that every row, column and box holds each digit once.

    ## Description
    A puzzle comes from ``puzzles`` (or the seeded generator); the agent either writes digits
    one at a time (``mode="step"``) or submits a whole grid (``mode="answer"``), and the env
    verifies the result against the rules. Sizes 4, 6, 9, 16 (boxes 2x2, 2x3, 3x3, 4x4).

    ## Action Space
    - step mode: ``Discrete(n**3)``; action ``a`` writes digit ``a % n + 1`` in cell ``a // n``
      (cells row-major). ``info["action_mask"]`` (int8, ``n**3``) is 1 for the legal writes:
      the cell is blank and no peer in its row, column or box holds the digit.
    - answer mode: ``Box(0, n, (n, n), int8)``, the complete grid. ``info`` has no
      ``action_mask``: a Box takes no sampling mask, and any grid may be submitted.

    ## Observation Space
    ``Dict`` of

    ========  ==========================  ===================================
    key       space                       meaning
    ========  ==========================  ===================================
    board     ``Box(0, n, (n, n), int8)`` current grid, 0 = blank
    givens    ``MultiBinary((n, n))``     1 on the puzzle's clues
    ========  ==========================  ===================================

    ## Rewards
    - step mode: ``+1`` for the write that completes the grid; ``0`` for any other legal write;
      ``illegal_reward`` (default ``-0.1``) for an illegal write (a filled cell or a digit a peer
      already holds), which changes nothing.
    - answer mode: ``1`` if the grid is complete, breaks no rule and keeps every given, else
      ``0`` (any valid completion counts, so puzzles with several solutions are scored fairly).

    ## Starting State
    The drawn puzzle, givens only. ``reset(options=...)`` takes (each optional):

    - ``"puzzle"``: this episode's puzzle, a string of ``n*n`` characters (``.`` or ``0``
      blank) or an ``(n, n)`` int grid (0 blank) of the env's size; checked for its shape,
      values, clashing givens and a solution.
    - ``"difficulty"``: generate this episode's puzzle at that level (``easy | medium | hard |
      extreme``); only when the env generates (``puzzles`` None or a generator).

    Any other key raises a TracegymError naming it.

    ## Episode End
    - terminated: the grid is solved; or a dead end, by the ``dead_end`` rule below; or an
      illegal write when ``illegal_action="terminate"``; in answer mode after the one
      submission.
    - dead ends: a legal write that leaves some blank cell with no legal digit makes the grid
      unsolvable from there (``info["dead_end"]`` is True on that step, reward 0). With
      ``dead_end="terminate"`` (the default) that step ends the episode: every later step could
      only waste samples on a lost board, and the agent learns at once that the write was a
      mistake. With ``dead_end="play_on"`` (as Jumanji's Sudoku) the episode goes on while any
      legal write remains and terminates, reward 0, when none does (every blank cell is
      blocked), so a policy is scored on how far it fills the board.
    - truncated: ``max_steps`` steps (default ``2 * n * n``) without termination. Illegal
      writes count as steps; an action that raises ActionError does not.

    After either, ``step`` raises :class:`~tracegym.episode.ResetNeededError` until ``reset``
    (as before the first ``reset``).

    ## Arguments
    - ``size`` (int, 9): board side; taken from ``puzzles`` when those are given.
    - ``difficulty`` (str, ``"medium"``): generator level when ``puzzles`` is None
      (``easy | medium | hard | extreme``).
    - ``puzzles``: None (generate), a list of puzzle strings or grids, a file path (one puzzle
      per line), a :class:`SudokuGenerator` or any callable ``rng -> puzzle``, or an iterator.
    - ``mode`` (str, ``"step"``): ``"step"`` or ``"answer"``.
    - ``illegal_action`` (str, ``"penalize"``): ``"penalize"`` or ``"terminate"``.
    - ``dead_end`` (str, ``"terminate"``): ``"terminate"`` or ``"play_on"`` (see Episode End).
    - ``illegal_reward`` (float, -0.1; finite); ``max_steps`` (int | None).
    - ``render_mode``: ``"ansi"`` or ``"rgb_array"``.

    ## Version History
    - v0: first release. Later in v0: ``reset`` honours its options (unknown keys raise); a
      step after the episode's end raises; a non-finite ``illegal_reward`` is refused; generated
      puzzles are drawn from a shared buffer of 4,096 per size and level (see
      :class:`~.source.BufferedSource`); the ``dead_end`` option.

    >>> import gymnasium as gym, tracegym
    >>> env = gym.make("tracegym/Sudoku-v0", size=4, difficulty="easy")
    >>> obs, info = env.reset(seed=0)
    >>> obs["board"].shape, info["action_mask"].shape
    ((4, 4), (64,))
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    reset_options = RESET_OPTIONS

    def __init__(self, size: int | None = None, difficulty: str = DEFAULT_DIFFICULTY,
                 puzzles=None, mode: str = "step", illegal_action: str = "penalize",
                 illegal_reward: float = -0.1, max_steps: int | None = None,
                 render_mode: str | None = None, dead_end: str = "terminate"):
        configure(self, size=size, difficulty=difficulty, puzzles=puzzles, mode=mode,
                  illegal_action=illegal_action, illegal_reward=illegal_reward,
                  max_steps=max_steps, render_mode=render_mode, dead_end=dead_end)
        n = self.size
        self.observation_space = observation_space(n)
        self.action_space = action_space(n, mode)
        self._state = rules.BoardState.empty(1, self.geometry)
        self._steps = 0
        self._rows = np.zeros(1, np.intp)

    # -- gymnasium API (reset and step come from EpisodicEnv) --------------------------------
    def _reset(self, options: dict[str, Any]):
        puzzle = draw_puzzle(self, self.np_random, options)
        rules.load_rows(self._state, self._rows, puzzle[None], self.geometry)
        self._steps = 0
        return self._obs(), self._info()

    def _step(self, action):
        if self.mode == "answer":
            return self._step_answer(action)
        n = self.size
        if not isinstance(action, (int, np.integer)) and not (
                isinstance(action, np.ndarray) and action.shape == () and
                np.issubdtype(action.dtype, np.integer)):
            raise ActionError(f"action: expected an int in 0..{n ** 3 - 1}, got {action!r}")
        action = int(action)
        if not 0 <= action < n ** 3:
            raise ActionError(f"action: {action} is outside 0..{n ** 3 - 1}")
        self._steps += 1
        cell, digit = divmod(action, n)
        legal, solved, dead_end = rules.apply_moves(
            self._state, self._rows, np.array([cell]), np.array([digit + 1]), self.geometry)
        legal, solved, dead_end = bool(legal[0]), bool(solved[0]), bool(dead_end[0])
        if not legal:
            reward = self.illegal_reward
            terminated = self.illegal_action == "terminate"
        else:
            reward = 1.0 if solved else 0.0
            if self.dead_end == "terminate":
                terminated = solved or dead_end
            else:  # play on until no legal write is left
                terminated = solved or not self._state.cand_count[0].any()
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info(illegal=not legal, solved=solved, dead_end=dead_end)
        return self._obs(), reward, terminated, truncated, info

    def _step_answer(self, action):
        answer = check_answer(action, self.size)
        correct = bool(rules.valid_completions(answer.reshape(1, -1), self._givens_board(),
                                               self.geometry)[0])
        self._steps += 1
        return self._obs(), float(correct), True, False, self._info(solved=correct)

    def render(self):
        board = self._state.board[0].reshape(self.size, self.size)
        givens = self._state.givens[0].reshape(self.size, self.size)
        if self.render_mode == "ansi":
            return render_ansi(board, givens)
        if self.render_mode == "rgb_array":
            return render_rgb(board, givens)
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def _givens_board(self) -> np.ndarray:
        return np.where(self._state.givens, self._state.board, 0)

    def _obs(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"board": self._state.board[0].reshape(n, n).copy(),
                "givens": self._state.givens[0].reshape(n, n).astype(np.int8)}

    def _info(self, illegal: bool = False, solved: bool = False, dead_end: bool = False):
        info = {"illegal": illegal, "solved": solved, "dead_end": dead_end}
        if self.mode == "step":  # a mask must fit the action space: the answer Box takes none
            info["action_mask"] = self._state.mask[0].reshape(-1).copy()
        return info
