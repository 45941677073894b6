"""The maze's token layout (envs/maze/tokens.py) and augmentations (envs/maze/augment.py)."""

import re

import numpy as np
import pytest

from tracegym.envs.maze import tokens
from tracegym.envs.maze.augment import MAX_AUGMENT, augment_pair, canonical_forms
from tracegym.envs.maze.board import PATH, parse_maze
from tracegym.envs.maze.generator import MazeGenerator
from tracegym.envs.maze.solver import path_verdict
from tracegym.grid import dihedral

MAZE = parse_maze("#####\n#S  #\n# # #\n#  G#\n#####", allow_path=False)


def test_tokens__cell_codes_are_the_ids_row_major():
    ids = tokens.encode(MAZE)
    assert ids.dtype == np.uint8 and ids.shape == (tokens.seq_len(5),)
    assert np.array_equal(ids, MAZE.reshape(-1)) and tokens.VOCAB_SIZE == PATH + 1 == 6
    assert np.array_equal(tokens.decode(ids, 5), MAZE)
    batch = np.stack([MAZE, MAZE])
    assert np.array_equal(tokens.decode(tokens.encode(batch), 5), batch)
    assert tokens.encode(np.zeros((0, 5, 5), np.int8)).shape == (0, 25)


def test_tokens__decode_refuses_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=re.escape("tokens: ids must be in 0..5")):
        tokens.decode(np.full(25, 6), 5)
    with pytest.raises(ValueError, match=re.escape("tokens: expected a last axis of 25")):
        tokens.decode(np.zeros(24), 5)


def test_augment_pair__distinct_symmetries_on_maze_and_path_alike():
    mazes, labels, _ = MazeGenerator(9, "backtracker").generate_arrays(0, 1)
    copies, copy_labels, ks = augment_pair(np.random.default_rng(0), mazes[0], labels[0],
                                           MAX_AUGMENT)
    assert sorted(ks.tolist()) == list(range(1, 8))  # every non-identity symmetry once
    for m, lab, k in zip(copies, copy_labels, ks):
        assert np.array_equal(m, dihedral(mazes[0], k))
        assert np.array_equal(lab, dihedral(labels[0], k))
        assert path_verdict(m, lab) is None  # the image of a shortest path is one
    empty = augment_pair(np.random.default_rng(0), mazes[0], labels[0], 0)
    assert [a.shape[0] for a in empty] == [0, 0, 0]
    with pytest.raises(ValueError, match=re.escape("count must be in 0..7, got 8")):
        augment_pair(np.random.default_rng(0), mazes[0], labels[0], 8)


def test_canonical_forms__equal_exactly_for_symmetric_images():
    mazes = MazeGenerator(9, "kruskal").generate_arrays(1, 3)[0]
    images = np.stack([dihedral(mazes[0], k) for k in range(8)])
    assert len(set(canonical_forms(images))) == 1
    assert len(set(canonical_forms(mazes))) == 3
