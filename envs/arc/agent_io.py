"""ARC for a sequence model: the token spec, observation -> input tokens, output tokens ->
answer, and one episode played from the model's answers: pass@2 with augmentation voting, as
TRM.

``training/evaluate.py`` finds this module by the env's package (``tracegym.envs.arc``). ARC is
evaluated in answer mode only. The test input is answered under the identity and under
augmented copies (:func:`eval_augmentations`: those named in the dataset's identifiers.json for
this task, so each copy gets its trained puzzle embedding; otherwise random ones with the blank
identifier), each answer is mapped back, identical answers are counted
(:func:`~tracegym.envs.arc.augment.vote`) and the two most voted are the two attempts.

>>> token_spec()
{'vocab_size': 12, 'seq_len': 900}
"""

from __future__ import annotations

import numpy as np

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


def token_spec(size: int | None = None) -> dict[str, int]:
    """Vocabulary and sequence length of TRM's 30x30 canvas (every ARC grid fits it)."""
    if size is not None and size != tokens.SIDE:
        raise TracegymError(f"size: ARC grids sit on one {tokens.SIDE}x{tokens.SIDE} canvas, "
                            f"got size={size!r}")
    return {"vocab_size": tokens.VOCAB_SIZE, "seq_len": tokens.SEQ_LEN}


def encode_observation(obs) -> np.ndarray:
    """An observation -> the model's ``(900,)`` input tokens of the test input."""
    return tokens.encode(crop(obs["test_input"])).astype(np.int64)


def decode_answer(pred: np.ndarray, obs=None) -> np.ndarray | None:
    """The model's ``(900,)`` output tokens -> the answer grid, or None when they hold no grid
    (such an answer casts no vote)."""
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
    """The model inputs of one episode: ``(inputs (k, 900), identifiers (k,), augmentations)``,
    one row per copy of the test input (``run``: the evaluation's ``identifiers``,
    ``augmentations`` count and ``rng``)."""
    grid = crop(obs["test_input"])
    augs = eval_augmentations(info["task_id"], run.identifiers, run.augmentations, run.rng)
    inputs = np.stack([tokens.encode(aug.apply(grid)) for aug, _ in augs]).astype(np.int64)
    return inputs, np.array([ident for _, ident in augs]), [aug for aug, _ in augs]


def score(env, obs, info, preds: np.ndarray, augs, mode: str) -> dict[str, float]:
    """Vote the answers of :func:`queries`' copies and submit the two most voted:
    ``{"solved": pass@2, "pass@1": ...}`` as the env scores them."""
    attempts = vote([decode_answer(p) for p in preds], augs)
    right = _submit(env, attempts)
    return {"solved": float(right is not None), "pass@1": float(right == 0)}
