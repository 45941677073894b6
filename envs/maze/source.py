"""Maze sources for the envs: :func:`tracegym.sources.make_source` with maze checks.

A list of mazes is checked once: every maze must have a reachable goal (the loader says which
does not). Shortest lengths are computed per drawn maze by the env. A maze given to ``reset``
(``options["maze"]``) passes the same checks (:func:`check_maze_option`).
"""

from __future__ import annotations

import numpy as np

from tracegym.errors import PuzzleFormatError, TracegymError, UnsolvableError
from tracegym.sources import CallableSource, ListSource, PuzzleSource
from tracegym.sources import make_source as _make_source

from .board import as_maze, read_mazes, strip_path
from .generator import DEFAULT_SIZE, PERFECT, GeneratedMaze, MazeGenerator
from .solver import solve_batch


def _convert(item, field: str) -> np.ndarray:
    maze = item.maze if isinstance(item, GeneratedMaze) else item
    return strip_path(as_maze(maze, field=field))


def _is_single(item) -> bool:
    return isinstance(item, str) or (isinstance(item, np.ndarray) and item.ndim == 2)


def default_size(kind: str) -> int:
    """The side of generated mazes when ``size`` is not given: :data:`DEFAULT_SIZE` (30, TRM's
    Maze-Hard), one less for the perfect kinds, whose walls sit between odd cells."""
    return DEFAULT_SIZE - 1 if kind in PERFECT and DEFAULT_SIZE % 2 == 0 else DEFAULT_SIZE


def generated_source(shape: tuple[int, int], kind: str, field: str) -> PuzzleSource:
    """Fresh ``kind`` mazes of ``shape``; a kind that cannot make that shape (a perfect maze
    needs an odd side) raises TracegymError naming ``field``."""
    if shape[0] != shape[1]:
        raise TracegymError(f"{field}: generated mazes are square; this env's are {shape}")
    try:
        generator = MazeGenerator(shape[0], kind)
    except ValueError as e:
        raise TracegymError(f"{field}={kind!r}: {e}") from None
    return CallableSource(generator, _convert, shape=shape)


def check_maze_option(maze, shape: tuple[int, int], field: str) -> np.ndarray:
    """One maze given to ``reset`` (text or grid, path marks dropped): checked for its codes,
    one S and one G, the env's ``shape`` and a reachable goal."""
    grid = _convert(maze, field)
    if grid.shape != shape:
        raise PuzzleFormatError(f"{field}: expected a maze of shape {shape} (the env's), got "
                                f"{grid.shape}")
    if solve_batch(grid[None])[1][0] < 0:
        raise UnsolvableError(f"{field}: the goal is unreachable from the start")
    return grid


def make_source(mazes, size: int | None, kind: str) -> PuzzleSource:
    """The env's ``mazes=`` option as a source of (H, W) grids."""
    if isinstance(mazes, MazeGenerator):
        source = CallableSource(mazes, _convert, shape=(mazes.size, mazes.size))
    else:
        def default():
            gen = MazeGenerator(default_size(kind) if size is None else size, kind)
            return CallableSource(gen, _convert, shape=(gen.size, gen.size))

        source = _make_source(mazes, convert=_convert, read_file=read_mazes,
                              is_single=_is_single, default=default, field="mazes")
    if size is not None and source.shape != (size, size):
        raise ValueError(f"size={size} does not match the mazes' shape {source.shape}")
    if isinstance(source, ListSource):
        _, lengths = solve_batch(source.grids)
        if (lengths < 0).any():
            bad = int(np.argmin(lengths))
            raise UnsolvableError(f"mazes[{bad}]: the goal is unreachable from the start")
    return source
