"""``tracegym train``, ``tracegym eval`` and ``tracegym plot`` (registered by tracegym/cli.py).

Importing this module is cheap (argparse only); torch loads when a command runs.

    tracegym train --task sudoku --data DIR --reasoner trm --backbone mlp_mixer --out runs/x \\
        max_steps=500 lr=3e-4 model.dim=64
    tracegym train --config configs/trm-sudoku4-cpu.yaml --data DIR --out runs/x
    tracegym train --config configs/trm-maze-hard.yaml --smoke --data DIR  # CPU-sized, 50 steps
    torchrun --nproc_per_node=4 -m tracegym train --config configs/trm-arc-agi-1.yaml --data DIR
    tracegym train --resume runs/x                     # continues exactly where runs/x stopped
    tracegym eval --checkpoint runs/x --env tracegym/Sudoku-v0 --episodes 100 size=4
    tracegym eval --checkpoint runs/x --data DIR       # the dataset's fixed test split
    tracegym eval --checkpoint runs/arc --data DIR --env tracegym/ARC-v0 \
        dataset=arc-agi-1/evaluation                   # TRM's pass@1/pass@2, every test pair once
    tracegym plot runs/x

A run directory that already holds a run is refused unless ``--overwrite`` or ``--resume``.
Ctrl-C (SIGINT) or SIGTERM stops training after the step in progress, writes the checkpoint and
prints the command that resumes it (exit status 130 or 143).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import textwrap

from . import trace_model_cli


class _ReasonerOption(argparse.Action):
    """``--reasoner NAME``, which also adds NAME's ``model.KEY`` options to the help, so
    ``--reasoner trm --help`` lists them. That imports torch (only then: a plain ``--help`` stays
    light), which a run naming a reasoner loads anyway."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        parser.epilog += "\n\n" + _reasoner_keys_help(values, _help_width())


def _help_width() -> int:
    return max(40, min(100, shutil.get_terminal_size().columns - 2))  # as argparse wraps


def _reasoner_keys_help(name: str, width: int) -> str:
    """The config keys of reasoner ``name`` as ``model.KEY=default`` lines with their docs."""
    from tracegym.agents.reasoners import REASONERS
    from tracegym.dataclass_docs import describe_fields

    if name not in REASONERS:
        return textwrap.fill(f"(no reasoner {name!r} to list the keys of; reasoners: "
                             f"{', '.join(REASONERS)})", width)
    config = REASONERS[name].Config
    docs, defaults = config.field_docs(), config.defaults()
    rows = [(f"model.{key}", defaults[key], docs[key]) for key in config.keys() if key != "loss"]
    return (f"model.KEY=VALUE options of --reasoner {name} ({config.__name__}; its loss is the "
            f"loss field above):\n" + describe_fields(rows, width=width))


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from .config import fields_help

    parser.add_argument("--config", metavar="FILE", help="YAML or JSON TrainConfig to start from")
    parser.add_argument("--smoke", action="store_true",
                        help="apply the --config file's smoke: overrides (the same recipe at CPU "
                             "size for a few steps: checks a GPU config end to end)")
    parser.add_argument("--task", help="sudoku, maze, arc or exectrace; must match the dataset")
    parser.add_argument("--data", metavar="DIR", help="dataset directory (TRM layout)")
    parser.add_argument("--reasoner", action=_ReasonerOption,
                        help="trm, hrm, feedforward, diffusion, ...; before --help: also list "
                             "its model.KEY options")
    parser.add_argument("--backbone", help="mlp_mixer, transformer, hybrid, ...")
    parser.add_argument("--out", metavar="DIR",
                        help="run directory; the checkpoint's when resuming")
    parser.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue the run of this checkpoint file or run directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="TrainConfig fields, e.g. max_steps=1000 lr=3e-4 model.dim=64 "
                             "(listed below)")
    # the help lists every TrainConfig field from its docstring, kept as laid out
    parser.formatter_class = type("_TrainHelpFormatter", (argparse.RawDescriptionHelpFormatter,
                                                          parser.formatter_class), {})
    width = _help_width()
    intro = ("TrainConfig fields, as key=value after the options (a --config file sets them too; "
             "the flags set task, data, reasoner, backbone and out). model.KEY=VALUE sets a key "
             "of the reasoner's config; `tracegym train --reasoner NAME --help` lists them.")
    parser.epilog = textwrap.fill(intro, width) + "\n\n" + fields_help(width)


