"""``tracegym solve FILE``: the bulk path (batch parse, both-core solve, one write) says exactly
what the per-puzzle library calls say, line for line, whatever the mix of sizes and failures."""

import io
import sys

import numpy as np
import pytest

from tracegym.envs.sudoku.board import format_puzzle
from tracegym.envs.sudoku.cli import solve_file
from tracegym.envs.sudoku.solver import count_solutions

UNSOLVABLE_4 = ".2341" + "." * 11  # cell (1,1) can only be 1, but column 1 holds 1
SEVERAL_9 = "." * 81
# no clash among the givens, yet no solution (found by digging a solved grid and changing a given)
UNSOLVABLE_9 = "2.....85....8.52......4..96..9.671...65.38...18.42....6.1.7498.9.....6723.2..651."


def _expected(lines: list[str]) -> str:
    out = []
    for line in lines:
        result = count_solutions(line, 2)
        out.append({0: "no solution", 2: "multiple solutions"}.get(result.num_solutions)
                   or format_puzzle(result.solution))
    return "".join(f"{line}\n" for line in out)


def _solve(tmp_path, lines: list[str], capsys) -> tuple[int, str]:
    path = tmp_path / "puzzles.txt"
    path.write_text("\n".join(lines) + "\n")
    status = solve_file(path)
    return status, capsys.readouterr().out


@pytest.mark.parametrize("where", ["first", "middle", "last", "every"])
def test_solve_file__failures_spliced_into_one_size_file(tmp_path, top95_lines, capsys, where):
    """A 9x9 file large enough for the threaded batch, with ambiguous or unsolvable lines at
    either end, in the middle, or everywhere: the fixed-width fast path puts each failure text
    at its line."""
    lines = top95_lines * 3  # 285 >= PARALLEL_MIN_BATCH
    if where == "first":
        lines = [SEVERAL_9, *lines]
    elif where == "middle":
        lines = [*lines[:100], SEVERAL_9, UNSOLVABLE_9, *lines[100:]]
    elif where == "last":
        lines = [*lines, SEVERAL_9]
    else:
        lines = [(SEVERAL_9, UNSOLVABLE_9)[i % 4 // 2] if i % 2 else line
                 for i, line in enumerate(lines)]
    status, out = _solve(tmp_path, lines, capsys)
    assert status == 1 and out == _expected(lines)


def test_solve_file__all_solved_exit_zero(tmp_path, top95_lines, capsys):
    status, out = _solve(tmp_path, top95_lines, capsys)
    assert status == 0 and out == _expected(top95_lines)
    assert all(len(line) == 81 for line in out.splitlines())


def test_solve_file__mixed_sizes_with_failures_keep_file_order(tmp_path, top95_lines, capsys):
    four = "1234341221434321"
    six = "." * 36
    lines = [top95_lines[0], UNSOLVABLE_4, four, SEVERAL_9, six, top95_lines[1], "." * 16,
             UNSOLVABLE_9]
    status, out = _solve(tmp_path, lines, capsys)
    assert status == 1 and out == _expected(lines)


def test_solve_file__text_only_stdout(tmp_path, top95_lines, monkeypatch):
    """A stdout without a binary buffer (a StringIO) gets the same text."""
    lines = [top95_lines[0], SEVERAL_9, top95_lines[1]]
    path = tmp_path / "p.txt"
    path.write_text("\n".join(lines) + "\n")
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stdout", sink)
    assert solve_file(path) == 1
    assert sink.getvalue() == _expected(lines)


def test_solve_file__solutions_are_the_library_solver_s(tmp_path, top95_lines, capsys):
    """Every line's answer is the unique solution the library proves (and a valid grid)."""
    _, out = _solve(tmp_path, top95_lines[:20], capsys)
    for line, answer in zip(top95_lines[:20], out.splitlines()):
        grid = np.array([int(ch) for ch in answer], dtype=np.int8).reshape(9, 9)
        assert np.array_equal(grid, count_solutions(line, 2).solution)
