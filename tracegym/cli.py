"""The ``tracegym`` command line (also ``python -m tracegym``).

Subcommands are found, not listed here: ``tracegym data <task>`` for every dataset builder module
``tracegym.datasets.<task>`` that defines ``add_arguments(parser)`` and ``main(args)``, and
``tracegym <command> <task>`` for every ``COMMANDS`` table in an env's ``cli`` module
(``tracegym.envs.<task>.cli``); the task word may be left out for the default task, so
``tracegym solve PUZZLE`` means ``tracegym solve sudoku PUZZLE``. Bad input prints one line on
stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
import sys

from tracegym.errors import TracegymError

DEFAULT_TASK = "sudoku"  # the task of `tracegym <command>` when no task word follows
# modules whose COMMANDS table, {name: (help, add_arguments, main)}, adds top-level commands
COMMAND_MODULES = ("tracegym.tracers.cli", "tracegym.training.cli",
                   "tracegym.agents.trace_model_cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _task_names() -> list[str]:
    from tracegym import envs

    return sorted(m.name for m in pkgutil.iter_modules(envs.__path__) if m.ispkg)


def _builder_names() -> list[str]:
    from tracegym import datasets

    return sorted(m.name for m in pkgutil.iter_modules(datasets.__path__) if not m.ispkg)


def _optional_module(name: str):
    """Import ``name`` if it exists (a task may have no builder or no CLI module)."""
    try:
        found = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # the parent package is absent
        return None
    return importlib.import_module(name) if found else None


def _env_commands() -> dict[str, dict[str, tuple]]:
    """command -> task -> (help, add_arguments, main), from every env's ``cli.COMMANDS``."""
    found: dict[str, dict[str, tuple]] = {}
    for task in _task_names():
        env_cli = _optional_module(f"tracegym.envs.{task}.cli")
        for name, spec in getattr(env_cli, "COMMANDS", {}).items():
            found.setdefault(name, {})[task] = spec
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tracegym", description="Puzzle and code-execution environments, "
                     "datasets and models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    data = commands.add_parser("data", help="build a dataset in the TRM layout plus Parquet")
    builders = data.add_subparsers(dest="task", required=True, metavar="TASK",
                                   parser_class=_Parser)
    for task in _builder_names():
        builder = _optional_module(f"tracegym.datasets.{task}")
        if builder is not None and hasattr(builder, "add_arguments") and hasattr(builder, "main"):
            sub = builders.add_parser(task, help=(builder.__doc__ or "").strip().splitlines()[0],
                                      description=builder.__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
            builder.add_arguments(sub)
            sub.set_defaults(run=builder.main)

    for module in COMMAND_MODULES:
        table = importlib.import_module(module).COMMANDS
        for name, (help_text, add_arguments, run) in table.items():
            cmd = commands.add_parser(name, help=help_text, description=help_text)
            add_arguments(cmd)
            cmd.set_defaults(run=run)

    for name, per_task in sorted(_env_commands().items()):
        helps = "; ".join(f"{task}: {spec[0]}" for task, spec in per_task.items())
        cmd = commands.add_parser(name, help=helps)
        tasks = cmd.add_subparsers(dest="task", required=True, metavar="TASK",
                                   parser_class=_Parser)
        for task, (help_text, add_arguments, run) in per_task.items():
            sub = tasks.add_parser(task, help=help_text, description=help_text)
            add_arguments(sub)
            sub.set_defaults(run=run)
    return parser


def _with_default_task(argv: list[str]) -> list[str]:
    commands = _env_commands()
    if len(argv) >= 2 and argv[0] in commands and argv[1] not in commands[argv[0]] \
            and argv[1] not in ("-h", "--help") and DEFAULT_TASK in commands[argv[0]]:
        return [argv[0], DEFAULT_TASK, *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_with_default_task(sys.argv[1:] if argv is None else list(argv)))
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # `tracegym ... | head`: the reader left, not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
        return 0
    except (TracegymError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"tracegym: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tracegym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
