"""Reasoner x backbone x task: which reasoner on which backbone solves verifiable tasks, at equal
training time and at equal optimizer steps, over several seeds.

Grid. Reasoners feedforward, trm, hrm, diffusion and autoregressive (causal backbones only, so
not mlp_mixer); backbones transformer, mlp_mixer, gated_deltanet, gated_attention, hybrid with
pattern "GA" at depth 2 (one Gated DeltaNet and one gated attention layer, so attention is in
it; HRM: 2 layers in each module) and qwen3_next at its whole "GGGA" (depth 4; HRM: 4 layers in
each module). Tasks
(``--tasks``, see ``TASKS``): 6x6 minimal ("hard") Sudoku, 11x11 perfect mazes and the
procedural ARC family "gravity" on a 10x10 token canvas. Every pair has the same width (dim
64, 4 heads, SwiGLU rounded to 16) and the training recipe of the CPU configs (AdamW lr 3e-3,
batch 128, 64 on mazes, warm-up 20, then constant: a budget in seconds has no step count to
decay over).

Both views from one run. A cell (task, reasoner, backbone, seed) trains until it has done
``--steps`` optimizer steps and ``--seconds`` seconds of training, in two legs: up to whichever
limit comes first, then on to the other. After each leg the model is scored on the task's fixed
test split and in the env (``--episodes`` fresh episodes in answer mode, seeds far from the
data's), outside the training clock. So ``equal_steps`` holds every cell's scores after exactly
``--steps`` steps and ``equal_time`` after ``--seconds`` seconds, whatever the cell's speed (a
cell slower than ``--steps`` in ``--max-seconds`` stops there: its ``equal_steps`` is then
missing and the tables say so). Each row has parameters, steps, examples drawn, and wall and
CPU seconds of training (process CPU time, both threads), read after each optimizer step, so the
scoring between legs is not counted, plus the training-batch exact rate against those seconds
and the whole cell's wall seconds, scoring included (``cell_s``). The floors each task's cells
must clear are in the file too (``floors``: answer rules with nothing learnt, scored as the
cells are: every task's ``copy_input``, the mazes' ``open_as_path``).

Alone. Timing is the point of equal time: before each cell the script samples /proc/stat for 2
s and does not start while more than ``--max-busy`` CPUs' worth of other work runs (it waits up
to ``--wait`` seconds, then stops with exit code 3; the rows so far are kept). Every row has
that figure and the load averages before and after.

Files. ``--out`` (default benchmarks/results_reasoners.json) is rewritten after every cell, so
``--resume`` adds the missing cells to it (at the budget the file was run with: another
``--seconds``, ``--steps``, ``--max-seconds`` or ``--episodes`` is refused); ``--cells`` runs
a subset, as comma-separated ``task/reasoner/backbone`` patterns with ``*``
(``sudoku6/trm/*``). Beside it:
``reasoners_heatmap.png`` (mean env solve rate per pair and task, both views) and
``reasoners_curves.png`` (training-batch exact rate against seconds, the best seed of each
reasoner's best backbone per task). ``--markdown`` prints README's tables.

    python benchmarks/reasoners.py [--tasks sudoku6,maze11,arc] [--seeds 0,1] [--seconds 45]
        [--steps 150] [--max-seconds 120] [--cells 'sudoku6/trm/*'] [--resume] [--markdown]
        [--quick]
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

REASONERS = ("feedforward", "trm", "hrm", "diffusion", "autoregressive")
BACKBONES = ("transformer", "mlp_mixer", "gated_deltanet", "gated_attention", "hybrid",
             "qwen3_next")
HYBRID_PATTERN = "GA"  # depth 2 holds one attention layer (the default "GGGA" cut to 2 has none)
COMMON = {"dim": 64, "heads": 4, "multiple_of": 16}
MODEL = {  # each reasoner's own keys, as the CPU configs (configs/trm-sudoku6-cpu.yaml)
    "feedforward": {"depth": 2},
    "trm": {"depth": 2, "H_cycles": 2, "L_cycles": 2, "N_sup": 4},
    "hrm": {"H_layers": 1, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4},
    "diffusion": {"depth": 2},
    "autoregressive": {"depth": 2},
}
TRAIN = dict(batch_size=128, lr=3e-3, warmup_steps=20, min_lr_ratio=1.0, weight_decay=0.1,
             optimizer="adamw", ema=0.0, log_every=10, progress=False, device="cpu",
             amp="off", checkpoint_minutes=0, max_steps=1_000_000)
HELD_OUT_SEED = 1_000_000  # env episodes far from the dataset's seed streams
VIEWS = ("equal_steps", "equal_time")
LEG_SLACK_S = 0.5  # a second leg shorter than this is not run (its view is the first leg's)


def copy_input(inputs: torch.Tensor) -> torch.Tensor:
    """Each example answered with its own input (most of an ARC output grid is its input)."""
    return inputs


def open_as_path(inputs: torch.Tensor) -> torch.Tensor:
    """A maze answered by marking every open cell as path: right exactly when the maze's open
    cells form one corridor from start to goal."""
    from tracegym.envs.maze.board import OPEN, PATH

    return torch.where(inputs == OPEN, PATH, inputs)


@dataclass(frozen=True)
class Task:
    kind: str  # the Trainer's task
    builder: str  # "module:function" building the dataset
    options: dict  # the builder's keywords (train / test counts included)
    env_id: str
    env_options: dict = field(default_factory=dict)
    quick: dict = field(default_factory=lambda: {"train": 256, "test": 16})
    # "episodes": ``--episodes`` fresh env episodes; "test_tasks": every test pair of the
    # dataset's own evaluation tasks played once in the env, answered with their trained puzzle
    # identifiers (ARC: a fresh task's rule is only in its demonstrations, which the model does
    # not see, as in TRM)
    env_play: str = "episodes"
    train: dict = field(default_factory=dict)  # keys of TRAIN this task sets otherwise
    floors: tuple = ()  # answer rules beside copy_input that a pair must beat (see floors())


TASKS = {
    "sudoku6": Task("sudoku", "tracegym.datasets.sudoku:build_sudoku_dataset",
                    {"size": 6, "difficulty": "hard", "train": 20_000, "test": 500},
                    "tracegym/Sudoku-v0", {"size": 6, "difficulty": "hard"}),
    # 121 tokens: a step costs about 3x a 6x6 Sudoku's, so half the batch
    "maze11": Task("maze", "tracegym.datasets.maze:build_maze_dataset",
                   {"kind": "backtracker", "size": 11, "train": 10_000, "test": 500},
                   "tracegym/Maze-v0", {"size": 11, "kind": "backtracker"},
                   train={"batch_size": 64}, floors=(open_as_path,)),
    # gravity: every grid fits a 10x10 canvas (100 tokens, not TRM's 900); the rule (which way
    # cells fall) is a task's, learnt into its puzzle embedding from its demonstrations
    "arc": Task("arc", "tracegym.datasets.arc:build_arc_dataset",
                {"arc_set": "procedural/gravity", "tasks": (1_000, 100), "side": 10,
                 "augment": 0, "translate": False},
                "tracegym/ARC-v0", quick={"tasks": (24, 4)}, env_play="test_tasks"),
}


def model_config(reasoner: str, backbone: str, width: dict | None = None) -> dict:
    """The pair's model keys: the table's width (or ``width``), the reasoner's own keys, and the
    hybrid's "GA" and a recipe's pattern (qwen3_next "GGGA") at the depth that holds the whole
    pattern (HRM: each of its two modules)."""
    from tracegym.agents.backbones.config import RECIPES, min_depth_for_pattern

    model = {**(COMMON if width is None else width), **MODEL[reasoner]}
    pattern = None
    if backbone == "hybrid":
        model["pattern"] = pattern = HYBRID_PATTERN
    if backbone in RECIPES or pattern:
        for key in ("depth", "H_layers", "L_layers"):
            if key in model:
                model[key] = min_depth_for_pattern(backbone, model[key], pattern)
    return model


def pairs(reasoners=REASONERS, backbones=BACKBONES):
    for reasoner in reasoners:
        for backbone in backbones:
            if reasoner == "autoregressive" and backbone == "mlp_mixer":
                continue  # the token MLP mixes every position: no causal form
            yield reasoner, backbone


# ----------------------------------------------------------------------------- the machine

def busy_cpus(seconds: float = 2.0) -> float | None:
    """CPUs' worth of work on the machine over ``seconds`` (Linux /proc/stat; None elsewhere)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return round((os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1)), 2)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class MachineBusy(Exception):
    pass


