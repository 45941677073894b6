"""Reasoner x backbone under one fixed CPU budget each: exact-solve rates in the environments.

Every reasoner (feedforward, TRM, HRM, masked diffusion, autoregressive) on every backbone
(transformer, mlp_mixer, hybrid by default; any name of ``build_backbone`` with ``--backbones``,
e.g. the kimi_linear and gdn_h1 recipes; autoregressive needs a causal backbone, so not
mlp_mixer) is
trained by the Trainer for ``--budget`` seconds on each task, then its answers are submitted to
the task's environment in answer mode on held-out episodes (seeds the training data never used),
and the env's rewards give the exact-solve rate. Tasks: 4x4 and 6x6 Sudoku (minimal puzzles,
"hard"), and 9x9 perfect mazes (recursive backtracker, the path from S to G to mark).

Prints one JSON object; ``--markdown`` also prints the README table. The default budget keeps
the whole run under about an hour on a 2-core CPU.

    python benchmarks/reasoners.py [--budget 75] [--episodes 200] [--quick] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from tracegym.datasets.maze import build_maze_dataset
from tracegym.datasets.sudoku import build_sudoku_dataset
from tracegym.training import TrainConfig, Trainer
from tracegym.training.evaluate import evaluate_in_env
from tracegym.training.trainer import NonFiniteError

REASONERS = ("feedforward", "trm", "hrm", "diffusion", "autoregressive")
BACKBONES = ("transformer", "mlp_mixer", "hybrid")
# one small width for every pair; per-reasoner settings follow the CPU runs of REFERENCES.md
COMMON = {"dim": 64, "heads": 4}
MODEL = {
    "feedforward": {"depth": 2},
    "trm": {"depth": 2, "H_cycles": 2, "L_cycles": 2, "N_sup": 4},
    "hrm": {"H_layers": 1, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4},
    "diffusion": {"depth": 2},
    "autoregressive": {"depth": 2},
}
TASKS = {  # name -> (builder, builder options, env id, env options)
    "sudoku4": (build_sudoku_dataset, {"size": 4, "difficulty": "hard", "train": 2000,
                                       "test": 200}, "tracegym/Sudoku-v0",
                {"size": 4, "difficulty": "hard"}),
    "sudoku6": (build_sudoku_dataset, {"size": 6, "difficulty": "hard", "train": 5000,
                                       "test": 200}, "tracegym/Sudoku-v0",
                {"size": 6, "difficulty": "hard"}),
    "maze9": (build_maze_dataset, {"kind": "backtracker", "size": 9, "train": 2000,
                                   "test": 200}, "tracegym/Maze-v0",
              {"size": 9, "kind": "backtracker"}),
}
EVAL_SEED = 1_000_000  # env episodes are drawn from seeds far from the dataset's streams


def model_config(reasoner: str, backbone: str) -> dict:
    """The pair's model keys. A recipe (qwen3_next "GGGA", kimi_linear "KKKL") runs at least one
    layer per letter of its pattern, so a depth-2 run still holds its attention / MLA layer."""
    from tracegym.agents.backbones import RECIPES, min_depth_for_pattern

    model = {**COMMON, **MODEL[reasoner]}
    if backbone in RECIPES and "depth" in model:
        model["depth"] = min_depth_for_pattern(backbone, model["depth"])
    return model


def run_one(task: str, data: Path, reasoner: str, backbone: str, budget: float, episodes: int,
            out: Path) -> dict:
    _, _, env_id, env_options = TASKS[task]
    cfg = TrainConfig(task="sudoku" if task.startswith("sudoku") else "maze", data=str(data),
                      reasoner=reasoner, backbone=backbone, model=model_config(reasoner, backbone),
                      max_steps=1_000_000, time_budget_s=budget, batch_size=64, lr=2e-3,
                      warmup_steps=20, weight_decay=0.1, optimizer="adamw", ema=0.0,
                      eval_examples=200, log_every=50, out=str(out), progress=False, seed=0)
    start = time.perf_counter()
    trainer = Trainer(cfg)
    try:
        result = trainer.train()
    except NonFiniteError as err:  # a diverged run is a result too: solve rate 0
        trainer.close()
        return {"task": task, "reasoner": reasoner, "backbone": backbone, "steps": trainer.step,
                "train_s": time.perf_counter() - start, "test_exact_acc": 0.0,
                "env_solve_rate": 0.0, "env_episodes": 0, "diverged": str(err),
                "parameters": sum(p.numel() for p in trainer.policy.parameters())}
    train_s = time.perf_counter() - start
    trainer.policy.eval()
    env = evaluate_in_env(trainer.policy, env_id, episodes=episodes, seed=EVAL_SEED,
                          mode="answer", env_options=env_options)
    trainer.close()
    return {"task": task, "reasoner": reasoner, "backbone": backbone, "steps": result["step"],
            "train_s": train_s, "test_exact_acc": result.get("exact_acc"),
            "env_solve_rate": env["solve_rate"], "env_episodes": env["episodes"],
            "parameters": sum(p.numel() for p in trainer.policy.parameters())}


def markdown(rows: list[dict], budget: float) -> str:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    head = "| reasoner | backbone | " + " | ".join(tasks) + " |"
    lines = [head, "|---|---|" + "---|" * len(tasks)]
    backbones = list(dict.fromkeys(r["backbone"] for r in rows))
    for reasoner in REASONERS:
        for backbone in backbones:
            cells = []
            for task in tasks:
                hit = [r for r in rows if (r["task"], r["reasoner"], r["backbone"])
                       == (task, reasoner, backbone)]
                if not hit:
                    cells.append("n/a")
                elif "diverged" in hit[0]:
                    cells.append(f"diverged at step {hit[0]['steps']}")
                else:
                    cells.append(f"{100 * hit[0]['env_solve_rate']:.1f}% "
                                 f"({hit[0]['steps']} steps)")
            if any(c != "n/a" for c in cells):
                lines.append(f"| {reasoner} | {backbone} | " + " | ".join(cells) + " |")
    return (f"Exact-solve rate in the env after {budget:.0f} s of CPU training each\n\n"
            + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=75.0, help="seconds of training per run")
    parser.add_argument("--episodes", type=int, default=200, help="env episodes per evaluation")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset")
    parser.add_argument("--reasoners", default=",".join(REASONERS))
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--quick", action="store_true", help="5 s per run, 20 episodes")
    parser.add_argument("--markdown", action="store_true", help="also print the README table")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: tiny models gain nothing from more, and extra "
                             "threads stall when the machine is shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.budget, args.episodes = 5.0, 20
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            build, options, _, _ = TASKS[task]
            data = Path(tmp) / task
            build(data, seed=0, progress=False, **options)
            for reasoner in args.reasoners.split(","):
                for backbone in args.backbones.split(","):
                    if reasoner == "autoregressive" and backbone == "mlp_mixer":
                        continue  # the token MLP has no causal form
                    rows.append(run_one(task, data, reasoner, backbone, args.budget,
                                        args.episodes, Path(tmp) / "runs" / f"{task}-{reasoner}"
                                        f"-{backbone}"))
                    print(json.dumps(rows[-1]), file=os.sys.stderr, flush=True)
    result = {"benchmark": "reasoners",
              "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "torch": torch.__version__, "threads": torch.get_num_threads()},
              "config": {"budget_s": args.budget, "episodes": args.episodes, "common": COMMON,
                         "model": MODEL, "tasks": {k: v[1] for k, v in TASKS.items()}},
              "runs": rows}
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(rows, args.budget))


if __name__ == "__main__":
    main()
