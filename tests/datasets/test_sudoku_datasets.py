import argparse
import importlib.util
import json
import pickle
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracegym.datasets import SplitData, common, read_split, write_dataset
from tracegym.datasets import writer as writer_module
from tracegym.datasets.cli import add_sudoku_arguments as add_arguments
from tracegym.datasets.cli import sudoku_main as main
from tracegym.datasets.common import parse_shard
from tracegym.datasets.sudoku import build_sudoku_dataset
from tracegym.envs.sudoku import tokens
from tracegym.envs.sudoku.augment import equivalence_fingerprints
from tracegym.envs.sudoku.board import is_valid_solution, parse_puzzle
from tracegym.envs.sudoku.solver import count_solutions
from tracegym.errors import TracegymError

ARRAYS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
SPLIT_FILES = sorted(["dataset.json", "all.parquet", *(f"all__{key}.npy" for key in ARRAYS)])
NINE = {"size": 9, "train": 12, "test": 6, "augment": 2, "seed": 3}
# 4x4 has few fingerprints: test look-alikes are frequent, so redraws get exercised
FOUR = {"size": 4, "train": 14, "test": 5, "augment": 1, "seed": 1}


def _build(path, **kwargs):
    return build_sudoku_dataset(path, progress=False, **kwargs)


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


@pytest.fixture(scope="module")
def nine(tmp_path_factory):
    path = tmp_path_factory.mktemp("nine") / "data"
    return path, _build(path, **NINE)


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    path = tmp_path_factory.mktemp("four") / "data"
    return path, _build(path, **FOUR)


def test_build_sudoku_dataset__layout_and_metadata(nine):
    path, summary = nine
    assert sorted(p.name for p in path.iterdir()) == ["identifiers.json", "test", "train"]
    assert json.loads((path / "identifiers.json").read_text()) == ["<blank>"]
    assert summary == {"out": str(path), "size": 9, "difficulty": "medium", "seed": 3,
                       "shard": [0, 1], "augment": 2, "train_puzzles": 12, "train_examples": 36,
                       "test_puzzles": 6, "rejected": 0}
    for split, groups, per in (("train", 12, 3), ("test", 6, 1)):
        assert sorted(p.name for p in (path / split).iterdir()) == SPLIT_FILES
        meta = json.loads((path / split / "dataset.json").read_text())
        assert meta == {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
                        "vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1,
                        "total_groups": groups, "mean_puzzle_examples": 1.0,
                        "total_puzzles": groups * per, "sets": ["all"]}
        _, arrays = read_split(path, split)
        n = groups * per
        assert arrays["inputs"].shape == arrays["labels"].shape == (n, 81)
        assert arrays["inputs"].dtype == arrays["labels"].dtype == np.uint8
        assert all(arrays[key].dtype == np.int32 for key in ARRAYS[2:])
        assert np.array_equal(arrays["puzzle_identifiers"], np.zeros(n))
        assert np.array_equal(arrays["puzzle_indices"], np.arange(n + 1))
        assert np.array_equal(arrays["group_indices"], np.arange(groups + 1) * per)


HAS_TORCH = importlib.util.find_spec("torch") is not None


def _puzzle_dataset():
    """PuzzleDataset needs torch (the `train` extra); its tests skip without it."""
    pytest.importorskip("torch")
    from tracegym.datasets import PuzzleDataset

    return PuzzleDataset


@pytest.mark.parametrize("split", ["train", "test"])
def test_puzzle_dataset__round_trip_gives_solved_pairs(nine, split):
    PuzzleDataset = _puzzle_dataset()
    import torch
    path, _ = nine
    ds = PuzzleDataset(path, split)
    assert ds.metadata == json.loads((path / split / "dataset.json").read_text())
    assert len(ds) == (36 if split == "train" else 6)
    for i in range(len(ds)):
        item = ds[i]
        assert item["inputs"].dtype == item["labels"].dtype == torch.int64
        assert item["inputs"].shape == (81,) and item["puzzle_identifiers"].shape == ()
        assert int(item["puzzle_identifiers"]) == 0
        puzzle = tokens.decode(item["inputs"].numpy(), 9)
        solution = tokens.decode(item["labels"].numpy(), 9)
        assert is_valid_solution(solution, puzzle)
        result = count_solutions(puzzle, limit=2)
        assert result.num_solutions == 1 and np.array_equal(result.solution, solution)
    assert torch.equal(ds[-1]["inputs"], ds[len(ds) - 1]["inputs"])
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]


