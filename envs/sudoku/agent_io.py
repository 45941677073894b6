"""Sudoku for a sequence model: its token spec, observation -> input tokens, output tokens ->
answer, and one episode played from a predicted answer.

``training/evaluate.py`` finds this module by the env's package (``tracegym.envs.sudoku``) and
plays every evaluation episode with it:

* answer mode: the decoded grid is submitted once; reward 1 = solved.
* step mode: the model answers once; its digits are then written cell by cell (blank cells in
  row-major order), each checked against ``info["action_mask"]``; a missing or masked-out digit
  ends the episode unsolved.

>>> import numpy as np
>>> token_spec(4)
{'vocab_size': 6, 'seq_len': 16}
>>> decode_answer(np.array([2, 3, 4, 5] * 4), {"board": np.zeros((4, 4), np.int8)})[0].tolist()
[1, 2, 3, 4]
"""

from __future__ import annotations

import numpy as np

from . import tokens
from .board import DEFAULT_SIZE

MODES = ("answer", "step")


def token_spec(size: int | None = None) -> dict[str, int]:
    """Vocabulary and sequence length of ``size x size`` boards (the env's default side when
    None)."""
    n = DEFAULT_SIZE if size is None else size
    return {"vocab_size": tokens.vocab_size(n), "seq_len": tokens.seq_len(n)}


def encode_observation(obs) -> np.ndarray:
    """An observation -> the model's ``(n*n,)`` input tokens."""
    return tokens.encode(obs["board"]).astype(np.int64)


def decode_answer(pred: np.ndarray, obs) -> np.ndarray:
    """The model's ``(n*n,)`` output tokens -> an ``(n, n)`` answer grid (0 where it left a cell
    blank or wrote an id no digit has)."""
    n = obs["board"].shape[0]
    return tokens.decode(np.clip(pred, 0, n + 1), n)


def play_answer(env, obs, info, answer: np.ndarray, mode: str) -> bool:
    """Play the episode that ``env.reset`` began (``obs``, ``info``) from ``answer``; whether
    the env judged it solved (see the module docstring)."""
    if mode == "answer":
        return env.step(answer)[1] > 0
    n = answer.shape[0]
    for cell in np.flatnonzero(obs["board"].reshape(-1) == 0):
        digit = int(answer.reshape(-1)[cell])
        action = cell * n + digit - 1
        if digit == 0 or not info["action_mask"][action]:
            return False  # the model left the cell blank or wrote a digit the rules forbid
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return bool(info["solved"])
