"""The edges every env shares: step before reset is refused, and each env package exports its
public names lazily (the package itself only registers its env)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import gymnasium
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import tracegym.envs  # noqa: F401 - registers the envs
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
    with pytest.raises(ResetNeeded, match=rf"^{name}: call reset\(\) before step\(\)$"):
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
    with pytest.raises(ResetNeeded, match=rf"^{name}: call reset\(\) before step\(\)$"):
        envs.step(np.full(2, action))
    envs.reset(seed=0)
    assert len(envs.step(np.full(2, action))) == 5
