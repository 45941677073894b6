import re

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.arc import generator
from tracegym.envs.arc.data import ArcTask
from tracegym.envs.arc.env import ArcEnv
from tracegym.envs.arc.generator import (
    FAMILIES,
    ProceduralTask,
    generate_task,
    procedural_task,
    verify_task,
)

NAMES = sorted(FAMILIES)
REQUIRED = ["flip", "recolour", "gravity", "fill_enclosed", "translate", "symmetry", "scale",
            "tile", "count_bar", "largest_object"]


def _pairs(pt: ProceduralTask):
    return list(pt.task.train) + list(pt.task.test)


def _assert_valid(pt: ProceduralTask):
    assert isinstance(pt.task, ArcTask)
    assert 3 <= len(pt.task.train) <= 5 and len(pt.task.test) == 1
    for x, y in _pairs(pt):
        for grid in (x, y):
            assert grid.dtype == np.int8 and grid.ndim == 2
            assert all(1 <= side <= 30 for side in grid.shape)
            assert 0 <= grid.min() and grid.max() <= 9
    inputs = [(x.shape, x.tobytes()) for x, _ in _pairs(pt)]
    assert len(set(inputs)) == len(inputs)


def _p(name, rule, grid):
    return FAMILIES[name].program(np.array(grid, np.int8), rule).tolist()


def test_families__required_ones_registered():
    assert set(REQUIRED) <= set(FAMILIES) and len(FAMILIES) >= 10
    assert all(f.name == name and f.description for name, f in FAMILIES.items())


@pytest.mark.parametrize("family", NAMES)
def test_procedural_task__valid_verified_and_non_degenerate(family):
    for index in range(100):
        pt = procedural_task(family, 7, index)
        _assert_valid(pt)
        assert verify_task(pt)
        assert pt.family == family and pt.task.task_id == f"procedural/{family}/7/{index}"
        for x, y in _pairs(pt):
            assert x.shape != y.shape or (x != y).any()


