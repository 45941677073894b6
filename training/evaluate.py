"""Evaluation in the environments, and on a dataset's fixed test split.

:func:`evaluate_in_env`: a number there means "solved as the env judges it". For each episode the
env is reset with its own seed (``seed + episode``) and, when given, its own reset options (a
fixed list of puzzles walked once); the env's agent I/O
module (``tracegym.envs.<task>.agent_io``, found from the env id by :mod:`.tasks`) turns the
observation into the model's input tokens, ``policy.solve`` answers, and the same module
decodes the answer and plays the episode with it: submitted whole (``mode="answer"``) or action
by action (``mode="step"``). What each task does is in its module's docstring (ARC: pass@2
with augmentation voting, answer mode only). An agent I/O module that defines
``label_tokens(obs, info)`` (the answer its dataset builder would write) also gets
``exact_match``: the papers' metric, beside the env's (Maze: any shortest path is solved, the
label is one of them).

:func:`evaluate_split`: exact and token accuracy of ``policy.solve`` on a dataset split, as the
papers report Sudoku-Extreme and Maze-Hard (a fixed test set); ARC's pass@K over that split is in
:mod:`.arc_eval`. :func:`solve_with_confidence` answers with TRM's and HRM's halting logits.
Nothing here names a task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
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
    seq_len: int | None = None  # the policy's sequence length (ARC: its canvas), None: unknown


def policy_seq_len(policy) -> int | None:
    """The sequence length the policy was built for (``policy.task.seq_len``), or None."""
    seq_len = getattr(getattr(policy, "task", None), "seq_len", None)
    return None if seq_len is None else int(seq_len)


@contextmanager
def eval_mode(policy):
    """The policy in eval mode for the block (TRM and HRM then run every segment), restored
    after."""
    was_training = getattr(policy, "training", False)
    if hasattr(policy, "eval"):
        policy.eval()
    try:
        yield policy
    finally:
        if hasattr(policy, "train"):
            policy.train(was_training)


def _device_of(policy) -> torch.device:
    param = next(iter(policy.parameters()), None) if hasattr(policy, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


def _tensors(policy, inputs: np.ndarray, identifiers: np.ndarray | None, where: str):
    """``(inputs (B, T), identifiers (B,) | None)`` as int64 tensors on the policy's device,
    checking the sequence length (``where`` says what gave the tokens)."""
    task = getattr(policy, "task", None)
    if task is not None and inputs.shape[1] != task.seq_len:
        hint = "check the env's size option" if where == "env" else "a dataset of another task?"
        raise TracegymError(f"{where}: {'observations' if where == 'env' else 'examples'} give "
                            f"{inputs.shape[1]} tokens but the model was trained on seq_len "
                            f"{task.seq_len} ({hint})")
    device = _device_of(policy)
    x = torch.from_numpy(np.asarray(inputs, np.int64)).to(device)
    ids = None if identifiers is None else torch.from_numpy(
        np.asarray(identifiers, np.int64)).to(device)
    return x, ids


def _solve(policy, inputs: np.ndarray, identifiers: np.ndarray | None = None,
           where: str = "env") -> np.ndarray:
    """``(B, T)`` tokens -> ``(B, T)`` int64 answer tokens, checking the sequence length."""
    x, ids = _tensors(policy, inputs, identifiers, where)
    with torch.no_grad():
        return policy.solve(x, ids).cpu().numpy().astype(np.int64)


@torch.no_grad()
def solve_with_confidence(policy, inputs: torch.Tensor, identifiers: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(answers (B, T), q_halt (B,) float | None)``: ``policy.solve``'s answers and, for an
    ACT reasoner (TRM, HRM), the halting logit of its last segment, which TRM's ARC evaluator
    ranks tied votes by (mean sigmoid(q_halt)). None for a policy without one.

    The policy's own ``solve_with_confidence(inputs, identifiers)`` gives them (TRM's and HRM's
    :meth:`~tracegym.agents.reasoners.base.Reasoner.act_solve_with_confidence`); a policy
    without one answers with ``solve`` and no logit (votes then rank by count, then first seen).
    """
    own = getattr(policy, "solve_with_confidence", None)
    if callable(own):
        return own(inputs, identifiers)
    return policy.solve(inputs, identifiers), None


