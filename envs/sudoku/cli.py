"""Sudoku subcommands of the ``tracegym`` CLI: ``solve`` and ``generate``."""

from __future__ import annotations

import argparse
import os
import sys

from tqdm import tqdm

from tracegym.errors import MultipleSolutionsError, UnsolvableError

from .board import SIZES, format_puzzle, parse_puzzle, read_puzzles
from .generator import DEFAULT_DIFFICULTY, DIFFICULTIES, SudokuGenerator
from .render import render_ansi
from .solver import count_solutions


def add_solve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("puzzle", help="a puzzle line (81 characters for 9x9, '.' or '0' for "
                        "blanks) or a file with one puzzle per line")
    parser.add_argument("--grid", action="store_true", help="print solutions as boxed grids")
    parser.add_argument("--stats", action="store_true",
                        help="append the solver's effort (nodes, guesses) to each line")


def solve_main(args: argparse.Namespace) -> int:
    """One puzzle: print its solution, or fail (exit 2) on none / several. A file: one output
    line per puzzle, ``no solution`` / ``multiple solutions`` in place of the failures, exit 1 if
    any failed."""
    text = args.puzzle
    if os.path.isfile(text):
        grids = read_puzzles(text)
        failed = 0
        for grid in tqdm(grids, desc="solving", unit="puzzle", delay=1.0, file=sys.stderr):
            result = count_solutions(grid, 2)
            if result.num_solutions == 1:
                _print_solution(result, grid, args)
            else:
                failed += 1
                print("no solution" if result.num_solutions == 0 else "multiple solutions")
        return 1 if failed else 0
    grid = parse_puzzle(text)
    result = count_solutions(grid, 2)
    if result.num_solutions == 0:
        raise UnsolvableError("puzzle: no solution")
    if result.num_solutions > 1:
        raise MultipleSolutionsError("puzzle: multiple solutions")
    _print_solution(result, grid, args)
    return 0


def _print_solution(result, grid, args) -> None:
    line = render_ansi(result.solution, grid != 0) if args.grid else format_puzzle(result.solution)
    if args.stats:
        line = f"{line.rstrip()}  nodes={result.nodes} guesses={result.guesses}"
    print(line.rstrip("\n"))


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--count", type=int, default=10, help="how many puzzles")
    parser.add_argument("--size", type=int, default=9, choices=SIZES, help="board side")
    parser.add_argument("--difficulty", default=DEFAULT_DIFFICULTY, choices=DIFFICULTIES,
                        help="generator level")
    parser.add_argument("--seed", type=int, default=0, help="seed; item i is rebuilt from "
                        "(seed, i) alone")
    parser.add_argument("--solutions", action="store_true",
                        help="print 'puzzle solution' pairs instead of puzzles alone")


def generate_main(args: argparse.Namespace) -> int:
    """Print ``--count`` unique-solution puzzles, one per line."""
    if args.count < 0:
        raise ValueError(f"count must be >= 0, got {args.count}")
    gen = SudokuGenerator(args.size, args.difficulty)
    chunk = 256
    with tqdm(total=args.count, desc="generating", unit="puzzle", delay=1.0,
              file=sys.stderr) as bar:
        for start in range(0, args.count, chunk):
            puzzles, solutions, _ = gen.generate_arrays(args.seed, min(chunk, args.count - start),
                                                        start)
            for p, s in zip(puzzles, solutions):
                print(f"{format_puzzle(p)} {format_puzzle(s)}" if args.solutions
                      else format_puzzle(p))
            bar.update(len(puzzles))
    return 0


# Subcommands this env adds to the CLI: name -> (help, add_arguments, main).
COMMANDS = {
    "solve": ("solve puzzles given as a line or a file", add_solve_arguments, solve_main),
    "generate": ("print generated unique-solution puzzles", add_generate_arguments,
                 generate_main),
}
