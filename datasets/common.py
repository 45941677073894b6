"""Helpers shared by the dataset builders: derived seeds, shards, chunked draws.

Every builder derives its random streams from the user's seed the same way: ``stream_seed(seed,
TEST_STREAM)`` for the test items, ``TRAIN_STREAM`` for the train items, ``(REDRAW_STREAM, j)``
for redraw ``j`` of a rejected train item, ``(AUGMENT_STREAM, item)`` for the augmentations of
one train item and ``(TRANSLATE_STREAM, item)`` for its translation offsets, so any item depends
on nothing but the seed and its own index.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from tracegym.checks import check_int  # noqa: F401 - its old home (traces, trace_lm)
from tracegym.errors import TracegymError
from tracegym.outputs import pause_point

from .engines import Chunk, Engine, chunk_size, chunks

# spawn keys of the random streams derived from the user's seed
TEST_STREAM, TRAIN_STREAM, REDRAW_STREAM, AUGMENT_STREAM, TRANSLATE_STREAM = 0, 1, 2, 3, 4
CHUNK = 256  # items generated per call of a generator
MAX_CHUNK = 16 * CHUNK  # items per engine chunk at most (a bar that moves, a bounded result)
MAX_REDRAWS = 1000  # per train item, before giving up on finding one unlike every test item


def stream_seed(seed: int, *key: int) -> int:
    """A generator seed in 0..2**63-1 derived from ``seed`` and a stream key."""
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def augment_rng(seed: int, item: int) -> np.random.Generator:
    """The random stream of train item ``item``'s augmentations (independent of sharding)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(AUGMENT_STREAM, item)))


def translate_rng(seed: int, item: int) -> np.random.Generator:
    """The random stream of train item ``item``'s translation offsets."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRANSLATE_STREAM, item)))


def shard_slice(count: int, shard: tuple[int, int]) -> tuple[int, int]:
    """The i-th of n contiguous slices of ``range(count)`` (sizes differ by at most one)."""
    i, n = shard
    return i * count // n, (i + 1) * count // n


@contextmanager
def user_options() -> Iterator[None]:
    """Around a check of the user's options done by another module (a generator's config): its
    ValueError becomes a :class:`TracegymError`, which the CLI reports as one line. Keep the
    block to the check itself, so that a bug elsewhere still shows its traceback."""
    try:
        yield
    except TracegymError:
        raise
    except ValueError as err:
        raise TracegymError(str(err)) from err


def check_shard(shard) -> tuple[int, int]:
    ok = (isinstance(shard, (tuple, list)) and len(shard) == 2
          and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in shard)
          and shard[1] >= 1 and 0 <= shard[0] < shard[1])
    if not ok:
        raise TracegymError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    return int(shard[0]), int(shard[1])


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; argparse reports the error on one line."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"shard must look like i/n with 0 <= i < n "
                                         f"(e.g. 0/4), got {text!r}")
    return int(match[1]), int(match[2])


def generate_chunks(gen, seed: int, lo: int, hi: int, bar=None) -> tuple[np.ndarray, ...]:
    """Items ``lo..hi-1`` of ``gen.generate_arrays(seed, count, start)`` in calls of ``CHUNK``
    items, advancing ``bar``; the arrays of the calls concatenated."""
    parts = []
    for start in range(lo, hi, CHUNK):
        parts.append(gen.generate_arrays(seed, min(CHUNK, hi - start), start))
        if bar is not None:
            bar.update(len(parts[-1][0]))
    if not parts:
        return gen.generate_arrays(seed, 0, lo)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def engine_chunks(lo: int, hi: int, engine: Engine):
    """``range(lo, hi)`` as the engine's chunks: whole ``CHUNK`` batches, about four per
    worker, so that a worker's start-up and a chunk's transfer stay small beside its work."""
    return chunks(lo, hi, chunk_size(hi - lo, engine.workers, step=CHUNK, most=MAX_CHUNK))


TEXT_ROWS = 1 << 16  # grids turned into text at a time: char_texts makes an intp copy of them


def texts_by_block(texts: Callable[[np.ndarray], np.ndarray], grids: np.ndarray) -> np.ndarray:
    """``texts(grids)`` (a text column of a split) a block of rows at a time, so its temporaries
    stay bounded (8 bytes a cell for the whole split otherwise: 650 MB for 1M Sudoku grids)."""
    if len(grids) <= TEXT_ROWS:
        return texts(grids)
    return np.concatenate([texts(grids[lo:lo + TEXT_ROWS])
                           for lo in range(0, len(grids), TEXT_ROWS)])


@dataclass
class TrainChunk:
    """Consecutive train items, before tokenising: ``inputs`` and ``labels`` ``(n, 1 + augment,
    ...)``, each item followed by its augmented copies, ``augmentation`` ``(n, 1 + augment)``
    naming each copy (0 = the original); ``stats`` the generator's per-item stats, ``sources``
    the generator seed that rebuilds each item, ``rejected`` its items' rejected draws."""

    items: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray
    stats: np.ndarray
    sources: np.ndarray
    augmentation: np.ndarray
    rejected: int


