"""Training speed: optimiser steps/s and examples/s of every reasoner x backbone, this checkout
against an older one (``--baseline-src``) measured in the same run.

Each cell is the Trainer itself (not a model-only loop) at the settings of the first reasoner
table (dim 64, depth 2, heads 4, SwiGLU at TRM's rounding to 256, batch 64, AdamW, no EMA; the
TRM/HRM cycles of benchmarks/reasoners.py), on one task's dataset, for ``--warmup`` optimizer
steps and then ``--steps`` timed ones. The clock is read in an optimizer step hook, so a
figure covers the whole step (batch, forward, backward, clipping, optimizer) and nothing else
(dataset, build, final eval).

* ``steps_per_s``: optimizer steps per wall second; ``steps_per_cpu_s`` per CPU second of the
  process (less sensitive to other work on the machine; equal to the wall figure on an idle one
  at 1 thread).
* ``examples_per_s``: examples whose supervision finished per wall second. One-pass reasoners
  finish a batch each step; trm/hrm with ``act_flow="batch"`` (the only flow of older commits) a
  batch when it halts (up to N_sup steps); with ``act_flow="carry"`` (TRM's persistent carry,
  the Trainer's default) the slots that halted at each step.
* trm and hrm run under both flows here; the like-for-like ratio against the baseline is the
  batch flow's (same steps, same rows computed); ``carry`` is what training runs today.

The baseline checkout runs in its own worker process: a symlink tree in a temporary folder maps
its folders to the ``tracegym.*`` packages as its pyproject.toml says and comes first on
PYTHONPATH (the editable install of this checkout is only consulted after it). Both workers stay
alive and take the cells in turn (baseline then current, cell by cell), so a load change on a
shared machine hits both alike. Each variant also runs with ``torch.compile`` on CPU with
``--compile`` (current code only; the warm-up then includes compilation).

Prints one JSON object (machine, load average before and after, each row with the load average
when it ran, and the ratios current / baseline); ``--markdown`` adds a table.

    python benchmarks/train_speed.py --baseline-src ../tracegym-defb261 [--threads 1,2]
        [--steps 20] [--warmup 5] [--tasks sudoku4] [--quick] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REASONERS = ("feedforward", "trm", "hrm", "diffusion", "autoregressive")
# the table's three, plus each layer family alone and the published hybrids whole
BACKBONES = ("transformer", "mlp_mixer", "gated_deltanet", "gated_attention", "hybrid",
             "qwen3_next", "kimi_linear")
ACT_REASONERS = ("trm", "hrm")
WIDTH = {"dim": 64, "heads": 4}  # README's figures were measured at these (multiple_of 256)
TASKS = {  # name -> (builder module, builder name, options): small splits, only batches matter
    "sudoku4": ("tracegym.datasets.sudoku", "build_sudoku_dataset",
                {"size": 4, "difficulty": "hard", "train": 512, "test": 64}),
    "sudoku6": ("tracegym.datasets.sudoku", "build_sudoku_dataset",
                {"size": 6, "difficulty": "hard", "train": 512, "test": 64}),
    "maze9": ("tracegym.datasets.maze", "build_maze_dataset",
              {"kind": "backtracker", "size": 9, "train": 512, "test": 64}),
}
TRAIN = dict(batch_size=64, lr=2e-3, warmup_steps=20, weight_decay=0.1, optimizer="adamw",
             ema=0.0, log_every=50, eval_examples=64, progress=False, seed=0, device="cpu",
             amp="off", checkpoint_minutes=0)


# ----------------------------------------------------------------------------- worker side
# Runs in its own process against whichever tracegym is first on its path; it imports nothing
# from this checkout's benchmarks/, so the baseline worker runs the baseline's code only.

def _build(cmd: dict) -> dict:
    import importlib

    module, name, options = TASKS[cmd["task"]]
    builder = getattr(importlib.import_module(module), name)
    builder(Path(cmd["dir"]), seed=0, progress=False, **options)
    return {"ok": True}


def _measure(cmd: dict) -> dict:
    """One cell: a Trainer run of warmup + steps optimizer steps, timed in a step hook."""
    import dataclasses

    import torch

    from tracegym.training import TrainConfig, Trainer

    torch.set_num_threads(cmd["threads"])
    torch.manual_seed(0)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    flow = cmd.get("act_flow")
    if flow is not None and "act_flow" not in names:
        if flow != "batch":
            return {"error": f"act_flow={flow!r}: this checkout has the batch flow only"}
        flow = None  # the batch flow is all an older Trainer has
    warmup, steps = cmd["warmup"], cmd["steps"]
    options = {**TRAIN, "task": cmd["task_kind"], "data": cmd["data"],
               "reasoner": cmd["reasoner"], "backbone": cmd["backbone"],
               "model": dict(cmd["model"]), "max_steps": warmup + steps, "out": cmd["out"]}
    if flow is not None:
        options["act_flow"] = flow
    cfg = TrainConfig(**{k: v for k, v in options.items() if k in names})
    trainer = Trainer(cfg)
    policy = trainer.policy
    if cmd.get("compile"):
        for module in policy.children():
            module.compile()
    batch = cfg.batch_size
    pending = [0]  # examples finished by the step in progress (int, or a 0-d tensor)

    plain_steps = policy.supervision_steps

    def supervision_steps(batch_dict):
        for out in plain_steps(batch_dict):
            pending[0] = batch if out.halted else 0
            yield out

    policy.supervision_steps = supervision_steps
    if hasattr(policy, "carry_step"):
        plain_carry = policy.carry_step

        def carry_step(state, batch_dict):
            state, out = plain_carry(state, batch_dict)
            pending[0] = out.metrics["finished"]  # a tensor: no host read inside the step
            return state, out

        policy.carry_step = carry_step

    marks: list[tuple[float, float, object]] = []

    def hook(optimizer, args, kwargs):
        marks.append((time.perf_counter(), time.process_time(), pending[0]))
        pending[0] = 0

    handle = trainer.optimizer.register_step_post_hook(hook)
    try:
        trainer.train()
    finally:
        handle.remove()
        trainer.close()
    if len(marks) < warmup + steps:
        return {"error": f"only {len(marks)} optimizer steps ran"}
    (t0, c0, _), (t1, c1, _) = marks[warmup - 1], marks[warmup + steps - 1]
    finished = sum(float(m[2]) for m in marks[warmup:warmup + steps])
    wall, cpu = t1 - t0, c1 - c0
    return {"steps_per_s": steps / wall, "steps_per_cpu_s": steps / max(cpu, 1e-9),
            "examples_per_s": finished / wall, "window_s": wall,
            "parameters": sum(p.numel() for p in policy.parameters())}


def worker() -> None:
    """Read one JSON command per stdin line, answer one JSON line each on the real stdout
    (anything the code under test prints goes to stderr)."""
    out = sys.stdout
    sys.stdout = sys.stderr
    import tracegym

    out.write(json.dumps({"tracegym": str(Path(tracegym.__file__).resolve().parent)}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            reply = _build(cmd) if cmd["cmd"] == "build" else _measure(cmd)
        except Exception as err:  # a cell that cannot run is a row too
            reply = {"error": f"{type(err).__name__}: {err}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


# ----------------------------------------------------------------------------- orchestrator

def baseline_tree(src: Path, into: Path) -> Path:
    """A folder that, first on PYTHONPATH, imports ``tracegym.*`` from checkout ``src``: its
    ``tracegym`` folder's entries and the other packages' folders, linked as
    ``[tool.setuptools.package-dir]`` of ``src``'s pyproject.toml maps them."""
    import tomllib

    project = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = project["tool"]["setuptools"]["package-dir"]
    root = into / "tracegym"
    root.mkdir(parents=True)
    for entry in (src / mapping["tracegym"]).iterdir():
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry.resolve())
    for package, folder in mapping.items():
        if package != "tracegym":
            (root / package.split(".", 1)[1]).symlink_to((src / folder).resolve())
    return into


