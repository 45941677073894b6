"""tracegym beside the libraries its users would pick instead, side by side.

Figures (each a rate per second, higher is better; ratio = tracegym / peer):

- ``sudoku_vector``: 1,024 Sudoku boards (9x9, each side's default env) stepped together with
  uniformly random legal actions, resets included: tracegym's native vector env (default
  ``dead_end="terminate"``, and ``dead_end="play_on"`` as Jumanji plays) against Jumanji's
  ``jit(vmap(step))`` under its ``AutoResetWrapper``, and without resets;
- ``maze_vector``: 1,024 10x10 mazes, uniformly random moves: tracegym's native vector env
  (default, and with no step limit so only a reached goal resets: ``no_truncation``) against
  Jumanji's ``jit(vmap(step))`` without resets and with ``AutoResetWrapper``;
- ``generate``: unique 9x9 Sudoku puzzles per second, 32 clues (tracegym ``medium``) and minimal
  (tracegym ``hard``; reasoning-gym asked for 64 blanks digs until no clue can go), one core,
  against reasoning-gym's ``sudoku`` dataset;
- ``tracer``: events per second recording every local at every event on the two workloads of
  ``benchmarks/tracer.py``, against PySnooper and hunter (``VarsSnooper``), null sinks;
- ``tdoku`` (``--tdoku PATH``, tdoku's ``run_benchmark``): top95 first solution and uniqueness,
  one core, as in ``benchmarks/sudoku.py``.

Every worker process is pinned to one core (``sched_setaffinity``), so a figure is a one-core
rate on both sides. Only ``step`` (or generation, or the traced call) is timed: actions are
drawn outside the timer (Jumanji's with a jitted sampler, blocked on before the clock starts).
Every side of a figure runs in its own fresh process; the sides take turns for ``--rounds``
rounds and the best round of each counts, with the load average before each round in the
output. A peer that is not installed is listed under ``skipped``. Prints one JSON object, or a
Markdown table with ``--markdown``.

Usage: ``python benchmarks/peers.py [--quick] [--rounds 3] [--tdoku PATH] [--markdown]``.
Install the Python peers with ``pip install jumanji reasoning-gym pysnooper hunter``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NUM_ENVS = 1024

# figure -> side -> (worker, required module or None); the first side is tracegym's
FIGURES = {
    "sudoku_vector": {
        "tracegym": ("sudoku_tracegym", None),
        "tracegym_play_on": ("sudoku_tracegym_play_on", None),
        "jumanji_autoreset": ("sudoku_jumanji_autoreset", "jumanji"),
        "jumanji_no_reset": ("sudoku_jumanji", "jumanji"),
    },
    "maze_vector": {
        "tracegym": ("maze_tracegym", None),
        "tracegym_no_truncation": ("maze_tracegym_no_truncation", None),
        "jumanji_no_reset": ("maze_jumanji", "jumanji"),
        "jumanji_autoreset": ("maze_jumanji_autoreset", "jumanji"),
    },
    "generate_medium": {
        "tracegym": ("generate_tracegym_medium", None),
        "reasoning_gym": ("generate_rg_medium", "reasoning_gym"),
    },
    "generate_minimal": {
        "tracegym": ("generate_tracegym_minimal", None),
        "reasoning_gym": ("generate_rg_minimal", "reasoning_gym"),
    },
    "tracer_bounded": {
        "tracegym": ("tracer_tracegym_bounded", None),
        "pysnooper": ("tracer_pysnooper_bounded", "pysnooper"),
        "hunter": ("tracer_hunter_bounded", "hunter"),
    },
    "tracer_growing": {
        "tracegym": ("tracer_tracegym_growing", None),
        "pysnooper": ("tracer_pysnooper_growing", "pysnooper"),
        "hunter": ("tracer_hunter_growing", "hunter"),
    },
}


# ----------------------------------------------------------------------------- workers
def _time_loop(step, prepare, steps: int) -> float:
    """Seconds spent in ``step`` over ``steps`` calls; ``prepare`` (untimed) makes its input."""
    elapsed = 0.0
    for _ in range(steps):
        arg = prepare()
        t = time.perf_counter()
        step(arg)
        elapsed += time.perf_counter() - t
    return elapsed


def _tracegym_vector(env_id: str, steps: int, legal: bool, **kwargs) -> dict:
    import gymnasium as gym
    import numpy as np

    import tracegym.envs  # noqa: F401 - registers the envs
    sys.path.insert(0, str(HERE))
    from sudoku import _sample_legal

    env = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point",
                       **kwargs)
    rng = np.random.default_rng(0)
    box = {"info": env.reset(seed=0)[1], "ends": 0}

    def prepare():
        if legal:
            return _sample_legal(box["info"]["action_mask"], rng)
        return rng.integers(0, 4, NUM_ENVS)

    def step(actions):
        _, _, terminated, truncated, box["info"] = env.step(actions)
        box["ends"] += int(terminated.sum() + truncated.sum())

    _time_loop(step, prepare, 20)  # burn-in: compiled code, the puzzle buffer
    box["ends"] = 0
    elapsed = _time_loop(step, prepare, steps)
    return {"per_s": steps * NUM_ENVS / elapsed, "episode_ends_per_step": box["ends"] / steps}


def _jumanji_vector(name: str, steps: int, autoreset: bool) -> dict:
    import jax
    import jax.numpy as jnp
    import jumanji
    from jumanji.wrappers import AutoResetWrapper

    env = jumanji.make(name)
    if autoreset:
        env = AutoResetWrapper(env)
    reset, step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
    key = jax.random.PRNGKey(0)
    state, timestep = reset(jax.random.split(key, NUM_ENVS))
    mask_shape = timestep.observation.action_mask.shape[1:]

    @jax.jit
    def sample(key, mask):  # a uniformly random legal action per env
        flat = mask.reshape(NUM_ENVS, -1)
        logits = jnp.where(flat, 0.0, -jnp.inf)
        logits = jnp.where(flat.any(axis=1, keepdims=True), logits, 0.0)  # none legal: any
        index = jax.random.categorical(key, logits)
        return jnp.stack(jnp.unravel_index(index, mask_shape), axis=1) \
            if len(mask_shape) > 1 else index

    box = {"state": state, "timestep": timestep, "key": key, "ends": 0}

    def prepare():
        box["key"], sub = jax.random.split(box["key"])
        actions = sample(sub, box["timestep"].observation.action_mask)
        return jax.block_until_ready(actions)

    def run(actions):
        box["state"], box["timestep"] = step(box["state"], actions)
        jax.block_until_ready(box["timestep"])

    _time_loop(run, prepare, 20)  # burn-in: compilation
    ends = 0
    elapsed = 0.0
    for _ in range(steps):
        actions = prepare()
        t = time.perf_counter()
        run(actions)
        elapsed += time.perf_counter() - t
        ends += int(box["timestep"].last().sum())
    return {"per_s": steps * NUM_ENVS / elapsed, "episode_ends_per_step": ends / steps}


def _generate_tracegym(level: str, seconds: float) -> dict:
    from tracegym.envs.sudoku.generator import SudokuGenerator

    gen = SudokuGenerator(9, level)
    gen.generate_arrays(0, 4)  # burn-in: load the compiled code
    made, clues, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, stats = gen.generate_arrays(1, 32, made)
        made += 32
        clues += int(stats[:, 0].sum())
    return {"per_s": made / (time.perf_counter() - t0), "mean_clues": clues / made}


def _generate_rg(empty: int, seconds: float) -> dict:
    import reasoning_gym

    data = reasoning_gym.create_dataset("sudoku", min_empty=empty, max_empty=empty, seed=1,
                                        size=1_000_000)
    data[0]  # burn-in
    made, clues, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or made == 0:
        entry = data[made + 1]
        clues += sum(v != 0 for row in entry["metadata"]["puzzle"] for v in row)
        made += 1
    return {"per_s": made / (time.perf_counter() - t0), "mean_clues": clues / made}


def _tracer(runner: str, workload: str, repeats: int) -> dict:
    sys.path.insert(0, str(HERE))
    import tracer as tb

    fn = tb.WORKLOADS[workload]
    n = 350 if workload == "bounded" else 300
    runners, skipped = tb.make_runners(fn, n)
    events = len(tb.Tracer(tb.TraceOptions()).trace(fn, n).frames)
    names = [k for k in runners if k.startswith("tracegym_")] if runner == "tracegym" \
        else [runner]
    best = {}
    for name in names:
        run = runners[name]
        run()  # burn-in
        cpu = []
        for _ in range(repeats):
            c0 = time.process_time()
            run()
            cpu.append(time.process_time() - c0)
        best[name] = events / min(cpu)
    top = max(best, key=best.get)
    return {"per_s": best[top], "events": events, "recorder": top, "all": best}


def worker(name: str, quick: bool) -> dict:
    steps = 30 if quick else 300
    seconds = 0.5 if quick else 3.0
    if name.startswith("sudoku_tracegym"):
        dead_end = "play_on" if name.endswith("play_on") else "terminate"
        return _tracegym_vector("tracegym/Sudoku-v0", steps, True, dead_end=dead_end)
    if name.startswith("sudoku_jumanji"):
        return _jumanji_vector("Sudoku-v0", steps, name.endswith("autoreset"))
    if name.startswith("maze_tracegym"):  # no truncation: resets only where a goal is reached
        limit = {"max_steps": 10**9} if name.endswith("no_truncation") else {}
        return _tracegym_vector("tracegym/Maze-v0", steps, False, size=10, **limit)
    if name.startswith("maze_jumanji"):
        return _jumanji_vector("Maze-v0", steps, name.endswith("autoreset"))
    if name.startswith("generate_tracegym"):
        return _generate_tracegym("medium" if name.endswith("medium") else "hard", seconds)
    if name.startswith("generate_rg"):
        return _generate_rg(49 if name.endswith("medium") else 64, seconds)
    if name.startswith("tracer_"):
        _, runner, workload = name.split("_")
        return _tracer(runner, workload, 2 if quick else 5)
    raise SystemExit(f"--worker: unknown worker {name!r}")


# ----------------------------------------------------------------------------- driver
def _run_worker(name: str, quick: bool) -> dict:
    argv = [sys.executable, __file__, "--worker", name, *(["--quick"] if quick else [])]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "XLA_FLAGS": os.environ.get(
        "XLA_FLAGS", "--xla_force_host_platform_device_count=1"), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                else f"exit {proc.returncode}"}
    return json.loads(proc.stdout)


def _tdoku(binary: str, rounds: int, quick: bool) -> dict:
    sys.path.insert(0, str(HERE))
    import sudoku

    return sudoku.bench_tdoku(binary, rounds, seconds=1.0 if quick else 3.0)


def run(figures: list[str], rounds: int, quick: bool, tdoku: str | None) -> dict:
    out = {"benchmark": "peers", "rounds": rounds, "quick": quick,
           "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                       "processor": platform.processor() or platform.machine()},
           "load_average_start": os.getloadavg(), "figures": {}, "skipped": {}}
    for figure in figures:
        sides = {}
        for side, (name, module) in FIGURES[figure].items():
            if module and importlib.util.find_spec(module) is None:
                out["skipped"][f"{figure}/{side}"] = f"{module} is not installed"
            else:
                sides[side] = name
        runs = {side: [] for side in sides}
        loads = []
        for _ in range(rounds):
            loads.append(os.getloadavg())
            for side, name in sides.items():  # turns: every side once per round
                runs[side].append(_run_worker(name, quick))
        result = {"load_average_per_round": loads}
        for side, results in runs.items():
            good = [r for r in results if "per_s" in r]
            if not good:
                result[side] = {"error": results[-1].get("error")}
                continue
            result[side] = {**max(good, key=lambda r: r["per_s"]),
                            "rounds_per_s": [r.get("per_s") for r in results]}
        ours = [s for s in sides if s.startswith("tracegym") and "per_s" in result[s]]
        for peer in sides:
            if peer.startswith("tracegym") or "per_s" not in result[peer]:
                continue
            for side in ours:  # ratio_vs_PEER for the default side, ratio_VARIANT_vs_PEER
                variant = side.removeprefix("tracegym").lstrip("_")
                key = f"ratio_{variant}_vs_{peer}" if variant else f"ratio_vs_{peer}"
                result[key] = result[side]["per_s"] / result[peer]["per_s"]
        out["figures"][figure] = result
    if tdoku:
        out["figures"]["tdoku_top95"] = _tdoku(tdoku, rounds, quick)
    else:
        out["skipped"]["tdoku_top95"] = "no tdoku binary given (--tdoku PATH to run_benchmark)"
    out["load_average_end"] = os.getloadavg()
    return out


def markdown(result: dict) -> str:
    lines = ["| figure | tracegym side | peer | peer /s | tracegym /s | ratio |",
             "|---|---|---|---|---|---|"]
    for figure, res in result["figures"].items():
        if figure == "tdoku_top95":
            for key in ("first_solution", "unique"):
                peer, ours = res["tdoku"][f"{key}_per_s"], res["tracegym"][f"{key}_per_s"]
                lines.append(f"| top95 {key} | tracegym | tdoku | {peer:,.0f} | {ours:,.0f} | "
                             f"{ours / peer:.3g} |")
            continue
        ours_sides = [s for s in res if s.startswith("tracegym") and "per_s" in res[s]]
        peers = [s for s in res if not s.startswith(("tracegym", "ratio", "load"))]
        for peer in peers:
            if "per_s" not in res[peer]:
                continue
            for side in ours_sides:
                ours = res[side]["per_s"]
                lines.append(f"| {figure} | {side} | {peer} | {res[peer]['per_s']:,.1f} | "
                             f"{ours:,.1f} | {ours / res[peer]['per_s']:.3g} |")
    load = result["load_average_start"]
    lines.append(f"\nload average at start {load[0]:.2f}, at end "
                 f"{result['load_average_end'][0]:.2f}; skipped: "
                 f"{', '.join(result['skipped']) or 'none'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per side (best counts)")
    parser.add_argument("--figures", nargs="+", choices=list(FIGURES), default=list(FIGURES),
                        help="run only these figures")
    parser.add_argument("--tdoku", metavar="PATH", help="tdoku's run_benchmark binary")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if hasattr(os, "sched_setaffinity"):  # one core per side, whatever threads it starts
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(worker(args.worker, args.quick)))
        return
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    if args.tdoku and not os.access(args.tdoku, os.X_OK):
        raise SystemExit(f"--tdoku: {args.tdoku!r} is not an executable file")
    result = run(args.figures, args.rounds, args.quick, args.tdoku)
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
