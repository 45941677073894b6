import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracegym.envs.sudoku.board import (
    as_grid,
    format_puzzle,
    geometry,
    is_valid_solution,
    parse_puzzle,
    read_puzzles,
)
from tracegym.envs.sudoku.generator import SudokuGenerator
from tracegym.errors import ConflictError, PuzzleFormatError

SOLVED_9 = "417369825632158947958724316825437169791586432346912758289643571573291684164875293"


@given(size=st.sampled_from([4, 6, 9, 16]), seed=st.integers(0, 2**32), blank=st.sampled_from(".0"))
def test_format_parse__round_trip(size, seed, blank):
    gen = SudokuGenerator(size, "easy")
    puzzle = gen.generate(seed).puzzle
    text = format_puzzle(puzzle, blank=blank)
    assert len(text) == size * size
    assert np.array_equal(parse_puzzle(text), puzzle)
    assert format_puzzle(parse_puzzle(text), blank=blank) == text


def test_parse__sixteen_uses_letters_case_insensitive():
    gen = SudokuGenerator(16, "easy")
    text = format_puzzle(gen.generate(0).solution)
    assert set(text) == set("123456789ABCDEFG")
    assert np.array_equal(parse_puzzle(text.lower()), parse_puzzle(text))


def test_geometry__units_and_peers():
    geo = geometry(6)
    assert geo.units.shape == (18, 6) and geo.peers.shape == (36, 12)
    assert geo.box_of(3, 4) == 3  # second band, second stack of 2x3 boxes
    geo9 = geometry(9)
    assert sorted(geo9.peers[0].tolist()) == sorted(
        (set(range(9)) | set(range(0, 81, 9)) | {10, 11, 19, 20}) - {0})


@pytest.mark.parametrize("text, message", [
    ("1" * 80, "puzzle: length 80 is not a Sudoku size"),
    ("x" + "." * 80, "puzzle: bad character 'x' at position 0 (row 1, column 1)"),
    ("." * 40 + "H" + "." * 40, "puzzle: bad character 'H' at position 40 (row 5, column 5)"),
    ("11" + "." * 79, "puzzle: digit 1 appears twice in row 1"),
    ("5" + "." * 8 + "5" + "." * 71, "puzzle: digit 5 appears twice in column 1"),
    ("7" + "." * 9 + "7" + "." * 70, "puzzle: digit 7 appears twice in box 1"),
    ("." * 15 + "5", "puzzle: bad character '5' at position 15"),  # 4x4 has digits 1-4 only
])
def test_parse_puzzle__bad_input(text, message):
    with pytest.raises((PuzzleFormatError, ConflictError), match=re.escape(message)):
        parse_puzzle(text)


def test_conflict__is_a_value_error_subclass():
    with pytest.raises(ValueError):
        parse_puzzle("11" + "." * 79)
    assert issubclass(ConflictError, ValueError)


@pytest.mark.parametrize("grid, message", [
    (np.zeros((9, 8), int), "puzzle: expected a square grid"),
    (np.full((4, 4), 5), "puzzle: cell at row 1, column 1 has value 5 outside 0..4"),
    (np.zeros((4, 4), float), "puzzle: expected integer cells"),
])
def test_as_grid__bad_arrays(grid, message):
    with pytest.raises(PuzzleFormatError, match=re.escape(message)):
        as_grid(grid)


def test_read_puzzles__skips_comments_and_names_the_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text(f"# header\n\n{SOLVED_9}\n{'1' * 81}\n")
    with pytest.raises(ConflictError, match=re.escape("p.txt:4: digit 1 appears twice in row 1")):
        read_puzzles(path)
    path.write_text(f"# header\n{SOLVED_9}\n")
    assert len(read_puzzles(path)) == 1
    with pytest.raises(FileNotFoundError):
        read_puzzles(tmp_path / "missing.txt")


def test_is_valid_solution__checks_rules_and_givens():
    grid = parse_puzzle(SOLVED_9)
    assert is_valid_solution(grid)
    swapped = grid.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]
    assert not is_valid_solution(swapped)
    givens = np.zeros_like(grid)
    givens[0, 0] = grid[0, 0] % 9 + 1
    assert not is_valid_solution(grid, givens)
