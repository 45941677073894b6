"""Seeded random streams inside compiled (numba) loops, shared by every generator.

A stream is a one-element ``uint64`` array holding xorshift64* state. Item ``i`` of a seed gets
its own stream, :func:`item_stream`, so any generated item can be rebuilt alone and a dataset
shard needs nothing from the others. Implemented here rather than with numba's ``np.random`` so
the bytes produced depend on nothing but the seed.
"""

from __future__ import annotations

import numba
import numpy as np

from tracegym.checks import check_seed  # noqa: F401 - its old home; import it from checks


@numba.njit(cache=True)
def splitmix(x):
    """SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def item_stream(seed, index):
    """The stream of item ``index`` under ``seed`` (state never 0)."""
    rng = np.empty(1, dtype=np.uint64)
    rng[0] = splitmix(splitmix(np.uint64(seed)) ^ np.uint64(index)) | np.uint64(1)
    return rng


@numba.njit(cache=True)
def next_u64(rng):
    """xorshift64* step on the one-element uint64 state ``rng``."""
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)


@numba.njit(cache=True)
def randbelow(rng, m):
    """A uniform int in ``0..m-1`` (m > 0)."""
    return np.int64((next_u64(rng) >> np.uint64(11)) % np.uint64(m))


@numba.njit(cache=True)
def shuffle(rng, arr):
    """Fisher-Yates shuffle of a 1-D array in place."""
    for i in range(arr.shape[0] - 1, 0, -1):
        j = randbelow(rng, i + 1)
        arr[i], arr[j] = arr[j], arr[i]
