"""Bookkeeping shared by the native vector envs: per-env random streams, as SyncVectorEnv has."""

from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding


def reseed(rngs: list[np.random.Generator | None], seed) -> None:
    """Seed the per-env generators the way ``SyncVectorEnv.reset(seed=...)`` seeds its envs.

    An int seeds env ``i`` with ``seed + i``; a list gives one seed (or None) per env; None keeps
    each env's stream, creating a random one where there is none yet.
    """
    n = len(rngs)
    if seed is None or isinstance(seed, (int, np.integer)):
        seeds = [None if seed is None else int(seed) + i for i in range(n)]
    else:
        seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"seed: expected {n} seeds, got {len(seeds)}")
    for i, s in enumerate(seeds):
        if s is not None or rngs[i] is None:
            rngs[i], _ = seeding.np_random(s)
