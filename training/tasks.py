"""The envs' agent I/O modules, found by package, and the TaskSpec a reasoner gets from them.

Each task package ``tracegym.envs.<task>`` that a sequence model can play holds an
``agent_io`` module (:class:`AgentIO` says what it defines): the task's token spec, its
observation -> input tokens, output tokens -> answer, and one episode played from a predicted
answer. Nothing here names a task: the packages are listed from disk
(:func:`tracegym.packages.subpackages`) and an env id leads to its package through the
Gymnasium registry's entry point, so a new env folder with an ``agent_io`` module is evaluated
and specified without editing this file or ``evaluate.py``.

>>> task_spec("sudoku4")  # doctest: +ELLIPSIS
TaskSpec(name='sudoku4', vocab_size=6, seq_len=16, ...)
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from typing import Protocol

import numpy as np

from tracegym.errors import TracegymError
from tracegym.packages import subpackages

ENVS = "tracegym.envs"
AGENT_IO = "agent_io"  # the module name every task package uses


class AgentIO(Protocol):
    """What an ``envs/<task>/agent_io.py`` module defines (module attributes and functions).

    Required:

    * ``MODES``: the evaluation modes it plays (``("answer", "step")``; ARC ``("answer",)``).
    * ``token_spec(size=None) -> {"vocab_size": int, "seq_len": int}``: the token layout of
      the task at a size (None: the env's default).
    * ``encode_observation(obs) -> (T,) int64``: the model's input tokens for an observation.
    * ``decode_answer(pred (T,), obs) -> answer``: the model's output tokens as an answer.
    * ``play_answer(env, obs, info, answer, mode) -> bool``: play the episode ``env.reset``
      began (``obs``, ``info``) from the answer; whether the env judged it solved.

    Optional (the evaluator's defaults in brackets):

    * ``queries(obs, info, run) -> (inputs (k, T), identifiers (k,) | None, memo)`` and
      ``score(env, obs, info, preds (k, T), memo, mode) -> {"solved": 0/1, other: 0/1}``: an
      episode answered from several model rows (ARC's augmentation voting); ``run`` has the
      evaluation's ``identifiers``, ``augmentations``, ``rng`` and the policy's ``seq_len``
      (None when it has no ``task``), and extra keys of ``score``
      are reported as rates beside ``solve_rate`` [one row, ``encode_observation``; then
      ``decode_answer`` and ``play_answer``].
    * ``METRIC``: the name of what ``solve_rate`` counts, e.g. ``"pass@2"`` [none].
    * ``label_tokens(obs, info) -> (T,)``: the dataset's label for the episode's puzzle; the
      evaluator then reports ``exact_match`` (the papers' metric) beside ``solve_rate`` [none].
    * ``BATCH_EPISODES``: whether several episodes (each in its own env) may share one model
      call [True].
    """

    MODES: tuple[str, ...]

    def token_spec(self, size: int | None = None) -> dict[str, int]: ...

    def encode_observation(self, obs) -> np.ndarray: ...

    def decode_answer(self, pred: np.ndarray, obs): ...

    def play_answer(self, env, obs, info, answer, mode: str) -> bool: ...


def task_packages() -> list[str]:
    """Names of the env task packages that have an agent I/O module. Locating the modules
    imports the task packages (light: their registrations), not the modules."""
    return [task for task in subpackages(ENVS)
            if importlib.util.find_spec(f"{ENVS}.{task}.{AGENT_IO}") is not None]


def agent_io(task: str) -> AgentIO:
    """The agent I/O module of the env task package ``task`` (e.g. ``"sudoku"``)."""
    if task not in subpackages(ENVS):
        raise TracegymError(f"task: unknown env task {task!r}; valid names: "
                            f"{', '.join(task_packages())}")
    name = f"{ENVS}.{task}.{AGENT_IO}"
    if importlib.util.find_spec(name) is None:
        raise TracegymError(f"task: {task!r} has no agent I/O module ({name}); tasks with one: "
                            f"{', '.join(task_packages())}")
    return importlib.import_module(name)


def _entry_module(spec) -> str:
    entry = spec.entry_point
    return entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")


def _register_all() -> None:
    """Import every task package, which registers its envs (as importing ``tracegym.envs``
    does, for packages found on its path since)."""
    for task in subpackages(ENVS):
        importlib.import_module(f"{ENVS}.{task}")


def env_ids(task: str) -> list[str]:
    """The registered Gymnasium ids whose env lives in the task package ``task``."""
    import gymnasium as gym

    _register_all()
    prefix = f"{ENVS}.{task}."
    return sorted(env_id for env_id, spec in gym.registry.items()
                  if _entry_module(spec).startswith(prefix))


def task_of_env(env_id: str) -> str:
    """The env task package of a registered id (``"tracegym/Maze-v0"`` -> ``"maze"``), read
    from the registry's entry point."""
    import gymnasium as gym

    _register_all()
    spec = gym.registry.get(env_id)
    module = _entry_module(spec) if spec is not None else ""
    task = module[len(ENVS) + 1:].partition(".")[0] if module.startswith(ENVS + ".") else ""
    if task not in task_packages():
        valid = [i for t in task_packages() for i in env_ids(t)]
        raise TracegymError(f"env: evaluation supports {valid}, got {env_id!r}")
    return task


def task_spec(name: str, **fields):
    """The :class:`~tracegym.agents.reasoners.TaskSpec` of an env task from its agent I/O
    module: ``"sudoku"``, ``"sudoku4"`` (a trailing number is the size), ``"maze"``,
    ``"maze11"``, ``"arc"``. ``fields`` set the rest (``num_puzzle_identifiers``...)."""
    from tracegym.agents.reasoners import TaskSpec

    match = re.fullmatch(r"(.*?)(\d*)", name)
    task, digits = match.group(1), match.group(2)
    size = int(digits) if digits else None
    return TaskSpec(name=name, **agent_io(task).token_spec(size), **fields)
