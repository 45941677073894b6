"""Maze figures: generation rate per kind, BFS verifier paths/s, vector env vs SyncVectorEnv.

Prints one JSON object. References in the same run: the verifier against a plain-Python BFS
(collections.deque) on the same mazes; the native vector env against Gymnasium's SyncVectorEnv
of MazeEnv at the same batch, both stepping uniformly random moves (only ``step`` is timed).

Usage: ``python benchmarks/maze.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import deque

import gymnasium as gym
import numpy as np

import tracegym  # noqa: F401
from tracegym.envs.maze.board import GOAL, START, WALL
from tracegym.envs.maze.generator import MazeGenerator
from tracegym.envs.maze.solver import solve_batch
from tracegym.envs.maze.source import make_source


def bench_generator(seconds: float) -> dict:
    out = {}
    for kind, size in (("hard", 30), ("backtracker", 29), ("kruskal", 29), ("hard", 10)):
        gen = MazeGenerator(size, kind)
        gen.generate_arrays(0, 1)  # burn-in: load the compiled code
        made, lengths, t0 = 0, [], time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, _, stats = gen.generate_arrays(1, 64, made)
            made += 64
            lengths.extend(stats[:, 0])
        elapsed = time.perf_counter() - t0
        out[f"{kind}/{size}x{size}"] = {"mazes_per_s": made / elapsed,
                                        "mean_path_length": float(np.mean(lengths)),
                                        "min_path_length": int(np.min(lengths))}
    return out


def _python_bfs(grid: np.ndarray) -> int:
    h, w = grid.shape
    start = tuple(np.argwhere(grid == START)[0])
    goal = tuple(np.argwhere(grid == GOAL)[0])
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return dist[r, c]
        for nr, nc in ((r - 1, c), (r, c + 1), (r + 1, c), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and grid[nr, nc] != WALL and (nr, nc) not in dist:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return -1


def bench_verifier(count: int) -> dict:
    mazes, _, stats = MazeGenerator(30, "hard").generate_arrays(0, count)
    solve_batch(mazes[:2])  # burn-in
    t = time.perf_counter()
    _, lengths = solve_batch(mazes)
    fast = count / (time.perf_counter() - t)
    ref_count = min(count, 200)
    t = time.perf_counter()
    ref = [_python_bfs(m) for m in mazes[:ref_count]]
    slow = ref_count / (time.perf_counter() - t)
    assert (lengths == stats[:, 0]).all() and ref == lengths[:ref_count].tolist()
    return {"maze": "hard 30x30", "paths_per_s": fast, "reference_paths_per_s": slow,
            "speedup_vs_reference": fast / slow}


def _time_steps(env, steps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    env.step(rng.integers(0, 4, env.num_envs))  # burn-in
    elapsed = 0.0
    for _ in range(steps):
        actions = rng.integers(0, 4, env.num_envs)
        t = time.perf_counter()
        env.step(actions)
        elapsed += time.perf_counter() - t
    return steps * env.num_envs / elapsed


def bench_vector(num_envs: int, steps: int, sync_steps: int) -> dict:
    mazes, _, _ = MazeGenerator(10, "hard").generate_arrays(0, 4096)
    source = make_source(list(mazes), 10, "hard")  # one shared pool for both sides
    native = gym.make_vec("tracegym/Maze-v0", num_envs=num_envs,
                          vectorization_mode="vector_entry_point", mazes=source)
    sync = gym.make_vec("tracegym/Maze-v0", num_envs=num_envs, vectorization_mode="sync",
                        mazes=source)
    native_rate = _time_steps(native, steps, 0)
    sync_rate = _time_steps(sync, sync_steps, 0)
    return {"num_envs": num_envs, "maze": "hard 10x10", "native_steps_per_s": native_rate,
            "sync_vector_env_steps_per_s": sync_rate, "speedup": native_rate / sync_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a smoke run)")
    quick = parser.parse_args().quick
    result = {
        "benchmark": "maze",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "generator": bench_generator(seconds=0.3 if quick else 3.0),
        "verifier": bench_verifier(500 if quick else 5000),
        "vector_env": bench_vector(1024, steps=20 if quick else 300,
                                   sync_steps=3 if quick else 30),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