def _solve_confident(policy, inputs: np.ndarray, identifiers: np.ndarray | None = None,
                     where: str = "env") -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`solve_with_confidence` on numpy rows: ``(answers (B, T) int64, q_halt (B,)
    float64 | None)``."""
    x, ids = _tensors(policy, inputs, identifiers, where)
    pred, q_halt = solve_with_confidence(policy, x, ids)
    q = None if q_halt is None else q_halt.double().cpu().numpy()
    return pred.cpu().numpy().astype(np.int64), q


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
    scores = {"solved": 0.0}
    if hasattr(io, "label_tokens"):  # the papers' metric: the dataset's label, token for token
        scores["exact_match"] = float(np.array_equal(preds[0], io.label_tokens(obs, info)))
    scores["solved"] = float(io.play_answer(env, obs, info, io.decode_answer(preds[0], obs), mode))
    return scores


def _make(env_id: str, mode: str, options: dict):
    """``gym.make`` with an unknown option reported as TracegymError (gym raises TypeError)."""
    try:
        return gym.make(env_id, mode=mode, **options)
    except TypeError as err:
        reason = str(err).split(" was raised from", 1)[0]
        raise TracegymError(f"env options {sorted(options)}: {reason}") from err


# ---------------------------------------------------------------------------------------------

DEFAULT_EPISODES = 100


def evaluate_in_env(policy, env_id: str, *, episodes: int | None = None, seed: int = 0,
                    mode: str = "answer", env_options: dict | None = None,
                    reset_options: Sequence[dict] | None = None,
                    identifiers: dict[str, int] | None = None, augmentations: int = 8,
                    batch_size: int = 64, progress: bool = False) -> dict:
    """Solve rate of ``policy`` in ``env_id`` over ``episodes`` seeded episodes.

    Args:
        policy: anything with ``solve(inputs (B, T), puzzle_identifiers) -> (B, T)`` (a Reasoner).
        env_id: a registered id whose package has an agent I/O module (``tracegym/Sudoku-v0``,
            ``tracegym/Maze-v0``, ``tracegym/ARC-v0``).
        episodes, seed: episode i is ``env.reset(seed=seed + i)``; ``episodes`` defaults to
            100, or to ``len(reset_options)``.
        mode: ``"answer"`` or ``"step"``, as the task's ``MODES`` allow (ARC: answer only).
        env_options: keyword options of ``gym.make`` (``size``, ``difficulty``, ``dataset``...).
        reset_options: one ``reset(options=...)`` dict per episode (a fixed list of puzzles,
            e.g. ``{"puzzle": grid}``), so each is played exactly once, in order.
        identifiers: identifiers.json as name -> id, for tasks that answer augmented copies
            with their trained puzzle ids (ARC).
        augmentations: most augmented copies per episode besides the identity (ARC).
            ARC encodes on the canvas of the policy's ``task.seq_len`` (side x side; 30x30
            when the policy has none), so a model trained with ``--side 10`` plays as is.
        batch_size: episodes answered per ``solve`` call (tasks that batch episodes).

    Returns a JSON-ready dict: ``env``, ``mode``, ``episodes``, ``seed``, ``solved``,
    ``solve_rate``, and the task's other rates and ``metric`` where it has them (ARC:
    ``pass@1``, ``metric="pass@2"``; a task with ``label_tokens``: ``exact_match``).
    """
    from tqdm import tqdm

    io = agent_io(task_of_env(env_id))
    if mode not in MODES:
        raise TracegymError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if mode not in io.MODES:
        raise TracegymError(f"mode: {env_id} is evaluated in {' or '.join(io.MODES)} mode, "
                            f"got {mode!r}")
    if reset_options is not None:
        reset_options = list(reset_options)
        if episodes is not None and episodes != len(reset_options):
            raise TracegymError(f"episodes: {episodes} episodes but {len(reset_options)} "
                                "reset_options; give one options dict per episode")
        episodes = len(reset_options)
    episodes = check_positive_int("episodes", DEFAULT_EPISODES if episodes is None else episodes)
    options = dict(env_options or {})
    if "mode" in options:  # the evaluation decides how answers reach the env
        raise TracegymError(f"env option mode={options['mode']!r}: the mode is not an env option; "
                            f"use --mode {options['mode']} (mode= in evaluate_in_env)")
    run = EvalRun(identifiers, augmentations, np.random.default_rng(seed), policy_seq_len(policy))
    width = min(batch_size, episodes) if getattr(io, "BATCH_EPISODES", True) else 1
    totals: dict[str, float] = {"solved": 0.0}
    bar = tqdm(total=episodes, unit="episode", disable=not progress, delay=1.0, leave=False)
    envs = []
    with eval_mode(policy):
        try:
            envs = [_make(env_id, mode, options) for _ in range(width)]
            for lo in range(0, episodes, width):
                live = envs[:min(width, episodes - lo)]
                starts = [env.reset(seed=seed + lo + j, options=None if reset_options is None
                                    else reset_options[lo + j]) for j, env in enumerate(live)]
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


# ---------------------------------------------------------------------------------------------

def evaluate_split(policy, data: str | os.PathLike, *, split: str = "test", batch_size: int = 64,
                   limit: int | None = None, on_batch: Callable | None = None,
                   progress: bool = False) -> dict:
    """Exact and token accuracy of ``policy.solve`` on the ``split`` of the dataset at ``data``:
    the papers' metric on Sudoku-Extreme and Maze-Hard (a fixed test set, every example once).

    Counted as the Trainer's eval and the reasoners' metrics count them
    (``answer_correctness``): exact accuracy over the examples with a valid label, token
    accuracy over the valid labels. ``limit``: the first ``limit`` examples only.
    ``on_batch(identifiers (b,), inputs (b, T), answers (b, T), q_halt (b,) | None)`` sees every
    batch with its puzzle identifiers and halting logits (:func:`solve_with_confidence`), e.g.
    ARC's voting (:mod:`.arc_eval`).

    Returns ``{"data", "split", "examples", "exact_acc", "token_acc"}``.
    """
    from tqdm import tqdm

    from tracegym.agents.reasoners.base import answer_correctness

    from .prepare import example_identifiers, load_split_checked

    batch_size = check_positive_int("batch_size", batch_size)
    dataset = load_split_checked(data, split)
    ignore = dataset.metadata["ignore_label_id"]
    ignore = -100 if ignore is None else int(ignore)  # null: every label counts (prepare.py)
    ids = example_identifiers(dataset)
    n = len(dataset) if limit is None else min(len(dataset), check_positive_int("limit", limit))
    # exact examples, correct tokens, valid tokens, examples with a valid label
    counts = np.zeros(4, np.int64)
    bar = tqdm(total=n, unit="example", disable=not progress, delay=1.0, leave=False)
    with eval_mode(policy):
        try:
            for lo in range(0, n, batch_size):
                hi = min(lo + batch_size, n)
                inputs = np.asarray(dataset.inputs[lo:hi], np.int64)
                labels = np.asarray(dataset.labels[lo:hi], np.int64)
                if on_batch is None:
                    pred = _solve(policy, inputs, ids[lo:hi], where="dataset")
                else:
                    pred, q_halt = _solve_confident(policy, inputs, ids[lo:hi], where="dataset")
                    on_batch(ids[lo:hi], inputs, pred, q_halt)
                correct, exact, valid = answer_correctness(
                    torch.from_numpy(pred), torch.from_numpy(labels), ignore)
                counts += [int(exact.sum()), int(correct.sum()), int(valid.sum()),
                           int((valid > 0).sum())]
                bar.update(hi - lo)
        finally:
            bar.close()
    exact, correct, total, labelled = counts.tolist()
    return {"data": str(data), "split": split, "examples": n,
            "exact_acc": exact / max(labelled, 1), "token_acc": correct / max(total, 1)}
