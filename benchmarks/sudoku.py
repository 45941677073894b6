"""Sudoku figures: solver and CLI on top95, generation rate per level, vector env vs SyncVectorEnv.

Prints one JSON object. Each figure is measured against a reference in the same run:
- solver: the compiled solver (the 9x9 bit-board core) vs ``solve_reference`` (plain recursive
  Python), on one core and as a batch over every core (``solve_batch(..., parallel=True)``);
- tdoku side by side (``--tdoku PATH``, tdoku's ``run_benchmark`` program built from
  https://github.com/t-dillon/tdoku; without it the section says it was skipped): tracegym and
  tdoku each in their own process, one core, taking turns for ``--rounds`` rounds, first solution
  and uniqueness (count to 2) on top95 puzzles as given; the best round of each side and the
  ratio tracegym / tdoku, with the load average around every round;
- CLI: ``tracegym solve FILE`` (a fresh process, output to /dev/null, warm caches) on top95
  repeated 100 and 1,000 times: end-to-end puzzles/s, and the rate once started (the difference
  of the two runs, which cancels the start-up), beside tdoku's one-core uniqueness rate when
  measured;
- generator: unique puzzles per second per size and level (one core);
- vector env: ``SudokuVectorEnv`` out of the box (the buffered default source; dead ends
  terminate, and with ``dead_end="play_on"``) and on a 4,096-puzzle pool, vs Gymnasium's
  ``SyncVectorEnv`` of ``SudokuEnv`` on the pool at the same batch, all stepping random legal
  actions. Only ``step`` is timed; actions are drawn uniformly among the legal ones from
  ``info["action_mask"]`` by the same numpy sampler, outside the timer. (Side by side with
  Jumanji: ``benchmarks/peers.py``.)

Two shared cores busy with other work stretch every figure: run it alone (the load average is
in the output).

Usage: ``python benchmarks/sudoku.py [--quick] [--tdoku PATH/run_benchmark] [--rounds 3]``.
tdoku builds with cmake (``cmake -S tdoku -B build && make -C build run_benchmark``; it compiles
with ``-march=native``).
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

import gymnasium as gym
import numpy as np

import tracegym
from tracegym.envs.sudoku.board import parse_puzzle
from tracegym.envs.sudoku.generator import DIFFICULTIES, UNSUPPORTED, SudokuGenerator
from tracegym.envs.sudoku.solver import solve_batch, solve_reference
from tracegym.envs.sudoku.source import make_source

TOP95 = Path(tracegym.envs.sudoku.__file__).parent / "data" / "top95.txt"
# Not measured by this script: shown only when no tdoku binary is given, for scale.
TDOKU_REFERENCE = {"top95_first_solution_per_s": 129_631,
                   "source": "an earlier one-off measurement on the development machine (issue "
                             "16), not this run: pass --tdoku PATH to measure"}


def bench_solver(rounds: int, reference_puzzles: int) -> dict:
    puzzles = np.stack([parse_puzzle(line) for line in TOP95.read_text().split()])
    solve_batch(puzzles[:2])  # burn-in: load the compiled code
    timings = []
    for _ in range(rounds):
        t = time.perf_counter()
        solutions, counts, stats = solve_batch(puzzles, limit=1)
        timings.append(time.perf_counter() - t)
    assert (counts == 1).all()
    t = time.perf_counter()
    _, unique_counts, unique_stats = solve_batch(puzzles, limit=2)
    unique_time = time.perf_counter() - t
    assert (unique_counts == 1).all()
    repeated = np.concatenate([puzzles] * 100)  # the CLI's 9,500-puzzle file, as one batch
    solve_batch(repeated[:512], limit=2, parallel=True)  # burn-in: load the threaded code
    batch = {}
    for limit in (1, 2):
        t = time.perf_counter()
        solve_batch(repeated, limit=limit, parallel=True)
        batch[limit] = len(repeated) / (time.perf_counter() - t)
    t = time.perf_counter()
    for grid in puzzles[:reference_puzzles]:
        solve_reference(grid, limit=1)
    ref_time = time.perf_counter() - t
    best = min(timings)
    return {
        "puzzles": len(puzzles),
        "solves_per_s": len(puzzles) / best,
        "median_solves_per_s": len(puzzles) / float(np.median(timings)),
        "unique_proofs_per_s": len(puzzles) / unique_time,
        "batch_all_cores_solves_per_s": batch[1],
        "batch_all_cores_unique_proofs_per_s": batch[2],
        "mean_guesses": float(stats[:, 1].mean()),
        "reference_puzzles": reference_puzzles,
        "reference_solves_per_s": reference_puzzles / ref_time,
        "speedup_vs_reference": (len(puzzles) / best) / (reference_puzzles / ref_time),
    }


def bench_cli_file(repeats: tuple[int, ...], tdoku: dict | None) -> dict:
    """``tracegym solve FILE`` end to end; the CLI proves uniqueness (limit 2) for every line."""
    lines = TOP95.read_text().split()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's machine keeps .pyc files
    out = {"load_average_before": os.getloadavg()}
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in (1, *repeats):  # r = 1: the untimed warm-up (bytecode and numba caches)
            path = Path(tmp) / f"top95x{r}.txt"
            path.write_text("\n".join(lines * r) + "\n")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tracegym", "solve", str(path)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            walls[r] = time.perf_counter() - t
    for r in repeats:
        out[f"top95x{r}"] = {"puzzles": len(lines) * r, "wall_s": walls[r],
                             "puzzles_per_s": len(lines) * r / walls[r]}
    if len(repeats) > 1:
        small, large = repeats[0], repeats[-1]
        out["puzzles_per_s_after_start"] = (
            len(lines) * (large - small) / (walls[large] - walls[small]))
        out["start_up_s"] = walls[small] - len(lines) * small / out["puzzles_per_s_after_start"]
    out["load_average_after"] = os.getloadavg()
    if tdoku and "unique_per_s" in tdoku.get("tdoku", {}):
        rate = tdoku["tdoku"]["unique_per_s"]
        out["tdoku_one_core_unique_per_s"] = rate  # measured above, in this run
        for r in repeats:
            figure = out[f"top95x{r}"]
            figure["ratio_vs_tdoku_one_core"] = figure["puzzles_per_s"] / rate
    else:
        out["tdoku_reference"] = TDOKU_REFERENCE
    return out


def solver_worker(seconds: float) -> dict:
    """One core, in this process: top95 solved over and over for ``seconds`` per limit; the mean
    rate over that span (as tdoku's own timer reports), after a warm-up."""
    puzzles = np.stack([parse_puzzle(line) for line in TOP95.read_text().split()])
    out = {}
    for limit, name in ((1, "first_solution"), (2, "unique")):
        solve_batch(puzzles, limit, parallel=False)  # warm-up: load the compiled code
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, counts, stats = solve_batch(puzzles, limit, parallel=False)
            done += 1
        elapsed = time.perf_counter() - t0
        assert (counts == 1).all()
        out[f"{name}_per_s"] = done * len(puzzles) / elapsed
        out[f"{name}_guesses_per_puzzle"] = float(stats[:, 1].mean())
    return out


def _run_tracegym_side(seconds: float) -> dict:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}  # one core, as tdoku
    proc = subprocess.run([sys.executable, __file__, "--worker", str(seconds)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def _run_tdoku_side(binary: str, seconds: float) -> dict:
    """tdoku's run_benchmark on top95 as given (-r0), its own timer; CSV columns: ..., solver,
    puzzles/s, us/puzzle, % solved without guessing, guesses/puzzle."""
    out = {}
    for flag, name in (("-f", "first_solution"), ("", "unique")):
        argv = [binary, "-s", "tdoku", "-r0", "-c1", "-w1", f"-t{max(1, round(seconds))}",
                *([flag] if flag else []), str(TOP95)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        fields = proc.stdout.strip().splitlines()[-1].split(",")
        out[f"{name}_per_s"] = float(fields[5])
        out[f"{name}_guesses_per_puzzle"] = float(fields[8])
    return out


def bench_tdoku(binary: str | None, rounds: int, seconds: float) -> dict:
    """tracegym and tdoku on one core each, in their own processes, taking turns."""
    if binary is None:
        return {"skipped": "no tdoku binary given (--tdoku PATH to tdoku's run_benchmark)",
                "tdoku_reference": TDOKU_REFERENCE}
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"--tdoku: {binary!r} is not an executable file")
    sides = {"tracegym": [], "tdoku": []}
    loads = []
    for _ in range(rounds):
        loads.append(os.getloadavg())
        sides["tracegym"].append(_run_tracegym_side(seconds))
        sides["tdoku"].append(_run_tdoku_side(binary, seconds))
    loads.append(os.getloadavg())
    keys = ("first_solution", "unique")
    best = {side: {**{f"{k}_per_s": max(r[f"{k}_per_s"] for r in runs) for k in keys},
                   **{f"{k}_guesses_per_puzzle": runs[0][f"{k}_guesses_per_puzzle"]
                      for k in keys}}
            for side, runs in sides.items()}
    return {
        "puzzles": "top95, as given", "rounds": rounds, "seconds_per_figure": seconds,
        "load_average_per_round": loads, **best,
        "ratio_first_solution": best["tracegym"]["first_solution_per_s"]
        / best["tdoku"]["first_solution_per_s"],
        "ratio_unique": best["tracegym"]["unique_per_s"] / best["tdoku"]["unique_per_s"],
        "rounds_raw": sides,
    }


def bench_generator(seconds: float) -> dict:
    out = {}
    for size in (4, 6, 9, 16):
        for level in DIFFICULTIES:
            if (size, level) in UNSUPPORTED:
                continue
            gen = SudokuGenerator(size, level)
            gen.generate_arrays(0, 1)  # burn-in
            made, start, t0 = 0, 0, time.perf_counter()
            chunk = 1 if size == 16 else 64
            clues, guesses = [], []
            while time.perf_counter() - t0 < seconds:
                _, _, stats = gen.generate_arrays(1, chunk, start)
                start += chunk
                made += chunk
                clues.extend(stats[:, 0])
                guesses.extend(stats[:, 2])
            elapsed = time.perf_counter() - t0
            out[f"{size}x{size}/{level}"] = {
                "puzzles_per_s": made / elapsed, "mean_clues": float(np.mean(clues)),
                "mean_guesses": float(np.mean(guesses)), "puzzles": made}
    return out


def _sample_legal(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random legal action per row (action 0 where none is legal)."""
    counts = mask.sum(axis=1)
    pick = (rng.random(len(mask)) * np.maximum(counts, 1)).astype(np.int64)
    cum = np.cumsum(mask, axis=1, dtype=np.int32)
    return np.minimum((cum <= pick[:, None]).sum(axis=1), mask.shape[1] - 1)


def _time_steps(env, steps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    for _ in range(3):  # burn-in
        _, _, _, _, info = env.step(_sample_legal(info["action_mask"], rng))
    elapsed = 0.0
    for _ in range(steps):
        actions = _sample_legal(info["action_mask"], rng)
        t = time.perf_counter()
        _, _, _, _, info = env.step(actions)
        elapsed += time.perf_counter() - t
    return steps * env.num_envs / elapsed


def bench_vector(num_envs: int, steps: int, sync_steps: int) -> dict:
    """The default env (the buffered source, out of the box), with each dead-end rule, and the
    same on a 4,096-puzzle pool; SyncVectorEnv of single envs on the pool as the reference."""
    puzzles, _, _ = SudokuGenerator(9, "medium").generate_arrays(0, 4096)
    source = make_source(list(puzzles), 9, "medium")  # one shared pool for both sides

    def native(**kwargs):
        return gym.make_vec("tracegym/Sudoku-v0", num_envs=num_envs,
                            vectorization_mode="vector_entry_point", **kwargs)

    out = {"num_envs": num_envs, "board": "9x9 medium"}
    out["native_default_steps_per_s"] = _time_steps(native(), steps, 0)
    out["native_default_play_on_steps_per_s"] = _time_steps(native(dead_end="play_on"), steps, 0)
    out["native_pool_steps_per_s"] = _time_steps(native(puzzles=source), steps, 0)
    sync = gym.make_vec("tracegym/Sudoku-v0", num_envs=num_envs, vectorization_mode="sync",
                        puzzles=source)
    out["sync_vector_env_pool_steps_per_s"] = _time_steps(sync, sync_steps, 0)
    out["speedup_pool"] = out["native_pool_steps_per_s"] / out["sync_vector_env_pool_steps_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a smoke run)")
    parser.add_argument("--tdoku", metavar="PATH", help="tdoku's run_benchmark binary: measure "
                        "it beside tracegym (skipped when absent)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per side against tdoku")
    parser.add_argument("--worker", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:  # the tracegym side of the tdoku comparison, in its own process
        print(json.dumps(solver_worker(args.worker)))
        return
    quick = args.quick
    tdoku = bench_tdoku(args.tdoku, rounds=1 if quick else args.rounds,
                        seconds=1.0 if quick else 3.0)
    result = {
        "benchmark": "sudoku",
        "load_average": os.getloadavg(),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "solver_top95": bench_solver(rounds=3 if quick else 20,
                                     reference_puzzles=5 if quick else 95),
        "tdoku_side_by_side": tdoku,
        "cli_solve_file_top95": bench_cli_file((100,) if quick else (100, 1000), tdoku),
        "generator": bench_generator(seconds=0.3 if quick else 3.0),
        "vector_env": bench_vector(1024, steps=20 if quick else 300,
                                   sync_steps=3 if quick else 30),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
