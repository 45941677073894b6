"""ARC scored as TRM scores it: every test pair of every task once, votes over augmented copies,
pass@K per task.

TRM's ARC evaluator (``evaluators/arc.py`` in SamsungSAILMontreal/TinyRecursiveModels), which this
module follows (our own code):

* every answer of an augmented copy (puzzle identifier named ``<task>|||t<k>|||<perm>``,
  :func:`~tracegym.envs.arc.augment.parse_augmentation_name`) and its input are cropped to the
  largest rectangle of colour tokens at the canvas's top-left (:func:`crop`), and mapped back
  through the copy's inverse augmentation;
* the answer is a vote filed under (task, the un-augmented input), with sigmoid(q_halt) of the
  halting logit of the model's last segment as its confidence;
* for each test pair, the distinct answers are ranked by vote count, then by the mean confidence
  of their votes (then first seen); pass@K: the label is among the first K;
* a task scores the fraction of its test pairs passed, and pass@K is the mean over the tasks of
  ``test_puzzles.json`` (a pair nobody answered counts as failed).

Two drivers: :func:`evaluate_arc_split` on a built dataset's test split (every copy of every
test pair, as TRM evaluates), and :func:`evaluate_arc_env` in ``tracegym/ARC-v0``, walking every
test pair of the env's task list once (``reset(options={"task_id", "test_index"})``) and
submitting the two best-ranked answers to the env.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tracegym.datasets.arc import TEST_PUZZLES  # the original test pairs, as TRM's build
from tracegym.envs.arc import agent_io as arc_io
from tracegym.envs.arc.augment import ArcAugmentation, parse_augmentation_name
from tracegym.envs.arc.constants import NUM_COLOURS
from tracegym.envs.arc.data import ArcTask, task_from_json
from tracegym.envs.arc.tokens import COLOUR_OFFSET, side_of
from tracegym.errors import TracegymError

PASS_KS = (1, 2)  # TRM's evaluator also reports 5, 10, 100, 1000
ATTEMPTS = 2  # ARC's official rule: two attempts per test pair

Key = bytes  # a grid's shape and cells, as TRM's grid_hash hashes them


# -- TRM's counting -----------------------------------------------------------------------------

def crop(tokens: np.ndarray) -> np.ndarray:
    """TRM's ``_crop``: the ``(h, w)`` uint8 grid of a ``(side * side,)`` canvas, taken as the
    largest-area rectangle at the top-left whose tokens are all colours (2..11); the first of
    equal areas, and ``(0, 0)`` when the corner is no colour.

    Unlike :func:`tracegym.envs.arc.tokens.decode` it never refuses a canvas, so every answer
    casts a vote, as in TRM.

    >>> from tracegym.envs.arc.tokens import encode
    >>> crop(encode(np.array([[3, 0], [1, 2]]))).tolist()
    [[3, 0], [1, 2]]
    """
    tokens = np.asarray(tokens)
    side = side_of(tokens.size)
    canvas = tokens.reshape(side, side)
    colour = (canvas >= COLOUR_OFFSET) & (canvas < COLOUR_OFFSET + NUM_COLOURS)
    run = np.where(colour.all(axis=1), side, np.argmin(colour, axis=1))  # colours from column 0
    width = np.minimum.accumulate(run)  # (side,) widest rectangle of rows 0..r
    area = np.arange(1, side + 1) * width
    rows = int(np.argmax(area)) + 1  # the first largest, as TRM's strict ">"
    if area[rows - 1] == 0:
        return np.zeros((0, 0), np.uint8)
    return (canvas[:rows, :width[rows - 1]] - COLOUR_OFFSET).astype(np.uint8)


def grid_key(grid: np.ndarray) -> Key:
    """A grid's identity for voting: its shape and cells (TRM hashes the same bytes)."""
    grid = np.ascontiguousarray(grid, dtype=np.uint8)
    return bytes(grid.shape) + grid.tobytes()


def _restore(inverse: ArcAugmentation, grid: np.ndarray) -> np.ndarray:
    return inverse.apply(grid).astype(np.uint8)


def sigmoid(q: float) -> float:
    """sigmoid in float64, as TRM's evaluator takes it of q_halt."""
    with np.errstate(over="ignore"):
        return float(1.0 / (1.0 + np.exp(-np.float64(q))))


