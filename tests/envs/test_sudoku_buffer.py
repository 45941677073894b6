"""The default Sudoku source: a shared buffer of generated puzzles, filled in batches, drawn by
the env's own stream; and the dead-end rule (terminate, or play on as Jumanji)."""

import gymnasium as gym
import numpy as np
import pytest

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.sudoku import source as source_module
from tracegym.envs.sudoku.env import SudokuEnv
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.envs.sudoku.source import BUFFER_SEED, BUFFER_SIZE, BufferedSource
from tracegym.envs.sudoku.vector_env import SudokuVectorEnv
from tracegym.errors import TracegymError


def _draws(seed, count, size=4, level="easy"):
    src = BufferedSource(size, level)
    rng = np.random.default_rng(seed)
    return np.stack([src.draw(rng) for _ in range(count)])


def test_buffer__items_are_the_generators_for_the_buffer_seed():
    src = BufferedSource(4, "easy")
    rng = np.random.default_rng(5)
    idx = src.indices([rng, rng, rng])
    expected, _, _ = SudokuGenerator(4, "easy").generate_arrays(BUFFER_SEED, BUFFER_SIZE)
    assert np.array_equal(src.buffer.grids[idx], expected.reshape(BUFFER_SIZE, -1)[idx])
    assert (0 <= idx).all() and (idx < BUFFER_SIZE).all()


def test_buffer__draws_are_a_pure_function_of_the_seed(monkeypatch):
    first = _draws(3, 50)
    monkeypatch.setattr(source_module, "_BUFFERS", {})  # an empty buffer: refilled from scratch
    again = _draws(3, 50)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, _draws(4, 50))
    assert len({g.tobytes() for g in first}) > 40  # not one puzzle over and over


def test_buffer__fills_only_the_batches_drawn(monkeypatch):
    monkeypatch.setattr(source_module, "_BUFFERS", {})
    src = BufferedSource(6, "easy")
    src.draw(np.random.default_rng(0))
    assert src.buffer.ready.sum() == 1  # one batch generated, not the whole buffer


def test_buffer__unknown_level_names_the_field():
    with pytest.raises(TracegymError, match="difficulty must be one of"):
        BufferedSource(9, "brutal")
    with pytest.raises(TracegymError, match="difficulty: difficulty 'extreme' is not available"):
        BufferedSource(4, "extreme")


def test_default_env__single_and_vector_reset_repeat_for_a_seed():
    env = SudokuVectorEnv(3)  # 9x9 medium, the default buffered source
    a = env.reset(seed=11)[0]["board"]
    env.step(np.zeros(3, np.int64))
    b = env.reset(seed=11)[0]["board"]
    assert np.array_equal(a, b)
    singles = [SudokuEnv().reset(seed=11 + i)[0]["board"] for i in range(3)]
    assert np.array_equal(a, np.stack(singles))


def test_default_9x9_vector_env__equals_sync_with_autoresets():
    native = gym.make_vec("tracegym/Sudoku-v0", num_envs=4,
                          vectorization_mode="vector_entry_point")
    sync = gym.make_vec("tracegym/Sudoku-v0", num_envs=4, vectorization_mode="sync")
    (oa, ia), (ob, ib) = native.reset(seed=2), sync.reset(seed=2)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(80):
        legal = [np.flatnonzero(m) for m in ia["action_mask"]]
        actions = np.array([rng.choice(ix) if len(ix) else 0 for ix in legal])
        oa, ra, ta, ua, ia = native.step(actions)
        ob, rb, tb, ub, ib = sync.step(actions)
        assert np.array_equal(oa["board"], ob["board"])
        assert np.array_equal(ra, rb) and np.array_equal(ta, tb) and np.array_equal(ua, ub)
        assert np.array_equal(ia["action_mask"], ib["action_mask"])
        assert np.array_equal(ia["dead_end"], ib["dead_end"])
        ends += int(ta.sum())
    assert ends > 0


def _play_until_dead_end(dead_end):
    """Random legal writes on one seeded 4x4 hard env until a dead end; the actions taken."""
    env = SudokuEnv(size=4, difficulty="hard", dead_end=dead_end)
    rng = np.random.default_rng(1)
    for seed in range(50):
        _, info = env.reset(seed=seed)
        for _ in range(16):
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            _, reward, terminated, truncated, info = env.step(action)
            if info["dead_end"]:
                return env, seed, terminated, reward, info
            if terminated or truncated:
                break
    raise AssertionError("no dead end in 50 episodes")


def test_dead_end__terminates_by_default():
    _, _, terminated, reward, _ = _play_until_dead_end("terminate")
    assert terminated and reward == 0.0


def test_dead_end__play_on_goes_on_until_no_legal_write():
    env, _, terminated, reward, info = _play_until_dead_end("play_on")
    assert reward == 0.0
    assert terminated == (not info["action_mask"].any())
    while not terminated:  # every legal write is still allowed after the dead end
        action = int(np.flatnonzero(info["action_mask"])[0])
        _, reward, terminated, truncated, info = env.step(action)
        assert not truncated
    assert not info["action_mask"].any() and reward == 0.0 and not info["solved"]


def test_dead_end__bad_value_names_the_option():
    with pytest.raises(ValueError, match=r"dead_end must be one of \['terminate', 'play_on'\]"):
        SudokuEnv(size=4, dead_end="stop")


@pytest.mark.parametrize("kwargs", [dict(size=4, difficulty="hard"),
                                    dict(size=6, difficulty="medium", illegal_action="terminate")])
def test_play_on_vector_env__equals_sync(kwargs):
    kwargs = dict(kwargs, dead_end="play_on")
    native = gym.make_vec("tracegym/Sudoku-v0", num_envs=5,
                          vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec("tracegym/Sudoku-v0", num_envs=5, vectorization_mode="sync", **kwargs)
    (_, ia), _ = native.reset(seed=9), sync.reset(seed=9)
    rng = np.random.default_rng(9)
    dead_ends_played_on = 0
    for _ in range(60):
        legal = [np.flatnonzero(m) for m in ia["action_mask"]]
        actions = np.array([rng.choice(ix) if len(ix) and rng.random() < 0.9
                            else rng.integers(native.unwrapped.size ** 3) for ix in legal])
        a, b = native.step(actions), sync.step(actions)
        assert np.array_equal(a[0]["board"], b[0]["board"])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        for key in ("action_mask", "dead_end", "illegal", "solved"):
            assert np.array_equal(a[4][key], b[4][key])
        dead_ends_played_on += int((a[4]["dead_end"] & ~a[2]).sum())
        ia = a[4]
    assert dead_ends_played_on > 0  # the option was exercised
