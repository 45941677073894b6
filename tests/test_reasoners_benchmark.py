"""benchmarks/reasoners.py: the grid's pairs and model keys, a quick grid gives both views per
cell with the figures, --resume adds only missing cells, bad names are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reasoners.py"


@pytest.fixture(scope="module")
def table(benchmark_script):
    return benchmark_script("reasoners")


def test_reasoners__grid_pairs_and_model_keys(table):
    pairs = list(table.pairs())
    assert len(pairs) == 29 and ("autoregressive", "mlp_mixer") not in pairs
    assert table.model_config("trm", "hybrid")["pattern"] == "GA"  # attention is in it
    assert table.model_config("trm", "qwen3_next")["depth"] == 4  # the whole "GGGA"
    hrm = table.model_config("hrm", "qwen3_next")
    assert hrm["H_layers"] == hrm["L_layers"] == 4
    hrm = table.model_config("hrm", "hybrid")  # one-layer modules would cut "GA" to "G"
    assert hrm["H_layers"] == hrm["L_layers"] == 2 and hrm["pattern"] == "GA"
    assert table.model_config("trm", "transformer")["depth"] == 2


def test_reasoners__maze_floor_marks_every_open_cell_as_path(table):
    import torch

    maze = torch.tensor([[1, 3, 2, 2, 1, 2, 4, 1]])  # wall, start, open x2, wall, open, goal
    assert table.open_as_path(maze).tolist() == [[1, 3, 5, 5, 1, 5, 4, 1]]
    assert table.copy_input(maze) is maze
    floor = table.Floor(table.open_as_path, seq_len=8)
    assert floor.task.seq_len == 8 and floor.eval() is floor and floor.train() is floor
    assert table.TASKS["maze11"].floors == (table.open_as_path,)


def test_reasoners__summary_marks_a_view_a_seed_did_not_reach(table):
    point = {"step": 10, "env_solve_rate": 0.5, "test_exact_acc": 0.4}
    rows = [{"task": "sudoku6", "reasoner": "trm", "backbone": "qwen3_next", "seed": seed,
             "equal_time": point, **({"equal_steps": point} if seed == 0 else {})}
            for seed in (1, 0)]
    cell = table.summary(rows)["sudoku6/trm/qwen3_next"]
    assert cell["seeds"] == [0, 1] and cell["equal_time_mean"] == 0.5
    assert cell["equal_steps"] == [0.5, None] and cell["equal_steps_mean"] is None


@pytest.mark.slow  # trains real cells: tens of seconds
def test_reasoners__quick_grid_then_resume_adds_the_missing_cells(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--tasks", "sudoku6", "--reasoners",
           "feedforward,trm", "--backbones", "mlp_mixer,hybrid", "--out", str(out),
           "--max-busy", "2.5", "--cells", "sudoku6/trm/mlp_mixer,sudoku6/feedforward/h*"]
    done = subprocess.run(cmd + ["--seeds", "0"], capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    first = json.loads(out.read_text())["rows"]
    assert sorted((r["reasoner"], r["backbone"], r["seed"]) for r in first) == [
        ("feedforward", "hybrid", 0), ("trm", "mlp_mixer", 0)]
    again = subprocess.run(cmd + ["--seeds", "0,1", "--resume", "--markdown"],
                           capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert rows[:2] == first  # kept as they were; only seed 1 ran
    assert sorted((r["reasoner"], r["seed"]) for r in rows[2:]) == [("feedforward", 1),
                                                                      ("trm", 1)]
    for row in rows:
        steps, timed = row["equal_steps"], row["equal_time"]
        assert steps["step"] == 4  # both legs end at --steps or later
        assert timed["wall_s"] >= 1.9 or timed["step"] >= 4  # the clock counts training only
        assert 0 <= timed["env_solve_rate"] <= 1 and 0 <= timed["test_exact_acc"] <= 1
        assert row["parameters"] > 0 and steps["examples_drawn"] == 128 * steps["step"]
        # the curve holds the train log's lines (every 10 steps): a slow quick cell has none
        assert steps["cpu_s"] > 0 and row["load_before"] and isinstance(row["curve"], list)
        assert row["model"]["pattern" if row["backbone"] == "hybrid" else "dim"]
    assert set(result["summary"]) == {"sudoku6/feedforward/hybrid", "sudoku6/trm/mlp_mixer"}
    assert result["summary"]["sudoku6/trm/mlp_mixer"]["seeds"] == [0, 1]
    for name in ("reasoners_heatmap.png", "reasoners_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "| trm | mlp_mixer |" in again.stdout
    assert "| equal steps, 4: env % (seeds; steps) |" in again.stdout
    # the floor: a Sudoku's input is never its solution; its givens are some of its tokens
    floor = result["floors"]["sudoku6"]["copy_input"]
    assert floor["test_exact_acc"] == floor["env_solve_rate"] == 0.0
    assert 0.2 < floor["test_token_acc"] < 0.8
    assert "Floors (test exact / test tokens / env %): copy input: 0.0 / " in again.stdout
    assert all(row["cell_s"] >= row["equal_steps"]["wall_s"] for row in rows)
    # a resumed file keeps one budget
    other = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--resume"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert other.returncode == 2
    assert "--resume: " in other.stderr and "--seconds 2, not 45" in other.stderr


@pytest.mark.parametrize("args, message", [
    (["--tasks", "sudoku7"], "--tasks: unknown ['sudoku7']"),
    (["--backbones", "lstm"], "--backbones: unknown ['lstm']"),
    (["--seeds", "0,x"], "--seeds: expected comma-separated integers"),
    (["--seconds", "0"], "--seconds: must be positive"),
    (["--seconds", "60", "--max-seconds", "30"], "--max-seconds: must be at least"),
])
def test_reasoners__bad_arguments_are_refused(args, message):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and message in proc.stderr


def test_train_speed__shares_the_grid_s_model_keys_at_its_own_width(table, benchmark_script):
    speed = benchmark_script("train_speed")
    for reasoner, backbone in table.pairs():
        model = speed.model_config(reasoner, backbone)
        expected = table.model_config(reasoner, backbone)
        assert {k: v for k, v in model.items() if k not in speed.WIDTH} == \
            {k: v for k, v in expected.items() if k not in table.COMMON}
        assert {k: model[k] for k in speed.WIDTH} == speed.WIDTH
