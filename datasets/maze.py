"""Maze dataset: generated mazes in the TRM layout plus Parquet.

Layout (see :mod:`tracegym.datasets.writer`)::

    OUT/identifiers.json                      ["<blank>"]
    OUT/{train,test}/dataset.json             vocab_size 6, seq_len size*size, pad/ignore/blank 0,
                                              and "tracegym": how the mazes were generated
    OUT/{train,test}/all__inputs.npy          (N, size*size) uint8 maze tokens
    OUT/{train,test}/all__labels.npy          (N, size*size) uint8 the maze with its path marked
    OUT/{train,test}/all__puzzle_identifiers.npy, all__puzzle_indices.npy, all__group_indices.npy
    OUT/{train,test}/all.parquet              one row per example, with the columns below

Tokens are :mod:`tracegym.envs.maze.tokens` (TRM's ``build_maze_dataset.py``): the grid codes of
:mod:`tracegym.envs.maze.board` are the token ids (0 pad, 1 wall ``#``, 2 open, 3 ``S``, 4 ``G``,
5 path ``o``), row-major, so ``seq_len`` is 900 at 30x30. A label is the input with its
shortest S-to-G path marked 5. By default that path is unique (the generator breaks ties), so the
label is a function of the input, on augmented copies too; with ``allow_ties`` a maze may have
several and the label marks one (any shortest path is still a correct answer to
:func:`~tracegym.envs.maze.solver.path_verdict`). Every
example is its own puzzle (``puzzle_indices = arange(N + 1)``, identifiers all 0), and a group is
one original maze followed by its augmented copies (``group_indices = arange(G + 1) * (1 +
augment)``).

Which mazes go where (``MazeGenerator(size, kind, wall_density, min_path, allow_ties)``):

* test: items ``0..test-1`` of the generator under a seed derived from ``seed`` (stream 0); never
  augmented.
* train: items ``0..train-1`` under a second derived seed (stream 1). A train maze whose
  canonical form (the least, as bytes, of the 8 dihedral images of the maze without its path)
  equals that of any test maze is rejected and redrawn from the item's own redraw streams (redraw
  ``j`` of item ``i`` is item ``i`` under a seed derived from ``(seed, j)``), so no train
  example, augmented or not, is a test maze, and the choice never depends on other train items or
  on sharding. Train items are not deduplicated among themselves. Each train maze is followed by
  ``augment`` (at most 7) copies under distinct non-identity symmetries of the square
  (:func:`tracegym.envs.maze.augment.augment_pair`; :func:`tracegym.grid.dihedral` numbers them
  as TRM does), the same on input and label, drawn from a random stream seeded by ``(seed,
  item)``.

Parquet columns beside the tokens: ``item`` (index of the original maze in its split),
``augmentation`` (0 for the original, else the dihedral index ``k`` of the copy), ``maze`` and
``label`` (the example as text, :func:`~tracegym.envs.maze.board.format_maze`), ``length`` (moves
on a shortest path), ``shortest_paths`` (how many there are, saturating at 2**62; 1 unless
``allow_ties``), ``generator_seed`` (item ``item`` of the generator under this seed rebuilds the
original maze).

Each split's ``dataset.json`` has, beside TRM's fields (its loader ignores others), a
``"tracegym"`` object: the generator options as used (``kind``, ``size``, ``min_path``,
``wall_density``, ``allow_ties``), the base ``seed``, and ``unique_shortest_path``: whether every
example of the split has exactly one shortest path (what was reached, not what was asked).

``shard=(i, n)`` builds only the i-th of n contiguous slices of the train items and of the test
items; each shard is a complete dataset and the shards' arrays, concatenated in order (offsetting
the index arrays), equal those of the unsharded build. Every shard that has train items still
generates the whole test split, to filter them against all test mazes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np

from tracegym.checks import check_int
from tracegym.envs.maze import tokens
from tracegym.envs.maze.augment import MAX_AUGMENT, augment_pair, canonical_forms
from tracegym.envs.maze.board import CHARS
from tracegym.envs.maze.generator import (
    DEFAULT_SIZE,
    HARD_WALL_DENSITY,
    STATS_COLUMNS,
    MazeGenerator,
)
from tracegym.errors import TracegymError
from tracegym.grid import char_texts

from .common import check_shard, draw_splits, texts_by_block, user_options
from .engines import Engine, check_engine, open_engine
from .writer import (
    BLANK_IDENTIFIER,
    DatasetMetadata,
    SplitData,
    SplitWriter,
    locked_output,
    staged_directory,
    write_dataset_split,
    write_identifiers,
)

_LENGTH, _PATHS = STATS_COLUMNS.index("length"), STATS_COLUMNS.index("paths")


@dataclass(frozen=True)
class _MazeMetadata(DatasetMetadata):
    """TRM's ``dataset.json`` fields plus ``tracegym``, how the mazes were generated."""

    tracegym: dict = field(default_factory=dict)


