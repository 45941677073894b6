"""Sudoku subcommands of the ``tracegym`` CLI: ``solve`` and ``generate``.

``solve PUZZLE`` runs the plain-Python solver (:mod:`.plain_solver`): for one puzzle, loading the
compiled solver costs more than the search. A search past its node budget, and ``--stats`` (whose
effort figures are the compiled solver's, as for a file), go to the compiled solver.

``solve FILE`` works on the whole file at once: numpy turns the lines into grids and checks them,
the compiled solver runs the batch on every core (:func:`~.solver.solve_batch`), and the answers
are written in one go, so the rate is the solver's rather than Python's per-line overhead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

from tracegym.checks import check_int
from tracegym.errors import (
    MultipleSolutionsError,
    PuzzleFormatError,
    UnsolvableError,
)
from tracegym.grid import DIGIT_CHARS, digit_alphabet

from .board import SIZES, check_givens, format_puzzle, geometry, parse_puzzle

# byte -> cell value for every size at once; NOT_A_CELL marks bytes no puzzle holds, and a value
# above the puzzle's size (an "A" in a 9x9 line) is caught by the same range check
NOT_A_CELL = 127
_CELL_OF_BYTE = np.full(256, NOT_A_CELL, dtype=np.int8)
for _char, _value in digit_alphabet(max(SIZES)).items():
    _CELL_OF_BYTE[ord(_char)] = _value
_PUZZLE_CHARS = set(digit_alphabet(max(SIZES)))
SOLVE_CHUNK = 1 << 14  # puzzles per compiled call: a progress update per chunk on large files


def add_solve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("puzzle", metavar="PUZZLE", help="a puzzle line (81 characters for 9x9, "
                        "'.' or '0' for blanks) or a FILE with one puzzle per line")
    parser.add_argument("--grid", action="store_true", help="print solutions as boxed grids")
    parser.add_argument("--stats", action="store_true",
                        help="append the solver's effort (nodes, guesses) to each line")


def _looks_like_path(text: str) -> bool:
    """A path separator, or a file extension (``.txt``) on text no puzzle line could be."""
    if os.sep in text or (os.altsep and os.altsep in text):
        return True
    return bool(re.search(r"\.\w+$", text)) and not set("".join(text.split())) <= _PUZZLE_CHARS


def solve_main(args: argparse.Namespace) -> int:
    """One puzzle: print its solution, or fail (exit 2) on none / several. A file: one output
    line per puzzle, ``no solution`` / ``multiple solutions`` in place of the failures, exit 1 if
    any failed."""
    text = args.puzzle
    # `solve nonexistent.txt` is a missing file (said by the OSError), not a puzzle of length 15
    if os.path.exists(text) or _looks_like_path(text):
        return solve_file(text, grid=args.grid, stats=args.stats)
    grid = parse_puzzle(text)
    check_givens(grid)
    count, solution, nodes, guesses = _count_one(grid, compiled=args.stats)
    if count == 0:
        raise UnsolvableError("puzzle: no solution")
    if count > 1:
        raise MultipleSolutionsError("puzzle: multiple solutions")
    print(_answer(solution, grid, nodes, guesses, args.grid, args.stats))
    return 0


def _count_one(grid: np.ndarray, *, compiled: bool) -> tuple[int, np.ndarray | None, int, int]:
    """``(solutions up to 2, the first, nodes, guesses)`` of one checked puzzle: plain Python
    first, the compiled solver when asked or when the search runs past its budget."""
    if not compiled:
        from .plain_solver import SearchBudgetExceeded, count_solutions

        try:
            count, solution, nodes = count_solutions(grid.reshape(-1).tolist(), grid.shape[0])
        except SearchBudgetExceeded:
            pass
        else:
            found = None if solution is None else np.array(solution, np.int8).reshape(grid.shape)
            return count, found, nodes, -1  # guesses: reported by the compiled solver only
    from .solver import count_solutions

    result = count_solutions(grid, 2)
    return result.num_solutions, result.solution, result.nodes, result.guesses


def _answer(solution, grid, nodes, guesses, boxed: bool, stats: bool) -> str:
    from .render import render_ansi

    line = render_ansi(solution, grid != 0).rstrip("\n") if boxed else format_puzzle(solution)
    return f"{line}  nodes={nodes} guesses={guesses}" if stats else line


def read_puzzle_file(path: str | os.PathLike) -> tuple[dict[int, np.ndarray],
                                                      dict[int, np.ndarray]]:
    """All puzzles of a file, parsed and checked in bulk: ``(grids, rows)``, both keyed by size.

    ``grids[n]`` is ``(k, n, n)`` int8 (0 blank), ``rows[n]`` the puzzles' positions among the
    file's puzzles (empty lines and ``#`` comments skipped; sizes may be mixed). A malformed line
    raises what :func:`~.board.parse_puzzle` raises for it, naming ``file:line``; the first one in
    the file is reported.
    """
    with open(path, "rb") as file:  # an OSError here names the path as the user wrote it
        raw = file.read()
    path = Path(path)
    if any(mark in raw for mark in (b" ", b"\t", b"\v", b"\f", b"#")):
        numbers, texts = _puzzle_lines(raw)
    else:  # the common file, one bare puzzle per line: split in C, count lines only on error
        numbers, texts = None, raw.split()
    if not texts:
        raise PuzzleFormatError(f"puzzles: file {str(path)!r} holds no puzzle")
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    grids, rows, bad = {}, {}, []
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        n = next((s for s in SIZES if s * s == length), None)
        if n is None:
            bad.append(idx[0])
            continue
        chosen = texts if len(idx) == len(texts) else [texts[i] for i in idx]
        codes = np.frombuffer(b"".join(chosen), dtype=np.uint8)
        cells = _CELL_OF_BYTE[codes].reshape(len(idx), n * n)
        wrong = (cells > n).any(axis=1)
        wrong[~wrong] = _clashes(cells[~wrong], n)
        if wrong.any():
            bad.append(idx[np.argmax(wrong)])
        grids[n], rows[n] = cells.reshape(-1, n, n), idx
    if bad:
        first = min(bad)
        numbers = numbers or _puzzle_lines(raw)[0]
        field = f"{path.name}:{numbers[first]}"
        parse_puzzle(texts[first].decode("utf-8", "replace"), field=field)  # raises
        raise AssertionError(f"{field}: rejected in bulk but parsed alone")  # a bug of ours
    return grids, rows


def _puzzle_lines(raw: bytes) -> tuple[list[int], list[bytes]]:
    """(line numbers, texts) of the puzzle lines: whitespace removed, comments and blanks
    skipped."""
    lines = ((number, b"".join(line.split()))
             for number, line in enumerate(raw.split(b"\n"), start=1))
    kept = [(number, text) for number, text in lines if text and not text.startswith(b"#")]
    return [number for number, _ in kept], [text for _, text in kept]


def _clashes(cells: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``cells`` (k, n*n) where a digit repeats within a row, column or box."""
    units = geometry(n).units
    # one bit per digit: a unit holds a repeat iff the sum of its bits differs from their OR
    bits = np.where(cells > 0, np.left_shift(1, np.maximum(cells, 1).astype(np.int32) - 1), 0)
    out = np.zeros(len(cells), dtype=bool)
    for start in range(0, len(cells), SOLVE_CHUNK):  # bounds the (chunk, 3n, n) temporary
        in_units = bits[start:start + SOLVE_CHUNK][:, units]
        out[start:start + SOLVE_CHUNK] = (in_units.sum(axis=-1)
                                          != np.bitwise_or.reduce(in_units, axis=-1)).any(axis=1)
    return out