class ArcVotes:
    """Answers of augmented copies, mapped back and counted per (task, original input).

    >>> from tracegym.envs.arc.augment import IDENTITY
    >>> from tracegym.envs.arc.tokens import encode
    >>> votes = ArcVotes()
    >>> x = np.array([[1, 2]])
    >>> votes.add("t", IDENTITY, encode(x), encode(x + 1), q_halt=0.0)
    >>> [(g.tolist(), n, q) for _, g, n, q in votes.ranked("t", x)]
    [([[2, 3]], 1, 0.5)]
    """

    def __init__(self):
        # task -> input key -> answer key -> [votes, summed confidence], in first-seen order
        self.votes: dict[str, dict[Key, dict[Key, list]]] = {}
        self.grids: dict[Key, np.ndarray] = {}
        self.predictions = 0
        self.confident = True  # every vote came with a q_halt

    def add(self, task_id: str, aug: ArcAugmentation, input_tokens: np.ndarray,
            answer_tokens: np.ndarray, q_halt: float | None = None) -> None:
        """File one answer: the model's ``(T,)`` answer tokens for the copy of ``task_id``
        made by ``aug`` (IDENTITY for the original), given its ``(T,)`` input tokens."""
        back = aug.inverse()
        input_key = grid_key(_restore(back, crop(input_tokens)))
        answer = _restore(back, crop(answer_tokens))
        key = grid_key(answer)
        self.grids.setdefault(key, answer)
        stats = self.votes.setdefault(task_id, {}).setdefault(input_key, {}).setdefault(
            key, [0, 0.0])
        stats[0] += 1
        stats[1] += 0.0 if q_halt is None else sigmoid(q_halt)
        self.predictions += 1
        self.confident &= q_halt is not None

    def ranked(self, task_id: str, test_input: np.ndarray
               ) -> list[tuple[Key, np.ndarray, int, float]]:
        """``[(key, grid, votes, mean confidence)]`` of the answers to ``task_id``'s test pair
        with input ``test_input``: most votes first, then highest mean confidence, then first
        seen (TRM sorts ``[count, mean]`` descending, a stable sort)."""
        answers = self.votes.get(task_id, {}).get(grid_key(test_input), {})
        rows = [(key, self.grids[key], n, total / n) for key, (n, total) in answers.items()]
        return sorted(rows, key=lambda row: (row[2], row[3]), reverse=True)

    def score(self, tasks: Iterable[ArcTask], pass_ks: Sequence[int] = PASS_KS) -> dict:
        """pass@K per task as TRM counts it (see the module docstring) over ``tasks`` (their test
        outputs are the labels), and ``per_task``: each task's pass@K.

        Also ``tasks``, ``test_pairs``, ``unanswered_pairs`` (no vote), ``predictions`` and
        ``unmatched_predictions``: votes filed under an input that is no test input of a listed
        task (a copy mapped back wrongly, or a task outside ``tasks``), which TRM loses silently.
        """
        pass_ks = [int(k) for k in pass_ks]
        if not pass_ks or min(pass_ks) < 1:
            raise TracegymError(f"pass_ks: expected K >= 1, got {pass_ks}")
        per_task, pairs, unanswered, matched = {}, 0, 0, 0
        for task in tasks:
            hits = np.zeros(len(pass_ks))
            seen = set()
            for x, y in task.test:
                pairs += 1
                ranked = self.ranked(task.task_id, x)
                if grid_key(x) not in seen:  # two equal test inputs share their votes
                    seen.add(grid_key(x))
                    matched += sum(n for _, _, n, _ in ranked)
                if not ranked:
                    unanswered += 1
                    continue
                keys = [key for key, _, _, _ in ranked]
                label = grid_key(y)
                hits += [label in keys[:k] for k in pass_ks]
            per_task[task.task_id] = {f"pass@{k}": float(h / max(len(task.test), 1))
                                      for k, h in zip(pass_ks, hits)}
        count = max(len(per_task), 1)
        result = {f"pass@{k}": sum(t[f"pass@{k}"] for t in per_task.values()) / count
                  for k in pass_ks}
        result.update(tasks=len(per_task), test_pairs=pairs, unanswered_pairs=unanswered,
                      predictions=self.predictions,
                      unmatched_predictions=self.predictions - matched,
                      ranking=self.ranking, per_task=per_task)
        return result

    @property
    def ranking(self) -> str:
        """How ties in votes were broken: by confidence, or (no q_halt) by first seen."""
        return "votes, mean sigmoid(q_halt)" if self.confident else "votes, first seen"


# -- on a dataset's test split ------------------------------------------------------------------

