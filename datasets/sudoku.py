"""Sudoku dataset: generated puzzles in the TRM layout plus Parquet.

Layout (see :mod:`tracegym.datasets.writer`)::

    OUT/identifiers.json                      ["<blank>"]
    OUT/{train,test}/dataset.json             vocab size+2, seq_len size*size, pad/ignore/blank 0
    OUT/{train,test}/all__inputs.npy          (N, size*size) uint8 puzzle tokens
    OUT/{train,test}/all__labels.npy          (N, size*size) uint8 solution tokens
    OUT/{train,test}/all__puzzle_identifiers.npy, all__puzzle_indices.npy, all__group_indices.npy
    OUT/{train,test}/all.parquet              one row per example, with the columns below

Tokens are those of :mod:`tracegym.envs.sudoku.tokens`: 0 pad, 1 blank, ``d + 1`` for digit d.
Grouping follows TRM's ``build_sudoku_dataset.py``: every example is its own puzzle
(``puzzle_indices = arange(N + 1)``, identifiers all 0), and a group is one original puzzle
followed by its augmented copies (``group_indices = arange(G + 1) * (1 + augment)``).

Which puzzles go where:

* test: items ``0..test-1`` of the generator under a seed derived from ``seed`` (stream 0); never
  augmented, as in TRM.
* train: items ``0..train-1`` under a second derived seed (stream 1), each followed by
  ``augment`` augmented copies (:mod:`tracegym.envs.sudoku.augment`), drawn from a random stream
  seeded by ``(seed, item)``. A train item whose puzzle equals a test puzzle, or shares its
  :func:`~tracegym.envs.sudoku.augment.equivalence_fingerprint` with one, is rejected and redrawn
  from that item's own redraw streams (redraw ``j`` of item ``i`` is item ``i`` under a seed
  derived from ``(seed, j)``), so the choice never depends on other train items or on sharding.
  Train items are not deduplicated among themselves (that would tie item ``i`` to all items
  before it); at 9x9 and above, collisions between independent streams are practically absent.

Parquet columns beside the tokens: ``item`` (index of the original puzzle in its split),
``augmentation`` (0 = the original, 1..augment), ``puzzle`` and ``solution`` (text, ``.`` blank),
``clues`` and ``guesses`` (the grade of the original puzzle), ``generator_seed`` (item ``item`` of
``SudokuGenerator(size, difficulty)`` under this seed rebuilds the original puzzle).

``shard=(i, n)`` builds only the i-th of n contiguous slices of the train items and of the test
items; each shard is a complete dataset and the shards' arrays, concatenated in order (offsetting
the index arrays), equal those of the unsharded build. Every shard still generates the whole test
split, to filter its train items against all test puzzles.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tracegym.checks import check_int
from tracegym.envs.sudoku import tokens
from tracegym.envs.sudoku.augment import augment_batch, equivalence_fingerprints
from tracegym.envs.sudoku.generator import (
    DEFAULT_DIFFICULTY,
    STATS_COLUMNS,
    GeneratorConfig,
    SudokuGenerator,
)
from tracegym.grid import DIGIT_CHARS, char_texts

from .common import check_shard, draw_splits, texts_by_block, user_options
from .engines import Engine, check_engine, open_engine
from .writer import (
    BLANK_IDENTIFIER,
    SplitData,
    SplitWriter,
    locked_output,
    staged_directory,
    write_dataset_split,
    write_identifiers,
)


def _text(grids: np.ndarray) -> np.ndarray:
    """``(B, n, n)`` grids -> ``(B,)`` fixed-width bytes, one puzzle line each (``.`` blank)."""
    return char_texts(grids, "." + DIGIT_CHARS[:grids.shape[-1]])


def _augment_item(augment: int, rng, puzzle, solution):
    """``draw_splits``' ``augment_item``, bound to ``augment`` by a partial (workers pickle it)."""
    puzzles, solutions = augment_batch(puzzle[None], solution[None], augment, rng)
    return puzzles[0], solutions[0], np.arange(1, augment + 1)