def wait_until_idle(max_busy: float, wait_s: float) -> float | None:
    """The busy figure once it is at most ``max_busy``; MachineBusy after ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        busy = busy_cpus()
        if busy is None or busy <= max_busy:
            return busy
        if time.monotonic() >= deadline:
            raise MachineBusy(f"{busy} CPUs busy with other work for {wait_s:.0f} s")
        time.sleep(10)


# ----------------------------------------------------------------------------- one cell

class TrainClock:
    """Wall and CPU seconds of training, advanced after each optimizer step (an optimizer
    hook) by the time since the previous step, so the scoring between legs is not counted."""

    def __init__(self, optimizer):
        self.wall = self.cpu = 0.0
        self.at_step: dict[int, float] = {}  # optimizer step -> wall seconds, for the curve
        self._last = None
        optimizer.register_step_post_hook(self._after_step)

    def start_leg(self) -> None:
        self._last = (time.perf_counter(), time.process_time())

    def _after_step(self, *_) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.wall += wall - self._last[0]
        self.cpu += cpu - self._last[1]
        self._last = (wall, cpu)
        self.at_step[len(self.at_step) + 1] = self.wall


class Floor:
    """A fixed answer rule with nothing learnt, scored as the cells are: a pair below its
    task's floors has learnt nothing."""

    def __init__(self, answer, seq_len: int):
        self.answer = answer
        self.task = SimpleNamespace(seq_len=seq_len)  # what the scorers check inputs against

    def solve(self, inputs: torch.Tensor, identifiers: torch.Tensor | None = None):
        return self.answer(inputs)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