def load_test_puzzles(data: str | os.PathLike) -> list[ArcTask]:
    """The original evaluation tasks of an ARC build, from its ``test_puzzles.json``."""
    path = Path(data) / TEST_PUZZLES
    if not path.is_file():
        raise TracegymError(f"data: {str(path)!r} is missing: ARC's pass@K needs the original "
                            f"test pairs; rebuild the dataset with `tracegym data arc`, which "
                            f"writes {TEST_PUZZLES}")
    try:
        puzzles = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise TracegymError(f"data: {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(puzzles, dict):
        raise TracegymError(f"data: {str(path)!r}: expected an object of tasks by id, got "
                            f"{type(puzzles).__name__}")
    tasks = [task_from_json(obj, task_id, f"{path}: task {task_id}")
             for task_id, obj in puzzles.items()]
    hidden = [t.task_id for t in tasks if any(y is None for _, y in t.test)]
    if hidden:
        raise TracegymError(f"data: {str(path)!r}: tasks {hidden[:5]} have no test output to "
                            "score answers with")
    return tasks


def evaluate_arc_split(policy, data: str | os.PathLike, *, split: str = "test",
                       batch_size: int = 64, pass_ks: Sequence[int] = PASS_KS,
                       progress: bool = False) -> dict:
    """TRM's ARC evaluation of ``policy`` on the ``split`` of the ARC build at ``data``: every
    example (every augmented copy of every test pair) answered once with its puzzle identifier,
    voted as :class:`ArcVotes` counts, scored against ``test_puzzles.json``.

    Returns :func:`~.evaluate.evaluate_split`'s keys (exact and token accuracy of the single
    answers, before voting) and :meth:`ArcVotes.score`'s.
    """
    from tracegym.datasets.writer import read_split

    from .evaluate import evaluate_split

    tasks = load_test_puzzles(data)
    metadata, _ = read_split(data, split)
    blank = int(metadata.get("blank_identifier_id", 0))
    path = Path(data) / "identifiers.json"
    if not path.is_file():
        raise TracegymError(f"data: {str(path)!r} is missing: the puzzle names say which "
                            "augmentation each example is")
    names = json.loads(path.read_text(encoding="utf-8"))
    copies: dict[int, tuple[str, ArcAugmentation]] = {}  # identifier -> (task, augmentation)
    votes = ArcVotes()

    def vote(ids, inputs, answers, q_halt) -> None:
        for row, ident in enumerate(ids.tolist()):
            if ident == blank:  # padding rows of TRM's layout answer nothing
                continue
            if ident not in copies:
                if not 0 <= ident < len(names):
                    raise TracegymError(f"data: puzzle identifier {ident} has no name in "
                                        f"{str(path)!r} ({len(names)} names)")
                copies[ident] = parse_augmentation_name(names[ident])
            task_id, aug = copies[ident]
            votes.add(task_id, aug, inputs[row], answers[row],
                      None if q_halt is None else float(q_halt[row]))

    result = evaluate_split(policy, data, split=split, batch_size=batch_size, on_batch=vote,
                            progress=progress)
    result.update(votes.score(tasks, pass_ks))
    return result


# -- in the env, every test pair once -----------------------------------------------------------

def walkable(dataset) -> bool:
    """Whether the env option ``dataset`` is a fixed task list (a set name, a directory or file of
    tasks, a list), which :func:`evaluate_arc_env` can walk; generated tasks
    (``procedural...``, a callable, an iterator) are not."""
    if isinstance(dataset, str):
        return not (dataset == "procedural" or dataset.startswith("procedural/"))
    return dataset is None or isinstance(dataset, (list, tuple, ArcTask, os.PathLike))


def _submit(env, attempts: list[np.ndarray]) -> int | None:
    """Submit the attempts in order until one is right or the env ends the episode; the index
    of the right one, or None. An empty grid (a canvas with no colour at its corner) is a wrong
    attempt the env cannot take: it uses its turn without being sent."""
    for i, grid in enumerate(attempts[:ATTEMPTS]):
        if grid.size == 0:
            continue
        _, reward, terminated, _, _ = env.step(grid.astype(np.int8))
        if reward > 0:
            return i
        if terminated:
            break
    return None


def _reset_to(env, env_id: str, options: dict, task: ArcTask, index: int, seed: int,
              by_options: bool):
    """``(env, obs, info)`` of an episode on test pair ``index`` of ``task``: ``env`` reset with
    ``options={"task_id", "test_index"}``. Where the env does not honour them (task ids not
    unique, or an env before reset options), a fresh env whose only task is ``task`` with only
    that test pair (the caller closes it)."""
    from .evaluate import _make

    if by_options:
        obs, info = env.reset(seed=seed, options={"task_id": task.task_id, "test_index": index})
        if info.get("task_id") == task.task_id and info.get("test_index") == index:
            return env, obs, info
    one = _make(env_id, "answer", {**options, "dataset": [
        ArcTask(task.task_id, task.train, (task.test[index],))]})
    obs, info = one.reset(seed=seed)
    return one, obs, info


def evaluate_arc_env(policy, env_id: str = "tracegym/ARC-v0", *, env_options: dict | None = None,
                     identifiers: dict[str, int] | None = None, augmentations: int = 8,
                     seed: int = 0, progress: bool = False) -> dict:
    """pass@1 and pass@2 per task in ``env_id``, playing every test pair of every task of its
    ``dataset`` exactly once (episode i is seeded ``seed + i``).

    Each episode's test input is answered under the identity and up to ``augmentations`` copies
    (:func:`tracegym.envs.arc.agent_io.queries`: the dataset's named copies with their puzzle
    identifiers when ``identifiers`` has the task), the answers are voted as
    :class:`ArcVotes` ranks them (votes, then mean sigmoid(q_halt)), and the two best are
    submitted to the env, which judges them.

    Returns a JSON-ready dict: ``env``, ``mode``, ``tasks``, ``episodes`` (test pairs),
    ``seed``, ``solved`` and ``solve_rate`` (pairs right within two attempts), ``pass@1``,
    ``pass@2`` (per task, averaged over tasks, as TRM), ``metric``, ``ranking`` and
    ``per_task``.
    """
    from tqdm import tqdm

    from tracegym.sources import ListSource

    from .evaluate import EvalRun, _make, _solve_confident, eval_mode, policy_seq_len

    options = dict(env_options or {})
    if "mode" in options:
        raise TracegymError(f"env option mode={options['mode']!r}: ARC is evaluated in answer "
                            "mode")
    env = _make(env_id, "answer", options)
    try:
        source = env.unwrapped.source
        if not isinstance(source, ListSource):
            raise TracegymError(f"dataset={options.get('dataset')!r}: generated tasks have no "
                                "fixed list to walk; give a task set, or --episodes N to sample")
        tasks = list(source.grids)
        pairs = [(task, j) for task in tasks for j in range(len(task.test))]
        by_options = len({t.task_id for t in tasks}) == len(tasks)
        run = EvalRun(identifiers, augmentations, np.random.default_rng(seed),
                      policy_seq_len(policy))
        hits = np.zeros((len(tasks), 2))  # per task: test pairs right at attempt 1, within 2
        first = {id(task): t for t, task in enumerate(tasks)}
        solved, ranking = 0, set()
        with eval_mode(policy), tqdm(total=len(pairs), unit="pair", disable=not progress,
                                     delay=1.0, leave=False) as bar:
            for i, (task, j) in enumerate(pairs):
                played, obs, info = _reset_to(env, env_id, options, task, j, seed + i,
                                              by_options)
                try:
                    inputs, ids, augs = arc_io.queries(obs, info, run)
                    answers, q_halt = _solve_confident(policy, inputs, ids)
                    votes = ArcVotes()
                    for row, aug in enumerate(augs):
                        votes.add(task.task_id, aug, inputs[row], answers[row],
                                  None if q_halt is None else float(q_halt[row]))
                    ranking.add(votes.ranking)
                    attempts = [grid for _, grid, _, _ in votes.ranked(task.task_id,
                                                                        task.test[j][0])]
                    right = _submit(played, attempts)
                finally:
                    if played is not env:
                        played.close()
                if right is not None:
                    solved += 1
                    hits[first[id(task)]] += [right == 0, True]
                bar.update()
    finally:
        env.close()
    rates = hits / np.array([len(t.test) for t in tasks])[:, None]  # (tasks, 2)
    per_task = {t.task_id: {"pass@1": float(r[0]), "pass@2": float(r[1])}
                for t, r in zip(tasks, rates)}
    return {"env": env_id, "mode": "answer", "tasks": len(tasks), "episodes": len(pairs),
            "seed": seed, "solved": solved, "solve_rate": solved / len(pairs),
            "pass@1": float(rates[:, 0].mean()), "pass@2": float(rates[:, 1].mean()),
            "metric": "pass@2", "ranking": " / ".join(sorted(ranking)), "per_task": per_task}

