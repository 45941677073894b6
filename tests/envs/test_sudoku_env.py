import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.sudoku.board import format_puzzle
from tracegym.envs.sudoku.env import SudokuEnv
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.errors import (
    ActionError,
    ConflictError,
    PuzzleFormatError,
    TracegymError,
    UnsolvableError,
)


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("size", [4, 6, 9, 16])
def test_env__passes_check_env(mode, size):
    render = "ansi" if size < 9 else "rgb_array"
    env = gym.make("tracegym/Sudoku-v0", size=size, mode=mode, render_mode=render)
    check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("size", [4, 9])
def test_env__action_mask_fits_the_action_space(mode, size):
    """README samples ``env.action_space.sample(mask=info["action_mask"])``: in step mode the
    mask is the Discrete space's, in answer mode (a Box, which takes no mask) there is none."""
    env = gym.make("tracegym/Sudoku-v0", size=size, mode=mode)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    if mode == "answer":
        assert "action_mask" not in info
        info = env.step(env.action_space.sample())[4]
        assert "action_mask" not in info
        return
    for _ in range(20):
        action = env.action_space.sample(mask=info["action_mask"])
        assert info["action_mask"][action] == 1
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["illegal"]
        if terminated or truncated:
            obs, info = env.reset()


def test_env__same_seed_same_puzzles_and_rewards():
    envs = [gym.make("tracegym/Sudoku-v0", size=6), gym.make("tracegym/Sudoku-v0", size=6)]
    outs = [env.reset(seed=123) for env in envs]
    assert np.array_equal(outs[0][0]["board"], outs[1][0]["board"])
    rng = np.random.default_rng(0)
    for _ in range(100):
        action = int(rng.integers(6 ** 3))
        a, b = (env.step(action) for env in envs)
        assert np.array_equal(a[0]["board"], b[0]["board"])
        assert a[1:4] == b[1:4]
        if a[2] or a[3]:
            for env in envs:
                env.reset()


def _write_solution(env, solution):
    """Write the solution digit by digit; return the rewards and the last step's flags."""
    obs, info = env.reset(seed=0)
    n = solution.shape[0]
    rewards = []
    for cell in np.flatnonzero(obs["board"].reshape(-1) == 0):
        action = cell * n + solution.reshape(-1)[cell] - 1
        assert info["action_mask"][action] == 1
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
    return obs, rewards, terminated, truncated, info


def test_step_mode__solving_gives_one_and_terminates(small_puzzles):
    puzzles, solutions = small_puzzles
    env = SudokuEnv(puzzles=[puzzles[0]])
    obs, rewards, terminated, truncated, info = _write_solution(env, solutions[0])
    assert rewards[-1] == 1.0 and sum(rewards[:-1]) == 0.0
    assert terminated and not truncated and info["solved"]
    assert np.array_equal(obs["board"], solutions[0])
    assert info["action_mask"].sum() == 0


def test_step_mode__illegal_write_penalized_or_terminates(small_puzzles):
    puzzles, _ = small_puzzles
    given_cell = int(np.flatnonzero(puzzles[0].reshape(-1))[0])
    for rule, ends in [("penalize", False), ("terminate", True)]:
        env = SudokuEnv(puzzles=[puzzles[0]], illegal_action=rule, illegal_reward=-0.5)
        obs, _ = env.reset(seed=0)
        after, reward, terminated, truncated, info = env.step(given_cell * 4)
        assert reward == -0.5 and terminated is ends and info["illegal"]
        assert np.array_equal(after["board"], obs["board"])


def test_step_mode__dead_end_terminates_with_zero():
    # 4x4 with one solution; writing a wrong but legal digit strands a cell.
    puzzle = SudokuGenerator(4, "hard").generate(seed=3)
    env = SudokuEnv(puzzles=[puzzle.puzzle])
    obs, info = env.reset(seed=0)
    mask = info["action_mask"].reshape(16, 4)
    wrong = [(c, d) for c in range(16) for d in range(4)
             if mask[c, d] and puzzle.solution.reshape(-1)[c] != d + 1]
    ended = False
    for cell, digit in wrong:
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step(cell * 4 + digit)
        while not terminated:  # keep writing legal digits until the board jams
            legal = np.flatnonzero(info["action_mask"])
            _, reward, terminated, _, info = env.step(int(legal[0]))
        assert not info["solved"] and info["dead_end"] and reward == 0.0
        ended = True
        break
    assert ended


