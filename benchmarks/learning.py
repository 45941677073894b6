"""Learning on a CPU: the CPU recipes of configs/, trained by ``tracegym train`` as a user runs
them, scored on the fixed test split and in the environment, with their learning curves.

Experiments (``--runs``, in this order by default):

* ``sudoku6``: TRM with TRM's MLP-t network (configs/trm-sudoku6-cpu.yaml) on 20,000 6x6
  minimal ("hard") puzzles, 1,000 fixed test puzzles; then feedforward, HRM and masked diffusion
  on the same backbone, width, data and wall-clock budget (TRM's training seconds, its evals
  included), each at the table's settings of its own keys (benchmarks/reasoners.py) and a
  constant learning rate after warm-up (a budget in seconds has no step count to decay over).
* ``attention4``: TRM on the attention backbone (configs/trm-att-sudoku4-cpu.yaml), 4x4 minimal
  puzzles (5,000 and 7 augmented copies of each), 200 fixed test puzzles: can attention learn
  the grid in 10 minutes of CPU.
* ``attention4-ablations``: why attention is slow to learn the 4x4 grid, at equal steps (2,400
  each, an eval every 200): the attention recipe as it is, then one change at a time (the mixer
  recipe's 2,000 puzzles; 5,000 without augmentation; warm-up 20; lr 1e-3; pre-norm blocks;
  TRM's weight decay 1.0).
* ``sudoku9-medium`` and ``sudoku9-hard``: TRM on 9x9 (configs/trm-sudoku9-cpu.yaml), 100,000
  train and 1,000 test puzzles, for ``--minutes-9x9`` minutes each (60 by default): the best
  test exact rate reached is the figure.

Each run is a subprocess ``python -m tracegym train --config FILE --data DIR --out DIR
[overrides]`` and then ``python -m tracegym eval`` in the env (answer mode, ``--episodes``
fresh episodes). A row holds the command, wall seconds, steps, examples seen, parameters, the
eval curve (step, elapsed seconds, exact, token accuracy), the final and best test exact rates,
the env solve rate and the load average before and after. The machine should be idle: the
script warns on stderr when more than 0.2 CPUs' worth of other work runs in the 2 seconds before
a run (/proc/stat), and the rows keep that figure and the load averages.

Writes ``--out`` (JSON, default benchmarks/results_learning.json; ``--resume`` keeps the rows
already there and runs only the missing ones) and one PNG of curves per experiment beside it
(``learning_<experiment>.png``: test exact rate against wall seconds and against steps).

    python benchmarks/learning.py [--runs sudoku6,attention4] [--episodes 500] [--resume]
        [--work DIR] [--minutes-9x9 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
DEFAULT_OUT = ROOT / "benchmarks" / "results_learning.json"
sys.path.insert(0, str(ROOT / "benchmarks"))
from reasoners import MODEL, busy_cpus, load_average  # noqa: E402  (the table's settings)

# the other reasoners' own keys at the comparison table's settings; the backbone keys (dim,
# depth, heads, multiple_of) come from the TRM config they are compared with
OWN_KEYS = {name: {k: v for k, v in MODEL[name].items() if k != "depth"}
            for name in ("feedforward", "hrm", "diffusion")}
TRM_KEYS = ("H_cycles", "L_cycles", "N_sup", "halt_exploration_prob", "depth")
HELD_OUT_SEED = 1_000_000  # env episodes far from the dataset's seeds
IDLE_BUSY = 0.2  # CPUs' worth of other work above which a run is flagged


def data_spec(size: int, difficulty: str, train: int, test: int, augment: int = 0) -> dict:
    return {"size": size, "difficulty": difficulty, "train": train, "test": test,
            "augment": augment}


class Run(NamedTuple):
    name: str
    config: str  # a file in configs/
    reasoner: str | None = None  # None: the config's own (TRM); else derived_config's
    budget: str | float | None = None  # None: the config's steps; "trm": the experiment's TRM
    # run's wall seconds; "9x9": --minutes-9x9; a number: that many seconds
    overrides: tuple[str, ...] = ()  # key=value for `tracegym train`
    data: dict | None = None  # None: the experiment's data


ATTENTION_STEPS = ("max_steps=2400", "eval_every=200")
# experiment -> (data, runs)
EXPERIMENTS = {
    "sudoku6": (data_spec(6, "hard", 20_000, 1_000),
                [Run("trm", "trm-sudoku6-cpu.yaml")]
                + [Run(name, "trm-sudoku6-cpu.yaml", name, "trm") for name in OWN_KEYS]),
    "attention4": (data_spec(4, "hard", 5_000, 200, augment=7),
                   [Run("trm-attention", "trm-att-sudoku4-cpu.yaml")]),
    "attention4-ablations": (data_spec(4, "hard", 5_000, 200, augment=7), [
        Run("as-is", "trm-att-sudoku4-cpu.yaml", overrides=ATTENTION_STEPS),
        Run("2000-puzzles", "trm-att-sudoku4-cpu.yaml", overrides=ATTENTION_STEPS,
            data=data_spec(4, "hard", 2_000, 200)),
        Run("no-augment", "trm-att-sudoku4-cpu.yaml", overrides=ATTENTION_STEPS,
            data=data_spec(4, "hard", 5_000, 200)),
        Run("warmup-20", "trm-att-sudoku4-cpu.yaml",
            overrides=(*ATTENTION_STEPS, "warmup_steps=20")),
        Run("lr-1e-3", "trm-att-sudoku4-cpu.yaml", overrides=(*ATTENTION_STEPS, "lr=1e-3")),
        Run("pre-norm", "trm-att-sudoku4-cpu.yaml",
            overrides=(*ATTENTION_STEPS, "model.norm=pre")),
        Run("weight-decay-1", "trm-att-sudoku4-cpu.yaml",
            overrides=(*ATTENTION_STEPS, "weight_decay=1.0")),
    ]),
    "sudoku9-medium": (data_spec(9, "medium", 100_000, 1_000),
                       [Run("trm", "trm-sudoku9-cpu.yaml", budget="9x9")]),
    "sudoku9-hard": (data_spec(9, "hard", 100_000, 1_000),
                     [Run("trm", "trm-sudoku9-cpu.yaml", budget="9x9")]),
}


def data_folder(work: Path, spec: dict) -> Path:
    return work / "data" / (f"sudoku{spec['size']}-{spec['difficulty']}"
                            f"-{spec['train']}x{spec['augment'] + 1}")


def tracegym(*args: str) -> tuple[list[str], str]:
    """Run ``python -m tracegym ARGS`` from the repository root; returns (command, stdout)."""
    cmd = [sys.executable, "-m", "tracegym", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return cmd, done.stdout


def build_data(spec: dict, out: Path) -> None:
    if (out / "test").is_dir():
        return
    tracegym("data", "sudoku", "--size", str(spec["size"]), "--difficulty", spec["difficulty"],
             "--train", str(spec["train"]), "--test", str(spec["test"]),
             "--augment", str(spec["augment"]), "--out", str(out), "--no-progress")


def derived_config(reasoner: str, config: Path, work: Path, name: str) -> Path:
    """The TRM config file turned into ``reasoner`` with the same backbone, written to WORK:
    TRM's own model keys dropped, the reasoner's set, a constant lr after warm-up and no step
    limit (the time budget ends the run)."""
    import yaml

    cfg = yaml.safe_load(config.read_text())
    model = {k: v for k, v in cfg["model"].items() if k not in TRM_KEYS}
    model.update(OWN_KEYS[reasoner])
    if reasoner != "hrm":  # HRM sizes its modules by H_layers / L_layers
        model["depth"] = cfg["model"].get("depth", 2)
    cfg.update(reasoner=reasoner, model=model, min_lr_ratio=1.0, max_steps=1_000_000)
    path = work / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def curve(run_dir: Path) -> tuple[list[dict], dict]:
    """The eval records of a run (step, elapsed_s, exact, token accuracy) and its last train
    record."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    evals = [{k: r.get(k) for k in ("step", "elapsed_s", "exact_acc", "token_acc")}
             for r in records if r.get("split") == "eval"]
    train = [r for r in records if r.get("split") == "train"]
    return evals, (train[-1] if train else {})


