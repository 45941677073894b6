"""Trace datasets: traced calls per second for `tracegym data traces`, in-process and sandboxed.

Builds small datasets from generated programs and from CRUXEval, in-process and in the sandbox,
and reports calls per second of the whole build (tracing, CWM and JSON text, Parquet and JSONL)
plus the sandbox's cost of one call of a trivial function (process start, isolation set-up,
``import tracegym``). Prints one JSON object.

    python benchmarks/traces.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tracegym.datasets.traces import build_trace_dataset
from tracegym.tracers import run_source, sandbox_capabilities


def bench_build(source: str, n: int, sandbox: bool, workers: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = build_trace_dataset(Path(tmp) / "d", source=source, n=n, seed=0,
                                      sandbox=sandbox, workers=workers, progress=False)
        elapsed = time.perf_counter() - t
    return {"source": source, "sandbox": sandbox, "workers": workers,
            "programs": summary["programs"], "calls": summary["records"],
            "outcomes": summary["outcomes"], "seconds": elapsed,
            "calls_per_s": summary["records"] / elapsed}


def bench_sandbox_call(repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = run_source("def f(x):\n    return x + 1\n", "f", (1,))
        times.append(time.perf_counter() - t)
        assert result.outcome == "ok", result.message
    return {"median_s": statistics.median(times), "min_s": min(times),
            "isolation": result.isolation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    quick = parser.parse_args().quick
    n = 50 if quick else 500
    result = {
        "benchmark": "traces",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "sandbox": sandbox_capabilities(),
        "sandbox_call": bench_sandbox_call(3 if quick else 10),
        "builds": [
            bench_build("generated", n, sandbox=False),
            bench_build("cruxeval", n, sandbox=False),
            bench_build("generated", n // 10, sandbox=True),
            bench_build("generated", n // 10, sandbox=True, workers=2),
        ],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
