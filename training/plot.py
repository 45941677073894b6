"""``tracegym plot RUN_DIR``: loss and accuracy curves of a run's metrics.jsonl, as one PNG."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from tracegym.errors import TracegymError
from tracegym.io import atomic_path

from .rundir import check_writable_dir, os_error


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``RUN_DIR/metrics.jsonl`` (one JSON object per line)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"plot: no metrics file {str(path)!r}")
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TracegymError(f"plot: {path}: line {i} is not JSON ({err.msg})") from err
    return records


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw train loss (left) and train/eval exact accuracy (right); returns the PNG's path
    (default ``RUN_DIR/curves.png``)."""
    # a Figure without pyplot: no backend is chosen or switched for the caller (a notebook's
    # inline backend stays), and no global figure is left open
    from matplotlib.figure import Figure

    records = read_metrics(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "curves.png"
    _check_output(path)  # before drawing
    train = [r for r in records if r.get("split") == "train"]
    evals = [r for r in records if r.get("split") == "eval"]
    if not train and not evals:
        raise TracegymError(f"plot: {run_dir}: metrics.jsonl has no train or eval records")
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r.get("loss", float("nan")) for r in train], label="train loss")
        for key in ("exact_acc", "token_acc"):
            if any(key in r for r in train):
                ax_acc.plot(steps, [r.get(key, float("nan")) for r in train],
                            label=f"train {key}", alpha=0.6)
    for key in ("exact_acc", "token_acc"):
        if any(key in r for r in evals):
            ax_acc.plot([r["step"] for r in evals], [r.get(key, float("nan")) for r in evals],
                        marker="o", label=f"eval {key}")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")  # the temporary name has no .png suffix
    except OSError as err:  # name the user's file, not the temporary one
        raise os_error(type(err), err.errno, f"plot: cannot write {str(path)!r}: "
                        f"{err.strerror or err}") from None
    return path


def _check_output(path: Path) -> None:
    """Raise an OSError naming ``path`` unless a PNG can be written there (its folder is made
    if missing; a probe file is written and removed, as permission bits miss /sys and /proc)."""
    if path.is_dir():
        raise os_error(IsADirectoryError, errno.EISDIR,
                        f"plot: --out {str(path)!r} is a directory; give a .png file name")
    try:
        check_writable_dir(path.parent, what="plot")
    except OSError as err:
        raise os_error(type(err), err.errno, f"plot: cannot write {str(path)!r}: "
                        f"{str(err).removeprefix('plot: ')}") from None
