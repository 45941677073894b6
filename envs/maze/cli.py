"""Maze subcommands of the ``tracegym`` CLI: ``solve maze`` and ``generate maze``."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from tracegym.checks import check_int

from .board import format_maze, read_mazes
from .generator import DEFAULT_SIZE, KINDS, MazeGenerator
from .solver import shortest_path


def add_solve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a text file of mazes, blocks separated by "
                        "an empty line ('#' wall, ' ' open, 'S' start, 'G' goal)")


def solve_main(args: argparse.Namespace) -> int:
    """Print each maze with one shortest path marked ``o`` and its length; an unreachable goal
    fails the command (exit 2) naming the maze."""
    mazes = read_mazes(args.file)
    for i, maze in enumerate(tqdm(mazes, desc="solving", unit="maze", delay=1.0,
                                  file=sys.stderr)):
        if i:
            print()
        try:
            length, label = shortest_path(maze)
        except ValueError as err:
            raise type(err)(f"{args.file}: maze {i + 1}: {err}") from None
        print(f"# shortest path: {length} moves")
        print(format_maze(label))
    return 0


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--count", type=int, default=3, help="how many mazes")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE,
                        help="side length (odd for perfect kinds)")
    parser.add_argument("--kind", default="hard", choices=KINDS, help="generator")
    parser.add_argument("--seed", type=int, default=0, help="seed; item i is rebuilt from "
                        "(seed, i) alone")
    parser.add_argument("--solutions", action="store_true",
                        help="print the mazes with one shortest path marked")


def generate_main(args: argparse.Namespace) -> int:
    """Print ``--count`` mazes as text blocks separated by empty lines."""
    check_int("count", args.count, 0)
    mazes, labels, _ = MazeGenerator(args.size, args.kind).generate_arrays(args.seed, args.count)
    print("\n\n".join(format_maze(g) for g in (labels if args.solutions else mazes)))
    return 0


# Commands this env adds to the CLI: "COMMAND TASK" -> (help, add_arguments, main).
COMMANDS = {
    "solve maze": ("mark a shortest path in each maze of a file", add_solve_arguments,
                   solve_main),
    "generate maze": ("print generated mazes", add_generate_arguments, generate_main),
}
