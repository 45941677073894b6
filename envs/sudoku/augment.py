"""Validity-preserving Sudoku augmentations and an augmentation-invariant fingerprint.

A Sudoku stays a Sudoku (same number of solutions, the solution transformed the same way) under
these moves, which map rows to rows, columns to columns and boxes to boxes:

* digit relabelling: any permutation of the digits 1..n (blank stays blank);
* band permutations: a *band* is a horizontal strip of ``box_rows`` rows; the bands can be
  reordered;
* row-in-band permutations: the rows inside each band can be reordered;
* stack permutations and column-in-stack permutations: the same for the vertical strips of
  ``box_cols`` columns;
* transpose, only when ``box_rows == box_cols`` (4x4, 9x9, 16x16). On a 6x6 board the boxes are
  2 rows by 3 columns; transposing turns them into 3-row by 2-column blocks, which are not the
  boxes of the board, so the transposed grid may repeat a digit inside a box.

An augmentation is stored as two lookup tables: ``cell_map`` (``n*n``,), where cell ``i`` of the
new grid (row-major) takes the value of cell ``cell_map[i]`` of the old one, and ``digit_map``
(``n+1``,) with ``digit_map[0] == 0``, the new value of each old value. Applying one is two
gathers, so a whole batch is transformed in a few numpy calls.

:func:`equivalence_fingerprint` summarises a puzzle by features that no augmentation changes. It is
a conservative filter for "could these two puzzles be augmentations of each other?": different
fingerprints prove that they are not; equal fingerprints do *not* prove that they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracegym.checks import check_int

from .board import geometry


@dataclass(frozen=True, eq=False)
class Augmentation:
    """One validity-preserving transform of ``size x size`` grids.

    ``cell_map`` (``n*n``,): new cell ``i`` (row-major) takes old cell ``cell_map[i]``;
    ``digit_map`` (``n+1``,): old value ``v`` becomes ``digit_map[v]``, with 0 (blank) kept.
    Build one with :func:`random_augmentation` or :meth:`identity`; the constructor checks that
    both tables are permutations but not that the cell permutation keeps the Sudoku rules.

    >>> import numpy as np
    >>> aug = random_augmentation(4, np.random.default_rng(0))
    >>> grid = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])
    >>> bool((aug.inverse().apply(aug.apply(grid)) == grid).all())
    True
    """

    size: int
    cell_map: np.ndarray = field(repr=False)  # (n*n,) int
    digit_map: np.ndarray = field(repr=False)  # (n+1,) int, digit_map[0] == 0

    def __post_init__(self):
        n = self.size
        geometry(n)  # validates the size
        cell_map = np.array(self.cell_map, dtype=np.int64)  # own copy, frozen below
        digit_map = np.array(self.digit_map, dtype=np.int64)
        if cell_map.shape != (n * n,) or not np.array_equal(np.sort(cell_map), np.arange(n * n)):
            raise ValueError(f"cell_map must be a permutation of 0..{n * n - 1}, "
                             f"got shape {cell_map.shape}")
        if (digit_map.shape != (n + 1,) or digit_map[0] != 0
                or not np.array_equal(np.sort(digit_map), np.arange(n + 1))):
            raise ValueError(f"digit_map must be a permutation of 0..{n} with 0 -> 0, "
                             f"got {digit_map.tolist()}")
        cell_map.setflags(write=False)
        digit_map.setflags(write=False)
        object.__setattr__(self, "cell_map", cell_map)
        object.__setattr__(self, "digit_map", digit_map)

    @classmethod
    def identity(cls, size: int) -> Augmentation:
        return cls(size, np.arange(size * size), np.arange(size + 1))

    def apply(self, grids: np.ndarray) -> np.ndarray:
        """Transform ``(..., n, n)`` grids (0 = blank); the dtype is kept.

        Apply the same augmentation to a puzzle and its solution to keep them paired.
        """
        grids = np.asarray(grids)
        n = self.size
        if grids.ndim < 2 or grids.shape[-2:] != (n, n):
            raise ValueError(f"grids: expected shape (..., {n}, {n}), got {grids.shape}")
        flat = grids.reshape(*grids.shape[:-2], n * n)  # (..., n*n)
        moved = flat[..., self.cell_map]
        return self.digit_map[moved].astype(grids.dtype).reshape(grids.shape)

    def inverse(self) -> Augmentation:
        """The augmentation that undoes this one: ``a.inverse().apply(a.apply(g)) == g``."""
        return Augmentation(self.size, np.argsort(self.cell_map), np.argsort(self.digit_map))

    def __eq__(self, other) -> bool:
        return (isinstance(other, Augmentation) and self.size == other.size
                and np.array_equal(self.cell_map, other.cell_map)
                and np.array_equal(self.digit_map, other.digit_map))

    __hash__ = None  # mutable-looking arrays inside: not hashable


def _random_permutations(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform random permutations of ``0..shape[-1]-1`` along the last axis, one per row."""
    return np.argsort(rng.random(shape), axis=-1)