def solve_file(path: str | os.PathLike, *, grid: bool = False, stats: bool = False) -> int:
    """Solve every puzzle of a file (see :func:`solve_main`); returns the exit status."""
    from tqdm import tqdm

    from .solver import solve_batch

    grids, rows = read_puzzle_file(path)
    total = sum(len(r) for r in rows.values())
    plain = not (grid or stats)
    texts: dict[int, np.ndarray] = {}  # plain format: size -> (k, n*n + 1) bytes, newline last
    out: list[bytes] = [] if plain else [b""] * total
    counts_of: dict[int, np.ndarray] = {}
    with tqdm(total=total, desc="solving", unit="puzzle", delay=1.0, file=sys.stderr) as bar:
        for n, puzzles in grids.items():
            symbols = np.frombuffer(f"{DIGIT_CHARS[:n]}\n".encode("ascii"), dtype=np.uint8)
            counts_of[n] = np.zeros(len(puzzles), dtype=np.int64)
            if plain:
                texts[n] = np.full((len(puzzles), n * n + 1), n, dtype=np.int8)  # n: newline
            for start in range(0, len(puzzles), SOLVE_CHUNK):
                chunk = puzzles[start:start + SOLVE_CHUNK]
                solutions, counts, effort = solve_batch(chunk, limit=2, parallel=True)
                counts_of[n][start:start + len(chunk)] = counts
                if plain:  # digits -> symbol indices; the failed rows are replaced below
                    texts[n][start:start + len(chunk), :-1] = solutions.reshape(len(chunk), -1)
                    texts[n][start:start + len(chunk), :-1] -= 1
                else:  # the rare formats: Python per line is fine
                    for i, row in enumerate(rows[n][start:start + SOLVE_CHUNK]):
                        out[row] = _failure(counts[i]) if counts[i] != 1 else _answer(
                            solutions[i], chunk[i], *effort[i], grid, stats).encode("ascii")
                bar.update(len(chunk))
            if plain:
                texts[n] = symbols[texts[n]]
    failed = sum(int((c != 1).sum()) for c in counts_of.values())
    if not plain:
        data = b"\n".join([*out, b""])
    elif len(grids) == 1:  # one size (the common file): the lines are in file order already
        (n,) = grids
        data = _splice_failures(texts[n].tobytes(), n * n + 1, counts_of[n])
    else:  # mixed sizes: put each line back at its place in the file
        lines: list[bytes] = [b""] * total
        for n, text in texts.items():
            width = n * n + 1
            whole = text.tobytes()
            for i, row in enumerate(rows[n]):
                count = counts_of[n][i]
                lines[row] = whole[i * width:(i + 1) * width] if count == 1 else (
                    _failure(count) + b"\n")
        data = b"".join(lines)
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is not None:  # the text layer would decode and encode ~8 MB for nothing
        binary.write(data)
        binary.flush()
    else:
        sys.stdout.write(data.decode("ascii"))
        sys.stdout.flush()
    return 1 if failed else 0


def _splice_failures(data: bytes, width: int, counts: np.ndarray) -> bytes:
    """``data`` (fixed-width lines, one per puzzle) with the lines of unsolved or ambiguous
    puzzles (``counts != 1``) replaced by their failure text."""
    bad = np.flatnonzero(counts != 1)
    if not len(bad):
        return data
    pieces, prev = [], 0
    for i in bad.tolist():
        pieces += [data[prev * width:i * width], _failure(counts[i]) + b"\n"]
        prev = i + 1
    pieces.append(data[prev * width:])
    return b"".join(pieces)


def _failure(count: int) -> bytes:
    return b"no solution" if count == 0 else b"multiple solutions"


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    from .generator import DEFAULT_DIFFICULTY, DIFFICULTIES

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
    from tqdm import tqdm

    from .generator import SudokuGenerator

    check_int("count", args.count, 0)
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


# Commands this env adds to the CLI: "COMMAND TASK" -> (help, add_arguments, main).
COMMANDS = {
    "solve sudoku": ("solve puzzles given as a line or a file", add_solve_arguments,
                     solve_main),
    "generate sudoku": ("print generated unique-solution puzzles", add_generate_arguments,
                        generate_main),
}
