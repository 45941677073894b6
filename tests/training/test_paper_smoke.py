"""Each paper config (configs/*.yaml with a smoke: section) trains end to end through
`tracegym train --config FILE --smoke` on a small dataset of its task: 50 optimizer steps on CPU
with the paper's recipe (optimizer, sampler, ACT carry, sparse puzzle embeddings, EMA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracegym.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER = sorted(p for p in CONFIGS.glob("*.yaml") if "\nsmoke:" in p.read_text())

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One small dataset per task, built on first use."""
    root = tmp_path_factory.mktemp("smoke-data")
    built = {}

    def get(task: str) -> Path:
        if task not in built:
            out = root / task
            if task == "sudoku":
                from tracegym.datasets.sudoku import build_sudoku_dataset

                build_sudoku_dataset(out, size=9, difficulty="easy", train=24, test=8, augment=1,
                                     progress=False)
            elif task == "maze":
                from tracegym.datasets.maze import build_maze_dataset

                build_maze_dataset(out, size=11, train=24, test=8, augment=1, progress=False)
            else:
                from tracegym.datasets.arc import build_arc_dataset

                build_arc_dataset(out, arc_set="procedural", tasks=(6, 2), augment=2,
                                  progress=False)
            built[task] = out
        return built[task]

    return get


def test_every_paper_config_has_a_smoke_set():
    assert len(PAPER) == 7


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_config_smoke_run_trains_50_steps(path, datasets, tmp_path, capsys):
    from tracegym.training.config import load_config

    task = load_config(path).task
    out = tmp_path / "run"
    code = main(["train", "--config", str(path), "--smoke", "--data", str(datasets(task)),
                 "--out", str(out), "progress=false"])
    assert code in (0, None), capsys.readouterr().err
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train"]
    assert train[-1]["step"] == 50 and train[-1]["active"] == 1.0  # the carry: every slot live
    assert all(r["examples_per_s"] >= 0 for r in train)
    assert any(r["split"] == "eval" for r in records)
