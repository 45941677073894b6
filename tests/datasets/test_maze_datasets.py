import importlib.util
import json
import re
from collections import deque

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracegym.cli import main as cli_main
from tracegym.datasets import common, read_split
from tracegym.datasets.maze import build_maze_dataset
from tracegym.envs.maze.board import PATH, WALL, format_maze, parse_maze
from tracegym.envs.maze.generator import MazeGenerator
from tracegym.envs.maze.solver import count_shortest_paths, path_verdict, solve_batch
from tracegym.errors import TracegymError
from tracegym.grid import dihedral

ARRAYS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
SPLIT_FILES = sorted(["dataset.json", "all.parquet", *(f"all__{key}.npy" for key in ARRAYS)])
HARD = {"kind": "hard", "size": 10, "min_path": 8, "train": 12, "test": 6, "augment": 2,
        "seed": 3}
# 7x7 backtracker mazes fall in a few dozen classes up to symmetry: train draws often equal a
# test maze, so the redraw path runs
SEVEN = {"kind": "backtracker", "size": 7, "train": 30, "test": 8, "augment": 3, "seed": 1}


def _build(path, **kwargs):
    return build_maze_dataset(path, progress=False, **kwargs)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate shards' arrays, offsetting each index array by the counts before it."""
    out = {key: np.concatenate([p[key] for p in parts]) for key in ARRAYS[:3]}
    for key, base in (("puzzle_indices", "inputs"), ("group_indices", "puzzle_identifiers")):
        offsets = np.cumsum([0] + [len(p[base]) for p in parts])
        out[key] = np.concatenate([[0]] + [p[key][1:] + off for p, off in zip(parts, offsets)])
    return out