def _line_permutations(rng, count: int, strips: int, width: int) -> np.ndarray:
    """``count`` permutations of the ``strips * width`` rows (or columns) of a board that move
    whole strips (bands or stacks) and lines within a strip: (count, strips * width)."""
    strip_perm = _random_permutations(rng, (count, strips))  # (count, strips)
    inner = _random_permutations(rng, (count, strips, width))  # (count, strips, width)
    return (strip_perm[:, :, None] * width + inner).reshape(count, strips * width)


def random_maps(size: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random augmentations as raw tables: ``cell_maps (count, n*n)``,
    ``digit_maps (count, n+1)`` (int64). Transpose is drawn with probability 1/2 where allowed.

    The draws from ``rng`` come in a fixed order, so the same generator state gives the same
    tables.
    """
    geo = geometry(size)
    n, br, bc = size, geo.box_rows, geo.box_cols
    count = check_int("count", count, 0)
    row_perm = _line_permutations(rng, count, n // br, br)  # (count, n): bands of br rows
    col_perm = _line_permutations(rng, count, n // bc, bc)  # (count, n): stacks of bc columns
    # Transposing swaps the roles of box rows and box columns: only legal for square boxes.
    transpose = rng.random(count) < 0.5 if br == bc else np.zeros(count, dtype=bool)
    digit_perm = _random_permutations(rng, (count, n)) + 1  # (count, n) new digit of 1..n
    # new (i, j) <- old (row_perm[i], col_perm[j]), or old (col_perm[j], row_perm[i]) transposed
    rows = row_perm[:, :, None]  # (count, n, 1)
    cols = col_perm[:, None, :]  # (count, 1, n)
    cell_maps = np.where(transpose[:, None, None], cols * n + rows, rows * n + cols)
    digit_maps = np.concatenate([np.zeros((count, 1), dtype=np.int64), digit_perm], axis=1)
    return cell_maps.reshape(count, n * n), digit_maps


def random_augmentation(size: int, rng: np.random.Generator) -> Augmentation:
    """A uniformly random augmentation of ``size x size`` boards drawn from ``rng``."""
    cell_maps, digit_maps = random_maps(size, 1, rng)
    return Augmentation(size, cell_maps[0], digit_maps[0])


def augment_batch(puzzles: np.ndarray, solutions: np.ndarray, k: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` random augmentations of each of ``B`` puzzles, the same one for its solution.

    ``puzzles`` and ``solutions`` are ``(B, n, n)``; returns two ``(B, k, n, n)`` arrays of the
    input dtype, ``[b, j]`` being the ``j``-th augmentation of item ``b``.
    """
    puzzles = np.asarray(puzzles)
    solutions = np.asarray(solutions)
    if puzzles.ndim != 3 or puzzles.shape[1] != puzzles.shape[2]:
        raise ValueError(f"puzzles: expected shape (B, n, n), got {puzzles.shape}")
    if solutions.shape != puzzles.shape:
        raise ValueError(f"solutions: expected shape {puzzles.shape} like puzzles, "
                         f"got {solutions.shape}")
    k = check_int("k", k, 0)
    b, n, _ = puzzles.shape
    cell_maps, digit_maps = random_maps(n, b * k, rng)
    cell_maps = cell_maps.reshape(b, k, n * n)
    digit_maps = digit_maps.reshape(b, k, n + 1)

    def transform(grids: np.ndarray) -> np.ndarray:
        flat = np.broadcast_to(grids.reshape(b, 1, n * n), (b, k, n * n))
        moved = np.take_along_axis(flat, cell_maps, axis=-1)  # (b, k, n*n) old values
        relabelled = np.take_along_axis(digit_maps, moved.astype(np.int64), axis=-1)
        return relabelled.astype(grids.dtype).reshape(b, k, n, n)

    return transform(puzzles), transform(solutions)


def _strip_feature(counts: np.ndarray, strips: int, width: int) -> np.ndarray:
    """Order-free summary of per-line clue counts ``(B, strips * width)``: sort the lines in
    each strip, then sort the strips. Returns ``(B, strips)`` int64 keys, each strip's sorted
    counts written as one base-``(n+1)`` number (a one-to-one code, so sorting keys sorts
    strips lexicographically)."""
    b = counts.shape[0]
    n = strips * width
    inner = np.sort(counts.reshape(b, strips, width), axis=-1)  # (B, strips, width)
    weights = (n + 1) ** np.arange(width - 1, -1, -1, dtype=np.int64)  # (width,)
    return np.sort(inner @ weights, axis=-1)  # (B, strips)


def equivalence_fingerprints(grids: np.ndarray) -> list[bytes]:
    """:func:`equivalence_fingerprint` of each of ``(B, n, n)`` grids, vectorised."""
    grids = np.asarray(grids)
    if grids.ndim != 3 or grids.shape[1] != grids.shape[2]:
        raise ValueError(f"grids: expected shape (B, n, n), got {grids.shape}")
    b, n, _ = grids.shape
    geo = geometry(n)
    br, bc = geo.box_rows, geo.box_cols
    given = grids != 0  # (B, n, n)
    # digit histogram of the givens, sorted: relabelling only permutes it
    hist = np.sort((grids[..., None] == np.arange(1, n + 1)).sum(axis=(1, 2)), axis=-1)
    rows = _strip_feature(given.sum(axis=2), n // br, br)  # (B, bands)
    cols = _strip_feature(given.sum(axis=1), n // bc, bc)  # (B, stacks)
    if br == bc:
        # Transpose swaps the row and column features: keep the pair as (smaller, larger),
        # comparing lexicographically at the first position where they differ.
        differ = rows != cols
        first = np.argmax(differ, axis=1)
        at = np.arange(b)
        rows_first = (rows[at, first] <= cols[at, first])[:, None]
        rows, cols = np.where(rows_first, rows, cols), np.where(rows_first, cols, rows)
    boxes = given.reshape(b, n // br, br, n // bc, bc).sum(axis=(2, 4)).reshape(b, n)
    boxes = np.sort(boxes, axis=-1)  # (B, n) box clue counts, order-free
    features = np.concatenate([hist, rows, cols, boxes], axis=1).astype("<i4")
    head = bytes([n])
    return [head + row.tobytes() for row in features]


def equivalence_fingerprint(grid: np.ndarray) -> bytes:
    """Bytes that are identical for a puzzle and all of its augmentations.

    Built from augmentation-invariant features of the givens only: the sorted digit-count
    histogram; the row clue counts sorted within each band, bands sorted; the same for columns
    within stacks; that (rows, columns) pair made order-free when transpose is allowed; and the
    sorted clue counts of the boxes. Equal fingerprints do NOT imply that two puzzles are
    equivalent: this is a conservative filter (it may call unrelated puzzles alike, never the
    reverse), used to keep test puzzles and their look-alikes out of training data.
    """
    grid = np.asarray(grid)
    if grid.ndim != 2:
        raise ValueError(f"grid: expected shape (n, n), got {grid.shape}")
    return equivalence_fingerprints(grid[None])[0]