@pytest.mark.parametrize("family", NAMES)
def test_procedural_task__deterministic_per_item(family):
    a, b = procedural_task(family, 3, 11), procedural_task(family, 3, 11)
    assert a.rule == b.rule
    for (xa, ya), (xb, yb) in zip(_pairs(a), _pairs(b), strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    others = [procedural_task(family, 3, i) for i in range(12, 17)]
    differ = [not np.array_equal(o.task.test[0][0], a.task.test[0][0]) for o in others]
    assert sum(differ) >= 4


@settings(max_examples=60)
@given(family=st.sampled_from(NAMES), seed=st.integers(0, 2**63 - 1),
       index=st.integers(0, 2**63 - 1))
def test_procedural_task__any_item_is_valid(family, seed, index):
    pt = procedural_task(family, seed, index)
    _assert_valid(pt)
    assert verify_task(pt)


def test_generate_task__num_demos_and_default_id():
    pt = generate_task("scale", np.random.default_rng(0), num_demos=4)
    assert len(pt.task.train) == 4 and pt.task.task_id == "procedural/scale"
    counts = {len(generate_task("flip", np.random.default_rng(s)).task.train) for s in range(40)}
    assert counts == {3, 4, 5}


def test_verify_task__tampered_output_fails():
    pt = procedural_task("gravity", 0, 0)
    x, y = pt.task.test[0]
    bad = y.copy()
    bad[0, 0] = (bad[0, 0] + 1) % 10
    tampered = ProceduralTask(ArcTask(pt.task.task_id, pt.task.train, ((x, bad),)),
                              pt.family, pt.rule)
    assert verify_task(pt) and not verify_task(tampered)
    other_rule = ProceduralTask(pt.task, pt.family, {
        "direction": {"down": "up", "up": "down", "left": "right", "right": "left"}[
            pt.rule["direction"]]})
    assert not verify_task(other_rule)


def test_recolour__every_changed_colour_in_demos():
    for index in range(30):
        pt = procedural_task("recolour", 1, index)
        seen = set(np.concatenate([x.ravel() for x, _ in pt.task.train]).tolist())
        changed = {c for c, t in enumerate(pt.rule["table"]) if t != c}
        assert changed and changed <= seen


@pytest.mark.parametrize("family, key, values", [
    ("flip", "transform", range(8)),
    ("gravity", "direction", ["down", "up", "left", "right"]),
    ("count_bar", "what", ["cells", "objects"]),
    ("tile", "mirror", [False, True]),
])
def test_procedural_task__demos_pin_down_the_rule(family, key, values):
    program = FAMILIES[family].program
    for index in range(30):
        pt = procedural_task(family, 5, index)
        fits = [v for v in values if all(
            np.array_equal(program(x, {**pt.rule, key: v}), y) for x, y in pt.task.train)]
        assert fits == [pt.rule[key]]


# -- programs against outputs written by hand ----------------------------------------------------
def test_flip__hand_examples():
    grid = [[1, 2], [3, 4]]
    assert _p("flip", {"transform": 1}, grid) == [[2, 4], [1, 3]]  # quarter turn anticlockwise
    assert _p("flip", {"transform": 2}, grid) == [[4, 3], [2, 1]]
    assert _p("flip", {"transform": 4}, grid) == [[2, 1], [4, 3]]  # left-right mirror
    # TRM's numbering (tracegym.grid.dihedral): 5 up-down, 6 transpose, 7 anti-transpose
    assert _p("flip", {"transform": 5}, grid) == [[3, 4], [1, 2]]
    assert _p("flip", {"transform": 6}, grid) == [[1, 3], [2, 4]]
    assert _p("flip", {"transform": 7}, grid) == [[4, 2], [3, 1]]


@pytest.mark.parametrize("direction, grid, expected", [
    ("down", [[1, 0, 2], [0, 3, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [1, 3, 2]]),
    ("down", [[1, 0], [2, 0], [0, 0]], [[0, 0], [1, 0], [2, 0]]),
    ("up", [[0, 0], [1, 0], [0, 2], [3, 0]], [[1, 2], [3, 0], [0, 0], [0, 0]]),
    ("right", [[1, 0, 2, 0], [0, 3, 0, 0]], [[0, 0, 1, 2], [0, 0, 0, 3]]),
    ("left", [[0, 1, 0, 2], [0, 0, 0, 3]], [[1, 2, 0, 0], [3, 0, 0, 0]]),
])
def test_gravity__hand_examples(direction, grid, expected):
    assert _p("gravity", {"direction": direction}, grid) == expected


def test_fill_enclosed__ring_and_open_ring():
    ring = [[0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 1, 0, 1, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 0, 0, 0]]
    filled = [row[:] for row in ring]
    filled[2][2] = 4
    assert _p("fill_enclosed", {"colour": 4}, ring) == filled
    ring[1][2] = 0  # a gap joins the inside to the outside
    assert _p("fill_enclosed", {"colour": 4}, ring) == ring
    # a diagonal gap does not leak under 4-connectivity
    assert _p("fill_enclosed", {"colour": 7}, [[0, 1, 0], [1, 0, 1], [0, 1, 0]]) == \
        [[0, 1, 0], [1, 7, 1], [0, 1, 0]]


def test_translate__clipped_and_wrapped():
    grid = [[1, 2, 0], [0, 3, 0], [0, 0, 0]]
    assert _p("translate", {"dr": 1, "dc": -1, "wrap": False}, grid) == \
        [[0, 0, 0], [2, 0, 0], [3, 0, 0]]
    assert _p("translate", {"dr": 1, "dc": -1, "wrap": True}, grid) == \
        [[0, 0, 0], [2, 0, 1], [3, 0, 0]]


def test_symmetry__hand_examples():
    assert _p("symmetry", {"axes": "h", "mask_colour": 5}, [[1, 2, 2, 1], [5, 4, 4, 3]]) == \
        [[1, 2, 2, 1], [3, 4, 4, 3]]
    assert _p("symmetry", {"axes": "v", "mask_colour": 5}, [[5, 5], [7, 8], [1, 2]]) == \
        [[1, 2], [7, 8], [1, 2]]
    assert _p("symmetry", {"axes": "both", "mask_colour": 9}, [[9, 9], [3, 3]]) == \
        [[3, 3], [3, 3]]


def test_scale_and_tile__hand_examples():
    assert _p("scale", {"k": 2}, [[1, 2], [3, 4]]) == [[1, 1, 2, 2], [1, 1, 2, 2],
                                                       [3, 3, 4, 4], [3, 3, 4, 4]]
    assert _p("scale", {"k": 3}, [[5]]) == [[5] * 3] * 3
    assert _p("tile", {"n": 1, "m": 2, "mirror": False}, [[1, 2]]) == [[1, 2, 1, 2]]
    assert _p("tile", {"n": 2, "m": 2, "mirror": True}, [[1, 2], [3, 0]]) == [
        [1, 2, 2, 1], [3, 0, 0, 3], [3, 0, 0, 3], [1, 2, 2, 1]]


def test_count_bar__cells_and_objects():
    grid = [[1, 1, 0], [0, 0, 1], [1, 0, 2]]
    assert _p("count_bar", {"colour": 1, "what": "cells"}, grid) == [[1, 1, 1, 1]]
    assert _p("count_bar", {"colour": 1, "what": "objects"}, grid) == [[1, 1, 1]]


def test_largest_object__crop():
    grid = [[1, 0, 0, 0],
            [0, 2, 2, 0],
            [0, 0, 3, 0],
            [5, 0, 0, 6]]
    assert _p("largest_object", {"background": 0}, grid) == [[2, 2], [0, 3]]
    # with background 8, the 0s form the objects
    assert _p("largest_object", {"background": 8}, [[8, 0, 8], [0, 0, 8], [8, 8, 1]]) == \
        [[8, 0], [0, 0]]


def test_recolour_and_outline__hand_examples():
    table = list(range(10))
    table[1], table[2] = 2, 1
    assert _p("recolour", {"table": table}, [[1, 2, 3]]) == [[2, 1, 3]]
    solid = [[0, 0, 0, 0], [0, 4, 4, 4], [0, 4, 4, 4], [0, 4, 4, 4]]
    assert _p("outline", {"hole": 0}, solid) == [[0, 0, 0, 0], [0, 4, 4, 4], [0, 4, 0, 4],
                                                 [0, 4, 4, 4]]


def test_label_components__four_connected_row_major():
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]], bool)
    labels, count = generator.label_components(mask)
    assert count == 3 and labels.tolist() == [[1, 0, 2], [0, 2, 2], [3, 0, 0]]


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: procedural_task("rotate", 0, 0), "family must be one of ['count_bar',"),
    (lambda: generate_task("nope", np.random.default_rng(0)), "got 'nope'"),
    (lambda: procedural_task("flip", -1, 0), "seed must be in 0..2**63-1, got -1"),
    (lambda: procedural_task("flip", 0, "3"), "index must be an int, got '3'"),
    (lambda: procedural_task("flip", 0, True), "index must be an int, got True"),
    (lambda: generate_task("flip", np.random.default_rng(0), num_demos=0),
     "num_demos must be in 1..10, got 0"),
])
def test_generator__bad_arguments(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# -- the env -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["step", "answer"])
def test_env__procedural_family_through_make(mode):
    import gymnasium as gym

    import tracegym.envs  # noqa: F401 - registers the envs

    env = gym.make("tracegym/ARC-v0", dataset="procedural/gravity", mode=mode,
                   render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert 3 <= obs["num_demos"] <= 5 and info["task_id"] == "procedural/gravity"
    if mode == "answer":
        assert env.step(env.unwrapped.test_output)[1] == 1.0


@pytest.mark.parametrize("dataset", ["procedural", "procedural/all"])
def test_env__procedural_mix(dataset):
    env = ArcEnv(dataset=dataset, mode="answer")
    seen = {env.reset(seed=s)[1]["task_id"] for s in range(60)}
    assert len(seen) >= 6 and all(t.startswith("procedural/") for t in seen)
    check_env(ArcEnv(dataset=dataset, mode="step"), skip_render_check=True)


def test_env__unknown_procedural_family():
    with pytest.raises(ValueError, match=re.escape("dataset: unknown procedural family 'nope'; "
                                                   "valid: all, count_bar,")):
        ArcEnv(dataset="procedural/nope")
