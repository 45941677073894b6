"""The life of an episode, shared by every env: ``step`` only between ``reset`` and the episode's
end, reward parameters that are finite numbers, and ``reset`` options checked by name.

Gymnasium leaves a step after ``terminated`` or ``truncated`` undefined; here it raises
:class:`ResetNeededError` until the next ``reset``, as a step before the first ``reset`` does, so
a loop that forgets to reset fails at once instead of playing on a finished board (ARC used to
count its attempts below zero). The native vector envs never raise it: they reset an ended env
on its next step (next-step autoreset, :mod:`tracegym.vector`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.error import ResetNeeded

from tracegym.checks import unknown_names_message
from tracegym.errors import TracegymError


class ResetNeededError(TracegymError, ResetNeeded):
    """``step`` with no episode running: before the first ``reset``, or after the episode ended.

    A :class:`~tracegym.errors.TracegymError` (the caller's mistake) and Gymnasium's
    ``ResetNeeded``, which its ``OrderEnforcing`` wrapper raises for a step before ``reset``.
    """


def check_reward(name: str, value) -> float:
    """A reward parameter as a float; NaN, an infinity or a non-number raises TracegymError
    naming the field (a NaN reward would poison every return summed from it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        raise TracegymError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_options(options, valid: Sequence[str], owner: str) -> dict[str, Any]:
    """``reset``'s ``options`` as a dict (None is empty); a key outside ``valid`` raises
    TracegymError naming it, so a misspelt option is not silently ignored."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TracegymError(f"{owner}.reset: options must be a dict or None, got "
                            f"{type(options).__name__}")
    unknown = [str(key) for key in options if key not in valid]
    if unknown:
        if not valid:
            raise TracegymError(f"{owner}.reset takes no options, got {sorted(unknown)}")
        raise TracegymError(f"{owner}.reset: "
                            + unknown_names_message(unknown, valid, "option"))
    return dict(options)


_NOT_STARTED = "not started"


class EpisodicEnv(gym.Env):
    """Base of the single envs: ``reset`` checks its options and starts an episode, ``step``
    runs only inside one.

    A subclass lists the option names its ``reset`` honours in ``reset_options`` and implements
    ``_reset(options) -> (obs, info)`` (``options`` a dict of those names; the seed is already
    applied to ``np_random``) and ``_step(action)`` -> the five-tuple of ``step``. An action that
    raises (ActionError) is no step: the episode goes on and no step counter moves.
    """

    reset_options: tuple[str, ...] = ()
    _episode_end: str | None = _NOT_STARTED  # None while an episode runs, else why it does not

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = check_options(options, self.reset_options, type(self).__name__)
        super().reset(seed=seed)
        self._episode_end = _NOT_STARTED  # a reset that fails half-way leaves nothing to step
        result = self._reset(options)
        self._episode_end = None
        return result

    def step(self, action):
        if self._episode_end is not None:
            raise ResetNeededError(self._reset_needed_message())
        result = self._step(action)
        terminated, truncated = result[2], result[3]
        if terminated or truncated:
            self._episode_end = "terminated" if terminated else "truncated"
        return result

    @property
    def episode_running(self) -> bool:
        """Whether ``step`` may be called: a reset began an episode that has not ended."""
        return self._episode_end is None

    def _reset_needed_message(self) -> str:
        name = type(self).__name__
        if self._episode_end == _NOT_STARTED:
            return f"{name}: call reset() before step()"
        return f"{name}: the episode has ended ({self._episode_end}); call reset() before step()"

    def _reset(self, options: dict[str, Any]):
        raise NotImplementedError

    def _step(self, action):
        raise NotImplementedError
