"""Bookkeeping shared by the native vector envs: per-env random streams, as SyncVectorEnv has,
next-step autoreset, step limits, reset options and action checks."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tracegym.checks import check_positive_int
from tracegym.episode import ResetNeededError, check_options
from tracegym.errors import ActionError


def reseed(rngs: list[np.random.Generator | None], seed) -> None:
    """Seed the per-env generators the way ``SyncVectorEnv.reset(seed=...)`` seeds its envs.

    An int seeds env ``i`` with ``seed + i``; a list gives one seed (or None) per env; None keeps
    each env's stream, creating a random one where there is none yet.
    """
    n = len(rngs)
    if seed is None or isinstance(seed, (int, np.integer)):
        seeds = [None if seed is None else int(seed) + i for i in range(n)]
    else:
        seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"seed: expected {n} seeds, got {len(seeds)}")
    for i, s in enumerate(seeds):
        if s is not None or rngs[i] is None:
            rngs[i], _ = seeding.np_random(s)


class NativeVectorEnv(VectorEnv):
    """The batched half every native grid vector env shares: per-env streams (as
    ``SyncVectorEnv`` seeds its envs), next-step autoreset, step counts and truncation.

    A subclass calls :meth:`_setup` in ``__init__`` (after setting ``source`` and ``max_steps``)
    and implements ``_start(rows, grids)`` (load drawn puzzles), ``_advance(rows, actions)`` ->
    ``(rewards, terminated, flags)`` for the live ``rows`` (``flags``: name -> array aligned with
    ``rows``, one entry per name of ``info_flags``), ``_obs()`` and ``_extra_info()`` (what
    ``info`` holds beside the flags, e.g. the action masks). ``reset_options`` names the
    options ``reset`` takes, and ``_draw(rng, options)`` draws one env's puzzle with them
    (``options`` is empty on an autoreset, as SyncVectorEnv's autoreset passes none).

    An env that ended is reset by its next step, whose action is ignored (reward 0, neither
    terminated nor truncated), so ``step`` never needs a manual ``reset`` after the first.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}
    info_flags: dict[str, type] = {}
    reset_options: tuple[str, ...] = ()

    def _setup(self, num_envs, single_observation_space, single_action_space) -> None:
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._steps = np.zeros(self.num_envs, np.int64)
        self._prev_done = np.zeros(self.num_envs, bool)
        self._all = np.arange(self.num_envs)
        self._started = False

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        options = check_options(options, self.reset_options, type(self).__name__)
        reseed(self._rngs, seed)
        self._started = False  # a reset that fails half-way leaves nothing to step
        self._load(self._all, options)
        self._prev_done[:] = False
        self._started = True
        return self._obs(), self._info({}, self._all)

    def step(self, actions):
        if not self._started:  # the boards are blank until a reset draws them
            raise ResetNeededError(f"{type(self).__name__}: call reset() before step()")
        if not self._prev_done.any():  # the common step: every env live, no fancy indexing
            rewards, terminated, flags = self._advance(self._all, actions)
            rewards = np.asarray(rewards, np.float64)
            terminated = np.broadcast_to(terminated, (self.num_envs,)).copy()
            self._steps += 1
            truncated = ~terminated & (self._steps >= self.max_steps)
            self._prev_done = terminated | truncated
            return self._obs(), rewards, terminated, truncated, self._info(flags)
        reset_rows = np.flatnonzero(self._prev_done)
        live = ~self._prev_done
        rows = np.flatnonzero(live)
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        rewards[rows], terminated[rows], flags = self._advance(rows, actions)
        self._steps[rows] += 1
        truncated = live & ~terminated & (self._steps >= self.max_steps)
        if len(reset_rows):  # envs that ended last step start over; their actions were ignored
            self._load(reset_rows)
        self._prev_done = terminated | truncated
        return self._obs(), rewards, terminated, truncated, self._info(flags, rows)

    def check_int_actions(self, actions, limit: int) -> np.ndarray:
        """Actions as an int array of shape (num_envs,) in ``0..limit-1``, else ActionError."""
        arr = np.asarray(actions)
        if arr.shape != (self.num_envs,) or not np.issubdtype(arr.dtype, np.integer):
            raise ActionError(f"actions: expected {self.num_envs} ints, got shape {arr.shape} "
                              f"dtype {arr.dtype}")
        if len(arr) and 0 <= arr.min() and arr.max() < limit:
            return arr
        bad = np.flatnonzero((arr < 0) | (arr >= limit))
        if len(bad):
            raise ActionError(f"actions[{bad[0]}]: {int(arr[bad[0]])} is outside 0..{limit - 1}")
        return arr

    def _draw(self, rng: np.random.Generator, options: dict[str, Any]) -> np.ndarray:
        return self.source.draw(rng)

    def _load(self, rows: np.ndarray, options: dict[str, Any] | None = None) -> None:
        self._start(rows, np.stack([self._draw(self._rngs[i], options or {}) for i in rows]))
        self._steps[rows] = 0

    def _info(self, flags: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict:
        """``info``: the extra entries and each flag over the batch (``flags`` aligned with
        ``rows``; None: with every env, as they are)."""
        info = self._extra_info()
        for name, dtype in self.info_flags.items():
            if rows is None and name in flags:
                info[name] = np.asarray(flags[name], dtype)
                continue
            full = np.full(self.num_envs, None, object) if dtype is object \
                else np.zeros(self.num_envs, dtype)
            if name in flags:
                full[rows] = flags[name]
            info[name] = full
        return info
