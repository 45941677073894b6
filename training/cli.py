"""``tracegym train``, ``tracegym eval`` and ``tracegym plot`` (registered by tracegym/cli.py).

Importing this module is cheap (argparse only); torch loads when a command runs.

    tracegym train --task sudoku --data DIR --reasoner trm --backbone mlp_mixer max_steps=500 \\
        lr=3e-4 model.dim=64
    tracegym train --config configs/trm-sudoku-extreme.yaml --data DIR
    torchrun --nproc_per_node=4 -m tracegym train --config configs/trm-arc-agi-1.yaml --data DIR
    tracegym train --config ... --resume runs/x        # continues exactly where runs/x stopped
    tracegym eval --checkpoint runs/x --env tracegym/Sudoku-v0 --episodes 100 size=4
    tracegym plot runs/x
"""

from __future__ import annotations

import argparse
import json


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON TrainConfig to start from")
    parser.add_argument("--task", help="task name: sudoku, maze, arc (overrides the config)")
    parser.add_argument("--data", metavar="DIR", help="dataset directory in the TRM layout")
    parser.add_argument("--reasoner", help="reasoner name, e.g. trm, hrm, feedforward")
    parser.add_argument("--backbone", help="backbone name, e.g. mlp_mixer, transformer")
    parser.add_argument("--out", metavar="DIR", help="run directory (metrics, checkpoint)")
    parser.add_argument("--resume", metavar="CKPT",
                        help="checkpoint file or run directory to continue exactly")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="TrainConfig fields, e.g. lr=3e-4 max_steps=1000 model.dim=64")


def _train(args: argparse.Namespace) -> int:
    from .config import TrainConfig, apply_overrides, load_config
    from .trainer import Trainer

    if args.config:
        cfg = load_config(args.config)
    elif args.resume:  # continue with the checkpoint's own config unless told otherwise
        from .checkpoint import Checkpoint
        from .config import from_dict

        cfg = from_dict(Checkpoint(args.resume).config)
    else:
        cfg = TrainConfig()
    flags = {k: getattr(args, k) for k in ("task", "data", "reasoner", "backbone", "out")}
    apply_overrides(cfg, [f"{k}={v}" for k, v in flags.items() if v is not None])
    apply_overrides(cfg, args.overrides)
    if not cfg.data:
        raise ValueError("data: give the dataset directory with --data DIR (or data=DIR)")
    trainer = Trainer(cfg, resume=args.resume)
    try:
        result = trainer.train()
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(json.dumps({"out": str(cfg.out), **result}, sort_keys=True))
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="checkpoint file or run directory")
    parser.add_argument("--env", required=True, metavar="ID",
                        help="tracegym/Sudoku-v0, tracegym/Maze-v0 or tracegym/ARC-v0")
    parser.add_argument("--episodes", type=int, default=100, help="episodes (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--mode", choices=("answer", "step"), default="answer",
                        help="submit whole answers, or act cell by cell / move by move")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="EMA weights when the checkpoint has them (default), or raw")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--augmentations", type=int, default=8,
                        help="ARC: augmented copies voted per task besides the identity")
    parser.add_argument("--identifiers", metavar="FILE",
                        help="ARC: identifiers.json (default: the training dataset's)")
    parser.add_argument("options", nargs="*", metavar="key=value",
                        help="env options for gym.make, e.g. size=4 difficulty=easy")


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .checkpoint import Checkpoint
    from .config import _parse_value
    from .evaluate import evaluate_in_env, load_identifiers
    from .trainer import pick_device, policy_from_checkpoint

    options = {}
    for pair in args.options:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"env option: expected key=value, got {pair!r}")
        options[key] = _parse_value(text)
    ckpt = Checkpoint(args.checkpoint)
    policy = policy_from_checkpoint(ckpt, pick_device(args.device), weights=args.weights)
    identifiers = None
    ident_path = Path(args.identifiers) if args.identifiers else \
        Path(ckpt.config.get("data", "")) / "identifiers.json"
    if args.env == "tracegym/ARC-v0" and ident_path.is_file():
        identifiers = load_identifiers(ident_path)
    result = evaluate_in_env(policy, args.env, episodes=args.episodes, seed=args.seed,
                             mode=args.mode, env_options=options, identifiers=identifiers,
                             augmentations=args.augmentations, progress=True)
    result.update(checkpoint=str(ckpt.path), step=ckpt.trainer_state["step"],
                  weights=args.weights)
    print(json.dumps(result, sort_keys=True))
    return 0


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with metrics.jsonl")
    parser.add_argument("--out", metavar="PNG", help="output file (default RUN_DIR/curves.png)")


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


# command -> (help, add_arguments, main), the shape of the envs' cli.COMMANDS tables
COMMANDS = {
    "train": ("train a reasoner on a dataset (TrainConfig fields as key=value)",
              _train_arguments, _train),
    "eval": ("evaluate a checkpoint in an environment; prints JSON", _eval_arguments, _eval),
    "plot": ("draw loss/accuracy curves of a run to PNG", _plot_arguments, _plot),
}