def _same_dir(a, b) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _summary(cfg, result: dict) -> str:
    """One line saying which limit ended the run."""
    limit = {"max_steps": f"max_steps={cfg.max_steps}", "epochs": f"epochs={cfg.epochs}",
             "time_budget_s": f"time_budget_s={cfg.time_budget_s:g}" if cfg.time_budget_s
             else "time_budget_s", "stop_after": "stop_after",
             "interrupt": result.get("signal") or "a signal"}[result["stopped_by"]]
    line = f"train: stopped by {limit} at step {result['step']} after {result['seconds']:.1f} s"
    if result["stopped_by"] == "epochs" and cfg.time_budget_s:
        line += (f", before time_budget_s={cfg.time_budget_s:g}: set a larger epochs or "
                 "max_steps to use the budget")
    return line


def _train(args: argparse.Namespace) -> int:
    from .config import TrainConfig, apply_overrides, from_dict, load_config
    from .rundir import prepare_run_dir, run_dir_of

    if args.smoke and not args.config:
        from tracegym.errors import TracegymError

        raise TracegymError("--smoke applies a --config file's smoke: overrides; give --config")
    if args.config:
        cfg = load_config(args.config, smoke=args.smoke)
    elif args.resume:  # continue with the checkpoint's own config unless told otherwise
        from .checkpoint import Checkpoint

        cfg = from_dict(Checkpoint(args.resume).config)
    else:
        cfg = TrainConfig()
    flags = {k: getattr(args, k) for k in ("task", "data", "reasoner", "backbone", "out")}
    apply_overrides(cfg, [f"{k}={v}" for k, v in flags.items() if v is not None])
    apply_overrides(cfg, args.overrides)
    resume_dir = run_dir_of(args.resume) if args.resume else None
    out_given = args.out is not None or any(p.startswith("out=") for p in args.overrides)
    if resume_dir is not None and not out_given:
        cfg.out = str(resume_dir)  # the run the user pointed at, not the one it was copied from
    cfg.validate()
    if not cfg.data:
        from tracegym.errors import TracegymError

        raise TracegymError("data: give the dataset directory with --data DIR (or data=DIR)")
    in_place = resume_dir is not None and _same_dir(resume_dir, cfg.out)
    if int(os.environ.get("RANK", "0")) == 0:  # DDP: rank 0 owns the run directory
        prepare_run_dir(cfg.out, overwrite=args.overwrite, resume=in_place)
        if resume_dir is not None and not in_place and (resume_dir / "metrics.jsonl").is_file():
            import shutil

            shutil.copyfile(resume_dir / "metrics.jsonl", os.path.join(cfg.out, "metrics.jsonl"))

    from .trainer import Trainer

    trainer = Trainer(cfg, resume=args.resume)
    try:
        result = trainer.train()
    finally:
        trainer.close()
    if not trainer.dist.is_main:
        return 0
    print(json.dumps({"out": str(cfg.out), **result}, sort_keys=True))
    print(_summary(cfg, result), file=sys.stderr)
    if result["stopped_by"] != "interrupt":
        return 0
    print(f"train: checkpoint written to {result['checkpoint']}; resume with:\n"
          f"  tracegym train --resume {shlex.quote(str(cfg.out))}", file=sys.stderr)
    return 128 + int(trainer.signal or 2)  # the shell's status for death by that signal


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CHECKPOINT",
                        help="checkpoint file or run directory")
    parser.add_argument("--env", metavar="ID",
                        help="an env with an agent I/O module: tracegym/Sudoku-v0, "
                             "tracegym/Maze-v0 or tracegym/ARC-v0 (ARC with a task set: every "
                             "test pair once, pass@K per task)")
    parser.add_argument("--data", metavar="DIR",
                        help="also (or only) score this dataset's test split: exact and token "
                             "accuracy, and for ARC pass@K with TRM's voting")
    parser.add_argument("--split", default="test", help="the --data split to score")
    parser.add_argument("--episodes", type=int, default=None,
                        help="episodes to play, 100 if omitted; ARC with a task set: omit it "
                             "to walk every test pair once, give it to sample episodes")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--mode", choices=("answer", "step"), default="answer",
                        help="submit whole answers, or act cell by cell / move by move")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="EMA weights (when the run kept them) or the raw weights")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="examples (--data) or episodes (--env) per model call")
    parser.add_argument("--augmentations", type=int, default=8,
                        help="ARC in the env: augmented copies voted per test pair besides the "
                             "identity")
    parser.add_argument("--identifiers", metavar="FILE",
                        help="identifiers.json (puzzle ids of augmented copies, used by ARC); "
                             "the training dataset's if omitted")
    parser.add_argument("--per-task", action="store_true",
                        help="ARC: list every task's pass@K in the JSON")
    parser.add_argument("options", nargs="*", metavar="key=value",
                        help="env options for gym.make, e.g. size=4 difficulty=hard "
                             "dataset=arc-agi-1/evaluation")


