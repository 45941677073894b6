"""Does a small trace model learn on CPU? Train a TraceLM per backbone for a fixed budget and
report the ExecTrace metrics beside the "copy the previous frame" baseline, as one JSON object.

Data: generated straight-line and loop programs, traced (``build_trace_dataset``) and tokenized
(``build_trace_lm_dataset``, tasks ``trace,output``: whole-trace LM windows, where every frame
token is a label, and output prediction) into a temporary directory.
Training: the Trainer (``reasoner="trace_lm"``) for the backbone's share of ``--minutes``: a
short timed run plans the number of steps, so the warm-up + cosine schedule ends on time.
Evaluation: ``evaluate_exectrace`` on the *test-split programs* (no program seen in training).

    python benchmarks/trace_model.py --quick          # ~2 minutes
    python benchmarks/trace_model.py                  # the measured setting: 28 minutes

Defaults (the README figures): 1000 programs per kind of at most 4 statements and 2 parameters
(85% train, 15% test by program), windows of 512 tokens, dim 64, depth 4, 4 heads, pre-norm,
the hybrid as "GGGA" (Qwen3-Next's 3 Gated DeltaNet : 1 gated attention), batch 8, AdamW
lr 3e-3 with 100 warm-up steps and a cosine to 0.1x, 2 threads; 50 test episodes per metric,
12 of them also rolled out whole.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def build_data(root: Path, programs: int, seed: int, seq_len: int, size: dict
               ) -> tuple[Path, list]:
    """Traces of ``programs`` straight-line and ``programs`` loop programs -> a trace_lm dataset;
    returns it and the test-split Program objects (for the env)."""
    from tracegym.datasets.trace_lm import build_trace_lm_dataset
    from tracegym.datasets.traces import build_trace_dataset, split_programs

    dirs, test_programs = [], []
    for kind in ("straight_line", "loops"):
        out = root / f"traces_{kind}"
        build_trace_dataset(out, n=programs, seed=seed, kind=kind, max_events=200,
                            test_fraction=0.15, progress=False, **size)
        dirs.append(out)
        test_programs += split_programs(out, "test")
    data = root / "trace_lm"
    build_trace_lm_dataset(dirs, data, task="trace,output", seq_len=seq_len)
    return data, test_programs


def train_one(data: Path, out: Path, backbone: str, seconds: float, args) -> tuple:
    """Train for about ``seconds``: a short calibration run measures the time per step, then a
    fresh run is planned to that many steps so its cosine schedule ends with the budget
    (``time_budget_s`` stops it anyway if the machine slows down)."""
    from tracegym.training import TrainConfig, Trainer

    def config(max_steps: int, budget: float, run_out: Path, log_every: int = 25
               ) -> TrainConfig:
        return TrainConfig(task="exectrace", data=str(data), reasoner="trace_lm",
                           backbone=backbone,
                           model=dict(dim=args.dim, depth=args.depth, heads=args.heads,
                                      norm=args.norm, multiple_of=32,
                                      **({"pattern": args.hybrid_pattern}
                                         if backbone == "hybrid" else {})),
                           loss="softmax", max_steps=max_steps, time_budget_s=budget,
                           batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup,
                           min_lr_ratio=args.min_lr_ratio, weight_decay=0.1, eval_examples=16,
                           out=str(run_out), device="cpu", progress=False, log_every=log_every,
                           seed=args.seed)

    start = time.perf_counter()
    calibration = Trainer(config(2 * args.calibration_steps, seconds, out / "calibration",
                                 log_every=args.calibration_steps))
    calibration.train()
    # the second logged stretch: steady-state steps (the first holds start-up costs)
    logged = [json.loads(line) for line in open(out / "calibration" / "metrics.jsonl")]
    step_s = [r["sec"] for r in logged if r.get("split") == "train"][-1] / args.calibration_steps
    left = seconds - (time.perf_counter() - start)
    planned = max(args.calibration_steps, int(left / step_s))
    trainer = Trainer(config(planned, 1.1 * left, out))
    result = trainer.train()
    train_s = time.perf_counter() - start
    losses = [json.loads(line) for line in open(out / "metrics.jsonl")]
    train = [r for r in losses if r.get("split") == "train"]
    curve = {"first_loss": train[0]["loss"] if train else None,
             "last_loss": train[-1]["loss"] if train else None,
             "last_train_token_acc": train[-1].get("token_acc") if train else None}
    params = sum(p.numel() for p in trainer.policy.parameters())
    return trainer.policy, {"steps": trainer.step, "planned_steps": planned,
                            "seconds_per_step": round(step_s, 3),
                            "train_seconds": round(train_s, 1), "parameters": params, **curve,
                            "trainer_eval": result}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=28.0,
                        help="total budget, data and evaluation included (<= 30)")
    parser.add_argument("--quick", action="store_true", help="a ~2 minute smoke run")
    parser.add_argument("--backbones", default="transformer,hybrid")
    parser.add_argument("--programs", type=int, default=None,
                        help="programs per kind (default 1000, quick 60)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--max-statements", type=int, default=4,
                        help="statements per generated program (at most)")
    parser.add_argument("--max-params", type=int, default=2,
                        help="parameters per generated program (at most)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hybrid-pattern", default="GGGA",
                        help="the hybrid's layer letters, repeated to --depth (GGGA: Qwen3-Next's "
                        "3 Gated DeltaNet : 1 gated attention; GA for a depth-2 hybrid)")
    parser.add_argument("--norm", default="pre", choices=("pre", "post"),
                        help="block norm (pre: as LMs such as CWM; post: TRM's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100, help="lr warm-up steps")
    parser.add_argument("--train-fraction", type=float, default=0.88,
                        help="share of each backbone's time spent training (the rest: eval)")
    parser.add_argument("--min-lr-ratio", type=float, default=0.1,
                        help="cosine floor (fraction of --lr) reached at the planned last step")
    parser.add_argument("--calibration-steps", type=int, default=20,
                        help="a first run of 2x this many steps plans the run's length from "
                        "its second half")
    parser.add_argument("--episodes", type=int, default=None,
                        help="test episodes per metric (default 30, quick 4)")
    parser.add_argument("--keep", metavar="DIR",
                        help="build the data and the runs (checkpoints) here, and keep them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = min(args.minutes, 2.0)
    programs = args.programs or (60 if args.quick else 1000)
    episodes = args.episodes or (4 if args.quick else 50)
    torch.set_num_threads(args.threads)
    backbones = [b for b in args.backbones.split(",") if b]
    t0 = time.perf_counter()
    report = {"config": {**vars(args), "programs": programs, "episodes": episodes},
              "device": "cpu", "torch": torch.__version__, "results": {}}
    with tempfile.TemporaryDirectory(prefix="tracegym-trace-model-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        size = {"max_statements": args.max_statements, "max_params": args.max_params}
        data, test_programs = build_data(root, programs, args.seed, args.seq_len, size)
        meta = json.loads((data / "meta.json").read_text())
        report["data"] = {"splits": meta["splits"], "test_programs": len(test_programs),
                          "seconds": round(time.perf_counter() - t0, 1)}
        from tracegym.training.evaluate_traces import evaluate_exectrace

        for i, backbone in enumerate(backbones):
            # an equal share of what is left (an overrun of one backbone is not passed on)
            share = (args.minutes * 60 - (time.perf_counter() - t0)) / (len(backbones) - i)
            model, info = train_one(data, root / f"run_{backbone}", backbone,
                                    args.train_fraction * share, args)
            e0 = time.perf_counter()
            metrics = evaluate_exectrace(model, programs=test_programs, episodes=episodes,
                                         rollout_episodes=max(2, episodes // 4), seed=args.seed,
                                         max_frames=200)
            info["eval_seconds"] = round(time.perf_counter() - e0, 1)
            report["results"][backbone] = {**info, **metrics}
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
