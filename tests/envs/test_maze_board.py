import re
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracegym.envs.maze.board import (
    GOAL,
    OPEN,
    PATH,
    START,
    WALL,
    MazeError,
    format_maze,
    parse_maze,
    read_mazes,
    strip_path,
    write_mazes,
)
from tracegym.envs.maze.generator import KINDS, MazeGenerator, default_min_path
from tracegym.envs.maze.solver import check_path, path_verdict, shortest_path, solve_batch
from tracegym.errors import PuzzleFormatError, UnsolvableError
from tracegym.grid import dihedral

SEEDS = st.integers(0, 2**63 - 1)


@st.composite
def generators(draw) -> MazeGenerator:
    """A generator of any kind: odd sizes 5..15 for perfect mazes, 6..15 for hard ones with a
    small ``min_path``, ties broken or allowed (shrinks toward 5x5 backtracker)."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "hard":
        size = draw(st.integers(6, 15))
        return MazeGenerator(size, kind, min_path=draw(st.integers(0, default_min_path(size))),
                             allow_ties=draw(st.booleans()))
    return MazeGenerator(draw(st.sampled_from(range(5, 16, 2))), kind)


@st.composite
def generated(draw):
    """``(maze, label, length)`` of one generated maze."""
    gen = draw(generators())
    item = gen.generate(draw(SEEDS), draw(st.integers(0, 10**6)))
    return item.maze, item.label, item.length


def _bfs_length(grid: np.ndarray, passable=None) -> int:
    """Moves on a shortest S-to-G path over ``passable`` cells (default: not walls), -1 if
    none; a plain BFS, independent of the library's solver."""
    if passable is None:
        passable = grid != WALL
    h, w = grid.shape
    start = tuple(np.argwhere(grid == START)[0])
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if grid[r, c] == GOAL:
            return dist[r, c]
        for nr, nc in ((r - 1, c), (r, c + 1), (r + 1, c), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and passable[nr, nc] and (nr, nc) not in dist:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return -1


# ---------------------------------------------------------------------------------------------
# properties


@given(generated())
def test_format_maze__parse_round_trip(case):
    maze, label, _ = case
    text = format_maze(maze)
    assert "o" not in text and len(text.split("\n")) == maze.shape[0]
    assert np.array_equal(parse_maze(text, allow_path=False), maze)
    assert np.array_equal(parse_maze(format_maze(label)), label)
    assert parse_maze(text).dtype == np.int8


@given(st.lists(generated(), min_size=1, max_size=4))
def test_write_mazes__read_round_trip_of_several_blocks(cases):
    grids = [grid for maze, label, _ in cases for grid in (maze, label)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mazes.txt"
        write_mazes(path, grids)
        back = read_mazes(path)
        assert [p.name for p in Path(tmp).iterdir()] == ["mazes.txt"]  # no temp file left
    assert len(back) == len(grids)
    for got, want in zip(back, grids):
        assert np.array_equal(got, want)


@given(generated())
def test_generator__label_is_a_shortest_path_by_an_independent_bfs(case):
    maze, label, length = case
    assert set(np.unique(maze)) <= {WALL, OPEN, START, GOAL}
    assert (maze == START).sum() == 1 and (maze == GOAL).sum() == 1
    assert (maze[[0, -1], :] == WALL).all() and (maze[:, [0, -1]] == WALL).all()  # a border
    assert _bfs_length(maze) == length > 0
    on_path = label == PATH
    assert np.array_equal(strip_path(label), maze)  # the label only adds path marks...
    assert (maze[on_path] == OPEN).all()  # ... on open cells
    assert int(on_path.sum()) == length - 1
    chain = on_path | (maze == START) | (maze == GOAL)
    assert _bfs_length(maze, chain) == length  # the marks join S to G
    # a shortest path has no shortcut: S and G touch one chain cell, every mark two
    padded = np.pad(chain, 1)
    neighbours = (padded[:-2, 1:-1].astype(int) + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])
    assert (neighbours[maze == START] == 1).all() and (neighbours[maze == GOAL] == 1).all()
    assert (neighbours[on_path] == 2).all()
    assert path_verdict(maze, label) is None
    assert shortest_path(maze)[0] == length


@given(generated())
def test_dihedral__keeps_the_shortest_length(case):
    maze, label, length = case
    images = np.stack([dihedral(maze, k) for k in range(8)])  # (8, n, n)
    labels = np.stack([dihedral(label, k) for k in range(8)])
    assert [_bfs_length(image) for image in images] == [length] * 8
    assert solve_batch(images)[1].tolist() == [length] * 8
    assert all(path_verdict(m, lab) is None for m, lab in zip(images, labels))


@given(generators(), SEEDS, st.integers(0, 1000), st.integers(1, 6))
def test_generator__same_seed_same_bytes_and_items_rebuild_alone(gen, seed, start, count):
    mazes, labels, stats = gen.generate_arrays(seed, count, start)
    again = MazeGenerator(gen.size, gen.kind, min_path=gen.min_path, allow_ties=gen.allow_ties)
    for got, want in zip(again.generate_arrays(seed, count, start), (mazes, labels, stats)):
        assert got.tobytes() == want.tobytes()
    j = count - 1
    alone = gen.generate(seed, start + j)
    assert np.array_equal(alone.maze, mazes[j]) and np.array_equal(alone.label, labels[j])
    assert alone.length == stats[j, 0] and alone.paths == stats[j, 2]
    assert mazes.dtype == labels.dtype == np.int8 and mazes.shape == (count, gen.size, gen.size)


def test_generator__different_seeds_differ():
    gen = MazeGenerator(15, "kruskal")
    assert gen.generate_arrays(1, 4)[0].tobytes() != gen.generate_arrays(2, 4)[0].tobytes()


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("text, message", [
    ("###\n#S\n#G#", "maze: ragged rows: row 2 has 2 characters, row 1 has 3"),
    ("#S#\n#x#\n#G#", "maze: unknown character 'x' at row 2, column 2 (expected one of '#', "
                      "' ', 'S', 'G', 'o')"),
    ("###\n# #\n#G#", "maze: no start 'S'"),
    ("S S\n#G#", "maze: two of start 'S', at row 1, column 1 and row 1, column 3"),
    ("#S#\n# #\n###", "maze: no goal 'G'"),
    ("SG", "maze: expected a 2-D grid of at least 2x2, got shape (1, 2)"),
    ("", "maze: empty maze"),
])
def test_parse_maze__bad_text(text, message):
    with pytest.raises(PuzzleFormatError, match=re.escape(message)):
        parse_maze(text)


def test_parse_maze__path_marks_only_where_allowed():
    message = "maze: unknown character 'o' at row 1, column 2 (expected one of '#', ' ', 'S', 'G')"
    with pytest.raises(PuzzleFormatError, match=re.escape(message)):
        parse_maze("SoG\n   ", allow_path=False)
    assert parse_maze("SoG\n   ")[0, 1] == PATH


def test_read_mazes__errors_name_the_file_and_block(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("mazes: no such file")):
        read_mazes(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(PuzzleFormatError, match=re.escape(f"mazes: file {str(empty)!r} holds "
                                                          f"no maze")):
        read_mazes(empty)
    bad = tmp_path / "bad.txt"
    bad.write_text("S G\n###\n\n\nS G\n#S#\n")
    with pytest.raises(MazeError, match=re.escape("bad.txt: maze 2: two of start 'S'")):
        read_mazes(bad)


def test_shortest_path__unreachable_goal_names_it():
    message = ("maze: goal at row 1, column 3 is unreachable from the start at row 1, column 1")
    with pytest.raises(UnsolvableError, match=re.escape(message)):
        shortest_path("S#G\n ##")
    maze = parse_maze("S#G\n ##")
    assert path_verdict(maze, maze) == "the goal is unreachable"
    assert solve_batch(maze[None])[1].tolist() == [-1]


def test_shortest_path__length_and_label():
    length, label = shortest_path("S  G\n    ")
    assert length == 3 and format_maze(label) == "SooG\n    "


@pytest.mark.parametrize("maze, answer, verdict", [
    ("S   G\n     ", "So oG\n o   ", "path is broken: it does not connect S to G (a jump or a "
                                     "gap)"),
    ("S#G\n   ", "SoG\n   ", "path crosses a wall at row 1, column 2"),
    ("S#G\n   ", "S#G\n#  ", "cell at row 2, column 1 differs from the maze"),
    ("S  G\n    ", "So G\n    ", "path has 1 cells; a shortest path has 2"),
    ("S  G\n    ", "S  G\noooo", "path has 4 cells; a shortest path has 2"),
])
def test_path_verdict__names_the_fault(maze, answer, verdict):
    maze, answer = parse_maze(maze), parse_maze(answer)
    assert path_verdict(maze, answer) == verdict
    if np.array_equal(strip_path(answer), maze):  # check_path reads the maze off the answer
        with pytest.raises(MazeError, match=re.escape(f"maze: {verdict}")):
            check_path(format_maze(answer))


def test_check_path__returns_the_maze_of_a_good_answer():
    assert format_maze(check_path("S#G\nooo")) == "S#G\n   "
    assert path_verdict(parse_maze("S  \n  G"), parse_maze("S  \nooG")) is None  # any shortest
    assert path_verdict(parse_maze("S  \n  G"), parse_maze("Soo\n  G")) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "prim"}, "kind must be one of ['backtracker', 'kruskal', 'hard'], got 'prim'"),
    ({"size": 8, "kind": "backtracker"}, "size must be odd for a perfect (backtracker) maze, "
                                         "got 8"),
    ({"size": 10, "kind": "kruskal"}, "size must be odd for a perfect (kruskal) maze, got 10"),
    ({"size": 4}, "size must be in 5..255, got 4"),
    ({"size": 7.0}, "size must be an int, got 7.0"),
    ({"wall_density": 1.0}, "wall_density must be in [0, 1), got 1.0"),
    ({"wall_density": -0.1}, "wall_density must be in [0, 1), got -0.1"),
    ({"min_path": -1}, "min_path must be >= 0, got -1"),
    ({"max_attempts": 0}, "max_attempts must be >= 1, got 0"),
    ({"allow_ties": "no"}, "allow_ties must be a bool, got 'no'"),
])
def test_maze_generator__bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MazeGenerator(**{"size": 9, **kwargs})


def test_maze_generator__bad_calls_and_impossible_requests():
    gen = MazeGenerator(7, "backtracker")
    with pytest.raises(ValueError, match=re.escape("count must be >= 0, got -1")):
        gen.generate_arrays(0, -1)
    with pytest.raises(ValueError, match=re.escape("seed must be an int, got 1.5")):
        gen.generate_arrays(1.5, 1)
    hopeless = MazeGenerator(6, "hard", min_path=100, max_attempts=3)
    with pytest.raises(RuntimeError, match=re.escape("no hard 6x6 maze with a path over 100 "
                                                     "moves for seed 0, index 0 in 3 attempts")):
        hopeless.generate_arrays(0, 1)