def floors(task_name: str, data: Path, episodes: int) -> dict:
    """Each of the task's floors (``copy_input`` and ``Task.floors``) on the test split and in
    the env, as the cells are scored."""
    from tracegym.training.evaluate import evaluate_split
    from tracegym.training.prepare import load_split_checked

    task = TASKS[task_name]
    seq_len = int(load_split_checked(data, "test").metadata["seq_len"])
    out = {}
    for answer in (copy_input, *task.floors):
        floor = Floor(answer, seq_len)
        test = evaluate_split(floor, data, split="test")
        out[answer.__name__] = {"test_exact_acc": test["exact_acc"],
                                "test_token_acc": test["token_acc"],
                                "env_solve_rate": env_score(floor, task, data, episodes)}
    return out


def env_score(policy, task: Task, data: Path, episodes: int) -> float:
    """The env's solve rate of ``policy`` (see ``Task.env_play``)."""
    from tracegym.training.evaluate import evaluate_in_env, load_identifiers

    policy.eval()
    try:
        if task.env_play == "test_tasks":
            from tracegym.training.arc_eval import evaluate_arc_env, load_test_puzzles

            return evaluate_arc_env(policy, task.env_id,
                                    env_options={"dataset": load_test_puzzles(data)},
                                    identifiers=load_identifiers(data / "identifiers.json"),
                                    augmentations=0, seed=HELD_OUT_SEED)["solve_rate"]
        return evaluate_in_env(policy, task.env_id, episodes=episodes, seed=HELD_OUT_SEED,
                               mode="answer", env_options=task.env_options)["solve_rate"]
    finally:
        policy.train()


