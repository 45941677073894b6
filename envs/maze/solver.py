"""Breadth-first shortest paths and the answer verifier (compiled with numba).

BFS over open cells with 4-neighbour moves; walls block. Distances count moves, so a maze whose
goal is next to its start has length 1. The label path is traced back from the goal, taking at
each step the first neighbour (up, right, down, left) one move closer to the start.

An answer (a grid with path cells marked ``o``) is correct iff it keeps the maze (every cell not
marked ``o`` equals the maze), marks only open cells, marks exactly ``length - 1`` cells, and those
cells connect S to G. A connected S-to-G walk through ``length - 1`` marked cells is a shortest
path, so any of several shortest paths counts.

:func:`count_shortest_paths` counts a maze's shortest S-to-G paths in the same BFS (each cell's
count is the sum of its predecessors' one level closer to S), saturating at a limit so a wide
open grid cannot overflow; generated hard mazes have exactly one unless ties are allowed
(:mod:`tracegym.envs.maze.generator`), so their label is a function of the maze.
"""

from __future__ import annotations

import numba
import numpy as np

from tracegym.checks import check_int
from tracegym.errors import PuzzleFormatError, UnsolvableError

from .board import GOAL, OPEN, PATH, START, WALL, MazeError, as_maze, find_endpoints, strip_path

# counts of shortest paths saturate here, within int64 (a 30x30 grid has at most C(58, 29) < 2**55
# of them; an open 255x255 one about 2**503)
MAX_PATH_COUNT = 2**62

_DR = np.array([-1, 0, 1, 0], np.int64)  # up, right, down, left
_DC = np.array([0, 1, 0, -1], np.int64)


