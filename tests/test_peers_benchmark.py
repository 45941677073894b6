"""benchmarks/peers.py: a quick run (peers that are not installed are skipped), the JSON and
Markdown shapes, and the skip rule."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers(benchmark_script):
    return benchmark_script("peers")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_peers__quick_run_prints_one_json_with_a_figure_per_side():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--rounds", "1",
                           "--figures", "generate_medium", "tracer_bounded"],
                          capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "peers" and len(result["load_average_start"]) == 3
    gen, tracer = result["figures"]["generate_medium"], result["figures"]["tracer_bounded"]
    assert gen["tracegym"]["per_s"] > 0 and tracer["tracegym"]["per_s"] > 0
    assert len(gen["load_average_per_round"]) == 1
    for figure, side, module in (("generate_medium", "reasoning_gym", "reasoning_gym"),
                                 ("tracer_bounded", "pysnooper", "pysnooper"),
                                 ("tracer_bounded", "hunter", "hunter")):
        if _installed(module):
            res = result["figures"][figure]
            assert res[side]["per_s"] > 0 and res[f"ratio_vs_{side}"] > 0
        else:
            assert f"{figure}/{side}" in result["skipped"]
    assert "tdoku_top95" in result["skipped"]  # no --tdoku binary given


def test_peers__a_missing_peer_is_skipped_and_markdown_lists_the_rest(peers, monkeypatch):
    monkeypatch.setitem(peers.FIGURES, "generate_medium", {
        "tracegym": ("generate_tracegym_medium", None),
        "nobody": ("generate_rg_medium", "no_such_module_for_tracegym_tests")})
    result = peers.run(["generate_medium"], rounds=1, quick=True, tdoku=None)
    assert result["skipped"]["generate_medium/nobody"] == \
        "no_such_module_for_tracegym_tests is not installed"
    assert "nobody" not in result["figures"]["generate_medium"]
    table = peers.markdown(result)
    assert table.startswith("| figure |") and "generate_medium/nobody" in table


def test_peers__bad_arguments_exit_with_a_message(tmp_path):
    for argv, message in ((["--rounds", "0"], "--rounds must be >= 1, got 0"),
                          (["--tdoku", str(tmp_path / "none")], "is not an executable file")):
        proc = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and message in proc.stderr
