"""Fuzzing every env with Hypothesis: seeds, reset options (valid, invalid, unknown keys) and
action sequences (legal, illegal, outside the action space) are drawn, and each step checks the
contract of :mod:`tracegym.episode`:

- a step runs only inside an episode: before the first reset, after a failed reset and after
  ``terminated`` or ``truncated`` it raises ResetNeededError, until a reset succeeds;
- an action outside the action space raises ActionError and is no step (it changes nothing and
  does not count toward ``max_steps``); every other action is a step: truncation comes exactly
  at ``max_steps`` steps;
- observations lie in the observation space, rewards are finite floats, the mask (step mode)
  fits the action space;
- reset options with unknown keys or bad values raise a TracegymError.

The native vector envs are fuzzed against ``SyncVectorEnv`` of the single envs, reset options
included, and their next-step autoreset is checked: the step after an env ends ignores its
action and returns reward 0, neither terminated nor truncated.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from hypothesis import event, given, settings
from hypothesis import strategies as st

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.arc.data import ArcTask
from tracegym.envs.arc.env import ArcEnv
from tracegym.envs.exectrace.env import ExecTraceEnv
from tracegym.envs.maze.board import parse_maze
from tracegym.envs.maze.env import MazeEnv
from tracegym.envs.maze.solver import shortest_path
from tracegym.envs.sudoku.env import SudokuEnv
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.episode import ResetNeededError
from tracegym.errors import ActionError, TracegymError
from tracegym.tracers.programs import Program

MAZES = ["#####\n#S  #\n# # #\n#  G#\n#####", "#####\n#  S#\n# # #\n#G  #\n#####",
         "#####\n#S# #\n# # #\n#  G#\n#####"]
PUZZLES = [p for p in SudokuGenerator(4, "easy").generate_arrays(seed=0, count=3)[0]]


def _arc_tasks() -> list[ArcTask]:
    rng = np.random.default_rng(0)

    def pair():
        x = rng.integers(0, 10, (rng.integers(1, 4), rng.integers(1, 4))).astype(np.int8)
        return x, np.rot90(x, -1).copy()

    return [ArcTask(f"t{i}", (pair(), pair()), tuple(pair() for _ in range(1 + i % 2)))
            for i in range(3)]


ARC_TASKS = _arc_tasks()
PROGRAMS = [
    Program(name="loop", source="def f(n):\n    t = 0\n    for i in range(n):\n"
            "        t += i\n    return t\n", entry="f", inputs=((2,), (3,))),
    Program(name="raises", source="def f(x):\n    return 10 // x\n", entry="f", inputs=((0,),)),
]


# -- per env: how to build it, its reset options, its actions -------------------------------
# options(data, env) -> (options, error class or None); action(data, env, obs, info) ->
# (action, whether it lies in the action space)

def _sudoku_options(data, env):
    choice = data.draw(st.sampled_from(["none", "puzzle", "grid", "difficulty", "bad_puzzle",
                                        "bad_level", "unknown"]))
    if choice == "puzzle":
        return {"puzzle": "".join(map(str, data.draw(st.sampled_from(PUZZLES)).ravel()))}, None
    if choice == "grid":
        return {"puzzle": data.draw(st.sampled_from(PUZZLES))}, None
    if choice == "difficulty":
        return {"difficulty": data.draw(st.sampled_from(["easy", "medium", "hard"]))}, None
    if choice == "bad_puzzle":
        return {"puzzle": data.draw(st.text("0123456789.", max_size=15))}, TracegymError
    if choice == "bad_level":
        return {"difficulty": data.draw(st.sampled_from(["extreme", "", 3]))}, TracegymError
    if choice == "unknown":
        return {data.draw(st.sampled_from(["puzzles", "size", "seed"])): 1}, TracegymError
    return data.draw(st.sampled_from([None, {}])), None


def _sudoku_action(data, env, obs, info):
    n = env.size
    if env.mode == "answer":
        grid = data.draw(st.sampled_from(["board", "random", "bad"]))
        if grid == "board":
            return obs["board"], True
        if grid == "bad":
            return np.zeros((n, n + 1), np.int8), False
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        return rng.integers(0, n + 1, (n, n)).astype(np.int8), True
    legal = np.flatnonzero(info["action_mask"])
    if len(legal) and data.draw(st.booleans()):  # mostly legal writes, so episodes end
        return int(legal[data.draw(st.integers(0, len(legal) - 1))]), True
    action = data.draw(st.integers(-3, n ** 3 + 3))
    return action, 0 <= action < n ** 3


def _maze_options(data, env):
    choice = data.draw(st.sampled_from(["none", "maze", "grid", "bad_maze", "kind", "unknown"]))
    if choice == "maze":
        return {"maze": data.draw(st.sampled_from(MAZES))}, None
    if choice == "grid":
        return {"maze": parse_maze(data.draw(st.sampled_from(MAZES)))}, None
    if choice == "bad_maze":
        return {"maze": data.draw(st.sampled_from(["#####", "#S#G#\n#####", np.zeros((5, 5))]))}, \
            TracegymError
    if choice == "kind":  # this env draws from a list: no kind to generate
        return {"kind": "kruskal"}, TracegymError
    if choice == "unknown":
        return {"mazes": MAZES}, TracegymError
    return data.draw(st.sampled_from([None, {}])), None


def _maze_action(data, env, obs, info):
    if env.mode == "answer":
        grid = data.draw(st.sampled_from(["label", "grid", "bad"]))
        if grid == "label":
            return shortest_path(obs["grid"])[1], True
        if grid == "bad":
            return np.full(env.shape, 9, np.int8), False
        return obs["grid"], True
    action = data.draw(st.integers(-2, 5))
    return action, 0 <= action < 4


def _arc_options(data, env):
    choice = data.draw(st.sampled_from(["none", "task", "index", "bad_task", "bad_index",
                                        "unknown"]))
    task = data.draw(st.sampled_from(ARC_TASKS))
    if choice == "task":
        return {"task_id": task.task_id,
                "test_index": data.draw(st.integers(0, len(task.test) - 1))}, None
    if choice == "index":
        return {"test_index": 0}, None
    if choice == "bad_task":
        return {"task_id": data.draw(st.sampled_from(["t9", "", 1]))}, TracegymError
    if choice == "bad_index":
        return {"task_id": task.task_id, "test_index": len(task.test)}, TracegymError
    if choice == "unknown":
        return {"task": task.task_id}, TracegymError
    return data.draw(st.sampled_from([None, {}])), None


def _arc_action(data, env, obs, info):
    if env.mode == "answer":
        grid = data.draw(st.sampled_from(["target", "random", "bad"]))
        if grid == "target":
            return env.test_output, True
        if grid == "bad":
            return np.full((2, 2), 10), False
        shape = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
        return np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, 10, shape), True
    edit = data.draw(st.fixed_dictionaries({
        "op": st.integers(-1, 11), "row": st.integers(0, 5), "col": st.integers(0, 5),
        "row2": st.integers(0, 5), "col2": st.integers(0, 5), "colour": st.integers(0, 10)}))
    return edit, 0 <= edit["op"] <= 10 and edit["colour"] <= 9


def _exectrace_options(data, env):
    choice = data.draw(st.sampled_from(["none", "program", "bad", "unknown"]))
    if choice == "program":
        return {"program": data.draw(st.sampled_from(PROGRAMS))}, None
    if choice == "bad":
        return {"program": "loop"}, TracegymError
    if choice == "unknown":
        return {"programs": PROGRAMS}, TracegymError
    return data.draw(st.sampled_from([None, {}])), None


def _exectrace_action(data, env, obs, info):
    choice = data.draw(st.sampled_from(["truth", "text", "bad"]))
    if choice == "truth":
        truth = env.episode.answer if env.mode == "answer" else env.true_next_frame
        return truth, True
    if choice == "bad":
        return 3, False
    return data.draw(st.text(max_size=10)), True


ENVS = {
    "sudoku": (lambda **kw: SudokuEnv(size=4, difficulty="easy", **kw), _sudoku_options,
               _sudoku_action),
    "maze": (lambda **kw: MazeEnv(mazes=MAZES, **kw), _maze_options, _maze_action),
    "arc": (lambda **kw: ArcEnv(dataset=ARC_TASKS, **kw), _arc_options, _arc_action),
    "exectrace": (lambda **kw: ExecTraceEnv(programs=PROGRAMS, **kw), _exectrace_options,
                  _exectrace_action),
}


def _check_step(env, result):
    obs, reward, terminated, truncated, info = result
    assert obs in env.observation_space
    assert isinstance(reward, float) and math.isfinite(reward)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    assert not (terminated and truncated)
    if env.mode == "step" and isinstance(env, (SudokuEnv, MazeEnv)):
        assert info["action_mask"].shape == (env.action_space.n,)


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("task", sorted(ENVS))
@settings(max_examples=30)
@given(data=st.data())
def test_fuzz__single_env_episode_contract(task, mode, data):
    make, draw_options, draw_action = ENVS[task]
    max_steps = data.draw(st.integers(1, 6), label="max_steps")
    env = make(mode=mode, max_steps=max_steps)
    running, steps = False, 0  # whether step may be called; steps counted in this episode
    seeded = False
    obs = info = None
    for _ in range(data.draw(st.integers(1, 25), label="calls")):
        if not running and data.draw(st.booleans(), label="reset now"):
            options, error = draw_options(data, env)
            # None continues the env's stream, after a first seed (else a run is not repeatable)
            seed = data.draw((st.none() if seeded else st.nothing()) | st.integers(0, 2**32 - 1),
                             label="seed")
            if error is not None:
                with pytest.raises(error):
                    env.reset(seed=seed, options=options)
                event("reset refused")
                continue  # still no episode: the next step must raise
            obs, info = env.reset(seed=seed, options=options)
            assert obs in env.observation_space
            running, steps, seeded = True, 0, True
            continue
        if not running:
            with pytest.raises(ResetNeededError, match=r"call reset\(\) before step\(\)$"):
                env.step(draw_action(data, env, obs, info)[0] if obs is not None else 0)
            event("step refused" + (" after an episode" if obs is not None else ""))
            continue
        action, valid = draw_action(data, env, obs, info)
        if not valid:
            with pytest.raises(ActionError):
                env.step(action)
            event("action rejected")
            continue
        result = env.step(action)
        steps += 1
        _check_step(env, result)
        obs, _, terminated, truncated, info = result
        assert truncated == (not terminated and steps >= max_steps)
        assert steps <= max_steps
        running = not (terminated or truncated)
        assert env.episode_running == running
        if not running:
            event("terminated" if terminated else "truncated")


# -- vector envs against SyncVectorEnv, autoreset included ----------------------------------

VECTOR = {
    "tracegym/Sudoku-v0": (dict(size=4, difficulty="easy"), _sudoku_options, 64),
    "tracegym/Maze-v0": (dict(mazes=MAZES), _maze_options, 4),
}


@pytest.mark.parametrize("env_id", sorted(VECTOR))
@settings(max_examples=20)
@given(data=st.data())
def test_fuzz__native_vector_env_equals_sync_and_autoresets(env_id, data):
    kwargs, draw_options, num_actions = VECTOR[env_id]
    max_steps = data.draw(st.integers(1, 5), label="max_steps")
    extra = data.draw(st.sampled_from([{}, {"illegal_action": "terminate"}])) \
        if "Sudoku" in env_id else {}
    num_envs = data.draw(st.integers(1, 3), label="num_envs")
    make = {mode: gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode,
                               max_steps=max_steps, **kwargs, **extra)
            for mode in ("vector_entry_point", "sync")}
    native, sync = make["vector_entry_point"], make["sync"]
    options, error = draw_options(data, native.unwrapped)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    if error is not None:
        with pytest.raises(error):
            native.reset(seed=seed, options=options)
        options = None
    a, b = native.reset(seed=seed, options=options), sync.reset(seed=seed, options=options)
    assert data_equivalence(a[0], b[0])
    done, info = np.zeros(num_envs, bool), a[1]
    for _ in range(data.draw(st.integers(1, 15), label="steps")):
        actions = np.array([  # a legal action where the coin says so, else any
            int(np.flatnonzero(row)[data.draw(st.integers(0, int(row.sum()) - 1))])
            if row.any() and data.draw(st.booleans())
            else data.draw(st.integers(0, num_actions - 1))
            for row in info["action_mask"]])
        a, b = native.step(actions), sync.step(actions)
        info = a[4]
        assert data_equivalence(a[0], b[0])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        assert np.array_equal(a[4]["action_mask"], b[4]["action_mask"])
        assert a[0] in native.observation_space
        # next-step autoreset: an env that ended last step starts over, its action ignored
        assert (a[1][done] == 0).all() and not (a[2] | a[3])[done].any()
        if done.any():
            event("autoreset")
        done = a[2] | a[3]
