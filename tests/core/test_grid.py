import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tracegym.errors import PuzzleFormatError
from tracegym.grid import (
    DIHEDRAL_INVERSE,
    char_texts,
    digit_alphabet,
    dihedral,
    format_char_grid,
    inverse_dihedral,
    parse_char_grid,
    parse_char_rows,
)

grids = arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 9))


# TRM's dihedral_transform (dataset/common.py), written out: dataset names t<k> mean these
TRM_DIHEDRAL = [
    lambda x: x, lambda x: np.rot90(x, 1), lambda x: np.rot90(x, 2), lambda x: np.rot90(x, 3),
    np.fliplr, np.flipud, lambda x: x.T, lambda x: np.fliplr(np.rot90(x, 1)),
]


@given(grid=grids, k=st.integers(0, 7))
def test_dihedral__is_trms_numbering(grid, k):
    assert np.array_equal(dihedral(grid, k), TRM_DIHEDRAL[k](grid))


def test_dihedral__inverse_table_is_trms():
    assert DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)
    assert [inverse_dihedral(k) for k in range(8)] == list(DIHEDRAL_INVERSE)


@given(grid=grids, k=st.integers(0, 7))
def test_dihedral__acts_on_the_last_two_axes_of_a_batch(grid, k):
    batch = np.stack([grid, grid + 1])  # (2, h, w)
    moved = dihedral(batch, k)
    assert all(np.array_equal(moved[i], dihedral(batch[i], k)) for i in range(2))


@given(grid=grids, k=st.integers(0, 7))
def test_dihedral__inverse_undoes(grid, k):
    assert np.array_equal(dihedral(dihedral(grid, k), inverse_dihedral(k)), grid)


def test_dihedral__eight_distinct_symmetries():
    grid = np.arange(9).reshape(3, 3)
    images = {dihedral(grid, k).tobytes() for k in range(8)}
    assert len(images) == 8
    with pytest.raises(ValueError, match=re.escape("k must be in 0..7, got 8")):
        dihedral(grid, 8)


@given(grid=grids)
def test_char_grid__round_trip(grid):
    symbols = ".123456789"
    text = format_char_grid(grid, symbols)
    assert np.array_equal(parse_char_grid(text, digit_alphabet(9), grid.shape), grid)


def test_parse_char_grid__non_ascii_character():
    with pytest.raises(PuzzleFormatError, match=re.escape("grid: bad character 'é' at position 1")):
        parse_char_grid("1é34", digit_alphabet(4), (2, 2))


def test_parse_char_rows__names_row_column_and_allowed_characters():
    alphabet = {"#": 1, " ": 2}
    assert parse_char_rows(["# ", " #"], alphabet).tolist() == [[1, 2], [2, 1]]
    with pytest.raises(PuzzleFormatError, match=re.escape(
            "m: unknown character 'é' at row 2, column 1 (expected one of '#', ' ')")):
        parse_char_rows(["# ", "é#"], alphabet, field="m")
    with pytest.raises(PuzzleFormatError, match=re.escape(
            "m: ragged rows: row 2 has 1 characters, row 1 has 2")):
        parse_char_rows(["# ", "#"], alphabet, field="m")


@given(batch=arrays(np.int8, st.tuples(st.integers(0, 3), st.integers(1, 5), st.integers(1, 5)),
                    elements=st.integers(0, 4)))
def test_char_texts__each_row_of_a_batch_is_the_grid_text(batch):
    symbols = "?# SG"  # a space among them: trailing spaces must survive
    for sep in ("", "\n"):
        texts = char_texts(batch, symbols, row_sep=sep)
        assert texts.shape == batch.shape[:1]
        for grid, text in zip(batch, texts):
            expected = sep.join("".join(symbols[v] for v in row) for row in grid)
            assert text.decode("ascii") == expected == format_char_grid(grid, symbols, row_sep=sep)
