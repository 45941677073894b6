"""Trace datasets: traced calls per second for `tracegym data traces`, in-process and sandboxed.

Builds small datasets from generated programs and from CRUXEval, in-process and in the sandbox
(a process per call, and the warm sandbox's workers: :mod:`tracegym.tracers.zygote`), and
reports calls per second of the whole build (tracing, CWM and JSON text, Parquet and JSONL);
then the sandbox alone on the same generated calls, per call and warm, in the same run (the
speed-up is their ratio), and the cost of one call of a trivial function each way (process
start, isolation set-up, ``import tracegym``; or a fork of a warm worker). The load average
before and after says how busy the machine was. Prints one JSON object.

    python benchmarks/traces.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tracegym.datasets.traces import build_trace_dataset
from tracegym.tracers import run_source, sandbox_capabilities
from tracegym.tracers.programs import generate_programs
from tracegym.tracers.zygote import SandboxPool

TRIVIAL = "def f(x):\n    return x + 1\n"


def bench_build(source: str, n: int, sandbox: bool, workers: int = 1,
                warm: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = build_trace_dataset(Path(tmp) / "d", source=source, n=n, seed=0,
                                      sandbox=sandbox, workers=workers, progress=False,
                                      warm_sandbox=warm)
        elapsed = time.perf_counter() - t
    return {"source": source, "sandbox": ("warm" if warm else "per-call") if sandbox else False,
            "workers": workers, "programs": summary["programs"], "calls": summary["records"],
            "outcomes": summary["outcomes"], "seconds": elapsed,
            "calls_per_s": summary["records"] / elapsed}


def bench_call(run, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = run(TRIVIAL, "f", (1,))
        times.append(time.perf_counter() - t)
        assert result.outcome == "ok", result.message
    return {"median_s": statistics.median(times), "min_s": min(times),
            "isolation": result.isolation}


def bench_sandbox(calls: list, run, workers: int) -> dict:
    """Traces per second of ``run`` over generated calls on ``workers`` threads."""
    def one(item):
        program, call = item
        return run(program.source, program.entry, call.args, dict(call.kwargs),
                   trace_options={"max_events": 10_000}).outcome

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(one, calls))
    elapsed = time.perf_counter() - t
    return {"calls": len(calls), "workers": workers, "seconds": elapsed,
            "traces_per_s": len(calls) / elapsed,
            "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="sandboxed calls at once (default: the cores)")
    args = parser.parse_args()
    n = 50 if args.quick else 500
    workers = args.workers
    load_before = os.getloadavg()
    programs = list(generate_programs(0, n))
    calls = [(p, c) for p in programs for c in p.inputs]
    with SandboxPool(workers=workers) as pool:
        bench_call(pool.run_source, workers)  # start the workers: not part of the figures
        warm_call = bench_call(pool.run_source, 10 if args.quick else 50)
        warm = bench_sandbox(calls, pool.run_source, workers)
    per_call = bench_sandbox(calls[:len(calls) // 10], run_source, workers)
    result = {
        "benchmark": "traces",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "sandbox": sandbox_capabilities(),
        "sandbox_call": bench_call(run_source, 3 if args.quick else 10),
        "warm_sandbox_call": warm_call,
        "sandboxed_traces": {"per_call": per_call, "warm": warm,
                             "speedup": warm["traces_per_s"] / per_call["traces_per_s"]},
        "builds": [
            bench_build("generated", n, sandbox=False),
            bench_build("cruxeval", n, sandbox=False),
            bench_build("generated", n // 10, sandbox=True, workers=workers, warm=False),
            bench_build("generated", n, sandbox=True, workers=workers),
        ],
        "loadavg": {"before": load_before, "after": os.getloadavg()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
