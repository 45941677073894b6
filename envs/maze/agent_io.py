"""Mazes for a sequence model: the token spec, observation -> input tokens, output tokens ->
answer, and one episode played from a predicted answer.

``training/evaluate.py`` finds this module by the env's package (``tracegym.envs.maze``) and
plays every evaluation episode with it:

* answer mode: the decoded grid (path cells 5) is submitted once; reward 1 = a shortest path.
* step mode: the agent walks from S, each move to an unvisited neighbour that the model marked
  as path (or G) and that the action mask allows; no such move ends the episode unsolved.

>>> token_spec(30)
{'vocab_size': 6, 'seq_len': 900}
"""

from __future__ import annotations

import numpy as np

from . import tokens
from .board import GOAL, PATH
from .rules import DELTAS

MODES = ("answer", "step")


def token_spec(size: int | None = None) -> dict[str, int]:
    """Vocabulary and sequence length of ``size x size`` mazes (the env's default side when
    None)."""
    if size is None:
        from .generator import DEFAULT_SIZE  # the generator module loads numba: only if asked

        size = DEFAULT_SIZE
    return {"vocab_size": tokens.VOCAB_SIZE, "seq_len": tokens.seq_len(size)}


def encode_observation(obs) -> np.ndarray:
    """An observation -> the model's ``(H*W,)`` input tokens."""
    return tokens.encode(obs["grid"]).astype(np.int64)


def decode_answer(pred: np.ndarray, obs) -> np.ndarray:
    """The model's ``(H*W,)`` output tokens -> an ``(H, W)`` answer grid of cell codes (ids past
    the path code are read as path)."""
    return np.clip(pred, 0, PATH).reshape(obs["grid"].shape).astype(np.int8)


def label_tokens(obs, info) -> np.ndarray:
    """The dataset's label for this maze (the solver's one shortest path, unique for the default
    hard mazes): what TRM's and HRM's exact accuracy compares with; the env accepts any
    shortest path."""
    from .solver import solve_batch

    return tokens.encode(solve_batch(obs["grid"][None])[0][0]).astype(np.int64)


def play_answer(env, obs, info, answer: np.ndarray, mode: str) -> bool:
    """Play the episode that ``env.reset`` began (``obs``, ``info``) from ``answer``; whether
    the env judged it solved (see the module docstring)."""
    if mode == "answer":
        return env.step(answer)[1] > 0
    on_path = (answer == PATH) | (obs["grid"] == GOAL)
    pos = tuple(int(v) for v in obs["position"])
    visited = {pos}
    while True:
        moves = [a for a in range(len(DELTAS)) if info["action_mask"][a]]
        nxt = [(a, (pos[0] + int(DELTAS[a][0]), pos[1] + int(DELTAS[a][1]))) for a in moves]
        nxt = [(a, p) for a, p in nxt if on_path[p] and p not in visited]
        if not nxt:
            return False  # the predicted path is broken here
        action, pos = nxt[0]
        visited.add(pos)
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated:
            return reward > 0
        if truncated:
            return False