def train_curve(run_dir: Path, clock: TrainClock, points: int = 40) -> list[list[float]]:
    """(step, training seconds, batch exact rate) from the run's train log, thinned."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [[ln["step"], round(clock.at_step.get(ln["step"], math.nan), 2),
             round(ln.get("exact_acc", math.nan), 4)]
            for ln in lines if ln.get("split") == "train"]
    stride = max(1, len(rows) // points)
    return rows[stride - 1::stride]


def run_cell(task_name: str, data: Path, reasoner: str, backbone: str, seed: int, args,
             out_dir: Path) -> dict:
    """Train one cell in two legs (see the module docstring), scoring it after each."""
    from tracegym.training import TrainConfig, Trainer
    from tracegym.training.trainer import NonFiniteError

    task = TASKS[task_name]
    cfg = TrainConfig(task=task.kind, data=str(data), reasoner=reasoner, backbone=backbone,
                      model=model_config(reasoner, backbone), seed=seed,
                      eval_examples=None, out=str(out_dir), **{**TRAIN, **task.train})
    trainer = Trainer(cfg)
    clock = TrainClock(trainer.optimizer)
    row = {"task": task_name, "reasoner": reasoner, "backbone": backbone, "seed": seed,
           "model": cfg.model, "parameters": sum(p.numel() for p in trainer.policy.parameters())}
    points = []

    def score(test: dict) -> dict:
        return {"step": trainer.step, "wall_s": round(clock.wall, 2), "cpu_s": round(clock.cpu, 2),
                "examples_drawn": round(trainer.order.position * len(trainer.train_data)),
                "test_exact_acc": test.get("exact_acc"), "test_token_acc": test.get("token_acc"),
                "env_solve_rate": env_score(trainer.policy, task, data, args.episodes)}

    def leg(seconds: float | None, steps: int | None) -> dict:
        trainer.cfg.time_budget_s = seconds
        clock.start_leg()
        test = trainer.train(stop_after=steps)  # ends with its eval on the test split
        if test["stopped_by"] == "interrupt":  # the Trainer caught SIGINT/SIGTERM: stop the grid
            raise KeyboardInterrupt(test.get("signal"))
        point = score(test)
        points.append(point)
        return point

    try:
        first = leg(args.seconds, args.steps)  # to whichever limit comes first
        if trainer.step >= args.steps:
            row["equal_steps"] = first
            # both limits at once (within a step's time): one leg holds both views
            row["equal_time"] = leg(args.seconds - clock.wall, None) \
                if args.seconds - clock.wall > LEG_SLACK_S else first
        else:  # out of time first: on to the steps, within --max-seconds
            row["equal_time"] = first
            if args.max_seconds - clock.wall > LEG_SLACK_S:
                second = leg(args.max_seconds - clock.wall, args.steps)
                if trainer.step >= args.steps:
                    row["equal_steps"] = second
    except NonFiniteError as err:  # a diverged cell is a result: 0 for the views not reached
        zero = {"step": trainer.step, "wall_s": round(clock.wall, 2),
                "cpu_s": round(clock.cpu, 2), "test_exact_acc": 0.0, "env_solve_rate": 0.0,
                "diverged": str(err)}
        for view in VIEWS:
            row.setdefault(view, zero)
    finally:
        trainer.close()
    row["points"] = points
    row["curve"] = train_curve(out_dir, clock)
    return row


# ----------------------------------------------------------------------------- tables, plots

def _mean(values: list) -> float | None:
    return None if not values or None in values else sum(values) / len(values)


def summary(rows: list[dict]) -> dict:
    """Per (task, reasoner, backbone): the parameters and, per view, each seed's env solve rate,
    steps, test exact and token rates (None where a seed did not reach the view) and means."""
    out: dict = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        cell = out.setdefault(f"{row['task']}/{row['reasoner']}/{row['backbone']}",
                              {"seeds": [], "parameters": row.get("parameters")})
        cell["seeds"].append(row["seed"])
        for view in VIEWS:
            point = row.get(view) or {}
            for suffix, key in (("", "env_solve_rate"), ("_steps", "step"),
                                ("_test", "test_exact_acc"), ("_tokens", "test_token_acc")):
                cell.setdefault(view + suffix, []).append(point.get(key))
    for cell in out.values():
        for view in VIEWS:
            for suffix in ("", "_test", "_tokens"):
                cell[view + suffix + "_mean"] = _mean(cell[view + suffix])
    return out


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(rows: list[dict], task_floors: dict, args) -> str:
    """README's tables: one per task, every pair, both views, the task's floors above it."""
    cells = summary(rows)
    lines = []
    for task in [t for t in TASKS if any(r["task"] == t for r in rows)]:
        mine = {(r, b): cells[f"{task}/{r}/{b}"] for r, b in pairs()
                if f"{task}/{r}/{b}" in cells}
        best = {view: max((c[view + "_mean"] or 0.0 for c in mine.values()), default=0.0)
                for view in VIEWS}
        tokens = max((c["equal_time_tokens_mean"] or 0.0 for c in mine.values()), default=0.0)
        rules = "; ".join(f"{name.replace('_', ' ')}: {_pct(f['test_exact_acc'])} / "
                          f"{_pct(f['test_token_acc'])} / {_pct(f['env_solve_rate'])}"
                          for name, f in task_floors.get(task, {}).items())
        lines.append(f"\n**{task}**: env solve rate % (mean of the seeds, in bold where it is the "
                     "task's best; each seed; steps of each seed), test: the fixed test split's "
                     "exact rate %, mean of the seeds. Best test token accuracy at equal time: "
                     f"{_pct(tokens)}%. Floors (test exact / test tokens / env %): {rules}\n")
        lines += [f"| reasoner | backbone | equal time, {args.seconds:g} s: env % (seeds; steps) "
                  f"| test % | equal steps, {args.steps}: env % (seeds; steps) | test % "
                  "| parameters |", "|---|---|---|---|---|---|---|"]
        for (reasoner, backbone), cell in mine.items():
            texts = []
            for view in VIEWS[::-1]:  # equal time first
                mean = _pct(cell[view + "_mean"])
                if cell[view + "_mean"] and cell[view + "_mean"] == best[view]:
                    mean = f"**{mean}**"
                seeds = " / ".join(_pct(v) for v in cell[view])
                steps = " / ".join("-" if s is None else str(s) for s in cell[view + "_steps"])
                texts += [f"{mean} ({seeds}; {steps})", _pct(cell[view + "_test_mean"])]
            lines.append(f"| {reasoner} | {backbone} | " + " | ".join(texts)
                         + f" | {cell['parameters'] or 0:,} |")
    return "\n".join(lines)


def plot(rows: list[dict], folder: Path) -> None:
    from matplotlib.figure import Figure

    cells = summary(rows)
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    names = [f"{r}/{b}" for r, b in pairs() if any(f"{t}/{r}/{b}" in cells for t in tasks)]
    panels = [(view, task) for view in ("equal_time", "equal_steps") for task in tasks]
    fig = Figure(figsize=(3.2 + 1.3 * len(panels), 0.3 * len(names) + 1.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for i, (view, task) in enumerate(panels):
        values = [[cells.get(f"{task}/{n}", {}).get(view + "_mean")] for n in names]
        values = [[math.nan if v is None else v] for (v,) in values]
        ax = axes[i]
        image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for y, (v,) in enumerate(values):
            if not math.isnan(v):
                ax.text(0, y, f"{100 * v:.0f}", ha="center", va="center",
                        color="white" if v < 0.6 else "black", fontsize=8)
        ax.set_xticks([])
        ax.set_title(f"{task}\n{view.replace('_', ' ')}", fontsize=8)
        ax.set_yticks(range(len(names)), names if i == 0 else [""] * len(names), fontsize=8)
    fig.colorbar(image, ax=list(axes), label="env solve rate (mean of seeds)")
    fig.savefig(folder / "reasoners_heatmap.png", dpi=90, bbox_inches="tight")

    fig = Figure(figsize=(5 * len(tasks), 4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for reasoner in REASONERS:
            mine = [r for r in rows if r["task"] == task and r["reasoner"] == reasoner
                    and r.get("curve")]
            if mine:
                best = max(mine, key=lambda r: r["equal_time"]["env_solve_rate"])
                seconds = [0.0] + [c[1] for c in best["curve"]]
                exact = [0.0] + [c[2] for c in best["curve"]]
                ax.plot(seconds, exact, label=f"{reasoner} / {best['backbone']} "
                        f"(seed {best['seed']})")
        ax.set(title=task, xlabel="training seconds (2-core CPU)",
               ylabel="training-batch exact rate (each reasoner's own)", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "reasoners_curves.png", dpi=90)


# ----------------------------------------------------------------------------- main

def build_data(task_name: str, folder: Path, quick: bool) -> Path:
    task = TASKS[task_name]
    module, _, name = task.builder.partition(":")
    options = {**task.options, **(task.quick if quick else {})}
    out = folder / task_name
    getattr(importlib.import_module(module), name)(out, seed=0, progress=False, **options)
    return out


def todo_cells(args, done: set) -> list[tuple[str, str, str, int]]:
    patterns = args.cells.split(",")
    return [(task, r, b, s) for task in args.tasks.split(",")
            for r, b in pairs(args.reasoners.split(","), args.backbones.split(","))
            for s in args.seed_list
            if any(fnmatch.fnmatch(f"{task}/{r}/{b}", p) for p in patterns)
            and (task, r, b, s) not in done]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--reasoners", default=",".join(REASONERS))
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--cells", default="*/*/*",
                        help="comma-separated task/reasoner/backbone patterns (fnmatch)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--seconds", type=float, default=45.0,
                        help="equal time: training seconds per cell")
    parser.add_argument("--steps", type=int, default=150,
                        help="equal steps: optimizer steps per cell")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="training seconds after which a slow cell stops short of --steps")
    parser.add_argument("--episodes", type=int, default=200, help="env episodes per score")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-busy", type=float, default=0.3,
                        help="CPUs' worth of other work above which a cell does not start")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="seconds to wait for an idle machine before stopping (exit 3)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results_reasoners.json")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, 4 steps / 2 s (4 steps within 60 s), 8 episodes: "
                        "checks the script only")
    args = parser.parse_args(argv)
    for name, valid in (("tasks", TASKS), ("reasoners", REASONERS), ("backbones", BACKBONES)):
        bad = sorted(set(getattr(args, name).split(",")) - set(valid))
        if bad:
            parser.error(f"--{name}: unknown {bad}; choose from {', '.join(valid)}")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    for name in ("seconds", "steps", "max_seconds", "episodes", "threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')}: must be positive, got "
                         f"{getattr(args, name)}")
    if args.quick:
        args.seconds, args.steps, args.max_seconds, args.episodes = 2.0, 4, 60.0, 8
    if args.max_seconds < args.seconds:
        parser.error(f"--max-seconds: must be at least --seconds ({args.seconds:g}), got "
                     f"{args.max_seconds:g}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, task_floors = [], {}
    if args.resume and args.out.is_file():
        previous = json.loads(args.out.read_text())
        rows, task_floors = previous["rows"], previous.get("floors", {})
        for name in ("seconds", "steps", "max_seconds", "episodes"):  # one budget per file
            if previous["config"][name] != getattr(args, name):
                print(f"reasoners: error: --resume: {args.out} was run with --"
                      f"{name.replace('_', '-')} {previous['config'][name]:g}, not "
                      f"{getattr(args, name):g}", file=sys.stderr)
                return 2
    done = {(r["task"], r["reasoner"], r["backbone"], r["seed"]) for r in rows}
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        data: dict[str, Path] = {}
        try:
            for task, reasoner, backbone, seed in todo_cells(args, done):
                if task not in data:
                    data[task] = build_data(task, Path(tmp), args.quick)
                    task_floors[task] = floors(task, data[task], args.episodes)
                busy, load = wait_until_idle(args.max_busy, args.wait), load_average()
                run_dir = Path(tmp) / "runs" / f"{task}-{reasoner}-{backbone}-{seed}"
                started = time.perf_counter()
                row = run_cell(task, data[task], reasoner, backbone, seed, args, run_dir)
                row.update(cell_s=round(time.perf_counter() - started, 1),
                           busy_cpus_before=busy, load_before=load, load_after=load_average())
                rows.append(row)
                save(args, rows, task_floors)
                brief = {k: row[k] for k in ("task", "reasoner", "backbone", "seed")}
                for view in VIEWS:
                    brief[view] = {k: row[view][k] for k in ("step", "wall_s", "env_solve_rate")} \
                        if view in row else None
                print(json.dumps(brief), file=sys.stderr, flush=True)
        except MachineBusy as err:
            print(f"reasoners: stopped: {err}; --resume continues", file=sys.stderr)
            status = 3
        except KeyboardInterrupt:  # the cell in progress is dropped, the rows before it kept
            print("reasoners: interrupted; --resume continues", file=sys.stderr)
            status = 130
        if rows and status == 0:  # a floor for every task with rows (a resumed file's too)
            for task in sorted({r["task"] for r in rows} - set(task_floors)):
                task_floors[task] = floors(task, data.get(task) or
                                           build_data(task, Path(tmp), args.quick), args.episodes)
    if rows:
        save(args, rows, task_floors)
        plot(rows, args.out.parent)
        if args.markdown:
            print(markdown(rows, task_floors, args))
    return status


def save(args, rows: list[dict], task_floors: dict) -> None:
    from tracegym.io import atomic_path

    result = {"benchmark": "reasoners",
              "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "torch": torch.__version__, "threads": args.threads},
              "config": {"seconds": args.seconds, "steps": args.steps,
                         "max_seconds": args.max_seconds, "episodes": args.episodes,
                         "common": COMMON, "model": MODEL, "train": TRAIN,
                         "tasks": {k: {**v.options, **v.train} for k, v in TASKS.items()}},
              "floors": task_floors,  # per task: each answer rule with nothing learnt
              "summary": summary(rows), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
