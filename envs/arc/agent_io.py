"""ARC for a sequence model: the token spec, observation -> input tokens, output tokens ->
answer, and one episode played from the model's answers: pass@2 with augmentation voting, as
TRM.

``training/evaluate.py`` finds this module by the env's package (``tracegym.envs.arc``). ARC is
evaluated in answer mode only. The test input is answered under the identity and under
augmented copies (:func:`eval_augmentations`: those named in the dataset's identifiers.json for
this task, so each copy gets its trained puzzle embedding; otherwise random ones with the blank
identifier), each answer is mapped back, identical answers are counted
(:func:`~tracegym.envs.arc.augment.vote`) and the two most voted are the two attempts.

The token canvas is TRM's 30x30 unless a smaller side is asked (``size``, 1..30; a dataset built
with ``--side N``): the evaluator passes the model's ``seq_len`` (``run.seq_len``) and
:func:`queries` encodes on the canvas of that side; answers are decoded at their own length.

>>> token_spec()
{'vocab_size': 12, 'seq_len': 900}
>>> token_spec(10)
{'vocab_size': 12, 'seq_len': 100}
"""

from __future__ import annotations

import numpy as np

from tracegym.checks import check_int
from tracegym.errors import TracegymError

from . import tokens
from .augment import (
    IDENTITY,
    SEPARATOR,
    ArcAugmentation,
    augmentations,
    parse_augmentation_name,
    vote,
)
from .rules import crop

MODES = ("answer",)
METRIC = "pass@2"  # what the evaluation's solve_rate counts
# An episode's augmented copies already fill a model call, and every env instance loads the
# task set: the evaluator answers ARC episodes one at a time.
BATCH_EPISODES = False


def _side(size: int | None) -> int:
    """The canvas side ``size`` (1..30), 30 when None."""
    return tokens.SIDE if size is None else check_int("size", size, 1, tokens.SIDE)


def token_spec(size: int | None = None) -> dict[str, int]:
    """Vocabulary and sequence length of a ``size x size`` canvas (None: TRM's 30x30, which
    every ARC grid fits)."""
    side = _side(size)
    return {"vocab_size": tokens.VOCAB_SIZE, "seq_len": side * side}


def canvas_side(seq_len: int | None) -> int:
    """The canvas side of a model with ``seq_len`` tokens (None: 30); TracegymError unless it
    is ``side * side`` for a side in 1..30."""
    if seq_len is None:
        return tokens.SIDE
    try:
        side = tokens.side_of(seq_len)
    except ValueError:
        side = 0
    if not 1 <= side <= tokens.SIDE:
        raise TracegymError(f"seq_len: an ARC model reads a side x side canvas (side 1.."
                            f"{tokens.SIDE}), but this one has seq_len {seq_len!r}")
    return side


def _encode(grid: np.ndarray, side: int, task_id: str | None = None) -> np.ndarray:
    if max(grid.shape) > side:
        task = "" if task_id is None else f" of task {task_id!r}"
        raise TracegymError(f"size: the test input{task} is a {grid.shape[0]}x{grid.shape[1]} "
                            f"grid, larger than the model's {side}x{side} canvas "
                            f"(size={side}); evaluate on tasks whose grids fit it")
    return tokens.encode(grid, side).astype(np.int64)


def encode_observation(obs, size: int | None = None) -> np.ndarray:
    """An observation -> the model's ``(size * size,)`` input tokens of the test input (``size``:
    the canvas side, default 30)."""
    return _encode(crop(obs["test_input"]), _side(size))


def decode_answer(pred: np.ndarray, obs=None) -> np.ndarray | None:
    """The model's ``(side * side,)`` output tokens -> the answer grid, or None when they hold no
    grid (such an answer casts no vote)."""
    try:
        return tokens.decode(np.clip(pred, 0, tokens.VOCAB_SIZE - 1))
    except ValueError:
        return None


def _submit(env, attempts) -> int | None:
    """Submit ``attempts`` in order until one is right or the env ends the episode; the index
    of the right one, or None."""
    for i, attempt in enumerate(attempts):
        _, reward, terminated, _, _ = env.step(attempt)
        if reward > 0:
            return i
        if terminated:
            break
    return None


def play_answer(env, obs, info, answer, mode: str = "answer") -> bool:
    """Play the episode that ``env.reset`` began from ``answer``: one grid, or a list of
    attempts (most likely first); whether one of them was right."""
    if mode != "answer":
        raise TracegymError(f"mode: ARC is evaluated in answer mode (pass@2 with voting), "
                            f"got {mode!r}")
    attempts = [answer] if isinstance(answer, np.ndarray) else list(answer)
    return _submit(env, attempts) is not None


def eval_augmentations(task_id: str, identifiers: dict[str, int] | None, count: int,
                       rng: np.random.Generator) -> list[tuple[ArcAugmentation, int]]:
    """``[(augmentation, puzzle identifier)]``: the identity first, then up to ``count`` copies.

    With ``identifiers`` (name -> id from identifiers.json), the copies are the ones the dataset
    named ``<task>|||t<k>|||<perm>``; otherwise ``count`` random distinct ones with id 0.
    """
    if identifiers and task_id in identifiers:
        out = [(IDENTITY, identifiers[task_id])]
        prefix = task_id + SEPARATOR
        for name, ident in identifiers.items():
            if name.startswith(prefix) and len(out) <= count:
                out.append((parse_augmentation_name(name)[1], ident))
        return out
    return [(IDENTITY, 0)] + [(a, 0) for a in augmentations(count, rng)]


def queries(obs, info, run):
    """The model inputs of one episode: ``(inputs (k, T), identifiers (k,), augmentations)``,
    one row per copy of the test input (``run``: the evaluation's ``identifiers``,
    ``augmentations`` count and ``rng``, and the model's ``seq_len``, ``T``: its canvas, see
    :func:`canvas_side`). A dihedral copy of a grid that fits the square canvas fits it too."""
    side = canvas_side(getattr(run, "seq_len", None))
    grid = crop(obs["test_input"])
    augs = eval_augmentations(info["task_id"], run.identifiers, run.augmentations, run.rng)
    inputs = np.stack([_encode(aug.apply(grid), side, info.get("task_id")) for aug, _ in augs])
    return inputs, np.array([ident for _, ident in augs]), [aug for aug, _ in augs]


def score(env, obs, info, preds: np.ndarray, augs, mode: str) -> dict[str, float]:
    """Vote the answers of :func:`queries`' copies and submit the two most voted:
    ``{"solved": pass@2, "pass@1": ...}`` as the env scores them."""
    attempts = vote([decode_answer(p) for p in preds], augs)
    right = _submit(env, attempts)
    return {"solved": float(right is not None), "pass@1": float(right == 0)}
