import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.sudoku.board import parse_puzzle
from tracegym.envs.sudoku.vector_env import SudokuVectorEnv
from tracegym.errors import ActionError

ID = "tracegym/Sudoku-v0"


def _run_both(kwargs, num_envs, steps, seed, action_fn):
    native = gym.make_vec(ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ID, num_envs=num_envs, vectorization_mode="sync", **kwargs)
    assert isinstance(native.unwrapped, SudokuVectorEnv)
    a, b = native.reset(seed=seed), sync.reset(seed=seed)
    assert data_equivalence(a[0], b[0])
    _assert_same_mask(a[1], b[1])
    rng = np.random.default_rng(seed)
    ends = 0
    info = a[1]
    for _ in range(steps):
        actions = action_fn(rng, info, native.unwrapped)
        a, b = native.step(actions), sync.step(actions)
        assert data_equivalence(a[0], b[0])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        _assert_same_mask(a[4], b[4])
        info = a[4]
        ends += int(a[2].sum() + a[3].sum())
    return ends


def _assert_same_mask(native_info, sync_info):
    """Both have the step mode's mask, stacked alike, or neither has one (answer mode)."""
    assert ("action_mask" in native_info) == ("action_mask" in sync_info)
    if "action_mask" in native_info:
        assert np.array_equal(native_info["action_mask"], sync_info["action_mask"])


def _random_any(rng, info, env):
    return rng.integers(0, env.size ** 3, env.num_envs)


def _random_legal_mostly(rng, info, env):
    mask = info["action_mask"]
    legal = [np.flatnonzero(row) for row in mask]
    return np.array([rng.choice(ix) if len(ix) and rng.random() < 0.9
                     else rng.integers(env.size ** 3) for ix in legal])


@pytest.mark.parametrize("kwargs", [
    dict(size=4, difficulty="easy"),
    dict(size=6, difficulty="hard", illegal_action="terminate"),
    dict(size=4, difficulty="medium", max_steps=4),
])
@pytest.mark.parametrize("action_fn", [_random_any, _random_legal_mostly])
def test_vector_env__equals_sync_of_single_envs(kwargs, action_fn):
    ends = _run_both(kwargs, num_envs=6, steps=60, seed=7, action_fn=action_fn)
    assert ends > 0  # autoreset was exercised


def test_vector_env__answer_mode_equals_sync():
    from tracegym.envs.sudoku.generator import SudokuGenerator

    puzzles, solutions, _ = SudokuGenerator(4, "medium").generate_arrays(seed=2, count=3)
    lookup = {p.tobytes(): s for p, s in zip(puzzles, solutions)}

    def answers(rng, info, env):
        boards = env._state.board.reshape(-1, 4, 4)
        right = np.stack([lookup[b.tobytes()] for b in boards])
        wrong = rng.integers(0, 5, (env.num_envs, 4, 4)).astype(np.int8)
        return np.where(rng.random(env.num_envs)[:, None, None] < 0.5, right, wrong)

    ends = _run_both(dict(puzzles=list(puzzles), mode="answer"), 4, 10, 3, answers)
    assert ends > 0


def test_vector_env__autoreset_next_step():
    env = SudokuVectorEnv(2, puzzles=["12343412214343.1"])  # one blank: digit 2 in cell 14
    obs, info = env.reset(seed=0)
    action = np.array([14 * 4 + 1, 14 * 4 + 1])
    obs, reward, terminated, truncated, info = env.step(action)
    assert reward.tolist() == [1.0, 1.0] and terminated.all()
    obs, reward, terminated, truncated, info = env.step(action)  # ignored: this step resets
    assert reward.tolist() == [0.0, 0.0] and not terminated.any()
    assert (obs["board"].reshape(2, -1)[:, 14] == 0).all()


def test_vector_env__bad_actions():
    env = SudokuVectorEnv(3, size=4, difficulty="easy")
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape("actions[1]: 64 is outside 0..63")):
        env.step(np.array([0, 64, 0]))
    with pytest.raises(ActionError, match=re.escape("actions: expected 3 ints, got shape (2,)")):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match=re.escape("num_envs must be >= 1, got 0")):
        SudokuVectorEnv(0)


@pytest.mark.parametrize("mode", ["step", "answer"])
def test_vector_env__action_mask_fits_the_action_space(mode):
    """The stacked mask, as a tuple of rows, is what the batched action space's sample takes;
    answer mode (a Box per env) has no mask, as the single env."""
    env = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", size=4,
                       mode=mode)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    if mode == "answer":
        assert "action_mask" not in info
        assert "action_mask" not in env.step(env.action_space.sample())[4]
        return
    for _ in range(10):
        actions = env.action_space.sample(mask=tuple(info["action_mask"]))
        assert info["action_mask"][np.arange(3), actions].all()
        obs, reward, terminated, truncated, info = env.step(actions)


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync", "async"])
def test_make_vec__every_vectorization_mode(mode):
    env = gym.make_vec(ID, num_envs=2, vectorization_mode=mode, size=4)
    obs, info = env.reset(seed=1)
    assert obs["board"].shape == (2, 4, 4)
    assert info["action_mask"].shape == (2, 64)
    env.close()


@pytest.mark.parametrize("options", [{"puzzle": "12343412214343.1"}, {"difficulty": "hard"}])
def test_vector_env__reset_options_apply_to_every_env_as_sync(options):
    """SyncVectorEnv hands reset's options to each env; the native env applies them to each
    row alike, and the autoreset after an episode draws from the source again."""
    kwargs = dict(size=4, difficulty="easy")
    native = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ID, num_envs=3, vectorization_mode="sync", **kwargs)
    a, b = native.reset(seed=4, options=options), sync.reset(seed=4, options=options)
    assert data_equivalence(a[0], b[0])
    _assert_same_mask(a[1], b[1])
    if "puzzle" in options:
        assert (a[0]["board"].reshape(3, -1)[:, 14] == 0).all()
    for t, actions in enumerate(([14 * 4 + 1] * 3, [0] * 3, [0] * 3)):
        a, b = native.step(np.array(actions)), sync.step(np.array(actions))
        assert data_equivalence(a[0], b[0]) and data_equivalence(a[1:4], b[1:4])
        _assert_same_mask(a[4], b[4])
        if "puzzle" in options and t == 0:
            assert a[2].all()  # solved: the next step resets every env
        if "puzzle" in options and t == 1:  # ... from the source, not the option's puzzle
            assert (a[1] == 0).all() and not (a[2] | a[3]).any()
            given = parse_puzzle(options["puzzle"])
            assert not any(np.array_equal(board, given) for board in a[0]["board"])
    with pytest.raises(ValueError, match=re.escape("options['puzzle']: has no solution")):
        native.reset(options={"puzzle": ".234" + "1..." + "." * 8})