@dataclass
class Drawn:
    """The items of both splits of one shard, before tokenising: the test split drawn, the train
    split drawn as ``train`` is read (once; a shard without train items gives one empty chunk,
    whose arrays have the shapes and dtypes of the others). ``rejected`` counts the train draws
    rejected as test look-alikes so far: all of them once ``train`` is read."""

    test_inputs: np.ndarray
    test_labels: np.ndarray
    test_stats: np.ndarray
    test_items: np.ndarray
    test_sources: np.ndarray
    train_items: np.ndarray
    train: Iterator[TrainChunk] = iter(())
    rejected: int = 0


@dataclass(frozen=True)
class _Items:
    """A chunk's items of one stream (an engine task: picklable, shipped once per worker)."""

    gen: object
    seed: int

    def __call__(self, chunk: Chunk) -> tuple[np.ndarray, ...]:
        return generate_chunks(self.gen, self.seed, chunk.lo, chunk.hi)


@dataclass(frozen=True)
class _TrainItems:
    """A chunk's train items, redrawn away from the test keys and augmented (an engine task).

    Returns ``(inputs (n, 1 + augment, ...), labels, stats (n, S), sources (n,), augmentation
    (n, 1 + augment), rejected)``; item ``i`` depends on the seed and ``i`` alone."""

    gen: object
    seed: int
    test_keys: frozenset
    leak_keys: Callable
    augment_item: Callable
    augment: int
    unit: str

    def __call__(self, chunk: Chunk):
        train_seed = stream_seed(self.seed, TRAIN_STREAM)
        inputs, labels, stats = generate_chunks(self.gen, train_seed, chunk.lo, chunk.hi)
        per, count = 1 + self.augment, len(chunk)
        out_in = np.zeros((count, per, *inputs.shape[1:]), dtype=inputs.dtype)
        out_lab = np.zeros_like(out_in)
        sources = np.full(count, train_seed, dtype=np.int64)
        augmentation = np.zeros((count, per), dtype=np.int32)
        rejected = 0
        for k, key in enumerate(self.leak_keys(inputs)):
            item, draw = chunk.lo + k, 0
            while key in self.test_keys:
                draw += 1
                if draw > MAX_REDRAWS:
                    raise TracegymError(
                        f"train item {item}: {MAX_REDRAWS} redraws all resemble a test "
                        f"{self.unit}; use fewer test {self.unit}s or a larger size")
                redraw_seed = stream_seed(self.seed, REDRAW_STREAM, draw)
                i, lab, st = self.gen.generate_arrays(redraw_seed, 1, item)
                inputs[k], labels[k], stats[k] = i[0], lab[0], st[0]
                sources[k] = redraw_seed
                key = self.leak_keys(i)[0]
            rejected += draw
            out_in[k, 0], out_lab[k, 0] = inputs[k], labels[k]
            if self.augment:
                copies = self.augment_item(augment_rng(self.seed, item), inputs[k], labels[k])
                out_in[k, 1:], out_lab[k, 1:], augmentation[k, 1:] = copies
        return out_in, out_lab, stats, sources, augmentation, rejected