def _grids(path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_split(path, split)[1]
    return (arrays["inputs"].reshape(-1, size, size).astype(np.int8),
            arrays["labels"].reshape(-1, size, size).astype(np.int8))


def _bfs_length(grid: np.ndarray) -> int:
    """Moves on a shortest S-to-G path (-1 if none): plain BFS, independent of the library."""
    h, w = grid.shape
    start = tuple(np.argwhere(grid == 3)[0])
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if grid[r, c] == 4:
            return dist[r, c]
        for nr, nc in ((r - 1, c), (r, c + 1), (r + 1, c), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and grid[nr, nc] != WALL and (nr, nc) not in dist:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return -1


def _canonical(grid: np.ndarray) -> bytes:
    return min(np.ascontiguousarray(dihedral(grid, k)).tobytes() for k in range(8))


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    path = tmp_path_factory.mktemp("hard") / "data"
    return path, _build(path, **HARD)


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    path = tmp_path_factory.mktemp("seven") / "data"
    return path, _build(path, **SEVEN)


def test_build_maze_dataset__layout_and_metadata(hard):
    path, summary = hard
    assert sorted(p.name for p in path.iterdir()) == ["identifiers.json", "test", "train"]
    assert json.loads((path / "identifiers.json").read_text()) == ["<blank>"]
    assert summary == {"out": str(path), "kind": "hard", "size": 10, "min_path": 8,
                       "wall_density": 0.3, "allow_ties": False, "unique_shortest_path": True,
                       "seed": 3, "shard": [0, 1], "augment": 2, "train_puzzles": 12,
                       "train_examples": 36, "test_puzzles": 6, "rejected": 0}
    for split, groups, per in (("train", 12, 3), ("test", 6, 1)):
        assert sorted(p.name for p in (path / split).iterdir()) == SPLIT_FILES
        meta = json.loads((path / split / "dataset.json").read_text())
        assert meta == {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
                        "vocab_size": 6, "seq_len": 100, "num_puzzle_identifiers": 1,
                        "total_groups": groups, "mean_puzzle_examples": 1.0,
                        "total_puzzles": groups * per, "sets": ["all"],
                        "tracegym": {"kind": "hard", "size": 10, "min_path": 8,
                                     "wall_density": 0.3, "allow_ties": False, "seed": 3,
                                     "unique_shortest_path": True}}
        _, arrays = read_split(path, split)
        n = groups * per
        assert arrays["inputs"].shape == arrays["labels"].shape == (n, 100)
        assert arrays["inputs"].dtype == arrays["labels"].dtype == np.uint8
        assert all(arrays[key].dtype == np.int32 for key in ARRAYS[2:])
        assert np.array_equal(arrays["puzzle_identifiers"], np.zeros(n))
        assert np.array_equal(arrays["puzzle_indices"], np.arange(n + 1))
        assert np.array_equal(arrays["group_indices"], np.arange(groups + 1) * per)
        assert set(np.unique(arrays["inputs"])) <= {1, 2, 3, 4}  # no path in an input
        assert set(np.unique(arrays["labels"])) <= {1, 2, 3, 4, 5}


HAS_TORCH = importlib.util.find_spec("torch") is not None


def _puzzle_dataset():
    """PuzzleDataset needs torch (the `train` extra); its tests skip without it."""
    pytest.importorskip("torch")
    from tracegym.datasets import PuzzleDataset

    return PuzzleDataset


@pytest.mark.parametrize("split", ["train", "test"])
def test_puzzle_dataset__round_trip_gives_shortest_paths(hard, split):
    path, _ = hard
    ds = _puzzle_dataset()(path, split)
    assert len(ds) == (36 if split == "train" else 6)
    for i in range(len(ds)):
        item = ds[i]
        assert item["inputs"].shape == item["labels"].shape == (100,)
        maze = item["inputs"].numpy().reshape(10, 10).astype(np.int8)
        label = item["labels"].numpy().reshape(10, 10).astype(np.int8)
        assert path_verdict(maze, label) is None
        assert int((label == PATH).sum()) == _bfs_length(maze) - 1 > 8 - 1  # min_path 8


def test_build_maze_dataset__same_args_byte_identical(tmp_path, hard):
    path, _ = hard
    _build(tmp_path / "again", **HARD)
    first, second = _files(path), _files(tmp_path / "again")
    assert sorted(first) == sorted(second) and len(first) == 15
    for name in first:
        assert first[name] == second[name], name
    _build(tmp_path / "other", **{**HARD, "seed": 4})
    assert _files(tmp_path / "other")["train/all__inputs.npy"] != first["train/all__inputs.npy"]


@pytest.mark.parametrize("case, n", [(SEVEN, 3), (HARD, 2), ({**HARD, "train": 2}, 3)])
def test_build_maze_dataset__shards_concatenate_to_the_whole(tmp_path, case, n):
    whole = tmp_path / "whole"
    _build(whole, **case)
    shards = [tmp_path / f"shard{i}" for i in range(n)]
    for i, shard in enumerate(shards):
        _build(shard, shard=(i, n), **case)
    for split in ("train", "test"):
        want = read_split(whole, split)[1]
        got = _concat([read_split(shard, split)[1] for shard in shards])
        for key in ARRAYS:
            assert np.array_equal(got[key], want[key]), (split, key)
        tables = [pq.read_table(shard / split / "all.parquet") for shard in shards]
        full = pq.read_table(whole / split / "all.parquet")
        for column in ("inputs", "labels", "item", "augmentation", "maze", "label", "length",
                       "generator_seed"):  # puzzle_index and group_index count within a shard
            assert sum((t.column(column).to_pylist() for t in tables), []) \
                == full.column(column).to_pylist(), (split, column)
        for shard in shards if HAS_TORCH else ():  # each shard loads on its own
            assert len(_puzzle_dataset()(shard, split)) == \
                len(read_split(shard, split)[1]["inputs"])


@pytest.mark.parametrize("fixture", ["hard", "seven"])
def test_augmentations__are_symmetries_that_keep_the_path(fixture, request):
    path, summary = request.getfixturevalue(fixture)
    size, per = summary["size"], 1 + summary["augment"]
    mazes, labels = _grids(path, "train", size)
    table = pq.read_table(path / "train" / "all.parquet").to_pydict()
    ks = np.array(table["augmentation"]).reshape(-1, per)
    assert (ks[:, 0] == 0).all() and (ks[:, 1:] > 0).all() and (ks < 8).all()
    assert all(len(set(row)) == per for row in ks)  # distinct symmetries per item
    assert len({tuple(row) for row in ks}) > 1  # drawn per item, not one fixed choice
    for g in range(len(ks)):
        first = g * per
        length = _bfs_length(mazes[first])
        assert table["length"][first] == length
        for j in range(per):
            k = int(ks[g, j])
            assert np.array_equal(mazes[first + j], dihedral(mazes[first], k))
            assert np.array_equal(labels[first + j], dihedral(labels[first], k))
            assert _bfs_length(mazes[first + j]) == length == table["length"][first + j]
            assert path_verdict(mazes[first + j], labels[first + j]) is None


def test_build_maze_dataset__train_never_meets_test(hard, seven):
    assert seven[1]["rejected"] > 0  # the redraw path ran
    for path, summary in (hard, seven):
        train = _grids(path, "train", summary["size"])[0]
        test = _grids(path, "test", summary["size"])[0]
        assert not {_canonical(m) for m in train} & {_canonical(m) for m in test}


def test_build_maze_dataset__generator_seed_rebuilds_every_original(hard, seven):
    for path, summary in (hard, seven):
        gen = MazeGenerator(summary["size"], summary["kind"], min_path=summary["min_path"],
                            allow_ties=summary["allow_ties"])
        for split in ("train", "test"):
            mazes, labels = _grids(path, split, summary["size"])
            table = pq.read_table(path / split / "all.parquet").to_pydict()
            originals = [i for i, k in enumerate(table["augmentation"]) if k == 0]
            sources = {table["generator_seed"][i] for i in originals}
            if split == "train" and summary is seven[1]:
                assert len(sources) > 1  # redrawn items come from redraw streams
            for i in originals:
                m, lab, st = gen.generate_arrays(table["generator_seed"][i], 1, table["item"][i])
                assert np.array_equal(m[0], mazes[i]) and np.array_equal(lab[0], labels[i])
                assert st[0, 0] == table["length"][i] and st[0, 2] == table["shortest_paths"][i]


def test_parquet__rows_match_the_arrays(seven):
    path, _ = seven
    table = pq.read_table(path / "train" / "all.parquet")
    arrays = read_split(path, "train")[1]
    assert table.column_names == ["inputs", "labels", "puzzle_index", "group_index",
                                  "puzzle_identifier", "item", "augmentation", "maze", "label",
                                  "length", "shortest_paths", "generator_seed"]
    assert table.num_rows == 120
    assert np.array_equal(np.array(table.column("inputs").to_pylist()), arrays["inputs"])
    assert np.array_equal(np.array(table.column("labels").to_pylist()), arrays["labels"])
    assert table.column("group_index").to_pylist() == [i // 4 for i in range(120)]
    assert table.column("item").to_pylist() == [i // 4 for i in range(120)]
    mazes, labels = _grids(path, "train", 7)
    for i, (maze, label) in enumerate(zip(table.column("maze").to_pylist(),
                                          table.column("label").to_pylist())):
        assert maze == format_maze(mazes[i]) and label == format_maze(labels[i])
        assert np.array_equal(parse_maze(maze, allow_path=False), mazes[i])


@pytest.mark.parametrize("fixture", ["hard", "seven"])
def test_labels__are_the_one_shortest_path_of_every_input_copies_included(fixture, request):
    path, summary = request.getfixturevalue(fixture)
    for split in ("train", "test"):
        mazes, labels = _grids(path, split, summary["size"])
        assert count_shortest_paths(mazes).tolist() == [1] * len(mazes)
        assert np.array_equal(solve_batch(mazes)[0], labels)  # the target follows from the input
        table = pq.read_table(path / split / "all.parquet").to_pydict()
        assert table["shortest_paths"] == [1] * len(mazes)


def test_build_maze_dataset__allow_ties_keeps_the_old_mazes_and_says_so(tmp_path, hard):
    path, _ = hard
    tied = tmp_path / "tied"
    summary = _build(tied, **HARD, allow_ties=True)
    assert summary["allow_ties"] is True and summary["unique_shortest_path"] is False
    for split in ("train", "test"):
        meta = json.loads((tied / split / "dataset.json").read_text())["tracegym"]
        mazes, _ = _grids(tied, split, HARD["size"])
        counts = count_shortest_paths(mazes)
        assert meta["allow_ties"] is True
        assert meta["unique_shortest_path"] == bool((counts == 1).all())
        table = pq.read_table(tied / split / "all.parquet").to_pydict()
        assert table["shortest_paths"] == counts.tolist()
        assert table["length"] == pq.read_table(path / split / "all.parquet")["length"].to_pylist()


def test_build_maze_dataset__non_empty_out_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    message = f"out: directory {str(out)!r} exists and is not empty; pass overwrite=True"
    with pytest.raises(ValueError, match=re.escape(message)):
        _build(out, **{**SEVEN, "train": 2, "test": 1})
    _build(out, **{**SEVEN, "train": 2, "test": 1}, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old dirs left


@pytest.mark.parametrize("kwargs, message", [
    ({"train": 0}, "train must be >= 1, got 0"),
    ({"train": 2.5}, "train must be an int, got 2.5"),
    ({"test": -1}, "test must be >= 0, got -1"),
    ({"augment": -1}, "augment must be >= 0, got -1"),
    ({"augment": 8}, "augment must be <= 7 (a square has 7 symmetries besides the identity), "
                     "got 8"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"shard": (2, 2)}, "shard must be (i, n) with 0 <= i < n, got (2, 2)"),
    ({"shard": "0/2"}, "shard must be (i, n) with 0 <= i < n, got '0/2'"),
    ({"kind": "prim"}, "kind must be one of ['backtracker', 'kruskal', 'hard'], got 'prim'"),
    ({"size": 4}, "size must be in 5..255, got 4"),
    ({"size": 8}, "size must be odd for a perfect (backtracker) maze, got 8"),
    ({"kind": "hard", "min_path": -1}, "min_path must be >= 0, got -1"),
    ({"kind": "hard", "wall_density": 1.0}, "wall_density must be in [0, 1), got 1.0"),
    ({"allow_ties": 1}, "allow_ties must be a bool, got 1"),
])
def test_build_maze_dataset__bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _build(tmp_path / "out", **{**SEVEN, "train": 2, "test": 1, **kwargs})
    assert not (tmp_path / "out").exists()


def test_redraws__give_up_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "MAX_REDRAWS", 0)
    with pytest.raises(TracegymError, match=r"train item \d+: 0 redraws all resemble a test maze"):
        _build(tmp_path / "out", **SEVEN)
    assert not (tmp_path / "out").exists()


def test_cli__data_maze_builds_and_prints_one_line(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["data", "maze", "--out", str(out), "--kind", "hard", "--size", "9", "--min-path",
            "6", "--train", "4", "--test", "2", "--augment", "1", "--shard", "1/2",
            "--no-progress"]
    assert cli_main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out}: train 2 mazes x 2 = 4 "
                                                   f"examples, test 1 mazes (9x9 hard")
    assert len(read_split(out, "train")[1]["inputs"]) == 4
    assert json.loads((out / "train" / "dataset.json").read_text())["tracegym"]["allow_ties"] \
        is False
    tied = tmp_path / "tied"
    assert cli_main([*argv[:3], str(tied), *argv[4:], "--allow-ties"]) == 0
    assert ", ties allowed, " in capsys.readouterr().out
    assert json.loads((tied / "train" / "dataset.json").read_text())["tracegym"]["allow_ties"]


@pytest.mark.parametrize("extra, message", [
    (["--augment", "8"], "tracegym: error: augment must be <= 7"),
    (["--size", "8"], "tracegym: error: size must be odd for a perfect (backtracker) maze"),
])
def test_cli__data_maze_bad_argument_exits_2(tmp_path, capsys, extra, message):
    argv = ["data", "maze", "--out", str(tmp_path / "x"), "--kind", "backtracker", "--size",
            "7", "--train", "2", "--test", "1", "--no-progress", *extra]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("extra, message", [
    (["--kind", "prim"], "invalid choice: 'prim'"),
    (["--shard", "2/2"], "shard must look like i/n"),
])
def test_cli__data_maze_usage_error_is_one_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        cli_main(["data", "maze", "--out", str(tmp_path / "x"), *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
