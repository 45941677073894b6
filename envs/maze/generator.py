"""Maze generators, all seeded and byte-deterministic (item ``i`` of a seed rebuilds alone).

Kinds:

- ``"backtracker"``: a perfect maze (exactly one path between any two cells) by the recursive
  backtracker (randomised depth-first search), on an odd ``size``: cells at odd coordinates,
  walls between them and all around.
- ``"kruskal"``: a perfect maze by randomised Kruskal (walls removed in random order when they
  join two different trees; union-find).
- ``"hard"``: Maze-Hard in the style of the TRM/HRM data: a wall border and random interior walls
  (each cell a wall with probability ``wall_density``), then the endpoints are pulled apart until
  their shortest path is longer than ``min_path`` moves (default 110 at 30x30, scaled by area
  elsewhere): while it is not, a random cell of the current shortest path becomes a wall, unless
  that cuts the goal off (then the cell stays open for good). Random iid walls alone rarely
  hold a 110-move shortest path at 30x30 (hundreds of rejected draws per maze), which is why
  the blocking step exists; a draw whose path is a corridor that cannot lengthen is
  rejected. Then, unless ``allow_ties``, ties are broken: while S and G have more than one
  shortest path, a random cell that lies on some but not every shortest path becomes a wall
  (the others keep the length). The path is then unique, so the label is a function of the
  maze, and stays so under any rotation or reflection (a symmetry maps shortest paths to
  shortest paths). Random walls leave ties in nearly every hard maze (996 of 1,000 at 30x30,
  with a median of about 10^5 shortest paths); breaking them adds a few walls near the path.
  Perfect mazes are trees: their path is always unique.

Endpoints come from a double sweep in the largest open region: BFS from one of its cells, one end
``A`` at a random one of the farthest cells, BFS from ``A``, the other end at a random one of the
farthest cells (perfect mazes) or, after the blocking step, at a random cell beyond ``min_path``
(hard); which end is S is a coin flip. Every maze emitted is solvable; the label marks its
shortest path (with ``allow_ties``, one of them, by the solver's neighbour order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from tracegym.checks import check_int, check_positive_int, check_seed
from tracegym.rng import item_stream, next_u64, randbelow, shuffle

from .board import GOAL, OPEN, START, WALL
from .solver import _DC, _DR, MAX_PATH_COUNT, bfs, bfs_count, shortest_path_cells, trace_path

KINDS = ("backtracker", "kruskal", "hard")
PERFECT = ("backtracker", "kruskal")
DEFAULT_SIZE = 30
HARD_WALL_DENSITY = 0.3
MAX_ATTEMPTS = 10_000
# the columns of generate_arrays' stats, one row per maze: shortest path in moves, draws made,
# shortest paths (saturating at MAX_PATH_COUNT), walls added to break ties
STATS_COLUMNS = ("length", "attempts", "paths", "tie_walls")


def default_min_path(size: int) -> int:
    """110 moves at 30x30 (TRM's Maze-Hard), scaled by area for other sizes."""
    return max(1, round(110 * size * size / 900))


@numba.njit(cache=True)
def _carve_backtracker(rng, grid):
    h, w = grid.shape
    kr, kc = h // 2, w // 2
    seen = np.zeros((kr, kc), np.bool_)
    stack = np.empty(kr * kc, np.int64)
    dirs = np.empty(4, np.int64)
    start = randbelow(rng, kr * kc)
    seen[start // kc, start % kc] = True
    grid[2 * (start // kc) + 1, 2 * (start % kc) + 1] = OPEN
    stack[0] = start
    top = 1
    while top > 0:
        cell = stack[top - 1]
        r, c = cell // kc, cell % kc
        n = 0
        if r > 0 and not seen[r - 1, c]:
            dirs[n] = cell - kc
            n += 1
        if c < kc - 1 and not seen[r, c + 1]:
            dirs[n] = cell + 1
            n += 1
        if r < kr - 1 and not seen[r + 1, c]:
            dirs[n] = cell + kc
            n += 1
        if c > 0 and not seen[r, c - 1]:
            dirs[n] = cell - 1
            n += 1
        if n == 0:
            top -= 1
            continue
        nxt = dirs[randbelow(rng, n)]
        nr, nc = nxt // kc, nxt % kc
        seen[nr, nc] = True
        grid[2 * nr + 1, 2 * nc + 1] = OPEN
        grid[r + nr + 1, c + nc + 1] = OPEN  # the wall between the two cells
        stack[top] = nxt
        top += 1


@numba.njit(cache=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@numba.njit(cache=True)
def _carve_kruskal(rng, grid):
    h, w = grid.shape
    kr, kc = h // 2, w // 2
    for r in range(kr):
        for c in range(kc):
            grid[2 * r + 1, 2 * c + 1] = OPEN
    # edges: cell -> right neighbour (even ids) and cell -> lower neighbour (odd ids)
    edges = np.arange(2 * kr * kc)
    shuffle(rng, edges)
    parent = np.arange(kr * kc)
    for e in edges:
        cell, down = e // 2, e % 2
        r, c = cell // kc, cell % kc
        if down == 1:
            if r == kr - 1:
                continue
            other = cell + kc
        else:
            if c == kc - 1:
                continue
            other = cell + 1
        a, b = _find(parent, cell), _find(parent, other)
        if a != b:
            parent[a] = b
            grid[r + other // kc + 1, c + other % kc + 1] = OPEN


@numba.njit(cache=True)
def _pick(rng, dist, lo):
    """A random cell with ``dist > lo`` (-1 if none); cells are flat indices."""
    h, w = dist.shape
    count = 0
    for i in range(h * w):
        if dist[i // w, i % w] > lo:
            count += 1
    if count == 0:
        return -1
    k = randbelow(rng, count)
    for i in range(h * w):
        if dist[i // w, i % w] > lo:
            if k == 0:
                return i
            k -= 1
    return -1


@numba.njit(cache=True)
def _largest_component_cell(passable, seen, dist, queue):
    """The first cell (row-major) of the largest 4-connected open region; -1 if none is open."""
    h, w = passable.shape
    seen[:] = False
    best_size, best_start = 0, -1
    for first in range(h * w):
        if not passable[first // w, first % w] or seen[first // w, first % w]:
            continue
        size = bfs(passable, first, dist, queue)  # queue[:size]: the region's cells
        for i in range(size):
            seen[queue[i] // w, queue[i] % w] = True
        if size > best_size:
            best_size, best_start = size, first
    return best_start


@numba.njit(cache=True)
def _lengthen(rng, maze, start, goal, min_path, dist, queue, keep):
    """Add walls on the current shortest start-goal path until it is longer than ``min_path``.

    A wall that would cut the goal off is taken back and the cell kept open. Returns False when
    every cell of the path must stay open (a corridor) and the path is still too short.
    """
    h, w = maze.shape
    keep[:] = False
    passable = maze != WALL
    bfs(passable, start, dist, queue)
    gr, gc = goal // w, goal % w
    while dist[gr, gc] <= min_path:
        # the cells of one shortest path that may still become walls, in walk order
        n = 0
        for i in range(shortest_path_cells(dist, goal, queue)):
            if not keep[queue[i] // w, queue[i] % w]:
                queue[n] = queue[i]
                n += 1
        if n == 0:
            return False
        cell = queue[randbelow(rng, n)]
        passable[cell // w, cell % w] = False
        bfs(passable, start, dist, queue)
        if dist[gr, gc] < 0:  # a bridge: reopen it for good
            passable[cell // w, cell % w] = True
            keep[cell // w, cell % w] = True
            bfs(passable, start, dist, queue)
        else:
            maze[cell // w, cell % w] = WALL
    return True


@numba.njit(cache=True)
def _break_ties(rng, maze, start, goal, dist, count, queue, on_path, cells, level):
    """Wall random cells that lie on some but not every shortest start-goal path until that path
    is unique; returns the number of walls added. The length never changes: a cell is on every
    shortest path iff no other shortest-path cell is as far from ``start``, and such another cell
    keeps a path open when this one is walled.
    """
    h, w = maze.shape
    passable = maze != WALL
    gr, gc = goal // w, goal % w
    on_path[:] = False
    walls = 0
    while True:
        bfs_count(passable, start, dist, count, queue, 2)  # 2: unique or not is all we need
        if count[gr, gc] == 1:
            return walls
        # the cells of all shortest paths, walking back from the goal to the neighbours one move
        # closer to the start; level[d]: how many of them are d moves from the start
        level[:dist[gr, gc] + 1] = 0
        on_path[gr, gc] = True
        cells[0] = goal
        n, i = 1, 0
        while i < n:
            r, c = cells[i] // w, cells[i] % w
            i += 1
            d = dist[r, c]
            level[d] += 1
            if d == 0:
                continue
            for k in range(4):
                nr, nc = r + _DR[k], c + _DC[k]
                if 0 <= nr < h and 0 <= nc < w and dist[nr, nc] == d - 1 \
                        and not on_path[nr, nc]:
                    on_path[nr, nc] = True
                    cells[n] = nr * w + nc
                    n += 1
        m = 0
        for i in range(n):
            r, c = cells[i] // w, cells[i] % w
            on_path[r, c] = False  # clean for the next round
            if level[dist[r, c]] > 1:
                queue[m] = cells[i]
                m += 1
        cell = queue[randbelow(rng, m)]  # m > 0: two shortest paths differ at some distance
        passable[cell // w, cell % w] = False
        maze[cell // w, cell % w] = WALL
        walls += 1


@numba.njit(cache=True)
def _generate(seed, index, kind, density, min_path, max_attempts, unique, maze, label, stats):
    """Fill ``maze`` and ``label`` (H, W) for item ``index`` and ``stats`` (STATS_COLUMNS).

    kind: 0 backtracker, 1 kruskal, 2 hard; unique: break ties (hard mazes). Returns False if no
    attempt succeeded.
    """
    h, w = maze.shape
    rng = item_stream(seed, index)
    dist = np.empty((h, w), np.int32)
    count = np.empty((h, w), np.int64)
    level = np.empty(h * w, np.int64)
    queue = np.empty(h * w, np.int64)
    cells = np.empty(h * w, np.int64)
    seen = np.empty((h, w), np.bool_)
    threshold = np.uint64(density * 2.0**53)
    for attempt in range(max_attempts):
        maze[:] = WALL
        if kind == 0:
            _carve_backtracker(rng, maze)
        elif kind == 1:
            _carve_kruskal(rng, maze)
        else:
            for r in range(1, h - 1):
                for c in range(1, w - 1):
                    if (next_u64(rng) >> np.uint64(11)) >= threshold:
                        maze[r, c] = OPEN
        passable = maze != WALL
        start = _largest_component_cell(passable, seen, dist, queue)
        if start < 0:
            continue
        # double sweep: an end of a long path is a random one of the cells farthest from any
        # cell of the region; the other end is drawn from the cells far from it
        bfs(passable, start, dist, queue)
        start = _pick(rng, dist, dist.max() - 1)
        bfs(passable, start, dist, queue)
        goal = _pick(rng, dist, dist.max() - 1)
        if goal < 0 or goal == start:
            continue
        if kind == 2:
            if not _lengthen(rng, maze, start, goal, min_path, dist, queue, seen):
                continue
            passable = maze != WALL
            goal = _pick(rng, dist, min_path)  # any cell far enough, not only the farthest
            if unique:
                stats[3] = _break_ties(rng, maze, start, goal, dist, count, queue, seen, cells,
                                       level)
                passable = maze != WALL
        if randbelow(rng, 2) == 1:  # either end may be the start
            start, goal = goal, start
        bfs_count(passable, start, dist, count, queue, MAX_PATH_COUNT)
        maze[start // w, start % w] = START
        maze[goal // w, goal % w] = GOAL
        label[:] = maze
        trace_path(dist, goal, label)
        stats[0] = dist[goal // w, goal % w]
        stats[1] = attempt + 1
        stats[2] = count[goal // w, goal % w]
        return True
    return False


@numba.njit(cache=True)
def _generate_batch(seed, start, kind, density, min_path, max_attempts, unique, mazes, labels,
                    stats):
    for i in range(mazes.shape[0]):
        if not _generate(seed, start + i, kind, density, min_path, max_attempts, unique,
                         mazes[i], labels[i], stats[i]):
            return i
    return mazes.shape[0]


@dataclass(frozen=True)
class GeneratedMaze:
    maze: np.ndarray  # (H, W) int8: walls, open, S, G
    label: np.ndarray  # the same with one shortest path marked
    length: int  # shortest path, in moves
    kind: str
    seed: int
    index: int
    paths: int = 1  # shortest S-to-G paths (1 unless generated with allow_ties)


class MazeGenerator:
    """Seeded maze generator.

    ``allow_ties=False`` (the default) makes every maze's shortest path unique (see the module
    docstring); ``True`` keeps hard mazes as the random walls and the blocking step leave them,
    usually with many shortest paths, of which the label marks one.

    >>> gen = MazeGenerator(size=11, kind="kruskal")
    >>> item = gen.generate(seed=0)
    >>> item.maze.shape, item.length > 0
    ((11, 11), True)
    """

    def __init__(self, size: int = DEFAULT_SIZE, kind: str = "hard",
                 wall_density: float = HARD_WALL_DENSITY, min_path: int | None = None,
                 max_attempts: int = MAX_ATTEMPTS, *, allow_ties: bool = False):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
        check_int("size", size, 5, 255)
        if kind in PERFECT and size % 2 == 0:
            raise ValueError(f"size must be odd for a perfect ({kind}) maze, got {size}")
        if not 0.0 <= wall_density < 1.0:
            raise ValueError(f"wall_density must be in [0, 1), got {wall_density!r}")
        if min_path is None:
            min_path = default_min_path(size) if kind == "hard" else 0
        check_int("min_path", min_path, 0)
        check_positive_int("max_attempts", max_attempts)
        if not isinstance(allow_ties, (bool, np.bool_)):
            raise ValueError(f"allow_ties must be a bool, got {allow_ties!r}")
        self.size, self.kind = int(size), kind
        self.wall_density, self.min_path = float(wall_density), int(min_path)
        self.max_attempts = int(max_attempts)
        self.allow_ties = bool(allow_ties)

    def __repr__(self) -> str:
        ties = ", allow_ties=True" if self.allow_ties else ""
        return f"MazeGenerator(size={self.size}, kind={self.kind!r}{ties})"

    def generate_arrays(self, seed: int, count: int, start: int = 0):
        """Items ``start..start+count-1``: ``(mazes, labels, stats)`` with mazes and labels
        ``(count, size, size)`` int8 and stats ``(count, 4)`` int64, columns
        :data:`STATS_COLUMNS` (path length, attempts, shortest paths, walls that broke ties)."""
        seed = check_seed(seed)
        count, start = check_int("count", count, 0), check_int("start", start, 0)
        n = self.size
        mazes = np.empty((count, n, n), np.int8)
        labels = np.empty((count, n, n), np.int8)
        stats = np.zeros((count, len(STATS_COLUMNS)), np.int64)
        done = _generate_batch(seed, start, KINDS.index(self.kind), self.wall_density,
                               self.min_path, self.max_attempts, not self.allow_ties, mazes,
                               labels, stats)
        if done < count:
            raise RuntimeError(f"no {self.kind} {n}x{n} maze with a path over {self.min_path} "
                               f"moves for seed {seed}, index {start + done} in "
                               f"{self.max_attempts} attempts (lower min_path or wall_density)")
        return mazes, labels, stats

    def generate(self, seed: int, index: int = 0) -> GeneratedMaze:
        mazes, labels, stats = self.generate_arrays(seed, 1, index)
        return GeneratedMaze(mazes[0], labels[0], int(stats[0, 0]), self.kind, int(seed),
                             int(index), int(stats[0, 2]))

    def __call__(self, rng: np.random.Generator) -> GeneratedMaze:
        """Draw one maze from a numpy ``Generator`` (what the environments call on reset)."""
        return self.generate(int(rng.integers(2**63)), 0)
