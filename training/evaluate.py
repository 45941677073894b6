"""Evaluation in the environments: a number here means "solved as the env judges it".

For each episode the env is reset with its own seed (``seed + episode``); the env's agent I/O
module (``tracegym.envs.<task>.agent_io``, found from the env id by :mod:`.tasks`) turns the
observation into the model's input tokens, ``policy.solve`` answers, and the same module
decodes the answer and plays the episode with it: submitted whole (``mode="answer"``) or action
by action (``mode="step"``). What each task does is in its module's docstring (ARC: pass@2
with augmentation voting, answer mode only). Nothing here names a task.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from tracegym.checks import check_positive_int
from tracegym.errors import TracegymError

from .tasks import agent_io, task_of_env

MODES = ("answer", "step")


@dataclass
class EvalRun:
    """What an agent I/O module's ``queries`` may read about the evaluation."""

    identifiers: dict[str, int] | None  # identifiers.json as name -> id (trained puzzle ids)
    augmentations: int  # most augmented copies per episode besides the identity
    rng: np.random.Generator  # for the copies' random draws, seeded by the evaluation's seed


def _device_of(policy) -> torch.device:
    param = next(iter(policy.parameters()), None) if hasattr(policy, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


def _solve(policy, inputs: np.ndarray, identifiers: np.ndarray | None = None) -> np.ndarray:
    """``(B, T)`` tokens -> ``(B, T)`` int64 answer tokens, checking the sequence length."""
    task = getattr(policy, "task", None)
    if task is not None and inputs.shape[1] != task.seq_len:
        raise TracegymError(f"env: observations give {inputs.shape[1]} tokens but the model was "
                         f"trained on seq_len {task.seq_len} (check the env's size option)")
    device = _device_of(policy)
    x = torch.from_numpy(np.asarray(inputs, np.int64)).to(device)
    ids = None if identifiers is None else torch.from_numpy(
        np.asarray(identifiers, np.int64)).to(device)
    with torch.no_grad():
        return policy.solve(x, ids).cpu().numpy().astype(np.int64)


def load_identifiers(path: str | os.PathLike) -> dict[str, int]:
    """identifiers.json (a list of names, index = id) -> name -> id."""
    names = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: i for i, name in enumerate(names)}


def _queries(io, obs, info, run: EvalRun):
    """``(inputs (k, T), identifiers (k,) | None, memo)`` of one episode."""
    if hasattr(io, "queries"):
        return io.queries(obs, info, run)
    return io.encode_observation(obs)[None], None, None


def _score(io, env, obs, info, preds: np.ndarray, memo, mode: str) -> dict[str, float]:
    """Play one episode from its predictions: ``{"solved": 0/1, other rates...}``."""
    if hasattr(io, "score"):
        return io.score(env, obs, info, preds, memo, mode)
    solved = io.play_answer(env, obs, info, io.decode_answer(preds[0], obs), mode)
    return {"solved": float(solved)}


def _make(env_id: str, mode: str, options: dict):
    """``gym.make`` with an unknown option reported as TracegymError (gym raises TypeError)."""
    try:
        return gym.make(env_id, mode=mode, **options)
    except TypeError as err:
        reason = str(err).split(" was raised from", 1)[0]
        raise TracegymError(f"env options {sorted(options)}: {reason}") from err


# ---------------------------------------------------------------------------------------------

def evaluate_in_env(policy, env_id: str, *, episodes: int = 100, seed: int = 0,
                    mode: str = "answer", env_options: dict | None = None,
                    identifiers: dict[str, int] | None = None, augmentations: int = 8,
                    batch_size: int = 64, progress: bool = False) -> dict:
    """Solve rate of ``policy`` in ``env_id`` over ``episodes`` seeded episodes.

    Args:
        policy: anything with ``solve(inputs (B, T), puzzle_identifiers) -> (B, T)`` (a Reasoner).
        env_id: a registered id whose package has an agent I/O module (``tracegym/Sudoku-v0``,
            ``tracegym/Maze-v0``, ``tracegym/ARC-v0``).
        episodes, seed: episode i is ``env.reset(seed=seed + i)``.
        mode: ``"answer"`` or ``"step"``, as the task's ``MODES`` allow (ARC: answer only).
        env_options: keyword options of ``gym.make`` (``size``, ``difficulty``, ``dataset``...).
        identifiers: identifiers.json as name -> id, for tasks that answer augmented copies
            with their trained puzzle ids (ARC).
        augmentations: most augmented copies per episode besides the identity (ARC).
        batch_size: episodes answered per ``solve`` call (tasks that batch episodes).

    Returns a JSON-ready dict: ``env``, ``mode``, ``episodes``, ``seed``, ``solved``,
    ``solve_rate``, and the task's other rates and ``metric`` where it has them (ARC:
    ``pass@1``, ``metric="pass@2"``).
    """
    from tqdm import tqdm

    io = agent_io(task_of_env(env_id))
    if mode not in MODES:
        raise TracegymError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if mode not in io.MODES:
        raise TracegymError(f"mode: {env_id} is evaluated in {' or '.join(io.MODES)} mode, "
                            f"got {mode!r}")
    episodes = check_positive_int("episodes", episodes)
    options = dict(env_options or {})
    if "mode" in options:  # the evaluation decides how answers reach the env
        raise TracegymError(f"env option mode={options['mode']!r}: the mode is not an env option; "
                            f"use --mode {options['mode']} (mode= in evaluate_in_env)")
    run = EvalRun(identifiers, augmentations, np.random.default_rng(seed))
    width = min(batch_size, episodes) if getattr(io, "BATCH_EPISODES", True) else 1
    was_training = getattr(policy, "training", False)
    if hasattr(policy, "eval"):
        policy.eval()
    totals: dict[str, float] = {"solved": 0.0}
    bar = tqdm(total=episodes, unit="episode", disable=not progress, delay=1.0, leave=False)
    envs = []
    try:
        envs = [_make(env_id, mode, options) for _ in range(width)]
        for lo in range(0, episodes, width):
            live = envs[:min(width, episodes - lo)]
            starts = [env.reset(seed=seed + lo + j) for j, env in enumerate(live)]
            asked = [_queries(io, obs, info, run) for obs, info in starts]
            preds = _solve(policy, np.concatenate([q[0] for q in asked]), _identifiers(asked))
            row = 0
            for env, (obs, info), (inputs, _, memo) in zip(live, starts, asked):
                rows = preds[row:row + len(inputs)]
                row += len(inputs)
                for key, value in _score(io, env, obs, info, rows, memo, mode).items():
                    totals[key] = totals.get(key, 0.0) + float(value)
            bar.update(len(live))
    finally:
        for env in envs:
            env.close()
        bar.close()
        if hasattr(policy, "train"):
            policy.train(was_training)
    solved = totals.pop("solved")
    result = {"env": env_id, "mode": mode, "episodes": episodes, "seed": seed,
              "solved": int(solved), "solve_rate": solved / episodes}
    result.update({key: value / episodes for key, value in totals.items()})
    if hasattr(io, "METRIC"):
        result["metric"] = io.METRIC
    return result


def _identifiers(asked) -> np.ndarray | None:
    """The puzzle identifiers of the stacked rows: None when no episode gave any, else theirs
    with the blank identifier 0 for episodes that gave none."""
    if all(ids is None for _, ids, _ in asked):
        return None
    return np.concatenate([np.zeros(len(inputs), np.int64) if ids is None else ids
                           for inputs, ids, _ in asked])
