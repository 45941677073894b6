import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.maze.board import PATH, format_maze, parse_maze
from tracegym.envs.maze.env import MazeEnv
from tracegym.envs.maze.generator import MazeGenerator
from tracegym.envs.maze.rules import DELTAS
from tracegym.envs.maze.solver import path_verdict, shortest_path
from tracegym.envs.maze.vector_env import MazeVectorEnv
from tracegym.errors import ActionError, PuzzleFormatError, TracegymError, UnsolvableError

ID = "tracegym/Maze-v0"
SMALL = "#####\n#S  #\n# # #\n#  G#\n#####"


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
@pytest.mark.parametrize("kwargs", [dict(), dict(size=11, kind="backtracker"),
                                    dict(kind="kruskal")])
def test_env__passes_check_env(mode, render_mode, kwargs):
    env = gym.make(ID, mode=mode, render_mode=render_mode, **kwargs)
    check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("mode", ["step", "answer"])
def test_env__action_mask_fits_the_action_space(mode):
    """README samples ``env.action_space.sample(mask=info["action_mask"])``: in step mode the
    mask is the Discrete space's, in answer mode (a Box, which takes no mask) there is none."""
    env = gym.make(ID, size=9, kind="kruskal", mode=mode)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    if mode == "answer":
        assert "action_mask" not in info
        assert "action_mask" not in env.step(env.action_space.sample())[4]
        return
    for _ in range(30):
        action = env.action_space.sample(mask=info["action_mask"])
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["blocked"]
        if terminated or truncated:
            obs, info = env.reset()


@pytest.mark.parametrize("mode", ["step", "answer"])
def test_vector_env__action_mask_fits_the_action_space(mode):
    """The stacked mask, as a tuple of rows, is what the batched action space's sample takes."""
    env = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", size=9,
                       kind="kruskal", mode=mode)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    if mode == "answer":
        assert "action_mask" not in info
        assert "action_mask" not in env.step(env.action_space.sample())[4]
        return
    for _ in range(10):
        actions = env.action_space.sample(mask=tuple(info["action_mask"]))
        obs, reward, terminated, truncated, info = env.step(actions)
        assert not info["blocked"].any()


def test_env__same_seed_same_mazes():
    a, b = MazeEnv(size=12), MazeEnv(size=12)
    assert data_equivalence(a.reset(seed=5), b.reset(seed=5))
    assert not np.array_equal(a.reset(seed=6)[0]["grid"], b.reset(seed=7)[0]["grid"])


def test_step_mode__walking_the_label_path_reaches_goal():
    item = MazeGenerator(15, "kruskal").generate(seed=1)
    env = MazeEnv(mazes=[item.maze], step_reward=-0.01)
    obs, info = env.reset(seed=0)
    pos = tuple(obs["position"])
    onpath = {tuple(p) for p in np.argwhere(item.label == PATH)}
    visited, rewards = {pos}, []
    terminated = False
    while not terminated:
        a = next(k for k, (dr, dc) in enumerate(DELTAS)
                 if ((pos[0] + dr, pos[1] + dc) in onpath - visited)
                 or item.maze[pos[0] + dr, pos[1] + dc] == 4)
        assert info["action_mask"][a] == 1
        obs, reward, terminated, truncated, info = env.step(a)
        pos = tuple(obs["position"])
        visited.add(pos)
        rewards.append(reward)
    assert rewards[-1] == 1.0 and len(rewards) == item.length
    assert all(r == -0.01 for r in rewards[:-1]) and info["reached"]


def test_step_mode__walls_block_and_mask_agrees():
    env = MazeEnv(mazes=[SMALL])
    obs, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [0, 1, 1, 0]  # S at (1, 1): wall above and left
    obs, reward, terminated, truncated, info = env.step(0)
    assert info["blocked"] and obs["position"].tolist() == [1, 1] and reward == 0.0


def test_step_mode__truncates():
    env = MazeEnv(mazes=[SMALL], max_steps=2)
    env.reset(seed=0)
    assert [env.step(0)[2:4] for _ in range(2)] == [(False, False), (False, True)]


@pytest.mark.parametrize("action, message", [(4, "action: 4 is outside 0..3"),
                                             (-1, "action: -1 is outside 0..3"),
                                             ("up", "action: expected an int in 0..3")])
def test_step_mode__bad_actions(action, message):
    env = MazeEnv(mazes=[SMALL])
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(message)):
        env.step(action)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32), kind=st.sampled_from(["hard", "kruskal", "backtracker"]))