def _text(grids: np.ndarray) -> np.ndarray:
    """``(B, H, W)`` grids -> ``(B,)`` fixed-width bytes, the same text as ``format_maze``."""
    return char_texts(grids, CHARS, row_sep="\n")


def _augment_item(augment: int, rng, maze, label):
    """``draw_splits``' ``augment_item``, bound to ``augment`` by a partial (workers pickle it)."""
    return augment_pair(rng, maze, label, augment)


def _split(mazes, labels, stats, sources, items, symmetries) -> SplitData:
    """TRM arrays of one split from ``(N, n, n)`` grids, where each of the ``G`` items (rows of
    the generator's ``stats``, entries of ``sources`` and ``items``) is followed by its augmented
    copies; ``symmetries`` ``(G, per)`` holds the dihedral index of every example."""
    g, per = symmetries.shape
    examples = mazes.shape[0]
    assert labels.shape[0] == examples == g * per
    return SplitData(
        inputs=tokens.encode(mazes),  # (N, n*n) uint8
        labels=tokens.encode(labels),
        puzzle_identifiers=np.zeros(examples, dtype=np.int32),
        puzzle_indices=np.arange(examples + 1, dtype=np.int32),
        group_indices=np.arange(g + 1, dtype=np.int32) * per,
        columns={
            "item": np.repeat(items.astype(np.int64), per),
            "augmentation": symmetries.reshape(examples).astype(np.int32),
            "maze": texts_by_block(_text, mazes),
            "label": texts_by_block(_text, labels),
            "length": np.repeat(stats[:, _LENGTH].astype(np.int32), per),
            # a symmetry maps shortest paths to shortest paths: copies have as many
            "shortest_paths": np.repeat(stats[:, _PATHS].astype(np.int64), per),
            "generator_seed": np.repeat(sources.astype(np.int64), per),
        },
    )