def test_puzzle_dataset__pickles_the_path_and_batches(nine):
    PuzzleDataset = _puzzle_dataset()
    import torch
    path, _ = nine
    ds = PuzzleDataset(path, "train")
    blob = pickle.dumps(ds)
    assert len(blob) < 1000  # the path, not the mapped arrays
    again = pickle.loads(blob)
    assert torch.equal(again[5]["labels"], ds[5]["labels"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["inputs"].shape == (4, 81) and batch["puzzle_identifiers"].shape == (4,)


def test_puzzle_dataset__missing_directory_or_file(tmp_path, nine):
    PuzzleDataset = _puzzle_dataset()
    path, _ = nine
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such directory "
                                                          f"{str(tmp_path / 'nope')!r}")):
        PuzzleDataset(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=re.escape("no split 'valid'")):
        PuzzleDataset(path, "valid")
    copy = tmp_path / "copy"
    for name, data in _files(path).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    (copy / "train" / "all__labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("missing file")) as err:
        PuzzleDataset(copy, "train")
    assert "all__labels.npy" in str(err.value)


def test_build_sudoku_dataset__same_args_byte_identical(tmp_path, nine):
    path, _ = nine
    _build(tmp_path / "again", **NINE)
    first, second = _files(path), _files(tmp_path / "again")
    assert sorted(first) == sorted(second) and len(first) == 15
    for name in first:
        assert first[name] == second[name], name
    _build(tmp_path / "other", **{**NINE, "seed": 4})
    assert _files(tmp_path / "other")["train/all__inputs.npy"] != first["train/all__inputs.npy"]


@pytest.mark.parametrize("case, n", [(FOUR, 3), (NINE, 2), ({**FOUR, "train": 2}, 3)])
def test_build_sudoku_dataset__shards_concatenate_to_the_whole(tmp_path, case, n):
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
        for column in ("item", "augmentation", "puzzle", "solution", "generator_seed"):
            assert sum((t.column(column).to_pylist() for t in tables), []) \
                == full.column(column).to_pylist()
        for shard in shards if HAS_TORCH else ():  # each shard loads on its own
            assert len(_puzzle_dataset()(shard, split)) == \
                len(read_split(shard, split)[1]["inputs"])


def test_build_sudoku_dataset__train_never_meets_test(nine, four):
    assert four[1]["rejected"] > 0  # the redraw path ran
    for path, summary in (nine, four):
        size = summary["size"]
        train = tokens.decode(read_split(path, "train")[1]["inputs"], size)
        test = tokens.decode(read_split(path, "test")[1]["inputs"], size)
        assert not set(equivalence_fingerprints(train)) & set(equivalence_fingerprints(test))
        assert not {g.tobytes() for g in train} & {g.tobytes() for g in test}


def test_parquet__rows_match_the_arrays(nine):
    path, _ = nine
    table = pq.read_table(path / "train" / "all.parquet")
    arrays = read_split(path, "train")[1]
    assert table.column_names == ["inputs", "labels", "puzzle_index", "group_index",
                                  "puzzle_identifier", "item", "augmentation", "puzzle",
                                  "solution", "clues", "guesses", "generator_seed"]
    assert table.num_rows == 36
    assert np.array_equal(np.array(table.column("inputs").to_pylist()), arrays["inputs"])
    assert np.array_equal(np.array(table.column("labels").to_pylist()), arrays["labels"])
    assert table.column("puzzle_index").to_pylist() == list(range(36))
    assert table.column("group_index").to_pylist() == [i // 3 for i in range(36)]
    assert table.column("item").to_pylist() == [i // 3 for i in range(36)]
    assert table.column("augmentation").to_pylist() == [0, 1, 2] * 12
    puzzles = [parse_puzzle(text) for text in table.column("puzzle").to_pylist()]
    assert np.array_equal(tokens.encode(np.stack(puzzles)), arrays["inputs"])
    assert table.column("clues").to_pylist() == [int((p != 0).sum()) for p in puzzles]


def test_build_sudoku_dataset__non_empty_out_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _build(out, size=4, train=2, test=1)  # an empty directory is fine
    (out / "stale.txt").write_text("old")
    message = f"out: directory {str(out)!r} exists and is not empty; pass overwrite=True"
    with pytest.raises(ValueError, match=re.escape(message)):
        _build(out, size=4, train=3, test=1)
    _build(out, size=4, train=3, test=1, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert len(read_split(out, "train")[1]["inputs"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old dirs left
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a directory"):
        _build(tmp_path / "file", size=4, train=2, test=1, overwrite=True)


def test_build_sudoku_dataset__failure_leaves_no_partial_output(tmp_path, monkeypatch):
    def broken(rows, count):  # the Parquet writer's first row group
        rows.path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(writer_module._ParquetRows, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        _build(tmp_path / "out", size=4, train=2, test=1)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    _build(tmp_path / "out", size=4, train=2, test=1)
    before = _files(tmp_path / "out")
    monkeypatch.setattr(writer_module._ParquetRows, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        _build(tmp_path / "out", size=4, train=5, test=1, overwrite=True)
    assert _files(tmp_path / "out") == before  # the previous dataset is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("kwargs, message", [
    ({"train": 0}, "train must be >= 1, got 0"),
    ({"train": 2.5}, "train must be an int, got 2.5"),
    ({"test": -1}, "test must be >= 0, got -1"),
    ({"augment": -2}, "augment must be >= 0, got -2"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"shard": (2, 2)}, "shard must be (i, n) with 0 <= i < n, got (2, 2)"),
    ({"shard": (0, 0)}, "shard must be (i, n) with 0 <= i < n, got (0, 0)"),
    ({"shard": "0/2"}, "shard must be (i, n) with 0 <= i < n, got '0/2'"),
    ({"size": 7}, "size must be one of [4, 6, 9, 16], got 7"),
    ({"difficulty": "nightmare"}, "difficulty must be one of"),
    ({"size": 4, "difficulty": "extreme"}, "difficulty 'extreme' is not available for size 4"),
])
def test_build_sudoku_dataset__bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _build(tmp_path / "out", **{"size": 4, "train": 2, "test": 1, **kwargs})
    assert not (tmp_path / "out").exists()


def test_redraws__give_up_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "MAX_REDRAWS", 0)
    with pytest.raises(TracegymError, match=r"train item \d+: 0 redraws all resemble a test"):
        _build(tmp_path / "out", **FOUR)


def test_parse_shard__text():
    assert parse_shard("2/5") == (2, 5) and parse_shard(" 0 / 1 ") == (0, 1)
    for bad in ("1/1", "a/b", "3", "-1/2", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"got {bad!r}")):
            parse_shard(bad)


def test_main__builds_and_prints_one_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli"
    args = parser.parse_args(["--out", str(out), "--size", "4", "--train", "4", "--test", "2",
                              "--augment", "1", "--shard", "1/2", "--no-progress"])
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out}: train 2 puzzles x 2 = 4 "
                                                   f"examples, test 1 puzzles")
    assert all(action.help for action in parser._actions)
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", str(out), "--shard", "2/2"])
    assert "shard must look like i/n" in capsys.readouterr().err


def test_write_dataset__rejects_inconsistent_arrays(tmp_path):
    inputs = np.ones((2, 4), dtype=np.uint8)
    split = SplitData(inputs, inputs, np.zeros(2, np.int32), np.arange(3), np.array([0, 2]))
    meta = split.metadata(vocab_size=3)
    assert (meta.total_puzzles, meta.total_groups, meta.seq_len) == (2, 1, 4)
    bad = [
        (SplitData(inputs.astype(np.int64), inputs, *(split.puzzle_identifiers,
                   split.puzzle_indices, split.group_indices)), meta, "inputs: expected a 2-D "
         "uint8 array"),
        (SplitData(inputs, inputs, split.puzzle_identifiers, np.array([0, 1, 1]),
                   split.group_indices), meta, "puzzle_indices: must start at 0 and end at 2"),
        (split, split.metadata(vocab_size=1), "inputs: token id 1 >= vocab_size 1"),
        (SplitData(inputs, inputs, split.puzzle_identifiers, split.puzzle_indices,
                   np.array([0, 1, 2])), meta, "metadata['train'].total_groups: 1 != 2"),
        (SplitData(inputs, inputs, split.puzzle_identifiers, split.puzzle_indices,
                   split.group_indices, {"item": [1]}), meta, "columns['item']: 1 values for 2"),
    ]
    for data, metadata, message in bad:
        with pytest.raises(ValueError, match=re.escape(message)):
            write_dataset(tmp_path / "out", {"train": data}, {"train": metadata})
    assert list(tmp_path.iterdir()) == []


def test_datasets_package__imports_neither_torch_nor_pyarrow(tmp_path):
    code = ("import sys, tracegym.datasets as d; assert 'torch' not in sys.modules; "
            "assert 'pyarrow' not in sys.modules; d.write_dataset; "
            "assert 'torch' not in sys.modules; print(sorted(d.__all__))")
    # cwd outside the clone: `python -c` puts the cwd first on sys.path, and the source tree's
    # tracegym/ folder is not the installed package
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "PuzzleDataset" in out and "write_dataset" in out


def test_build_sudoku_dataset__text_columns_made_by_blocks_are_the_same_bytes(tmp_path,
                                                                             monkeypatch):
    # the texts are made a block at a time to bound their temporaries: same files either way
    build_sudoku_dataset(tmp_path / "whole", size=4, train=40, test=5, augment=1, seed=9,
                         progress=False)
    monkeypatch.setattr(common, "TEXT_ROWS", 7)
    build_sudoku_dataset(tmp_path / "blocks", size=4, train=40, test=5, augment=1, seed=9,
                         progress=False)
    assert _files(tmp_path / "blocks") == _files(tmp_path / "whole")


def test_build_sudoku_dataset__streamed_in_small_chunks_the_same_bytes(tmp_path, monkeypatch):
    # the train split is written a chunk at a time; where chunks fall, across row groups too,
    # is no part of the output
    monkeypatch.setattr(writer_module, "PARQUET_ROWS", 7)
    build_sudoku_dataset(tmp_path / "one", size=4, train=50, test=5, augment=2, seed=4,
                         progress=False)
    monkeypatch.setattr(common, "CHUNK", 3)
    monkeypatch.setattr(common, "MAX_CHUNK", 6)
    build_sudoku_dataset(tmp_path / "many", size=4, train=50, test=5, augment=2, seed=4,
                         progress=False)
    assert _files(tmp_path / "many") == _files(tmp_path / "one")
    assert pq.ParquetFile(tmp_path / "many" / "train" / "all.parquet").num_row_groups == 22