def test_answer_mode__reward_agrees_with_verifier(seed, kind):
    env = MazeEnv(size=9 if kind != "hard" else 10, kind=kind, mode="answer")
    obs, _ = env.reset(seed=seed)
    _, label = shortest_path(obs["grid"])
    rng = np.random.default_rng(seed)
    candidates = [label, obs["grid"]]
    shifted = label.copy()  # move one path mark onto some other open cell
    marks, opens = np.argwhere(label == PATH), np.argwhere(label == 2)
    if len(marks) and len(opens):
        shifted[tuple(marks[rng.integers(len(marks))])] = 2
        shifted[tuple(opens[rng.integers(len(opens))])] = PATH
        candidates.append(shifted)
    for answer in candidates:
        env.reset(seed=seed)
        _, reward, terminated, _, info = env.step(answer)
        assert terminated and reward == float(path_verdict(obs["grid"], answer) is None)
        assert (info["verdict"] is None) == (reward == 1.0)
    assert candidates[0] is label


def test_answer_mode__any_shortest_path_counts():
    maze = parse_maze(SMALL)
    env = MazeEnv(mazes=[maze], mode="answer")
    for path in ["#####\n#Soo#\n# #o#\n#  G#\n#####", "#####\n#S  #\n#o# #\n#ooG#\n#####"]:
        env.reset(seed=0)
        assert env.step(parse_maze(path))[1] == 1.0
    env.reset(seed=0)
    _, reward, _, _, info = env.step(parse_maze("#####\n#So #\n# #o#\n#o G#\n#####"))
    assert reward == 0.0 and "broken" in info["verdict"]


@pytest.mark.parametrize("answer, message", [
    (np.zeros((5, 4), np.int8), "action: expected an answer grid of shape (5, 5), got (5, 4)"),
    (np.full((5, 5), 7, np.int8), "action: cell at row 1, column 1 has code 7 outside 0..5"),
])
def test_answer_mode__bad_answers(answer, message):
    env = MazeEnv(mazes=[SMALL], mode="answer")
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(message)):
        env.step(answer)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(mazes=["#####\n#S#G#\n#####"]), UnsolvableError, "mazes[0]: the goal is unreachable"),
    (dict(mazes=[SMALL], size=7), ValueError, "size=7 does not match the mazes' shape (5, 5)"),
    (dict(kind="spiral"), ValueError, "kind must be one of"),
    (dict(mode="walk"), ValueError, "mode must be one of ['step', 'answer'], got 'walk'"),
    (dict(size=10, kind="kruskal"), ValueError, "size must be odd for a perfect (kruskal) maze"),
])
def test_env__bad_options(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MazeEnv(**kwargs)


def test_env__mazes_from_file(tmp_path):
    mazes, _, _ = MazeGenerator(9, "backtracker").generate_arrays(seed=0, count=3)
    path = tmp_path / "m.txt"
    path.write_text("\n\n".join(format_maze(m) for m in mazes) + "\n")
    grids = {MazeEnv(mazes=str(path)).reset(seed=s)[0]["grid"].tobytes() for s in range(20)}
    assert grids == {m.tobytes() for m in mazes}


@pytest.mark.parametrize("kwargs", [
    dict(size=8, max_steps=40),
    dict(size=9, kind="kruskal", max_steps=6),
    dict(size=8, mode="answer"),
    # the compiled moves and masks with resets from a pool, and from a generator passed in
    dict(mazes=list(MazeGenerator(6, "hard").generate_arrays(seed=1, count=4)[0]), max_steps=9),
    dict(mazes=MazeGenerator(7, "backtracker"), max_steps=12),
    dict(size=5, max_steps=10**9),  # small mazes: reached goals reset
])
def test_vector_env__equals_sync_of_single_envs(kwargs):
    native = gym.make_vec(ID, num_envs=5, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ID, num_envs=5, vectorization_mode="sync", **kwargs)
    assert isinstance(native.unwrapped, MazeVectorEnv)
    a, b = native.reset(seed=9), sync.reset(seed=9)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(80):
        assert data_equivalence(a[0], b[0])
        info_a, info_b = a[-1], b[-1]
        assert ("action_mask" in info_a) == ("action_mask" in info_b)
        if "action_mask" in info_a:
            assert np.array_equal(info_a["action_mask"], info_b["action_mask"])
        if native.unwrapped.mode == "answer":
            grids = a[0]["grid"]
            labels = np.stack([shortest_path(g)[1] for g in grids])
            actions = np.where(rng.random(5)[:, None, None] < 0.5, labels, grids)
        else:
            actions = rng.integers(0, 4, 5)
        a, b = native.step(actions), sync.step(actions)
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        ends += int(a[2].sum() + a[3].sum())
    assert ends > 0


def test_vector_env__bad_actions():
    env = MazeVectorEnv(2, size=8)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape("actions[1]: 4 is outside 0..3")):
        env.step(np.array([0, 4]))


