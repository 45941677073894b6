"""Maze sources for the envs: :func:`tracegym.sources.make_source` with maze checks.

A list of mazes is checked once: every maze must have a reachable goal (the loader says which
does not). Shortest lengths are computed per drawn maze by the env.
"""

from __future__ import annotations

import numpy as np

from tracegym.errors import UnsolvableError
from tracegym.sources import CallableSource, ListSource, PuzzleSource
from tracegym.sources import make_source as _make_source

from .board import as_maze, read_mazes, strip_path
from .generator import DEFAULT_SIZE, GeneratedMaze, MazeGenerator
from .solver import solve_batch


def _convert(item, field: str) -> np.ndarray:
    maze = item.maze if isinstance(item, GeneratedMaze) else item
    return strip_path(as_maze(maze, field=field))


def _is_single(item) -> bool:
    return isinstance(item, str) or (isinstance(item, np.ndarray) and item.ndim == 2)


def make_source(mazes, size: int | None, kind: str) -> PuzzleSource:
    """The env's ``mazes=`` option as a source of (H, W) grids."""
    if isinstance(mazes, MazeGenerator):
        source = CallableSource(mazes, _convert, shape=(mazes.size, mazes.size))
    else:
        def default():
            gen = MazeGenerator(DEFAULT_SIZE if size is None else size, kind)
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