@numba.njit(cache=True)
def bfs(passable, start, dist, queue):
    """Distances (moves) from cell ``start`` over the flat bool grid ``passable`` (H, W).

    ``dist`` (H, W) int32 is filled with -1 for unreached cells; ``queue`` is scratch of H*W.
    Returns the number of cells reached.
    """
    h, w = passable.shape
    dist[:] = -1
    sr, sc = start // w, start % w
    dist[sr, sc] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        cell = queue[head]
        head += 1
        r, c = cell // w, cell % w
        d = dist[r, c] + 1
        for k in range(4):
            nr, nc = r + _DR[k], c + _DC[k]
            if 0 <= nr < h and 0 <= nc < w and passable[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = d
                queue[tail] = nr * w + nc
                tail += 1
    return tail


@numba.njit(cache=True)
def bfs_count(passable, start, dist, count, queue, limit):
    """:func:`bfs` that also fills ``count`` (H, W) int64 with the number of shortest paths from
    ``start`` to each cell, saturating at ``limit`` (at most :data:`MAX_PATH_COUNT`; 0 where
    unreached). Returns the number of cells reached.

    BFS dequeues a whole level before the next, so a cell's count is complete before any
    successor adds it.
    """
    h, w = passable.shape
    dist[:] = -1
    count[:] = 0
    sr, sc = start // w, start % w
    dist[sr, sc] = 0
    count[sr, sc] = 1
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        cell = queue[head]
        head += 1
        r, c = cell // w, cell % w
        d = dist[r, c] + 1
        n = count[r, c]
        for k in range(4):
            nr, nc = r + _DR[k], c + _DC[k]
            if 0 <= nr < h and 0 <= nc < w and passable[nr, nc]:
                if dist[nr, nc] < 0:
                    dist[nr, nc] = d
                    count[nr, nc] = n
                    queue[tail] = nr * w + nc
                    tail += 1
                elif dist[nr, nc] == d:  # compared before adding, so the sum never overflows
                    count[nr, nc] = limit if count[nr, nc] >= limit - n else count[nr, nc] + n
    return tail


@numba.njit(cache=True)
def shortest_path_cells(dist, goal, cells):
    """Write the flat indices of one shortest path's cells (S and G excluded), walking back from
    the goal, into ``cells``; return how many. The one walk that labels a maze's path and that
    the hard generator walls up, so both take the same path."""
    h, w = dist.shape
    r, c = goal // w, goal % w
    n = 0
    while dist[r, c] > 1:
        for k in range(4):
            nr, nc = r + _DR[k], c + _DC[k]
            if 0 <= nr < h and 0 <= nc < w and dist[nr, nc] == dist[r, c] - 1:
                r, c = nr, nc
                break
        cells[n] = r * w + c
        n += 1
    return n


@numba.njit(cache=True)
def trace_path(dist, goal, out):
    """Mark with PATH the cells of one shortest path (S and G excluded) into ``out``."""
    h, w = dist.shape
    cells = np.empty(h * w, np.int64)
    for i in range(shortest_path_cells(dist, goal, cells)):
        out[cells[i] // w, cells[i] % w] = PATH


@numba.njit(cache=True)
def _start_and_goal(grid):
    """The flat cells of S and G (-1 when absent)."""
    h, w = grid.shape
    start = goal = -1
    for cell in range(h * w):
        v = grid[cell // w, cell % w]
        if v == START:
            start = cell
        elif v == GOAL:
            goal = cell
    return start, goal


@numba.njit(cache=True)
def _solve_batch(grids, labels, lengths):
    b, h, w = grids.shape
    dist = np.empty((h, w), np.int32)
    queue = np.empty(h * w, np.int64)
    for i in range(b):
        grid = grids[i]
        start, goal = _start_and_goal(grid)
        bfs(grid != WALL, start, dist, queue)
        lengths[i] = dist[goal // w, goal % w]
        labels[i] = grid
        if lengths[i] > 0:
            trace_path(dist, goal, labels[i])


@numba.njit(cache=True)
def _count_batch(grids, limit, counts):
    b, h, w = grids.shape
    dist = np.empty((h, w), np.int32)
    count = np.empty((h, w), np.int64)
    queue = np.empty(h * w, np.int64)
    for i in range(b):
        grid = grids[i]
        start, goal = _start_and_goal(grid)
        bfs_count(grid != WALL, start, dist, count, queue, limit)
        counts[i] = count[goal // w, goal % w]


def count_shortest_paths(maze, *, limit: int = MAX_PATH_COUNT):
    """The number of shortest S-to-G paths of a maze, saturating at ``limit``.

    ``maze`` is a maze's text, an ``(H, W)`` grid (returns an int) or a ``(B, H, W)`` stack of
    grids (returns ``(B,)`` int64); path marks are ignored. The result is ``min(paths,
    limit)``: pass ``limit=2`` to ask only whether the path is unique (1) or not (2); 0 means
    the goal is unreachable.
    """
    limit = check_int("limit", limit, 1, MAX_PATH_COUNT)
    one = isinstance(maze, str) or np.ndim(maze) == 2
    if one:
        grids = as_maze(maze)[None]
    else:
        grids = np.asarray(maze)
        if grids.ndim != 3:
            raise PuzzleFormatError(f"maze: expected text, an (H, W) grid or a (B, H, W) stack, "
                                    f"got shape {grids.shape}")
        grids = np.stack([as_maze(grid, field=f"maze[{i}]") for i, grid in enumerate(grids)]) \
            if len(grids) else grids.astype(np.int8)
    counts = np.empty(len(grids), np.int64)
    _count_batch(np.ascontiguousarray(strip_path(grids)), limit, counts)
    return int(counts[0]) if one else counts


def solve_batch(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shortest paths of a ``(B, H, W)`` stack of checked mazes.

    Returns ``(labels (B, H, W) int8 with one shortest path marked, lengths (B,) int32)``; a length
    of -1 means the goal is unreachable (its label has no path).
    """
    grids = np.ascontiguousarray(strip_path(grids))
    labels = np.empty_like(grids)
    lengths = np.empty(len(grids), np.int32)
    _solve_batch(grids, labels, lengths)
    return labels, lengths


def shortest_path(maze) -> tuple[int, np.ndarray]:
    """``(length, labelled grid)`` of a maze (text or grid); :class:`UnsolvableError` when the
    goal cannot be reached from the start."""
    grid = as_maze(maze)
    labels, lengths = solve_batch(grid[None])
    if lengths[0] < 0:
        (sr, sc), (gr, gc) = find_endpoints(grid)
        raise UnsolvableError(f"maze: goal at row {gr + 1}, column {gc + 1} is unreachable from "
                              f"the start at row {sr + 1}, column {sc + 1}")
    return int(lengths[0]), labels[0]


def path_verdict(maze: np.ndarray, answer: np.ndarray, length: int | None = None) -> str | None:
    """Why ``answer`` is not a shortest path of ``maze`` (None if it is one).

    ``maze`` and ``answer`` are checked (H, W) grids of the same shape; ``length`` the shortest
    length if already known.
    """
    maze = strip_path(maze)
    if length is None:
        length = int(solve_batch(maze[None])[1][0])
    marked = answer == PATH
    changed = np.argwhere(~marked & (answer != maze))
    if len(changed):
        r, c = changed[0]
        return f"cell at row {r + 1}, column {c + 1} differs from the maze"
    walled = np.argwhere(marked & (maze != OPEN))
    if len(walled):
        r, c = walled[0]
        what = "crosses a wall" if maze[r, c] == WALL else "marks S or G"
        return f"path {what} at row {r + 1}, column {c + 1}"
    if length < 0:
        return "the goal is unreachable"
    if int(marked.sum()) != length - 1:
        return f"path has {int(marked.sum())} cells; a shortest path has {length - 1}"
    passable = marked | (maze == START) | (maze == GOAL)
    (sr, sc), (gr, gc) = find_endpoints(maze)
    dist = np.empty(maze.shape, np.int32)
    bfs(passable, sr * maze.shape[1] + sc, dist, np.empty(maze.size, np.int64))
    if dist[gr, gc] < 0:
        return "path is broken: it does not connect S to G (a jump or a gap)"
    return None


def check_path(labelled, *, field: str = "maze") -> np.ndarray:
    """Raise :class:`MazeError` unless the ``o`` cells of ``labelled`` form a shortest path.

    Returns the maze without its path.
    """
    grid = as_maze(labelled, field=field)
    verdict = path_verdict(strip_path(grid), grid)
    if verdict is not None:
        raise MazeError(f"{field}: {verdict}")
    return strip_path(grid)