def test_render__shows_agent():
    env = MazeEnv(mazes=[SMALL], render_mode="ansi")
    env.reset(seed=0)
    assert env.render().splitlines()[1] == "#@  #"
    env = MazeEnv(mazes=[SMALL], render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (40, 40, 3)


# -- defaults valid for every kind; reset(options=...) -------------------------------------

@pytest.mark.parametrize("kind, side", [("hard", 30), ("backtracker", 29), ("kruskal", 29),
                                        ("perfect", 29)])
def test_make__default_size_fits_every_kind(kind, side):
    # perfect mazes need an odd side: their default is 29, Maze-Hard's stays 30
    env = gym.make(ID, kind=kind)
    obs, _ = env.reset(seed=0)
    assert obs["grid"].shape == (side, side) and obs in env.observation_space


def test_make__no_kwargs_unchanged():
    env = gym.make(ID)
    assert env.unwrapped.shape == (30, 30) and env.unwrapped.max_steps == 4 * 30 * 30


def test_vector_env__default_size_fits_every_kind():
    env = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", kind="kruskal")
    assert env.reset(seed=0)[0]["grid"].shape == (2, 29, 29)


def test_reset_options__maze_as_text_or_grid():
    env = MazeEnv(mazes=[SMALL])
    other = "#####\n#  S#\n# # #\n#G  #\n#####"
    for maze in (other, parse_maze(other), parse_maze(other).astype(np.int64).tolist(),
                 "#####\n#ooS#\n#o# #\n#G  #\n#####"):  # path marks are dropped
        obs, info = env.reset(seed=0, options={"maze": maze})
        assert np.array_equal(obs["grid"], parse_maze(other))
        assert obs["position"].tolist() == [1, 3]
    assert env.step(3)[0]["position"].tolist() == [1, 2]
    assert np.array_equal(env.reset(seed=0)[0]["grid"], parse_maze(SMALL))  # that reset only


def test_reset_options__kind_generates_that_kind_at_the_envs_size():
    from gymnasium.utils import seeding

    env = MazeEnv(size=11, kind="hard")
    obs, _ = env.reset(seed=2, options={"kind": "kruskal"})
    rng, _ = seeding.np_random(2)
    assert np.array_equal(obs["grid"], MazeGenerator(11, "kruskal")(rng).maze)
    perfect = env.reset(seed=2, options={"kind": "perfect"})[0]["grid"]
    rng, _ = seeding.np_random(2)
    assert np.array_equal(perfect, MazeGenerator(11, "backtracker")(rng).maze)


@pytest.mark.parametrize("kwargs, options, error, message", [
    (dict(mazes=[SMALL]), {"maze": "#####\n#S G#\n#####"}, PuzzleFormatError,
     "options['maze']: expected a maze of shape (5, 5) (the env's), got (3, 5)"),
    (dict(mazes=[SMALL]), {"maze": "#####\n#S# #\n### #\n#  G#\n#####"}, UnsolvableError,
     "options['maze']: the goal is unreachable from the start"),
    (dict(mazes=[SMALL]), {"maze": np.full((5, 5), 2)}, PuzzleFormatError,
     "options['maze']: no start 'S'"),
    (dict(mazes=[SMALL]), {"maze": np.full((5, 5), 9)}, PuzzleFormatError,
     "options['maze']: cell at row 1, column 1 has code 9 outside 1..5"),
    (dict(mazes=[SMALL]), {"maze": "#####\n#S x#"}, PuzzleFormatError, "options['maze']"),
    (dict(mazes=[SMALL]), {"kind": "kruskal"}, TracegymError,
     "options['kind']: this env draws its mazes from mazes=...; a kind applies only to "
     "generated mazes"),
    (dict(size=10), {"kind": "kruskal"}, TracegymError,
     "options['kind']='kruskal': size must be odd for a perfect (kruskal) maze, got 10"),
    (dict(size=11), {"kind": "spiral"}, TracegymError,
     "options['kind'] must be one of ['hard', 'backtracker', 'kruskal', 'perfect'], got "
     "'spiral'"),
    (dict(size=11), {"kind": "hard", "maze": SMALL}, TracegymError,
     "options: give 'maze' or 'kind', not both"),
])
def test_reset_options__bad_values(kwargs, options, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MazeEnv(**kwargs).reset(seed=0, options=options)


def test_vector_env__reset_options_apply_to_every_env_as_sync():
    kwargs = dict(mazes=[SMALL, "#####\n#  S#\n# # #\n#G  #\n#####"], max_steps=3)
    other = "#####\n#S  #\n### #\n#G  #\n#####"
    native = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ID, num_envs=3, vectorization_mode="sync", **kwargs)
    a, b = native.reset(seed=1, options={"maze": other}), sync.reset(seed=1,
                                                                    options={"maze": other})
    assert data_equivalence(a[0], b[0])
    assert all(np.array_equal(g, parse_maze(other)) for g in a[0]["grid"])
    for t in range(5):  # truncated at step 3, reset from the source at step 4
        a, b = native.step(np.full(3, 1)), sync.step(np.full(3, 1))
        assert data_equivalence(a[0], b[0])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        assert a[3].all() == (t == 2)
    assert not any(np.array_equal(g, parse_maze(other)) for g in a[0]["grid"])


def test_env__non_finite_step_reward_rejected():
    with pytest.raises(TracegymError, match=re.escape("step_reward must be a finite number, "
                                                      "got -inf")):
        MazeEnv(mazes=[SMALL], step_reward=-float("inf"))
