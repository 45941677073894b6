"""``tracegym data TASK``: the command line of the dataset builders.

Each builder is a library function (``build_sudoku_dataset`` in :mod:`.sudoku`, and so on) that
returns a summary; this module gives each one its options and prints the summary as one line.
The builder modules are imported only when their command runs, so listing the commands stays
cheap. ``python -m pydoc tracegym.datasets.TASK`` has each layout in full.
"""

from __future__ import annotations

import argparse

from .common import parse_shard

# ---------------------------------------------------------------------------------------------
# options every builder shares


def add_out_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` and ``--overwrite``, as every builder takes them."""
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory, missing or empty (see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace DIR if it is not empty")


def add_shard_argument(parser: argparse.ArgumentParser, what: str) -> None:
    # a str default goes through parse_shard too, and --help shows it as typed
    parser.add_argument("--shard", type=parse_shard, default="0/1", metavar="I/N",
                        help=f"build only slice I of N of {what}")


def add_engine_arguments(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """``--engine``, ``--ray-address`` and (unless the builder has its own) ``--workers``: where
    the items are made; the files are the same on every engine (:mod:`.engines`)."""
    from .engines import ENGINES, default_workers

    parser.add_argument("--engine", default="local", choices=ENGINES,
                        help="local: this machine's processes; ray: tasks on a Ray cluster "
                             "(pip install 'tracegym[ray]')")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="ray: the cluster (unset: RAY_ADDRESS, else a local Ray of --workers "
                             "CPUs)")
    if workers:
        parser.add_argument("--workers", type=int, default=default_workers(), metavar="N",
                            help="local: worker processes (>= 1; 1: this process)")


def _engine(args: argparse.Namespace) -> dict:
    """The builder's engine arguments from the flags of :func:`add_engine_arguments`."""
    return {"engine": args.engine, "workers": args.workers, "ray_address": args.ray_address}


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_split_arguments(parser: argparse.ArgumentParser, *, unit: str, test: int,
                        augment_help: str) -> None:
    """The flags of the puzzle builders: output, split sizes, augmentation, seed, shard."""
    add_out_arguments(parser)
    parser.add_argument("--train", type=int, default=1000, metavar="N",
                        help=f"train {unit}s in the whole dataset, before augmentation (>= 1)")
    parser.add_argument("--test", type=int, default=test, metavar="N",
                        help=f"test {unit}s in the whole dataset (>= 0; never augmented)")
    parser.add_argument("--augment", type=int, default=0, metavar="N", help=augment_help)
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="base seed of every random stream")
    add_shard_argument(parser, "both splits")
    add_engine_arguments(parser)
    add_progress_argument(parser)


def _full_description(parser: argparse.ArgumentParser, task: str) -> None:
    parser.epilog = f"Full description: python -m pydoc tracegym.datasets.{task}"


# ---------------------------------------------------------------------------------------------
# sudoku


def add_sudoku_arguments(parser: argparse.ArgumentParser) -> None:
    from tracegym.envs.sudoku.board import SIZES
    from tracegym.envs.sudoku.generator import DEFAULT_DIFFICULTY, DIFFICULTIES

    parser.add_argument("--size", type=int, default=9, choices=SIZES, help="board side")
    parser.add_argument("--difficulty", default=DEFAULT_DIFFICULTY, choices=DIFFICULTIES,
                        help="generator level")
    add_split_arguments(parser, unit="puzzle", test=200,
                        augment_help="augmented copies per train puzzle (>= 0)")
    _full_description(parser, "sudoku")


def sudoku_main(args: argparse.Namespace) -> int:
    from .sudoku import build_sudoku_dataset

    summary = build_sudoku_dataset(
        args.out, size=args.size, difficulty=args.difficulty, train=args.train, test=args.test,
        augment=args.augment, seed=args.seed, shard=args.shard, overwrite=args.overwrite,
        progress=not args.no_progress, **_engine(args))
    i, n = summary["shard"]
    print(f"wrote {summary['out']}: train {summary['train_puzzles']} puzzles x "
          f"{1 + summary['augment']} = {summary['train_examples']} examples, test "
          f"{summary['test_puzzles']} puzzles ({summary['size']}x{summary['size']} "
          f"{summary['difficulty']}, seed {summary['seed']}, shard {i}/{n}, "
          f"{summary['rejected']} train draws rejected as test look-alikes)")
    return 0


# ---------------------------------------------------------------------------------------------
# maze


def add_maze_arguments(parser: argparse.ArgumentParser) -> None:
    from tracegym.envs.maze.generator import DEFAULT_SIZE, HARD_WALL_DENSITY, KINDS

    parser.add_argument("--kind", default="hard", choices=KINDS, help="generator kind")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, metavar="N",
                        help="grid side (5..255; odd for backtracker and kruskal)")
    parser.add_argument("--min-path", type=int, default=None, metavar="N",
                        help="hard mazes: shortest path longer than N moves (unset: 110 at "
                             "30x30, scaled by area)")
    parser.add_argument("--wall-density", type=float, default=HARD_WALL_DENSITY, metavar="P",
                        help="hard mazes: chance of a random interior wall")
    parser.add_argument("--allow-ties", action="store_true",
                        help="hard mazes: keep several shortest paths (the label marks one) "
                             "instead of walling ties off")
    add_split_arguments(parser, unit="maze", test=1000,
                        augment_help="dihedral copies per train maze (0..7)")
    _full_description(parser, "maze")


def maze_main(args: argparse.Namespace) -> int:
    from .maze import build_maze_dataset

    summary = build_maze_dataset(
        args.out, kind=args.kind, size=args.size, train=args.train, test=args.test,
        augment=args.augment, seed=args.seed, min_path=args.min_path,
        wall_density=args.wall_density, allow_ties=args.allow_ties, shard=args.shard,
        overwrite=args.overwrite, progress=not args.no_progress, **_engine(args))
    i, n = summary["shard"]
    print(f"wrote {summary['out']}: train {summary['train_puzzles']} mazes x "
          f"{1 + summary['augment']} = {summary['train_examples']} examples, test "
          f"{summary['test_puzzles']} mazes ({summary['size']}x{summary['size']} "
          f"{summary['kind']}{', ties allowed' if summary['allow_ties'] else ''}, "
          f"seed {summary['seed']}, shard {i}/{n}, "
          f"{summary['rejected']} train draws rejected as test look-alikes)")
    return 0


# ---------------------------------------------------------------------------------------------
# arc

class _Given(argparse.Action):
    """Stores the value and records the option in ``namespace.given``, so that ``arc_main``
    tells a count typed by the user from its default (shown by ``--help``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_arc_arguments(parser: argparse.ArgumentParser) -> None:
    from .arc import DEFAULT_PROCEDURAL_TASKS, SIDE

    parser.add_argument("--set", dest="arc_set", default="arc-agi-1", metavar="SET",
                        help="arc-agi-1, arc-agi-2 (need tracegym[arc]), procedural (all "
                             "generated families) or procedural/FAMILY")
    add_out_arguments(parser)
    parser.add_argument("--train", type=int, action=_Given, metavar="N",
                        default=DEFAULT_PROCEDURAL_TASKS[0],
                        help="procedural sets only: training tasks to generate")
    parser.add_argument("--test", type=int, action=_Given, metavar="N",
                        default=DEFAULT_PROCEDURAL_TASKS[1],
                        help="procedural sets only: evaluation tasks to generate")
    parser.add_argument("--augment", type=int, default=0, metavar="N",
                        help="augmented copies per task (dihedral x colour permutation)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the augmentation streams")
    add_shard_argument(parser, "the tasks")
    parser.add_argument("--side", type=int, default=SIDE, metavar="N",
                        help="token canvas N x N, N in 1..30 (30 is TRM's); every grid must fit "
                             "it (10 fits procedural/flip)")
    parser.add_argument("--no-translate", action="store_true",
                        help="keep train grids at the top-left corner (no TRM translation)")
    parser.add_argument("--no-concept", action="store_true",
                        help="ARC-AGI sets: leave ConceptARC (160 tasks, added to train as TRM "
                             "and HRM train) out")
    add_engine_arguments(parser)
    add_progress_argument(parser)
    _full_description(parser, "arc")


def arc_main(args: argparse.Namespace) -> int:
    from .arc import SIDE, build_arc_dataset

    # counts only when typed: a real ARC set refuses them, a procedural one defaults them
    tasks = (args.train, args.test) if getattr(args, "given", set()) & {"train", "test"} \
        else None
    s = build_arc_dataset(args.out, arc_set=args.arc_set, augment=args.augment, seed=args.seed,
                          tasks=tasks, shard=args.shard, translate=not args.no_translate,
                          concept=False if args.no_concept else None, side=args.side,
                          overwrite=args.overwrite, progress=not args.no_progress,
                          **_engine(args))
    i, n = s["shard"]
    canvas = "" if args.side == SIDE else f" on a {args.side}x{args.side} canvas"
    print(f"wrote {s['out']}: {s['tasks']} {s['set']} tasks ({s['puzzles']} puzzles with the "
          f"copies of all shards), train {s['train_examples']} examples, test "
          f"{s['test_examples']}{canvas} (seed {s['seed']}, shard {i}/{n}, "
          f"{s['dropped_train_examples']} train examples dropped: their pair is a test pair)")
    return 0


# ---------------------------------------------------------------------------------------------
# traces


def add_traces_arguments(parser: argparse.ArgumentParser) -> None:
    # the source is an option, not a positional FILE: it defaults to generated programs
    parser.add_argument("--source", default="generated", metavar="SOURCE",
                        help="generated, cruxeval, or a DIR of .py files (with --spec FILE)")
    parser.add_argument("--spec", default=None, metavar="FILE",
                        help="a DIR source's .json/.toml spec: file -> entry -> inputs")
    add_out_arguments(parser)
    parser.add_argument("--n", type=int, default=None, metavar="N",
                        help="programs in the whole dataset (>= 1; unset: 100 generated, or "
                             "every program of the source)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seeds the generated programs and the train/test split")
    parser.add_argument("--kind", default="mixed", choices=("straight_line", "loops", "mixed"),
                        help="kind of generated program")
    parser.add_argument("--max-statements", type=int, default=8, metavar="N",
                        help="generated programs: at most N statements in f (>= 2)")
    parser.add_argument("--max-params", type=int, default=3, metavar="N",
                        help="generated programs: at most N parameters of f (>= 1)")
    add_shard_argument(parser, "the programs")
    parser.add_argument("--max-events", type=int, default=10_000, metavar="N",
                        help="trace events recorded per call, then 'truncated' (>= 1)")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--sandbox", dest="sandbox", action="store_true", default=None,
                     help="run each call in the sandbox (the default for a DIR source)")
    run.add_argument("--in-process", dest="sandbox", action="store_false", default=None,
                     help="run calls in this process (the default for generated and cruxeval)")
    parser.add_argument("--inputs-per-program", type=int, default=None, metavar="K",
                        help="calls generated per program (unset: 3), or at most K of each "
                             "listed program's calls (unset: all)")
    parser.add_argument("--test-fraction", type=float, default=0.1, metavar="F",
                        help="share of programs in the test split, by source hash (0..1)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="wall time per call (> 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="sandboxed calls run at once (>= 1; in-process runs use one)")
    add_engine_arguments(parser, workers=False)
    add_progress_argument(parser)
    _full_description(parser, "traces")


def _traces_engine(args: argparse.Namespace) -> dict:
    # the local engine is the builder's default: its --workers are threads of sandboxed calls
    if args.engine == "local" and args.ray_address is None:
        return {}
    return {"engine": args.engine, "ray_address": args.ray_address}


def traces_main(args: argparse.Namespace) -> int:
    from .traces import build_trace_dataset

    summary = build_trace_dataset(
        args.out, source=args.source, spec=args.spec, n=args.n, seed=args.seed, kind=args.kind,
        shard=args.shard, max_events=args.max_events, sandbox=args.sandbox,
        inputs_per_program=args.inputs_per_program, test_fraction=args.test_fraction,
        timeout=args.timeout, workers=args.workers, overwrite=args.overwrite,
        progress=not args.no_progress, max_statements=args.max_statements,
        max_params=args.max_params, **_traces_engine(args))
    i, n = summary["arguments"]["shard"]
    counts = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()) or "none"
    print(f"wrote {summary['out']}: {summary['records']} traces of {summary['programs']} "
          f"programs ({summary['isolation']}, shard {i}/{n}; {counts})")
    return 0


# ---------------------------------------------------------------------------------------------
# trace_lm


def add_trace_lm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--traces", required=True, metavar="DIR", nargs="+",
                        help="`tracegym data traces` output directories, read in order")
    add_out_arguments(parser)
    parser.add_argument("--task", default="next_frame", metavar="TASK",
                        help="next_frame, output, trace, both (next_frame,output) or a comma "
                             "list")
    parser.add_argument("--seq-len", type=int, default=512, metavar="N",
                        help="tokens per example (longer next_frame prompts drop old frames; "
                             "what still does not fit is rejected)")
    add_engine_arguments(parser)
    _full_description(parser, "trace_lm")


def trace_lm_main(args: argparse.Namespace) -> int:
    from .trace_lm import build_trace_lm_dataset

    summary = build_trace_lm_dataset(args.traces, args.out, task=args.task,
                                     seq_len=args.seq_len, overwrite=args.overwrite,
                                     **_engine(args))
    parts = "; ".join(f"{s}: {c['examples']} examples, {c['programs']} programs, "
                      f"{c.get('truncated', 0)} truncated, {c.get('rejected_too_long', 0)} "
                      f"rejected" for s, c in summary["splits"].items())
    print(f"wrote {summary['out']} ({args.task}, seq_len {args.seq_len}): {parts}")
    return 0


# `tracegym data TASK` -> (help, add_arguments, main); the helps are read from this literal
# without importing anything (tracegym/cli.py)
COMMANDS = {
    "data sudoku": ("generated Sudoku puzzles in the TRM layout plus Parquet",
                    add_sudoku_arguments, sudoku_main),
    "data maze": ("generated mazes (Maze-Hard by default) in the TRM layout plus Parquet",
                  add_maze_arguments, maze_main),
    "data arc": ("ARC-AGI or generated ARC tasks in the TRM layout plus Parquet",
                 add_arc_arguments, arc_main),
    "data traces": ("execution traces (CWM format) of programs, as JSON Lines and Parquet",
                    add_traces_arguments, traces_main),
    "data trace_lm": ("token examples for trace models, from `tracegym data traces` output",
                      add_trace_lm_arguments, trace_lm_main),
}
