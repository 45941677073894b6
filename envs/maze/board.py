"""Maze grids: cell codes, text I/O and checks.

A maze is an ``(H, W)`` int8 grid whose values are the TRM token ids, so a grid is already its
token sequence (row-major, ``0`` is padding and never a cell):

====  =====  ==========
id    char   meaning
====  =====  ==========
1     ``#``  wall
2     space  open cell
3     ``S``  start
4     ``G``  goal
5     ``o``  path (labels and answers only)
====  =====  ==========

Text format: one maze per block of lines, blocks separated by one or more empty lines; every line
of a block has the same length. Lines may end with spaces (open cells), so lines are only
stripped of the newline: only an empty line separates blocks, and a line of spaces is a row of
open cells. ``#`` starts no comment here: it is a wall. Start and goal are two characters, so a
maze cannot put them on one cell.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tracegym.errors import PuzzleFormatError
from tracegym.grid import format_char_grid, parse_char_rows
from tracegym.io import atomic_write_text

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
CHARS = "?# SGo"  # index = code; "?" for the pad id, which never appears in a maze
ALPHABET = {ch: code for code, ch in enumerate(CHARS) if code}
_NO_PATH = {ch: code for ch, code in ALPHABET.items() if code != PATH}  # puzzles, not answers


class MazeError(PuzzleFormatError):
    """A maze or a path breaks a rule (placement of S and G, a broken or walled path)."""


def parse_maze(text: str, *, field: str = "maze", allow_path: bool = True) -> np.ndarray:
    """Parse one maze block into an ``(H, W)`` int8 grid and check S and G (see :func:`check_maze`).

    Rows are the lines of ``text``; ragged rows and unknown characters raise
    :class:`PuzzleFormatError` naming the row and column.
    """
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise PuzzleFormatError(f"{field}: empty maze")
    grid = parse_char_rows(lines, ALPHABET if allow_path else _NO_PATH, field=field)
    check_maze(grid, field=field)
    return grid


def format_maze(grid: np.ndarray) -> str:
    """The block of text of a grid (no trailing newline); the inverse of :func:`parse_maze`."""
    return format_char_grid(grid, CHARS, row_sep="\n")


def read_mazes(path: str | os.PathLike) -> list[np.ndarray]:
    """Read every maze block of a text file; errors name the file and block."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mazes: no such file {str(path)!r}")
    blocks, current = [], []
    for line in path.read_text().split("\n"):
        if line == "" and current:
            blocks.append(current)
            current = []
        elif line != "":
            current.append(line)
    if current:
        blocks.append(current)
    if not blocks:
        raise PuzzleFormatError(f"mazes: file {str(path)!r} holds no maze")
    return [parse_maze("\n".join(b), field=f"{path.name}: maze {i + 1}")
            for i, b in enumerate(blocks)]


def write_mazes(path: str | os.PathLike, grids) -> None:
    """Write mazes as blocks separated by an empty line, atomically."""
    atomic_write_text(path, "\n\n".join(format_maze(g) for g in grids) + "\n")


Cell = tuple[int, int]


def find_endpoints(grid: np.ndarray, *, field: str = "maze") -> tuple[Cell, Cell]:
    """The (row, col) of S and of G; :class:`MazeError` unless there is exactly one of each."""
    found = []
    for code, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        where = np.argwhere(grid == code)
        if len(where) == 0:
            raise MazeError(f"{field}: no {name}")
        if len(where) > 1:
            (r1, c1), (r2, c2) = where[:2]
            raise MazeError(f"{field}: two of {name}, at row {r1 + 1}, column {c1 + 1} and row "
                            f"{r2 + 1}, column {c2 + 1}")
        found.append((int(where[0][0]), int(where[0][1])))
    return found[0], found[1]


def check_maze(grid: np.ndarray, *, field: str = "maze") -> None:
    """Exactly one S and one G, codes in 1..5, at least 2x2."""
    grid = np.asarray(grid)
    if grid.ndim != 2 or min(grid.shape) < 2:
        raise PuzzleFormatError(f"{field}: expected a 2-D grid of at least 2x2, got shape "
                                f"{grid.shape}")
    bad = np.argwhere((grid < WALL) | (grid > PATH))
    if len(bad):
        r, c = bad[0]
        raise PuzzleFormatError(f"{field}: cell at row {r + 1}, column {c + 1} has code "
                                f"{int(grid[r, c])} outside 1..5")
    find_endpoints(grid, field=field)


def as_maze(maze, *, field: str = "maze") -> np.ndarray:
    """A maze from its text block or an array-like grid, checked, as int8 (H, W)."""
    if isinstance(maze, str):
        return parse_maze(maze, field=field)
    grid = np.asarray(maze)
    if not np.issubdtype(grid.dtype, np.integer):
        raise PuzzleFormatError(f"{field}: expected integer cells, got dtype {grid.dtype}")
    check_maze(grid, field=field)
    return grid.astype(np.int8)


def strip_path(grid: np.ndarray) -> np.ndarray:
    """The maze without its path marks (``o`` back to open cells)."""
    return np.where(grid == PATH, OPEN, grid).astype(np.int8)
