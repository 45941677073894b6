"""Maze augmentations: the 8 symmetries of the square, on a maze and its path alike.

A rotated or mirrored maze is another valid maze with the same shortest-path length (its path is
the image of the path), so a dataset may add such copies of a train maze, and must not let a copy
of a test maze into train: :func:`canonical_forms` names a maze's whole symmetry class.
Symmetries are numbered as :func:`tracegym.grid.dihedral` (TRM's numbering).
"""

from __future__ import annotations

import numpy as np

from tracegym.checks import check_int
from tracegym.grid import dihedral

MAX_AUGMENT = 7  # the 8 symmetries of the square less the identity


def canonical_forms(mazes: np.ndarray) -> list[bytes]:
    """``(B, n, n)`` mazes -> the least of each maze's 8 dihedral images, as bytes.

    Two mazes have the same form iff one is a rotation or reflection of the other; pass mazes
    without their path (the inputs, not the labels).
    """
    b, h, w = mazes.shape
    images = np.stack([dihedral(mazes, k) for k in range(8)], axis=1)  # (B, 8, n, n)
    images = np.ascontiguousarray(images, dtype=np.int8).reshape(b, 8, h * w)  # (B, 8, n*n)
    return [min(row.tobytes() for row in images[i]) for i in range(b)]


def augment_pair(rng: np.random.Generator, maze: np.ndarray, label: np.ndarray, count: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` (0..7) copies of one ``(n, n)`` maze and its label under distinct non-identity
    symmetries drawn with ``rng``: ``(mazes (count, n, n), labels, symmetry ids (count,))``."""
    count = check_int("count", count, 0, MAX_AUGMENT)
    ks = rng.choice(np.arange(1, 8), size=count, replace=False)
    mazes = np.stack([maze, *(dihedral(maze, int(k)) for k in ks)])[1:]  # (count, n, n)
    labels = np.stack([label, *(dihedral(label, int(k)) for k in ks)])[1:]
    return mazes, labels, ks
