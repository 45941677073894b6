import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tracegym.errors import PuzzleFormatError
from tracegym.grid import (
    digit_alphabet,
    dihedral,
    format_char_grid,
    inverse_dihedral,
    parse_char_grid,
)

grids = arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 9))


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
