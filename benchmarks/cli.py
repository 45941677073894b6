"""CLI start-up: wall time of ``tracegym --help``, ``tracegym solve PUZZLE`` and ``tracegym solve
FILE`` (top95, 95 puzzles: start-up plus a few milliseconds of solving), fresh processes.

Prints one JSON object: per command the min and median wall seconds over ``--runs`` runs (after
one untimed run that fills the bytecode and numba caches, as a second invocation by a user finds
them), which heavy modules the process loaded, and the load average before and after; two
shared cores busy with other work stretch every figure, so read them beside it. The reference
is ``python -c pass`` (the interpreter alone) and ``python -c "import tracegym"`` (what every
command pays: numpy and gymnasium, for the env registrations).

Usage: ``python benchmarks/cli.py [--runs 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP95 = Path(__file__).resolve().parents[1] / "envs" / "sudoku" / "data" / "top95.txt"
PROBE = "import sys, runpy\nsys.argv = ['tracegym', *sys.argv[1:]]\ntry:\n    " \
    "runpy.run_module('tracegym', run_name='__main__')\nexcept SystemExit:\n    pass\n" \
    "print([m for m in ('torch', 'numba', 'pyarrow') if m in sys.modules], file=sys.stderr)"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's machine keeps .pyc files
    return env


def time_command(argv: list[str], runs: int) -> dict:
    subprocess.run(argv, capture_output=True, env=_env(), check=False)  # fill the caches
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=_env(), check=False)
        walls.append(time.perf_counter() - t)
    return {"min_s": min(walls), "median_s": statistics.median(walls)}


def loaded_modules(args: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=_env(), check=False)
    return json.loads(proc.stderr.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    args = parser.parse_args()
    puzzle = TOP95.read_text().split()[0]
    tmp = tempfile.TemporaryDirectory()
    top95_file = Path(tmp.name) / "top95.txt"  # a copy: the argument reads as a user's file
    top95_file.write_text(TOP95.read_text())
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import tracegym'": [sys.executable, "-c", "import tracegym"],
        "tracegym --help": [sys.executable, "-m", "tracegym", "--help"],
        "tracegym data sudoku --help": [sys.executable, "-m", "tracegym", "data", "sudoku",
                                        "--help"],
        "tracegym solve PUZZLE": [sys.executable, "-m", "tracegym", "solve", puzzle],
        "tracegym solve FILE (top95)": [sys.executable, "-m", "tracegym", "solve",
                                        str(top95_file)],
    }
    load_before = os.getloadavg()
    timings = {name: time_command(argv, args.runs) for name, argv in commands.items()}
    result = {
        "benchmark": "cli",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "runs": args.runs,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "wall": timings,
        "modules_loaded": {"--help": loaded_modules(["--help"]),
                           "solve PUZZLE": loaded_modules(["solve", puzzle]),
                           "solve FILE": loaded_modules(["solve", str(top95_file)])},
    }
    tmp.cleanup()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