def parameters(run_dir: Path) -> int:
    from tracegym.training.checkpoint import Checkpoint

    return sum(t.numel() for t in Checkpoint(run_dir).section("model").values())


def run_one(experiment: str, run: Run, budget_s: float | None, data: Path, env_options: dict,
            episodes: int, work: Path, quick: bool) -> dict:
    name, reasoner = run.name, run.reasoner
    run_dir = work / "runs" / f"{experiment}-{name}"
    config = CONFIGS / run.config
    if reasoner is not None:
        config = derived_config(reasoner, config, work, f"{experiment}-{name}")
    shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    args = ["train", "--config", str(shown), "--data", str(data), "--out", str(run_dir),
            "--overwrite", "progress=false", *run.overrides]
    if budget_s is not None:
        args.append(f"time_budget_s={budget_s:.1f}")
    if quick:
        args += ["max_steps=40", "eval_every=20", "eval_examples=64"]
    load_before, busy = load_average(), busy_cpus()
    if busy is not None and busy > IDLE_BUSY:
        print(f"learning: {busy} CPUs busy before {experiment}/{name}: the machine is not idle, "
              "the figures will be low", file=sys.stderr)
    start = time.perf_counter()
    cmd, out = tracegym(*args)
    wall_s = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    evals, last_train = curve(run_dir)
    _, env_out = tracegym("eval", "--checkpoint", str(run_dir), "--env", "tracegym/Sudoku-v0",
                          "--episodes", str(8 if quick else episodes),
                          "--seed", str(HELD_OUT_SEED),
                          *[f"{k}={v}" for k, v in env_options.items()])
    env = json.loads(env_out.strip().splitlines()[-1])
    exacts = [e["exact_acc"] for e in evals if e["exact_acc"] is not None]
    return {"experiment": experiment, "run": name, "reasoner": reasoner or "trm",
            "command": shlex.join(["tracegym", *args]).replace(str(work), "WORK"),
            "overrides": list(run.overrides), "data": run.data,
            "config": None if reasoner is None else yaml_text(config),
            "train_wall_s": round(wall_s, 1), "train_s": result.get("seconds"),
            "steps": result.get("step"), "stopped_by": result.get("stopped_by"),
            "epochs_seen": last_train.get("epoch"), "parameters": parameters(run_dir),
            "test_exact_acc": result.get("exact_acc"), "test_examples": result.get("examples"),
            "best_test_exact_acc": max(exacts) if exacts else None,
            "env_solve_rate": env["solve_rate"], "env_episodes": env["episodes"],
            "curve": evals, "busy_cpus_before": busy, "load_before": load_before,
            "load_after": load_average()}


