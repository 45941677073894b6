"""Evaluation in the environments: a number here means "solved as the env judges it".

For each episode the env is reset with its own seed (``seed + episode``), its observation becomes
the model's input tokens with the task's own token helpers, ``policy.solve`` answers, and the
answer is decoded into the env's action:

* Sudoku / Maze, ``mode="answer"``: the decoded grid is submitted once; reward 1 = solved.
* Sudoku, ``mode="step"``: the model answers once; its digits are then written cell by cell
  (blank cells in row-major order), each checked against ``info["action_mask"]``; a missing or
  masked-out digit ends the episode unsolved.
* Maze, ``mode="step"``: the agent walks from S, each move to an unvisited neighbour that the
  model marked as path (or G) and that the action mask allows; no such move ends the episode.
* ARC (answer mode only): pass@2 with augmentation voting, as TRM. The test input is answered
  under the identity and under augmented copies (those named in the dataset's identifiers.json
  for this task, so each copy gets its trained puzzle embedding; otherwise random ones with the
  blank identifier), each answer is mapped back, identical answers are counted
  (:func:`tracegym.envs.arc.augment.vote`) and the two most voted are the two attempts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.errors import TracegymError

ENV_TASKS = {"tracegym/Sudoku-v0": "sudoku", "tracegym/Maze-v0": "maze", "tracegym/ARC-v0": "arc"}
MODES = ("answer", "step")


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


# ---------------------------------------------------------------------------------------------
# Sudoku

def _sudoku_episode(env, obs, info, pred: np.ndarray, mode: str) -> float:
    from tracegym.envs.sudoku import tokens

    n = obs["board"].shape[0]
    board = tokens.decode(np.clip(pred, 0, n + 1), n)  # (n, n), 0 where pad/blank
    if mode == "answer":
        return env.step(board)[1]
    total = 0.0
    for cell in np.flatnonzero(obs["board"].reshape(-1) == 0):
        digit = int(board.reshape(-1)[cell])
        action = cell * n + digit - 1
        if digit == 0 or not info["action_mask"][action]:
            return 0.0  # the model left the cell blank or wrote a digit the rules forbid
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            break
    return float(info["solved"])


def _sudoku_inputs(obs) -> np.ndarray:
    from tracegym.envs.sudoku import tokens

    return tokens.encode(obs["board"])


# ---------------------------------------------------------------------------------------------
# Maze

def _maze_episode(env, obs, info, pred: np.ndarray, mode: str) -> float:
    from tracegym.envs.maze.board import GOAL, PATH
    from tracegym.envs.maze.rules import DELTAS

    grid = obs["grid"]
    answer = np.clip(pred, 0, PATH).reshape(grid.shape).astype(np.int8)
    if mode == "answer":
        return env.step(answer)[1]
    on_path = (answer == PATH) | (grid == GOAL)
    pos = tuple(int(v) for v in obs["position"])
    visited = {pos}
    while True:
        moves = [a for a in range(4) if info["action_mask"][a]]
        nxt = [(a, (pos[0] + int(DELTAS[a][0]), pos[1] + int(DELTAS[a][1]))) for a in moves]
        nxt = [(a, p) for a, p in nxt if on_path[p] and p not in visited]
        if not nxt:
            return 0.0  # the predicted path is broken here
        action, pos = nxt[0]
        visited.add(pos)
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated:
            return float(reward > 0)
        if truncated:
            return 0.0


def _maze_inputs(obs) -> np.ndarray:
    from tracegym.envs.maze import tokens

    return tokens.encode(obs["grid"]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# ARC

def _crop(canvas: np.ndarray) -> np.ndarray:
    """An observation canvas (grid top-left, 10 outside) -> the grid."""
    from tracegym.envs.arc.env import OUTSIDE

    h = int((canvas[:, 0] != OUTSIDE).sum())
    w = int((canvas[0] != OUTSIDE).sum())
    return canvas[:h, :w].astype(np.int8)


def arc_augmentations(task_id: str, identifiers: dict[str, int] | None, count: int,
                      rng: np.random.Generator) -> list[tuple[object, int]]:
    """``[(augmentation, puzzle identifier)]``: the identity first, then up to ``count`` copies.

    With ``identifiers`` (name -> id from identifiers.json), the copies are the ones the dataset
    named ``<task>|||t<k>|||<perm>``; otherwise ``count`` random distinct ones with id 0.
    """
    from tracegym.envs.arc.augment import (
        IDENTITY,
        SEPARATOR,
        augmentations,
        parse_augmentation_name,
    )

    if identifiers and task_id in identifiers:
        out = [(IDENTITY, identifiers[task_id])]
        prefix = task_id + SEPARATOR
        for name, ident in identifiers.items():
            if name.startswith(prefix) and len(out) <= count:
                out.append((parse_augmentation_name(name)[1], ident))
        return out
    return [(IDENTITY, 0)] + [(a, 0) for a in augmentations(count, rng)]


def _arc_episode(env, obs, info, policy, identifiers, count, rng) -> tuple[float, float]:
    """One task: ``(pass@2, pass@1)`` as the env scores the voted attempts."""
    from tracegym.envs.arc import tokens
    from tracegym.envs.arc.augment import vote

    grid = _crop(obs["test_input"])
    augs = arc_augmentations(info["task_id"], identifiers, count, rng)
    inputs = np.stack([tokens.encode(aug.apply(grid)) for aug, _ in augs])
    preds = _solve(policy, inputs, np.array([ident for _, ident in augs]))
    answers = []
    for p in preds:
        try:
            answers.append(tokens.decode(np.clip(p, 0, tokens.VOCAB_SIZE - 1)))
        except ValueError:
            answers.append(None)  # not a grid: casts no vote
    attempts = vote(answers, [aug for aug, _ in augs])
    solved = first = 0.0
    for i, attempt in enumerate(attempts):
        _, reward, terminated, _, _ = env.step(attempt)
        if reward > 0:
            solved, first = 1.0, float(i == 0)
        if terminated:
            break
    return solved, first


def load_identifiers(path: str | os.PathLike) -> dict[str, int]:
    """identifiers.json (a list of names, index = id) -> name -> id."""
    names = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: i for i, name in enumerate(names)}


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
        env_id: ``tracegym/Sudoku-v0``, ``tracegym/Maze-v0`` or ``tracegym/ARC-v0``.
        episodes, seed: episode i is ``env.reset(seed=seed + i)``.
        mode: ``"answer"`` or ``"step"`` (Sudoku/Maze); ARC is always pass@2 in answer mode.
        env_options: keyword options of ``gym.make`` (``size``, ``difficulty``, ``dataset``...).
        identifiers: ARC only: identifiers.json as name -> id (trained augmentations).
        augmentations: ARC only: most augmented copies per task besides the identity.
        batch_size: Sudoku/Maze episodes answered per ``solve`` call.

    Returns a JSON-ready dict: ``env``, ``mode``, ``episodes``, ``seed``, ``solved``,
    ``solve_rate`` (ARC also ``pass@1``).
    """
    from tqdm import tqdm

    if env_id not in ENV_TASKS:
        raise TracegymError(f"env: evaluation supports {sorted(ENV_TASKS)}, got {env_id!r}")
    if mode not in MODES:
        raise TracegymError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if not isinstance(episodes, int) or episodes < 1:
        raise TracegymError(f"episodes must be a positive int, got {episodes!r}")
    task = ENV_TASKS[env_id]
    options = dict(env_options or {})
    if "mode" in options:  # the evaluation decides how answers reach the env
        raise TracegymError(f"env option mode={options['mode']!r}: the mode is not an env option; "
                            f"use --mode {options['mode']} (mode= in evaluate_in_env)")
    if task == "arc" and mode != "answer":
        raise TracegymError("mode: ARC is evaluated in answer mode (pass@2 with voting), "
                         f"got {mode!r}")
    was_training = getattr(policy, "training", False)
    if hasattr(policy, "eval"):
        policy.eval()
    solved = first = 0.0
    bar = tqdm(total=episodes, unit="episode", disable=not progress, delay=1.0, leave=False)
    try:
        if task == "arc":
            env = _make(env_id, "answer", options)
            rng = np.random.default_rng(seed)
            for i in range(episodes):
                obs, info = env.reset(seed=seed + i)
                s, f = _arc_episode(env, obs, info, policy, identifiers, augmentations, rng)
                solved, first = solved + s, first + f
                bar.update(1)
            env.close()
        else:
            encode = _sudoku_inputs if task == "sudoku" else _maze_inputs
            run = _sudoku_episode if task == "sudoku" else _maze_episode
            envs = [_make(env_id, mode, options) for _ in range(min(batch_size, episodes))]
            for lo in range(0, episodes, len(envs)):
                live = envs[:min(len(envs), episodes - lo)]
                starts = [env.reset(seed=seed + lo + j) for j, env in enumerate(live)]
                preds = _solve(policy, np.stack([encode(obs) for obs, _ in starts]))
                for env, (obs, info), pred in zip(live, starts, preds):
                    solved += float(run(env, obs, info, pred, mode) > 0)
                bar.update(len(live))
            for env in envs:
                env.close()
    finally:
        bar.close()
        if hasattr(policy, "train"):
            policy.train(was_training)
    result = {"env": env_id, "mode": mode, "episodes": episodes, "seed": seed,
              "solved": int(solved), "solve_rate": solved / episodes}
    if task == "arc":
        result["pass@1"] = first / episodes
        result["metric"] = "pass@2"
    return result
