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

# spawn keys of the random streams derived from the user's seed
TEST_STREAM, TRAIN_STREAM, REDRAW_STREAM, AUGMENT_STREAM, TRANSLATE_STREAM = 0, 1, 2, 3, 4
CHUNK = 256  # items generated per call (progress-bar granularity)
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


def generate_chunks(gen, seed: int, lo: int, hi: int, bar) -> tuple[np.ndarray, ...]:
    """Items ``lo..hi-1`` of ``gen.generate_arrays(seed, count, start)`` in chunks, advancing
    ``bar``; the arrays of the chunks concatenated."""
    parts = []
    for start in range(lo, hi, CHUNK):
        parts.append(gen.generate_arrays(seed, min(CHUNK, hi - start), start))
        bar.update(len(parts[-1][0]))
    if not parts:
        return gen.generate_arrays(seed, 0, lo)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


@dataclass
class Drawn:
    """The items of both splits of one shard, before tokenising.

    Train arrays are ``(G, 1 + augment, ...)``: each item followed by its augmented copies, with
    ``augmentation`` ``(G, 1 + augment)`` naming each copy (0 = the original). Stats are the
    generator's per-item stats; ``sources`` the generator seed that rebuilds each item.
    """

    test_inputs: np.ndarray
    test_labels: np.ndarray
    test_stats: np.ndarray
    test_items: np.ndarray
    test_sources: np.ndarray
    train_inputs: np.ndarray
    train_labels: np.ndarray
    train_stats: np.ndarray
    train_items: np.ndarray
    train_sources: np.ndarray
    augmentation: np.ndarray
    rejected: int


def draw_splits(gen, *, seed: int, train: int, test: int, shard: tuple[int, int], augment: int,
                leak_keys: Callable[[np.ndarray], list],
                augment_item: Callable[[np.random.Generator, np.ndarray, np.ndarray], tuple],
                unit: str, progress: bool) -> Drawn:
    """Draw the test and train items of one shard from ``gen.generate_arrays(seed, count, start)``.

    - test: items of the stream ``stream_seed(seed, TEST_STREAM)``; the whole split is drawn when
      this shard has train items, so they can be checked against every test item.
    - train: items of ``stream_seed(seed, TRAIN_STREAM)``; an item whose ``leak_keys`` key (one
      per input, equal for anything a test item could be augmented into) matches a test item's is
      replaced by its redraw ``j`` = the same item under ``stream_seed(seed, REDRAW_STREAM, j)``,
      so the choice depends on the item alone, never on sharding.
    - ``augment_item(rng, input, label) -> (inputs (augment, ...), labels, ids (augment,))``
      makes each train item's copies, with ``rng = augment_rng(seed, item)``.
    """
    test_seed = stream_seed(seed, TEST_STREAM)
    train_seed = stream_seed(seed, TRAIN_STREAM)
    lo, hi = shard_slice(train, shard)
    tlo, thi = shard_slice(test, shard)
    bars = {"disable": not progress, "unit": unit, "delay": 1.0, "leave": False}

    whole = hi > lo
    first = 0 if whole else tlo
    with tqdm(total=(test if whole else thi) - first, desc=f"test {unit}s", **bars) as bar:
        all_test = generate_chunks(gen, test_seed, first, test if whole else thi, bar)
    test_keys = set(leak_keys(all_test[0]))
    test_in, test_lab, test_st = (a[tlo - first:thi - first] for a in all_test)

    per = 1 + augment
    count = hi - lo
    train_in = np.zeros((count, per, *test_in.shape[1:]), dtype=test_in.dtype)
    train_lab = np.zeros_like(train_in)
    train_st = np.zeros((count, test_st.shape[1]), dtype=test_st.dtype)
    sources = np.full(count, train_seed, dtype=np.int64)
    augmentation = np.zeros((count, per), dtype=np.int32)
    rejected = 0
    with tqdm(total=count, desc=f"train {unit}s", **bars) as bar:
        for start in range(lo, hi, CHUNK):
            stop = min(start + CHUNK, hi)
            inputs, labels, stats = gen.generate_arrays(train_seed, stop - start, start)
            for k, key in enumerate(leak_keys(inputs)):
                draw = 0
                while key in test_keys:
                    draw += 1
                    if draw > MAX_REDRAWS:
                        raise TracegymError(
                            f"train item {start + k}: {MAX_REDRAWS} redraws all resemble a "
                            f"test {unit}; use fewer test {unit}s or a larger size")
                    redraw_seed = stream_seed(seed, REDRAW_STREAM, draw)
                    i, lab, st = gen.generate_arrays(redraw_seed, 1, start + k)
                    inputs[k], labels[k], stats[k] = i[0], lab[0], st[0]
                    sources[start - lo + k] = redraw_seed
                    key = leak_keys(i)[0]
                rejected += draw
                g = start - lo + k
                train_in[g, 0], train_lab[g, 0], train_st[g] = inputs[k], labels[k], stats[k]
                if augment:
                    copies = augment_item(augment_rng(seed, start + k), inputs[k], labels[k])
                    train_in[g, 1:], train_lab[g, 1:], augmentation[g, 1:] = copies
            bar.update(stop - start)
            pause_point("generate")

    return Drawn(test_in, test_lab, test_st, np.arange(tlo, thi),
                 np.full(thi - tlo, test_seed, dtype=np.int64), train_in, train_lab, train_st,
                 np.arange(lo, hi), sources, augmentation, rejected)