def build_maze_dataset(out, *, kind: str = "hard", size: int = DEFAULT_SIZE, train: int = 1000,
                       test: int = 1000, augment: int = 0, seed: int = 0,
                       min_path: int | None = None, wall_density: float = HARD_WALL_DENSITY,
                       allow_ties: bool = False, shard: tuple[int, int] = (0, 1),
                       overwrite: bool = False, progress: bool = True,
                       engine: str | Engine = "local", workers: int | None = None,
                       ray_address: str | None = None) -> dict:
    """Generate a maze dataset into ``out`` (see the module docstring); return a summary.

    Args:
        out: output directory; must be missing or empty unless ``overwrite``.
        kind: generator kind (backtracker, kruskal, hard).
        size: grid side (5..255; odd for backtracker and kruskal).
        train: original train mazes in the whole (unsharded) dataset, >= 1.
        test: test mazes in the whole dataset, >= 0.
        augment: dihedral copies per train maze, 0..7 (test is never augmented).
        seed: base seed; every random stream is derived from it.
        min_path: hard mazes only: shortest path longer than this many moves (None: 110 at
            30x30, scaled by area).
        wall_density: hard mazes only: probability of a random interior wall.
        allow_ties: hard mazes only: keep mazes with several shortest paths (the label marks
            one) instead of breaking the ties with walls (perfect mazes never have ties).
        shard: ``(i, n)``: build only the i-th of n contiguous slices of both splits.
        overwrite: replace a non-empty ``out``.
        progress: show tqdm progress bars on stderr.
        engine, workers, ray_address: where the mazes are generated (:mod:`.engines`):
            ``"local"`` with ``workers`` processes (default 1), or ``"ray"`` on the cluster at
            ``ray_address`` (default ``RAY_ADDRESS``, else a local Ray of ``workers`` CPUs).
            The files are the same on every engine.

    Returns a dict with the path, the settings (``min_path`` as used), ``unique_shortest_path``
    (whether every example of this shard has one shortest path) and, for this shard,
    ``train_puzzles``, ``train_examples``, ``test_puzzles`` and ``rejected`` (train draws
    rejected as symmetric copies of a test maze).
    """
    with user_options():
        gen = MazeGenerator(size, kind, wall_density=wall_density, min_path=min_path,
                            allow_ties=allow_ties)
    train = check_int("train", train, 1)
    test = check_int("test", test, 0)
    augment = check_int("augment", augment, 0)
    if augment > MAX_AUGMENT:
        raise TracegymError(f"augment must be <= {MAX_AUGMENT} (a square has {MAX_AUGMENT} "
                            f"symmetries besides the identity), got {augment}")
    seed = check_int("seed", seed, 0)
    shard = check_shard(shard)
    engine = check_engine(engine, workers, ray_address)
    # fail before the slow part; one writer of OUT from here to the end
    with locked_output(out, overwrite=overwrite) as out, open_engine(*engine) as engine:
        drawn = draw_splits(gen, seed=seed, train=train, test=test, shard=shard, augment=augment,
                            leak_keys=canonical_forms, augment_item=partial(_augment_item, augment),
                            unit="maze", progress=progress, engine=engine)
        n = gen.size
        options = {"kind": gen.kind, "size": n, "min_path": gen.min_path,
                   "wall_density": gen.wall_density, "allow_ties": gen.allow_ties, "seed": seed}
        unique = {"train": True,
                  "test": bool((drawn.test_stats[:, _PATHS] == 1).all())}

        def metadata(split, name: str) -> _MazeMetadata:
            # TRM's maze metadata: one identifier (the blank), every puzzle has one example
            return _MazeMetadata(
                **asdict(split.metadata(vocab_size=tokens.VOCAB_SIZE, mean_puzzle_examples=1.0)),
                tracegym={**options, "unique_shortest_path": unique[name]})

        with staged_directory(out, overwrite=overwrite) as tmp:
            train = SplitWriter(tmp / "train", seq_len=n * n, vocab_size=tokens.VOCAB_SIZE)
            for c in drawn.train:  # a chunk at a time: memory stays flat as the count grows
                train.add(_split(c.inputs.reshape(-1, n, n), c.labels.reshape(-1, n, n),
                                 c.stats, c.sources, c.items, c.augmentation))
                unique["train"] &= bool((c.stats[:, _PATHS] == 1).all())
            train.close(metadata(train, "train"))
            test = _split(drawn.test_inputs, drawn.test_labels, drawn.test_stats,
                          drawn.test_sources, drawn.test_items,
                          np.zeros((len(drawn.test_items), 1), dtype=np.int32))
            write_dataset_split(tmp / "test", test, metadata(test, "test"))
            write_identifiers(tmp, [BLANK_IDENTIFIER])
    return {
        "out": str(out), "kind": gen.kind, "size": n, "min_path": gen.min_path,
        "wall_density": gen.wall_density, "allow_ties": gen.allow_ties,
        "unique_shortest_path": unique["train"] and unique["test"], "seed": seed,
        "shard": list(shard),
        "augment": augment, "train_puzzles": len(drawn.train_items),
        "train_examples": len(drawn.train_items) * (1 + augment),
        "test_puzzles": len(drawn.test_items), "rejected": drawn.rejected,
    }
