"""Helpers shared by the dataset builders: derived seeds, shards, argument checks, chunked draws.

Every builder derives its random streams from the user's seed the same way: ``stream_seed(seed,
TEST_STREAM)`` for the test items, ``TRAIN_STREAM`` for the train items, ``(REDRAW_STREAM, j)``
for redraw ``j`` of a rejected train item and ``(AUGMENT_STREAM, item)`` for the augmentations of
one train item, so any item depends on nothing but the seed and its own index.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

# spawn keys of the random streams derived from the user's seed
TEST_STREAM, TRAIN_STREAM, REDRAW_STREAM, AUGMENT_STREAM = 0, 1, 2, 3
CHUNK = 256  # items generated per call (progress-bar granularity)


def stream_seed(seed: int, *key: int) -> int:
    """A generator seed in 0..2**63-1 derived from ``seed`` and a stream key."""
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def augment_rng(seed: int, item: int) -> np.random.Generator:
    """The random stream of train item ``item``'s augmentations (independent of sharding)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(AUGMENT_STREAM, item)))


def shard_slice(count: int, shard: tuple[int, int]) -> tuple[int, int]:
    """The i-th of n contiguous slices of ``range(count)`` (sizes differ by at most one)."""
    i, n = shard
    return i * count // n, (i + 1) * count // n


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; ValueError naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_shard(shard) -> tuple[int, int]:
    ok = (isinstance(shard, (tuple, list)) and len(shard) == 2
          and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in shard)
          and shard[1] >= 1 and 0 <= shard[0] < shard[1])
    if not ok:
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
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
