"""The edges every env shares: step before reset and after the episode's end is refused, reward
parameters are finite, reset options are checked by name, and each env package exports its
public names lazily (the package itself only registers its env)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap

import gymnasium
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.episode import ResetNeededError
from tracegym.errors import TracegymError
from tracegym.packages import subpackages

MAZE = "#####\n#S  #\n# # #\n#  G#\n#####"


def _arc_task():
    from tracegym.envs.arc.data import ArcTask

    grid = np.array([[1, 2], [3, 4]], np.int8)
    return ArcTask("t", ((grid, grid.T.copy()),), ((grid, grid.T.copy()),))


EDIT = {"op": 1, "row": 0, "col": 0, "row2": 0, "col2": 0, "colour": 3}  # ARC: paint a cell
ENVS = {  # task -> (env class, options that make it quickly, an action per mode)
    "sudoku": ("tracegym.envs.sudoku.env:SudokuEnv", lambda: dict(size=4, difficulty="easy"),
               {"step": 0, "answer": np.ones((4, 4), np.int8)}),
    "maze": ("tracegym.envs.maze.env:MazeEnv", lambda: dict(mazes=[MAZE]),
             {"step": 1, "answer": np.full((5, 5), 2, np.int8)}),
    "arc": ("tracegym.envs.arc.env:ArcEnv", lambda: dict(dataset=[_arc_task()]),
            {"step": EDIT, "answer": np.zeros((2, 2), np.int8)}),
    "exectrace": ("tracegym.envs.exectrace.env:ExecTraceEnv", dict,
                  {"step": "x", "answer": "x"}),
}


def test_every_env_package_is_covered():
    assert sorted(ENVS) == subpackages("tracegym.envs")


@pytest.mark.parametrize("task", sorted(ENVS))
@pytest.mark.parametrize("mode", ["answer", "step"])
def test_step_before_reset__raises_reset_needed(task, mode):
    # what Gymnasium's OrderEnforcing wrapper (gym.make) raises, from the bare env class too;
    # Sudoku used to step an all-blank board, ARC to fail with an AttributeError
    path, options, actions = ENVS[task]
    module, _, name = path.partition(":")
    env = getattr(importlib.import_module(module), name)(**options(), mode=mode)
    with pytest.raises(ResetNeededError, match=rf"^{name}: call reset\(\) before step\(\)$"):
        env.step(actions[mode])
    env.reset(seed=0)  # and once reset the same action plays
    assert len(env.step(actions[mode])) == 5


@pytest.mark.parametrize("task", sorted(ENVS))
def test_env_package__exports_its_public_names_lazily(task):
    package = importlib.import_module(f"tracegym.envs.{task}")
    assert package.__all__ == sorted(package.__all__) and package.__all__
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nonesuch'"):
        package.nonesuch  # noqa: B018 - the lookup is the test


def test_import_of_the_env_packages__loads_no_env_module_and_no_numba(tmp_path):
    code = textwrap.dedent("""
        import sys
        import tracegym.envs
        loaded = sorted(m for m in sys.modules if m.startswith("tracegym.envs."))
        print(loaded, "numba" in sys.modules, "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.strip()
    packages = [f"tracegym.envs.{t}" for t in subpackages("tracegym.envs")]
    assert out == f"{packages} False False"


@pytest.mark.parametrize("env_id, options, action", [
    ("tracegym/Sudoku-v0", dict(size=4), 0),
    ("tracegym/Maze-v0", dict(mazes=[MAZE]), 1),
])
def test_native_vector_env__step_before_reset_raises_reset_needed(env_id, options, action):
    envs = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                              **options)
    name = type(envs.unwrapped).__name__
    with pytest.raises(ResetNeededError, match=rf"^{name}: call reset\(\) before step\(\)$"):
        envs.step(np.full(2, action))
    envs.reset(seed=0)
    assert len(envs.step(np.full(2, action))) == 5


# -- the episode's life, shared by every env (tracegym.episode) ---------------------------------

def _make(task, mode, **extra):
    path, options, _ = ENVS[task]
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)(**options(), mode=mode, **extra)


def _end_episode(env, task, mode):
    """Step once in an env built with max_steps=1 (ARC: one attempt): the episode ends."""
    _, _, terminated, truncated, _ = env.step(ENVS[task][2][mode])
    assert terminated or truncated
    return "terminated" if terminated else "truncated"


def _ending(task):
    return dict(max_steps=1, attempts=1) if task == "arc" else dict(max_steps=1)