def draw_splits(gen, *, seed: int, train: int, test: int, shard: tuple[int, int], augment: int,
                leak_keys: Callable[[np.ndarray], list],
                augment_item: Callable[[np.random.Generator, np.ndarray, np.ndarray], tuple],
                unit: str, progress: bool, engine: Engine | None = None) -> Drawn:
    """Draw the test items of one shard from ``gen.generate_arrays(seed, count, start)``, and its
    train items as ``Drawn.train`` is read (a chunk at a time: memory stays bounded).

    - test: items of the stream ``stream_seed(seed, TEST_STREAM)``; the whole split is drawn when
      this shard has train items, so they can be checked against every test item.
    - train: items of ``stream_seed(seed, TRAIN_STREAM)``; an item whose ``leak_keys`` key (one
      per input, equal for anything a test item could be augmented into) matches a test item's is
      replaced by its redraw ``j`` = the same item under ``stream_seed(seed, REDRAW_STREAM, j)``,
      so the choice depends on the item alone, never on sharding.
    - ``augment_item(rng, input, label) -> (inputs (augment, ...), labels, ids (augment,))``
      makes each train item's copies, with ``rng = augment_rng(seed, item)``.

    The items run on ``engine`` (:mod:`.engines`; default: this process), in chunks; ``gen``,
    ``leak_keys`` and ``augment_item`` must then pickle (module-level functions or partials).
    """
    engine = engine or Engine()
    test_seed = stream_seed(seed, TEST_STREAM)
    lo, hi = shard_slice(train, shard)
    tlo, thi = shard_slice(test, shard)
    bars = {"disable": not progress, "unit": unit, "delay": 1.0, "leave": False}

    whole = hi > lo
    first, last = (0, test) if whole else (tlo, thi)
    with tqdm(total=last - first, desc=f"test {unit}s", **bars) as bar:
        parts = list(engine.map(_Items(gen, test_seed), engine_chunks(first, last, engine),
                                bar=bar))
    all_test = (tuple(np.concatenate(arrays) for arrays in zip(*parts)) if parts
                else gen.generate_arrays(test_seed, 0, first))
    test_keys = frozenset(leak_keys(all_test[0]))
    test_in, test_lab, test_st = (a[tlo - first:thi - first] for a in all_test)

    drawn = Drawn(test_in, test_lab, test_st, np.arange(tlo, thi),
                  np.full(thi - tlo, test_seed, dtype=np.int64), np.arange(lo, hi))
    task = _TrainItems(gen, seed, test_keys, leak_keys, augment_item, augment, unit)
    drawn.train = _train_chunks(drawn, task, lo, hi, engine, bars)
    return drawn


def _train_chunks(drawn: Drawn, task: _TrainItems, lo: int, hi: int, engine: Engine,
                  bars: dict) -> Iterator[TrainChunk]:
    if lo == hi:  # no train item: one empty chunk, for the shapes and dtypes of the columns
        per, shape = 1 + task.augment, drawn.test_inputs.shape[1:]
        empty = np.zeros((0, per, *shape), dtype=drawn.test_inputs.dtype)
        yield TrainChunk(np.arange(0), empty, empty.copy(),
                         np.zeros((0, drawn.test_stats.shape[1]), drawn.test_stats.dtype),
                         np.zeros(0, np.int64), np.zeros((0, per), np.int32), 0)
        return
    with tqdm(total=hi - lo, desc=f"train {task.unit}s", **bars) as bar:
        parts = engine_chunks(lo, hi, engine)
        for chunk, result in zip(engine_chunks(lo, hi, engine), engine.map(task, parts, bar=bar)):
            drawn.rejected += result[-1]
            pause_point("generate")
            yield TrainChunk(np.arange(chunk.lo, chunk.hi), *result)