def _split(puzzles, solutions, stats, sources, items, augmentation) -> SplitData:
    """TRM arrays of one split from ``(N, n, n)`` grids, where each of the ``G`` items (rows of
    ``stats``, ``sources`` and ``items``) is followed by its augmented copies;
    ``augmentation`` ``(G, per)`` numbers every example (0 = the original)."""
    g, per = augmentation.shape
    examples = g * per
    assert puzzles.shape[0] == solutions.shape[0] == examples
    aug = augmentation.reshape(examples)
    return SplitData(
        inputs=tokens.encode(puzzles),  # (N, n*n) uint8
        labels=tokens.encode(solutions),
        puzzle_identifiers=np.zeros(examples, dtype=np.int32),
        puzzle_indices=np.arange(examples + 1, dtype=np.int32),
        group_indices=np.arange(g + 1, dtype=np.int32) * per,
        columns={
            "item": np.repeat(items.astype(np.int64), per),
            "augmentation": aug,
            "puzzle": texts_by_block(_text, puzzles),
            "solution": texts_by_block(_text, solutions),
            "clues": np.repeat(stats[:, STATS_COLUMNS.index("clues")].astype(np.int32), per),
            "guesses": np.repeat(stats[:, STATS_COLUMNS.index("guesses")].astype(np.int32), per),
            "generator_seed": np.repeat(sources.astype(np.int64), per),
        },
    )


def build_sudoku_dataset(out, *, size: int = 9, difficulty: str = DEFAULT_DIFFICULTY,
                         train: int = 1000, test: int = 200, augment: int = 0, seed: int = 0,
                         shard: tuple[int, int] = (0, 1), overwrite: bool = False,
                         progress: bool = True, engine: str | Engine = "local",
                         workers: int | None = None, ray_address: str | None = None) -> dict:
    """Generate a Sudoku dataset into ``out`` (see the module docstring); return a summary.

    Args:
        out: output directory; must be missing or empty unless ``overwrite``.
        size: board side (4, 6, 9 or 16).
        difficulty: generator level (easy, medium, hard, extreme).
        train: original train puzzles in the whole (unsharded) dataset, >= 1.
        test: test puzzles in the whole dataset, >= 0.
        augment: augmented copies per train puzzle, >= 0 (test is never augmented).
        seed: base seed; every random stream is derived from it.
        shard: ``(i, n)``: build only the i-th of n contiguous slices of both splits.
        overwrite: replace a non-empty ``out``.
        progress: show tqdm progress bars on stderr.
        engine, workers, ray_address: where the puzzles are generated (:mod:`.engines`):
            ``"local"`` with ``workers`` processes (default 1), or ``"ray"`` on the cluster at
            ``ray_address`` (default ``RAY_ADDRESS``, else a local Ray of ``workers`` CPUs).
            The files are the same on every engine.

    Returns a dict with the path, the settings and, for this shard, ``train_puzzles``,
    ``train_examples``, ``test_puzzles`` and ``rejected`` (train draws rejected as test
    look-alikes).
    """
    with user_options():
        config = GeneratorConfig(size, difficulty).validate()
    train = check_int("train", train, 1)
    test = check_int("test", test, 0)
    augment = check_int("augment", augment, 0)
    seed = check_int("seed", seed, 0)
    shard = check_shard(shard)
    engine = check_engine(engine, workers, ray_address)
    # fail before the slow part; one writer of OUT from here to the end
    with locked_output(out, overwrite=overwrite) as out, open_engine(*engine) as engine:
        gen = SudokuGenerator(config.size, config.difficulty)
        drawn = draw_splits(gen, seed=seed, train=train, test=test, shard=shard,
                            augment=augment, leak_keys=equivalence_fingerprints,
                            augment_item=partial(_augment_item, augment), unit="puzzle",
                            progress=progress, engine=engine)
        n = config.size
        vocab = tokens.vocab_size(n)
        # TRM's Sudoku metadata: one identifier (the blank), every puzzle has one example
        with staged_directory(out, overwrite=overwrite) as tmp:
            train = SplitWriter(tmp / "train", seq_len=n * n, vocab_size=vocab)
            for c in drawn.train:  # a chunk at a time: memory stays flat as the count grows
                train.add(_split(c.inputs.reshape(-1, n, n), c.labels.reshape(-1, n, n),
                                 c.stats, c.sources, c.items, c.augmentation))
            train.close(train.metadata(vocab_size=vocab, mean_puzzle_examples=1.0))
            test = _split(drawn.test_inputs, drawn.test_labels, drawn.test_stats,
                          drawn.test_sources, drawn.test_items,
                          np.zeros((len(drawn.test_items), 1), dtype=np.int32))
            write_dataset_split(tmp / "test", test,
                                test.metadata(vocab_size=vocab, mean_puzzle_examples=1.0))
            write_identifiers(tmp, [BLANK_IDENTIFIER])
    return {
        "out": str(out), "size": n, "difficulty": config.difficulty, "seed": seed,
        "shard": list(shard), "augment": augment,
        "train_puzzles": len(drawn.train_items),
        "train_examples": len(drawn.train_items) * (1 + augment),
        "test_puzzles": len(drawn.test_items), "rejected": drawn.rejected,
    }
