"""benchmarks/learning.py: a quick run writes rows with curves and a PNG, --resume runs only what
is missing, and the compared reasoners keep TRM's backbone but not TRM's own keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "learning.py"


@pytest.fixture(scope="module")
def learning(benchmark_script):
    return benchmark_script("learning")


def test_learning__derived_configs_keep_the_backbone_and_drop_trms_keys(learning, tmp_path):
    trm = yaml.safe_load((ROOT / "configs" / "trm-sudoku6-cpu.yaml").read_text())
    for reasoner in ("feedforward", "hrm", "diffusion"):
        path = learning.derived_config(reasoner, ROOT / "configs" / "trm-sudoku6-cpu.yaml",
                                       tmp_path, reasoner)
        cfg = yaml.safe_load(path.read_text())
        assert cfg["reasoner"] == reasoner and cfg["backbone"] == trm["backbone"]
        assert cfg["model"]["dim"] == trm["model"]["dim"]
        assert not {"N_sup", "H_cycles"} & set(cfg["model"]) or reasoner == "hrm"
        assert cfg["min_lr_ratio"] == 1.0  # a time budget has no step count to decay over
        # the derived file is a valid training config
        from tracegym.training.config import load_config
        load_config(path).validate()


def test_learning__attention_ablations_change_one_thing_each(learning):
    from tracegym.training.config import apply_overrides, load_config

    spec, runs = learning.EXPERIMENTS["attention4-ablations"]
    base, *variants = runs
    assert base.name == "as-is" and base.data is None
    assert spec == learning.EXPERIMENTS["attention4"][0]  # the recipe's own data
    for run in variants:
        assert run.config == base.config
        changed = [o for o in run.overrides if o not in base.overrides]
        assert len(changed) + (run.data is not None) == 1, run
        cfg = apply_overrides(load_config(ROOT / "configs" / run.config), list(run.overrides))
        cfg.validate()  # every override names a real field with a valid value
        assert cfg.max_steps == 2400


@pytest.mark.slow  # trains real cells: tens of seconds
def test_learning__quick_run_then_resume(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--runs", "attention4", "--out", str(out),
           "--work", str(tmp_path / "work")]
    subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    rows = json.loads(out.read_text())["runs"]
    assert [(r["experiment"], r["run"]) for r in rows] == [("attention4", "trm-attention")]
    row = rows[0]
    assert row["steps"] == 40 and row["parameters"] > 0 and len(row["load_before"]) == 3
    assert [p["step"] for p in row["curve"]] == [20, 40]
    assert all(p["elapsed_s"] > 0 for p in row["curve"])
    assert 0 <= row["env_solve_rate"] <= 1 and row["env_episodes"] == 8
    assert row["command"].startswith("tracegym train --config configs/trm-att-sudoku4-cpu.yaml")
    assert (tmp_path / "learning_attention4.png").stat().st_size > 1000
    # --resume: the row is kept as it is, nothing is trained again
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600,
                           check=True)
    assert json.loads(out.read_text())["runs"] == rows
    assert "trm-attention" not in again.stderr


def test_learning__unknown_run_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--runs", "sudoku7"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "sudoku7" in proc.stderr