def test_step_mode__truncates_at_max_steps(small_puzzles):
    puzzles, _ = small_puzzles
    env = SudokuEnv(puzzles=[puzzles[0]], max_steps=3)
    env.reset(seed=0)
    given_cell = int(np.flatnonzero(puzzles[0].reshape(-1))[0])
    flags = [env.step(given_cell * 4)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


@pytest.mark.parametrize("action, message", [
    (64, "action: 64 is outside 0..63"),
    (-1, "action: -1 is outside 0..63"),
    (1.5, "action: expected an int in 0..63, got 1.5"),
])
def test_step_mode__out_of_range_action(action, message, small_puzzles):
    env = SudokuEnv(puzzles=list(small_puzzles[0]))
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(message)):
        env.step(action)


def test_answer_mode__scores_whole_grids(small_puzzles):
    puzzles, solutions = small_puzzles
    env = SudokuEnv(puzzles=[puzzles[0]], mode="answer")
    env.reset(seed=0)
    assert env.step(solutions[0])[1:3] == (1.0, True)
    env.reset(seed=0)
    wrong = solutions[0].copy()
    wrong[0, [0, 1]] = wrong[0, [1, 0]]
    assert env.step(wrong)[1] == 0.0
    env.reset(seed=0)
    assert env.step(np.zeros((4, 4), np.int8))[1] == 0.0


def test_answer_mode__any_valid_completion_counts():
    env = SudokuEnv(puzzles=["." * 16], mode="answer")  # many solutions
    env.reset(seed=0)
    other = SudokuGenerator(4, "easy").generate(0).solution
    assert env.step(other)[1] == 1.0


@pytest.mark.parametrize("answer, message", [
    (np.zeros((4, 5), np.int8), "action: expected an answer grid of shape (4, 4), got (4, 5)"),
    (np.full((4, 4), 9), "action: cell at row 1, column 1 has value 9 outside 0..4"),
    (np.zeros((4, 4)), "action: expected integer cells, got dtype float64"),
])
def test_answer_mode__bad_answers(answer, message, small_puzzles):
    env = SudokuEnv(puzzles=list(small_puzzles[0]), mode="answer")
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(message)):
        env.step(answer)


