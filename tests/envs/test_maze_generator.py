"""Shortest-path counting and Maze-Hard with one shortest path (issue 18, item 11)."""

import hashlib
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracegym.envs.maze.board import GOAL, OPEN, PATH, START, WALL, format_maze
from tracegym.envs.maze.generator import STATS_COLUMNS, MazeGenerator, default_min_path
from tracegym.envs.maze.solver import MAX_PATH_COUNT, count_shortest_paths, solve_batch
from tracegym.errors import PuzzleFormatError, TracegymError
from tracegym.grid import dihedral

SEEDS = st.integers(0, 2**63 - 1)
PATHS, TIE_WALLS = STATS_COLUMNS.index("paths"), STATS_COLUMNS.index("tie_walls")


def _brute_force_count(grid: np.ndarray) -> int:
    """Shortest S-to-G paths by listing every simple path (depth-first), independent of BFS."""
    h, w = grid.shape
    start = tuple(np.argwhere(grid == START)[0])
    lengths = []
    seen = {start}

    def walk(r, c, moves):
        if grid[r, c] == GOAL:
            lengths.append(moves)
            return
        for nr, nc in ((r - 1, c), (r, c + 1), (r + 1, c), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and grid[nr, nc] != WALL and (nr, nc) not in seen:
                seen.add((nr, nc))
                walk(nr, nc, moves + 1)
                seen.remove((nr, nc))

    walk(*start, 0)
    return lengths.count(min(lengths)) if lengths else 0


@st.composite
def small_mazes(draw) -> np.ndarray:
    """Grids up to 5x5 with random walls, S and G anywhere (the goal may be cut off) and
    stray path marks, which the counter ignores."""
    h, w = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    cells = draw(st.lists(st.sampled_from([OPEN, OPEN, WALL, PATH]), min_size=h * w,
                          max_size=h * w))
    grid = np.array(cells, np.int8).reshape(h, w)
    s, g = draw(st.lists(st.integers(0, h * w - 1), min_size=2, max_size=2, unique=True))
    grid.flat[s], grid.flat[g] = START, GOAL
    return grid


@given(small_mazes(), st.integers(1, 6))
def test_count_shortest_paths__equals_a_brute_force_count(grid, limit):
    want = _brute_force_count(grid)
    assert count_shortest_paths(grid) == want
    assert count_shortest_paths(grid, limit=limit) == min(want, limit)
    assert count_shortest_paths(format_maze(grid)) == want  # text works too
    batch = count_shortest_paths(np.stack([grid, dihedral(grid, 2)]))  # (B, H, W) -> (B,)
    assert batch.dtype == np.int64 and batch.tolist() == [want, want]


def test_count_shortest_paths__open_grids_exact_then_saturating():
    grid = np.full((20, 20), OPEN, np.int8)
    grid[0, 0], grid[-1, -1] = START, GOAL
    assert count_shortest_paths(grid) == math.comb(38, 19)  # choose the 19 downward moves
    grid = np.full((255, 255), OPEN, np.int8)  # comb(508, 254) paths overflow any int64
    grid[0, 0], grid[-1, -1] = START, GOAL
    assert count_shortest_paths(grid) == MAX_PATH_COUNT
    assert count_shortest_paths(grid, limit=2) == 2


@pytest.mark.parametrize("maze, kwargs, error, message", [
    ("S G", {"limit": 0}, TracegymError, f"limit must be in 1..{MAX_PATH_COUNT}, got 0"),
    ("S G", {"limit": 2.0}, TracegymError, "limit must be an int, got 2.0"),
    (np.array([START, GOAL]), {}, PuzzleFormatError,
     "maze: expected text, an (H, W) grid or a (B, H, W) stack, got shape (2,)"),
    (np.full((2, 3, 3), OPEN), {}, PuzzleFormatError, "maze[0]: no start 'S'"),
])
def test_count_shortest_paths__bad_input(maze, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        count_shortest_paths(maze, **kwargs)


# ---------------------------------------------------------------------------------------------
# the generator


@st.composite
def hard_generators(draw) -> MazeGenerator:
    size = draw(st.integers(6, 16))
    return MazeGenerator(size, "hard", min_path=draw(st.integers(0, default_min_path(size))),
                         wall_density=draw(st.sampled_from([0.1, 0.3, 0.4])))


@given(hard_generators(), SEEDS, st.integers(0, 10**6))
def test_hard_mazes__one_shortest_path_by_default(gen, seed, start):
    mazes, labels, stats = gen.generate_arrays(seed, 3, start)
    assert count_shortest_paths(mazes).tolist() == [1, 1, 1] == stats[:, PATHS].tolist()
    assert (stats[:, 0] > gen.min_path).all()


@given(hard_generators(), SEEDS, st.integers(0, 10**6))
def test_breaking_ties__only_adds_walls_and_keeps_the_length(gen, seed, start):
    """The same draw with ties allowed is the same maze less the tie-breaking walls."""
    tied = MazeGenerator(gen.size, "hard", min_path=gen.min_path, wall_density=gen.wall_density,
                         allow_ties=True)
    mazes, _, stats = gen.generate_arrays(seed, 3, start)
    tied_mazes, _, tied_stats = tied.generate_arrays(seed, 3, start)
    assert (stats[:, 0] == tied_stats[:, 0]).all()  # same length, so as hard as before
    assert (tied_stats[:, TIE_WALLS] == 0).all()
    assert count_shortest_paths(tied_mazes).tolist() == tied_stats[:, PATHS].tolist()
    for maze, tied_maze, walls in zip(mazes, tied_mazes, stats[:, TIE_WALLS]):
        added = (maze == WALL) & (tied_maze != WALL)
        assert not ((tied_maze == WALL) & (maze != WALL)).any()
        assert int(added.sum()) == walls
        # the same two ends (which of them is S is drawn after the walls)
        ends = {tuple(np.argwhere(m == code)[0]) for m in (maze, tied_maze)
                for code in (START, GOAL)}
        assert len(ends) == 2


@pytest.mark.parametrize("kind, size", [("hard", 30), ("hard", 11), ("backtracker", 15),
                                        ("kruskal", 15)])
def test_dihedral_copies__keep_one_path_so_the_label_follows_from_the_maze(kind, size):
    mazes, labels, _ = MazeGenerator(size, kind).generate_arrays(7, 4)
    for k in range(8):
        images, image_labels = dihedral(mazes, k), dihedral(labels, k)  # (4, n, n)
        assert count_shortest_paths(images).tolist() == [1] * 4
        # the solver's own label of the copy (ties would go by its neighbour order) is the
        # copy of the label: the target is a function of the input
        assert np.array_equal(solve_batch(images)[0], image_labels)


def test_allow_ties__the_old_mazes_with_labels_that_break_under_symmetry():
    gen = MazeGenerator(30, "hard", allow_ties=True)
    mazes, labels, stats = gen.generate_arrays(0, 2)
    # byte-identical to the generator before ties were broken, so old datasets rebuild
    assert hashlib.sha256(mazes.tobytes() + labels.tobytes()).hexdigest() == \
        "9add157dfff107a05a2bb696c7b84a9d4ac8c76ceca489bb8c6366924d4ab0c0"
    assert stats[:, 0].tolist() == [111, 123] and (stats[:, PATHS] > 1).all()
    moved = [not np.array_equal(solve_batch(dihedral(mazes, k))[0], dihedral(labels, k))
             for k in range(1, 8)]
    assert any(moved)  # the reason for the default: rotated copies carry rotated tie-breaks
    assert repr(gen) == "MazeGenerator(size=30, kind='hard', allow_ties=True)"


def test_generate__reports_the_path_count():
    assert MazeGenerator(12, "hard").generate(5, 1).paths == 1
    assert MazeGenerator(12, "hard", allow_ties=True).generate(5, 1).paths == \
        count_shortest_paths(MazeGenerator(12, "hard", allow_ties=True).generate(5, 1).maze)
