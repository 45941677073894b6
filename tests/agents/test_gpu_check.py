"""benchmarks/gpu_check.sh and its module benchmarks/gpu_check.py: the CPU-only parts (the GPU
parts need CUDA; the script skips them cleanly without it)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gpu_check(benchmark_script):
    return benchmark_script("gpu_check")


def test_gpu_check__ops_on_cpu_compare_the_chunked_form_with_the_loop(gpu_check):
    result = gpu_check.check_ops(torch.device("cpu"), [40], repeats=1)
    assert [(r["op"], r["T"], r["against"]) for r in result["rows"]] == [
        ("gated_deltanet", 40, "recurrent"), ("kda", 40, "recurrent")]
    for row in result["rows"]:
        # float32, outputs and states of order 1: the forms agree to rounding
        assert max(row["max_abs_diff"].values()) < 1e-4, row
        assert row["max_abs_ref"]["o"] > 0.01 and row["chunk_s"] > 0 and row["recurrent_s"] > 0


def test_gpu_check__trm_rate_quick_trains_the_paper_model_shape(gpu_check):
    result = gpu_check.trm_rate(torch.device("cpu"), steps=2, warmup=1, compile_=False,
                                amp=False, quick=True)
    assert result["steps_per_s"] > 0 and math.isfinite(result["final_loss"])
    # the paper config's layout survives the shrink: mlp_t, a 16-token puzzle prefix
    assert result["config"]["backbone"] == "mlp_mixer"
    assert result["config"]["puzzle_emb_len"] == 16 and result["batch_size"] == 8


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip without CUDA")
def test_gpu_check_sh__without_cuda_skips_cleanly(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device here: skipping" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_gpu_check_sh__unknown_argument_exits_2(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "unknown argument --bogus" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_sh__cpu_only_writes_every_output(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu-only", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cpu_only"] is True
    assert set(summary["seconds"]) == {"ops", "trm_rate", "data", "train", "plot"}
    assert all(max(r["max_abs_diff"].values()) < 1e-4 for r in summary["ops"])
    assert summary["trm_rate"]["steps_per_s"] > 0
    assert summary["train"]["steps"] == 6 and summary["train"]["eval"]["examples"] == 8
    assert (out / "run" / "curves.png").stat().st_size > 0