def test_env__puzzle_sources(tmp_path, small_puzzles):
    puzzles, _ = small_puzzles
    path = tmp_path / "p.txt"
    path.write_text("\n".join(format_puzzle(p) for p in puzzles) + "\n")
    from_file = SudokuEnv(puzzles=str(path)).reset(seed=4)[0]["board"]
    from_list = SudokuEnv(puzzles=[format_puzzle(p) for p in puzzles]).reset(seed=4)[0]["board"]
    assert np.array_equal(from_file, from_list)
    generator = SudokuEnv(puzzles=SudokuGenerator(6, "hard"))
    assert generator.size == 6 and generator.reset(seed=0)[0]["board"].shape == (6, 6)
    iterator = SudokuEnv(puzzles=iter(puzzles[:2]))
    assert np.array_equal(iterator.reset()[0]["board"], puzzles[0])
    assert np.array_equal(iterator.reset()[0]["board"], puzzles[1])
    with pytest.raises(ValueError, match="the iterator is exhausted"):
        iterator.reset()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(mode="think"), ValueError, "mode must be one of ['step', 'answer'], got 'think'"),
    (dict(illegal_action="ignore"), ValueError, "illegal_action must be one of"),
    (dict(max_steps=0), ValueError, "max_steps must be >= 1, got 0"),
    (dict(render_mode="human"), ValueError, "render_mode must be one of"),
    (dict(puzzles=[".234" + "1..." + "." * 8]), UnsolvableError, "puzzles[0]: has no solution"),
    (dict(puzzles=["." * 16], size=9), ValueError,
     "puzzles[0]: expected 81 characters for a 9x9 grid, got 16"),
    (dict(puzzles=[]), ValueError, "puzzles: the list is empty"),
])
def test_env__bad_options(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        SudokuEnv(**kwargs)


def test_render__ansi_and_rgb(small_puzzles):
    env = SudokuEnv(puzzles=list(small_puzzles[0]), render_mode="ansi")
    obs, _ = env.reset(seed=0)
    text = env.render()
    assert text.count("\n") == 5 and "+" in text
    env = SudokuEnv(size=9, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 2  # lines, glyphs and background


# -- reset(options=...) --------------------------------------------------------------------

def test_reset_options__puzzle_as_string_or_grid(small_puzzles):
    puzzles, solutions = small_puzzles
    env = SudokuEnv(size=4, difficulty="easy")
    for given in (format_puzzle(puzzles[1]), puzzles[1], puzzles[1].astype(np.int64).tolist()):
        obs, info = env.reset(seed=0, options={"puzzle": given})
        assert np.array_equal(obs["board"], puzzles[1])
        assert np.array_equal(obs["givens"], (puzzles[1] != 0).astype(np.int8))
    _, rewards, terminated, _, _ = _write_solution_from(env, obs, info, solutions[1])
    assert terminated and rewards[-1] == 1.0
    # the option holds for that reset only: the next draws from the source again
    assert env.reset(seed=0)[0]["board"].tolist() == SudokuEnv(size=4, difficulty="easy") \
        .reset(seed=0)[0]["board"].tolist()


def _write_solution_from(env, obs, info, solution):
    n = solution.shape[0]
    rewards, terminated, truncated = [], False, False
    for cell in np.flatnonzero(obs["board"].reshape(-1) == 0):
        obs, reward, terminated, truncated, info = env.step(
            int(cell * n + solution.reshape(-1)[cell] - 1))
        rewards.append(reward)
    return obs, rewards, terminated, truncated, info


def test_reset_options__difficulty_generates_at_that_level():
    from gymnasium.utils import seeding

    env = SudokuEnv(size=4, difficulty="easy")
    obs, _ = env.reset(seed=3, options={"difficulty": "hard"})
    rng, _ = seeding.np_random(3)  # the stream reset(seed=3) gives the env
    assert np.array_equal(obs["board"], SudokuGenerator(4, "hard")(rng).puzzle)
    easy = SudokuEnv(size=4, difficulty="easy").reset(seed=3)[0]["board"]
    assert np.array_equal(env.reset(seed=3)[0]["board"], easy)  # back to the env's own level


@pytest.mark.parametrize("options, error, message", [
    ({"puzzle": "1234"}, PuzzleFormatError,
     "options['puzzle']: expected 16 characters for a 4x4 grid, got 4"),
    ({"puzzle": "." * 81}, PuzzleFormatError,
     "options['puzzle']: expected 16 characters for a 4x4 grid, got 81"),
    ({"puzzle": np.zeros((9, 9), np.int8)}, PuzzleFormatError,
     "options['puzzle']: expected a 4x4 grid, got (9, 9)"),
    ({"puzzle": np.full((4, 4), 7)}, PuzzleFormatError,
     "options['puzzle']: cell at row 1, column 1 has value 7 outside 0..4"),
    ({"puzzle": np.zeros((4, 4), float)}, PuzzleFormatError,
     "options['puzzle']: expected integer cells, got dtype float64"),
    ({"puzzle": "11.." + "." * 12}, ConflictError,
     "options['puzzle']: digit 1 appears twice in row 1"),
    ({"puzzle": ".234" + "1..." + "." * 8}, UnsolvableError, "options['puzzle']: has no solution"),
    ({"difficulty": "brutal"}, TracegymError,
     "options['difficulty'] must be one of ['easy', 'medium', 'hard', 'extreme'], got 'brutal'"),
    ({"difficulty": ["easy"]}, TracegymError,
     "options['difficulty'] must be one of ['easy', 'medium', 'hard', 'extreme'], got ['easy']"),
    ({"difficulty": "extreme"}, TracegymError,
     "options['difficulty']: difficulty 'extreme' is not available for size 4"),
    ({"puzzle": "." * 16, "difficulty": "easy"}, TracegymError,
     "options: give 'puzzle' or 'difficulty', not both"),
])
def test_reset_options__bad_values(options, error, message):
    env = SudokuEnv(size=4, difficulty="easy")
    with pytest.raises(error, match=re.escape(message)):
        env.reset(seed=0, options=options)


def test_reset_options__difficulty_needs_a_generating_env(small_puzzles):
    env = SudokuEnv(puzzles=list(small_puzzles[0]))
    with pytest.raises(TracegymError, match=re.escape(
            "options['difficulty']: this env draws its puzzles from puzzles=...")):
        env.reset(options={"difficulty": "hard"})
    generating = SudokuEnv(puzzles=SudokuGenerator(4, "easy"))
    assert generating.reset(seed=0, options={"difficulty": "hard"})[0]["board"].shape == (4, 4)


def test_env__non_finite_illegal_reward_rejected():
    with pytest.raises(TracegymError, match=re.escape("illegal_reward must be a finite number, "
                                                      "got nan")):
        SudokuEnv(size=4, illegal_reward=float("nan"))