def _eval(args: argparse.Namespace) -> int:
    from tracegym.errors import TracegymError

    from .config import _parse_value

    if not args.env and not args.data:
        raise TracegymError("eval: give --env ID (play episodes), --data DIR (score its test "
                            "split), or both")
    options = {}
    for pair in args.options:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise TracegymError(f"env option: expected key=value, got {pair!r}")
        options[key] = _parse_value(text)
    if "mode" in options:  # before the slow part: a common slip, with its own advice
        raise TracegymError(f"mode={options['mode']} is not an env option: use --mode "
                            f"{options['mode']}")
    if options and not args.env:
        raise TracegymError(f"env options {sorted(options)} need --env")

    from .checkpoint import Checkpoint
    from .prepare import pick_device, policy_from_checkpoint

    ckpt = Checkpoint(args.checkpoint)
    data_task = _eval_data_task(ckpt, args.data, args.split) if args.data else None
    policy = policy_from_checkpoint(ckpt, pick_device(args.device), weights=args.weights)
    result = {}
    if args.env:
        result.update(_eval_env(args, ckpt, policy, options))
    if args.data:
        result["test_split"] = _eval_data(args, policy, data_task)
    if not args.per_task:
        result.pop("per_task", None)
        result.get("test_split", {}).pop("per_task", None)
    result.update(checkpoint=str(ckpt.path), step=ckpt.trainer_state["step"],
                  weights=ckpt.weights_used(args.weights))
    print(json.dumps(result, sort_keys=True))
    return 0


def _eval_data_task(ckpt, data: str, split: str) -> str | None:
    """The task of the dataset at ``data``, checked against the checkpoint's before the model
    loads."""
    from tracegym.datasets.writer import read_split

    from .prepare import check_dataset_task, dataset_task

    metadata, _ = read_split(data, split)
    check_dataset_task(ckpt.task_spec["name"], data, metadata)
    return dataset_task(data, metadata)


def _eval_env(args, ckpt, policy, options: dict) -> dict:
    from pathlib import Path

    from .arc_eval import evaluate_arc_env, walkable
    from .evaluate import evaluate_in_env, load_identifiers
    from .tasks import task_of_env

    identifiers = None
    ident_path = Path(args.identifiers) if args.identifiers else \
        Path(ckpt.config.get("data", "")) / "identifiers.json"
    if ident_path.is_file():  # tasks that answer no augmented copies ignore them
        identifiers = load_identifiers(ident_path)
    walk = (task_of_env(args.env) == "arc" and args.episodes is None and args.mode == "answer"
            and walkable(options.get("dataset")))
    if walk:  # the paper's protocol: every test pair of the task set once, pass@K per task
        return evaluate_arc_env(policy, args.env, env_options=options, identifiers=identifiers,
                                augmentations=args.augmentations, seed=args.seed,
                                progress=True)
    return evaluate_in_env(policy, args.env, episodes=args.episodes, seed=args.seed,
                           mode=args.mode, env_options=options, identifiers=identifiers,
                           augmentations=args.augmentations, batch_size=args.batch_size,
                           progress=True)


def _eval_data(args, policy, task: str | None) -> dict:
    from .arc_eval import evaluate_arc_split
    from .evaluate import evaluate_split

    if task == "arc":  # TRM's evaluator: vote over every copy of every test pair
        return evaluate_arc_split(policy, args.data, split=args.split,
                                  batch_size=args.batch_size, progress=True)
    return evaluate_split(policy, args.data, split=args.split, batch_size=args.batch_size,
                          progress=True)


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="DIR", help="run directory holding metrics.jsonl")
    parser.add_argument("--out", metavar="FILE", help="PNG to write; DIR/curves.png if omitted")


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


# command -> (help, add_arguments, main); read by tracegym/cli.py
COMMANDS = {
    "train": ("train a reasoner on a dataset (TrainConfig fields as key=value)",
              _train_arguments, _train),
    "eval": ("evaluate a checkpoint in an environment and/or on a dataset's test split; prints "
             "JSON", _eval_arguments, _eval),
    "plot": ("draw loss/accuracy curves of a run to PNG", _plot_arguments, _plot),
    "trace-model": ("use a trained trace model: predict one trace, or eval on ExecTrace",
                    trace_model_cli.add_arguments, trace_model_cli.main),
}
