"""End to end on CPU: the README's tiny-TRM recipe solves >= 95% of 4x4 Sudoku env episodes,
and its 6x6 twin passes 95% too.

The recipes are the ones written at the top of configs/trm-sudoku4-cpu.yaml and
configs/trm-sudoku6-cpu.yaml (README shows the same commands); these tests run those commands
through the CLI (the 6x6 one cut to the 500 steps after which README says it passes 95%).
"""

import json
import shlex
from pathlib import Path

import pytest

from tracegym.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "trm-sudoku4-cpu.yaml"
CONFIG_6X6 = ROOT / "configs" / "trm-sudoku6-cpu.yaml"


def recipe_commands(config: Path = CONFIG) -> list[list[str]]:
    """The ``tracegym ...`` commands in the config's header comment, continuation lines joined."""
    commands, current = [], ""
    for line in config.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("tracegym ") or current:
            current += text.removesuffix("\\").strip() + " "
            if not text.endswith("\\"):
                commands.append(shlex.split(current)[1:])
                current = ""
    return commands


def test_recipe__header_holds_data_train_and_eval_commands():
    commands = recipe_commands()
    assert [c[0] for c in commands] == ["data", "train", "eval"]
    assert commands[1][:3] == ["train", "--config", "configs/trm-sudoku4-cpu.yaml"]
    # the env episodes are drawn like the data: same size and difficulty
    data, evaluate = commands[0], commands[2]
    size = data[data.index("--size") + 1]
    difficulty = data[data.index("--difficulty") + 1]
    assert f"size={size}" in evaluate and f"difficulty={difficulty}" in evaluate
    assert evaluate[evaluate.index("--episodes") + 1] == "500"


@pytest.mark.slow
def test_recipe__tiny_trm_solves_95_percent_of_4x4_episodes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    data, train, evaluate = recipe_commands()
    assert main(data) == 0
    assert main(train) == 0
    capsys.readouterr()
    assert main(evaluate) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 500
    assert result["solve_rate"] >= 0.95, result


def test_recipe_6x6__header_holds_data_train_eval_and_plot_commands():
    data, train, evaluate, plot = recipe_commands(CONFIG_6X6)
    assert train[:3] == ["train", "--config", "configs/trm-sudoku6-cpu.yaml"]
    assert data[data.index("--size") + 1] == "6" and "size=6" in evaluate
    assert data[data.index("--test") + 1] == "1000"  # README's fixed test split
    assert plot[0] == "plot"


@pytest.mark.slow
def test_recipe_6x6__trm_passes_95_percent_after_500_steps(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    data, train, evaluate, _ = recipe_commands(CONFIG_6X6)
    assert main(data + ["--no-progress"]) == 0
    assert main(train + ["max_steps=500", "eval_every=0", "progress=false"]) == 0
    capsys.readouterr()
    assert main(evaluate) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 500
    assert result["solve_rate"] >= 0.95, result
