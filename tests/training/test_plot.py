"""training/plot.py draws without pyplot: the caller's matplotlib backend is left alone."""

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("matplotlib")


def test_plot_run__leaves_the_callers_backend_and_no_open_figure(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [{"split": "train", "step": s, "loss": 1.0 / s, "exact_acc": s / 10}
               for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")
        import matplotlib.pyplot as plt
        from tracegym.training.plot import plot_run
        path = plot_run({str(run)!r})
        print(matplotlib.get_backend(), len(plt.get_fignums()), path.read_bytes()[:4])
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["svg", "0", repr(b"\x89PNG")]