@pytest.mark.parametrize("task", sorted(ENVS))
@pytest.mark.parametrize("mode", ["answer", "step"])
def test_step_after_the_episode_ended__raises_until_reset(task, mode):
    # Gymnasium's convention; ARC used to count attempts to -1 and flip terminated back to
    # False, ExecTrace to play its answer mode on, Sudoku and Maze to keep stepping
    env = _make(task, mode, **_ending(task))
    env.reset(seed=0)
    how = _end_episode(env, task, mode)
    name = type(env).__name__
    message = rf"^{name}: the episode has ended \({how}\); call reset\(\) before step\(\)$"
    for _ in range(2):  # and it stays refused
        with pytest.raises(ResetNeededError, match=message):
            env.step(ENVS[task][2][mode])
    assert not env.episode_running
    obs, _ = env.reset(seed=0)
    assert env.episode_running and obs in env.observation_space
    assert len(env.step(ENVS[task][2][mode])) == 5


def test_reset_needed_error__is_bad_input_and_gymnasiums_reset_needed():
    assert issubclass(ResetNeededError, TracegymError) and issubclass(ResetNeededError,
                                                                        ResetNeeded)


def test_step_after_the_episode_ended__through_gym_make():
    env = gymnasium.make("tracegym/Maze-v0", mazes=[MAZE], mode="answer")
    env.reset(seed=0)
    env.step(np.full((5, 5), 2, np.int8))
    with pytest.raises(ResetNeededError, match=r"the episode has ended \(terminated\)"):
        env.step(np.full((5, 5), 2, np.int8))


@pytest.mark.parametrize("task", sorted(ENVS))
def test_failed_reset__leaves_no_episode_to_step(task):
    env = _make(task, "step")
    env.reset(seed=0)
    bad = {"sudoku": {"puzzle": "x"}, "maze": {"maze": "x"}, "arc": {"test_index": 9},
           "exectrace": {"program": "x"}}[task]
    with pytest.raises(TracegymError):
        env.reset(seed=1, options=bad)
    with pytest.raises(ResetNeededError, match=r"call reset\(\) before step\(\)$"):
        env.step(ENVS[task][2]["step"])


REWARDS = {"sudoku": ("illegal_reward",), "maze": ("step_reward",),
           "arc": ("step_reward", "illegal_reward")}


@pytest.mark.parametrize("task, field", [(t, f) for t, fields in REWARDS.items() for f in fields])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "0.5", None, True])
def test_reward_parameters__must_be_finite_numbers(task, field, value):
    with pytest.raises(TracegymError,
                       match=re.escape(f"{field} must be a finite number, got {value!r}")):
        _make(task, "step", **{field: value})


@pytest.mark.parametrize("env_id, field", [("tracegym/Sudoku-v0", "illegal_reward"),
                                           ("tracegym/Maze-v0", "step_reward")])
def test_reward_parameters__vector_envs_check_them_too(env_id, field):
    with pytest.raises(TracegymError, match=re.escape(f"{field} must be a finite number")):
        gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                           size=5 if "Maze" in env_id else 4, **{field: float("nan")})


def test_reward_parameters__finite_ones_are_kept_as_floats():
    env = _make("arc", "step", step_reward=-1, illegal_reward=np.float32(-0.5))
    assert (env.step_reward, env.illegal_reward) == (-1.0, -0.5)
    assert type(env.step_reward) is float


RESET_OPTIONS = {"sudoku": "puzzle, difficulty", "maze": "maze, kind",
                 "arc": "task_id, test_index", "exectrace": "program"}


@pytest.mark.parametrize("task", sorted(ENVS))
def test_reset__unknown_options_are_rejected_by_name(task):
    env = _make(task, "step")
    name = type(env).__name__
    message = (f"{name}.reset: unknown option(s) ['colour', 'seed']; "
               f"valid options: {RESET_OPTIONS[task]}")
    with pytest.raises(TracegymError, match=re.escape(message)):
        env.reset(seed=0, options={"seed": 1, "colour": 2})
    with pytest.raises(TracegymError, match=re.escape(f"{name}.reset: options must be a dict "
                                                      "or None, got list")):
        env.reset(options=["puzzle"])
    env.reset(seed=0, options={})  # an empty dict is no option (check_env passes one)


@pytest.mark.parametrize("task, typo, meant", [("sudoku", "puzle", "puzzle"),
                                               ("maze", "mazes", "maze"),
                                               ("arc", "task", "task_id")])
def test_reset__a_misspelt_option_gets_a_hint(task, typo, meant):
    with pytest.raises(TracegymError, match=re.escape(f"did you mean {meant!r}?")):
        _make(task, "step").reset(options={typo: 0})


@pytest.mark.parametrize("env_id, options", [
    ("tracegym/Sudoku-v0", dict(size=4)), ("tracegym/Maze-v0", dict(mazes=[MAZE]))])
def test_native_vector_env__rejects_unknown_reset_options(env_id, options):
    envs = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                              **options)
    name = type(envs.unwrapped).__name__
    with pytest.raises(TracegymError, match=re.escape(f"{name}.reset: unknown option(s) "
                                                      "['reset_mask']")):
        envs.reset(seed=0, options={"reset_mask": np.ones(2, bool)})
    with pytest.raises(ResetNeededError, match=r"call reset\(\) before step\(\)$"):
        envs.step(np.zeros(2, np.int64))