def yaml_text(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def plot(rows: list[dict], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    by_time, by_step = fig.subplots(1, 2)
    for row in rows:
        points = [p for p in row["curve"] if p["exact_acc"] is not None]
        label = f"{row['run']} ({100 * row['test_exact_acc']:.1f}%)"
        by_time.plot([p["elapsed_s"] / 60 for p in points], [p["exact_acc"] for p in points],
                     marker="o", markersize=3, label=label)
        by_step.plot([p["step"] for p in points], [p["exact_acc"] for p in points],
                     marker="o", markersize=3, label=label)
    by_time.set(xlabel="wall minutes (2-core CPU)", ylabel="test exact rate", ylim=(0, 1.02))
    by_step.set(xlabel="optimizer step", ylim=(0, 1.02))
    for ax in (by_time, by_step):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(EXPERIMENTS),
                        help=f"comma-separated experiments ({', '.join(EXPERIMENTS)})")
    parser.add_argument("--episodes", type=int, default=500, help="env episodes per run")
    parser.add_argument("--minutes-9x9", type=float, default=60.0,
                        help="training minutes of each 9x9 run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and run only the missing ones")
    parser.add_argument("--work", type=Path, default=None,
                        help="datasets and run folders (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true",
                        help="40 steps per run, 8 episodes: checks the script, not learning")
    args = parser.parse_args()
    experiments = args.runs.split(",")
    unknown = sorted(set(experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown --runs {unknown}; choose from {', '.join(EXPERIMENTS)}")
    rows = []
    if args.resume and args.out.is_file():
        rows = json.loads(args.out.read_text())["runs"]
    done = {(r["experiment"], r["run"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for experiment in experiments:
            spec, runs = EXPERIMENTS[experiment]
            env_options = {"size": spec["size"], "difficulty": spec["difficulty"]}
            for run in runs:
                if (experiment, run.name) in done:
                    continue
                data = data_folder(work, run.data or spec)
                build_data(run.data or spec, data)
                budget_s = {None: None, "9x9": 60 * args.minutes_9x9}.get(run.budget, run.budget)
                if run.budget == "trm":
                    trm = [r for r in rows if (r["experiment"], r["run"]) == (experiment, "trm")]
                    budget_s = trm[0]["train_s"]
                row = run_one(experiment, run, budget_s, data, env_options, args.episodes, work,
                              args.quick)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "curve"}),
                      file=sys.stderr, flush=True)
                save(args.out, rows)
            plot([r for r in rows if r["experiment"] == experiment],
                 args.out.parent / f"learning_{experiment}.png",
                 f"{experiment}: test exact rate ({spec['size']}x{spec['size']} "
                 f"{spec['difficulty']}, {spec['test']} fixed test puzzles)")
    print(json.dumps(json.loads(args.out.read_text()), indent=1))


def save(path: Path, rows: list[dict]) -> None:
    from tracegym.io import atomic_path

    result = {"benchmark": "learning",
              "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "torch": torch.__version__, "platform": platform.platform()},
              "runs": rows}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
