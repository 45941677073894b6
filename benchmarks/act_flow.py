"""TRM's persistent ACT carry against the per-batch flow (issue 18 item 2): live fraction and
examples per second, the same TRM trained by the Trainer on the same data.

* ``carry`` (the default for trm and hrm, as TRM trains): every optimizer step runs one
  supervision step on each of ``batch_size`` slots; halted slots take the next batch's rows.
* ``batch``: each batch runs up to ``N_sup`` supervision steps until all its samples halt;
  halted rows are still computed, at weight 0.

Both train for ``--steps`` optimizer steps. Figures are over the second half (halting has
started by then): ``live`` is the fraction of computed rows that count in the loss,
``examples_per_s`` the examples whose supervision finished per second, ``steps_per_s`` optimizer
steps per second, ``mean_act_steps`` supervision steps per finished example, and the final eval
exact accuracy on the test split. Prints one JSON object (with the load average, to show the run
was alone on the machine).

    python benchmarks/act_flow.py [--steps 600] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from tracegym.datasets.sudoku import build_sudoku_dataset
from tracegym.training import TrainConfig, Trainer

MODEL = {"dim": 64, "depth": 2, "heads": 4, "H_cycles": 2, "L_cycles": 2, "N_sup": 8,
         "halt_exploration_prob": 0.1}


def run(data: Path, out: Path, flow: str, steps: int, batch: int) -> dict:
    cfg = TrainConfig(task="sudoku", data=str(data), reasoner="trm", backbone="mlp_mixer",
                      model=dict(MODEL), batch_size=batch, lr=2e-3, warmup_steps=20,
                      optimizer="adam_atan2", sampler="examples", act_flow=flow, max_steps=steps,
                      log_every=1, eval_examples=None, checkpoint_minutes=0, out=str(out),
                      progress=False, device="cpu", amp="off")
    trainer = Trainer(cfg)
    result = trainer.train()
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train"][steps // 2:]
    seconds = sum(r["sec"] for r in train)
    finished = sum(r["examples_per_s"] * r["sec"] for r in train)
    acted = sum(r["steps"] * r["finished"] for r in train)
    return {
        "live": round(sum(r["active"] for r in train) / len(train), 4),
        "examples_per_s": round(finished / seconds, 1),
        "steps_per_s": round(len(train) / seconds, 2),
        "mean_act_steps": round(acted / max(finished, 1), 2),
        "eval_exact_acc": round(result.get("exact_acc", float("nan")), 4),
        "train_seconds": round(result["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="40 steps: a check that it runs")
    args = parser.parse_args()
    steps = 40 if args.quick else args.steps
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sudoku4"
        build_sudoku_dataset(data, size=4, difficulty="hard", train=2000, test=256, seed=0,
                             progress=False)
        flows = {flow: run(data, Path(tmp) / flow, flow, steps, args.batch)
                 for flow in ("carry", "batch")}
    print(json.dumps({
        "benchmark": "act_flow", "task": "sudoku 4x4 (hard)", "reasoner": "trm",
        "backbone": "mlp_mixer", "model": MODEL, "batch_size": args.batch, "steps": steps,
        "flows": flows,
        "examples_per_s_ratio": round(flows["carry"]["examples_per_s"]
                                      / max(flows["batch"]["examples_per_s"], 1e-9), 2),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))


if __name__ == "__main__":
    main()