class Worker:
    """A worker process of this script on one checkout (``pythonpath`` None: the current one)."""

    def __init__(self, label: str, pythonpath: Path | None):
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.label = label
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"],
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=tempfile.gettempdir())
        self.source = self._reply()["tracegym"]

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker exited (code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def model_config(reasoner: str, backbone: str) -> dict:
    """benchmarks/reasoners.py's model keys for the pair (its reasoners' own keys, "GA" for the
    depth-2 hybrid, a recipe at the depth that holds it whole, HRM's modules included) at this
    table's width."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import reasoners as table

    return table.model_config(reasoner, backbone, width=WIDTH)


def variants(reasoner: str, current: bool, compile_too: bool) -> list[dict]:
    flows = (["carry", "batch"] if current else ["batch"]) if reasoner in ACT_REASONERS \
        else [None]
    out = [{"act_flow": f, "compile": False} for f in flows]
    if current and compile_too:
        out += [{"act_flow": f, "compile": True} for f in flows]
    return out


def git_commit(src: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def ratios(rows: list[dict]) -> list[dict]:
    """current / baseline per (task, threads, reasoner, backbone): steps/s (batch flow, like for
    like), examples/s of the batch and (trm, hrm) carry flows."""
    def pick(code, r, flow):
        hit = [x for x in rows if x["code"] == code and not x["compile"] and "error" not in x
               and (x["task"], x["threads"], x["reasoner"], x["backbone"]) == r
               and x["act_flow"] == flow]
        return hit[0] if hit else None

    out = []
    for key in dict.fromkeys((x["task"], x["threads"], x["reasoner"], x["backbone"])
                             for x in rows):
        flow = "batch" if key[2] in ACT_REASONERS else None
        base = pick("baseline", key, flow)
        if base is None:
            continue
        entry = dict(zip(("task", "threads", "reasoner", "backbone"), key))
        for name, new in (("batch", pick("current", key, flow)),
                          ("carry", pick("current", key, "carry"))):
            if new is None:
                continue
            if name == "batch":
                entry["steps_per_s"] = round(new["steps_per_s"] / base["steps_per_s"], 2)
                entry["steps_per_cpu_s"] = round(new["steps_per_cpu_s"]
                                                 / base["steps_per_cpu_s"], 2)
            entry[f"examples_per_s_{name}"] = round(new["examples_per_s"]
                                                    / max(base["examples_per_s"], 1e-9), 2)
        out.append(entry)
    return out


def markdown(rows: list[dict], table: list[dict]) -> str:
    lines = ["| task | threads | reasoner | backbone | baseline steps/s | steps/s (batch flow) "
             "| x (wall) | x (per CPU s) | steps/s (carry) | examples/s baseline -> carry |",
             "|---" * 10 + "|"]
    for r in table:
        key = (r["task"], r["threads"], r["reasoner"], r["backbone"])

        def get(code, flow, field, key=key):
            hit = [x for x in rows if x["code"] == code and not x["compile"] and "error" not in x
                   and (x["task"], x["threads"], x["reasoner"], x["backbone"]) == key
                   and x["act_flow"] == flow]
            return f"{hit[0][field]:.1f}" if hit else "n/a"

        flow = "batch" if r["reasoner"] in ACT_REASONERS else None
        carry = "carry" if r["reasoner"] in ACT_REASONERS else flow
        lines.append(f"| {' | '.join(map(str, key))} | {get('baseline', flow, 'steps_per_s')} | "
                     f"{get('current', flow, 'steps_per_s')} | {r.get('steps_per_s', 'n/a')} | "
                     f"{r.get('steps_per_cpu_s', 'n/a')} | "
                     f"{get('current', carry, 'steps_per_s')} | "
                     f"{get('baseline', flow, 'examples_per_s')} -> "
                     f"{get('current', carry, 'examples_per_s')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="an older checkout of this repository (e.g. a git worktree of "
                             "defb261) measured beside this one")
    parser.add_argument("--tasks", default="sudoku4", help=f"comma-separated: {', '.join(TASKS)}")
    parser.add_argument("--reasoners", default=",".join(REASONERS))
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--threads", default="1,2", help="torch threads, comma-separated")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps first")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--compile", action="store_true",
                        help="also run the current code under torch.compile (CPU inductor)")
    parser.add_argument("--quick", action="store_true",
                        help="2 + 4 steps, 1 thread: a check that every cell runs")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if args.quick:
        args.warmup, args.steps, args.threads = 2, 4, "1"
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    tasks = args.tasks.split(",")
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; valid: {', '.join(TASKS)}")
    if args.baseline_src is not None and not (args.baseline_src / "pyproject.toml").is_file():
        parser.error(f"--baseline-src {str(args.baseline_src)!r} holds no pyproject.toml")

    import torch

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workers = {"current": Worker("current", None)}
        if args.baseline_src is not None:
            path = baseline_tree(args.baseline_src.resolve(), tmp / "baseline_path")
            workers = {"baseline": Worker("baseline", path), **workers}
        try:
            for task in tasks:
                data = {}
                for code, w in workers.items():  # each builds with its own code and format
                    data[code] = str(tmp / "data" / code / task)
                    reply = w.ask({"cmd": "build", "task": task, "dir": data[code]})
                    if "error" in reply:
                        raise RuntimeError(f"{code} could not build {task}: {reply['error']}")
                for threads in (int(t) for t in args.threads.split(",")):
                    for reasoner in args.reasoners.split(","):
                        for backbone in args.backbones.split(","):
                            if reasoner == "autoregressive" and backbone == "mlp_mixer":
                                continue  # the token MLP has no causal form
                            model = model_config(reasoner, backbone)
                            for code, w in workers.items():
                                for v in variants(reasoner, code == "current", args.compile):
                                    cell = {"task": task, "threads": threads,
                                            "reasoner": reasoner, "backbone": backbone, **v}
                                    run = f"{len(rows)}-{code}"
                                    reply = w.ask({
                                        "cmd": "run", **cell, "model": model,
                                        "task_kind": task.rstrip("0123456789"),
                                        "data": data[code], "out": str(tmp / "runs" / run),
                                        "warmup": args.warmup, "steps": args.steps})
                                    row = {"code": code, **cell, "model": model, **reply,
                                           "loadavg": [round(x, 2) for x in os.getloadavg()]}
                                    rows.append(row)
                                    print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            for w in workers.values():
                w.close()
    table = ratios(rows)
    result = {
        "benchmark": "train_speed",
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "processor": platform.processor()
                    or platform.machine()},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "sources": {code: w.source for code, w in workers.items()},
        "baseline_commit": None if args.baseline_src is None else git_commit(args.baseline_src),
        "config": {"train": TRAIN, "warmup": args.warmup, "steps": args.steps,
                   "tasks": {t: TASKS[t][2] for t in tasks}},
        "rows": rows,
        "ratios": table,
    }
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(rows, table))


if __name__ == "__main__":
    main()
