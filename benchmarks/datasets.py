"""Dataset builds: scaling over workers and engines, and peak memory as the item count grows.

Prints one JSON object. Every build is the real CLI (``tracegym data ...``) in a fresh process,
timed end to end (start-up included) with its peak RSS (``ru_maxrss`` of that process; a local
build's worker processes are counted apart: the largest one, not the sum). Each figure is
compared with a reference in the same run:

- scaling: the same build with ``--workers 1`` (the reference), ``--workers 2`` and, with ray
  installed, ``--engine ray`` on a local Ray of 1 and 2 CPUs; the speedup over the reference and
  the output's digest (equal for every row: the engines write the same bytes);
- memory: peak RSS of a one-process Sudoku build (and, with ``--arc``, of ``data arc --set
  arc-agi-1 --augment N``) at each train count: the builders stream their examples to the files
  a chunk at a time, so past the first Parquet row group (65,536 rows) the peak should stay flat.

Two shared cores busy with other work stretch every figure: run it alone (the load average is
in the output). Usage: ``python benchmarks/datasets.py [--quick | --scale F]
[--what scaling,memory] [--counts 10000,100000,1000000] [--arc 1000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_build(args: list[str], out: Path) -> dict:
    """One ``tracegym data ...`` build in a fresh process: wall seconds, peak RSS, digest."""
    cmd = [sys.executable, "-m", "tracegym", "data", *args, "--out", str(out), "--overwrite",
           "--no-progress"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    digest = hashlib.sha256()
    for f in sorted(out.rglob("*")):
        if f.is_file() and f.name != "meta.json":  # trace_lm's meta names its input folder
            digest.update(f.relative_to(out).as_posix().encode() + f.read_bytes())
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "sha256": digest.hexdigest()[:16]}


def have_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def scaling(builds: dict[str, list[str]], tmp: Path) -> dict:
    engines = {"local_1": ["--workers", "1"], "local_2": ["--workers", "2"]}
    if have_ray():
        engines |= {"ray_1": ["--engine", "ray", "--workers", "1"],
                    "ray_2": ["--engine", "ray", "--workers", "2"]}
    out = {}
    for name, args in builds.items():
        rows = {"load_average_before": os.getloadavg()}
        for engine, flags in engines.items():
            rows[engine] = run_build([*args, *flags], tmp / f"{name}-{engine}")
        ref = rows["local_1"]["wall_s"]
        for engine in engines:
            rows[engine]["speedup_vs_local_1"] = round(ref / rows[engine]["wall_s"], 2)
        rows["same_bytes"] = len({rows[e]["sha256"] for e in engines}) == 1
        rows["load_average_after"] = os.getloadavg()
        out[name] = rows
    return out


def memory(counts: list[int], arc_augment: int | None, tmp: Path) -> dict:
    out = {"sudoku_9x9": {}}
    for count in counts:
        out["sudoku_9x9"][str(count)] = {
            "load_average_before": os.getloadavg(),
            **run_build(["sudoku", "--train", str(count), "--test", "200", "--workers", "1"],
                        tmp / f"sudoku-{count}")}
        _remove(tmp / f"sudoku-{count}")  # 1M items: about 1 GB of output
    if arc_augment is not None:
        out["arc_agi_1"] = {"augment": arc_augment, "load_average_before": os.getloadavg(),
                            **run_build(["arc", "--set", "arc-agi-1", "--augment",
                                         str(arc_augment), "--workers", "1"], tmp / "arc")}
    return out


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small builds (a smoke run)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="F",
                        help="scaling: items of each build times F (--quick: 0.05)")
    parser.add_argument("--what", default="scaling,memory", help="scaling, memory or both")
    parser.add_argument("--counts", default=None, help="memory: Sudoku train counts")
    parser.add_argument("--arc", type=int, default=None, metavar="N",
                        help="memory: also ARC-AGI-1 with --augment N")
    args = parser.parse_args()
    scale = 0.05 if args.quick else args.scale

    def count(n: int) -> str:
        return str(max(1, round(n * scale)))

    # about a minute each on one core, so that a local Ray's start (5-20 s) is not the figure
    builds = {
        "sudoku_9x9": ["sudoku", "--train", count(400_000), "--test", "200"],
        "maze_30x30_hard": ["maze", "--train", count(4000), "--test", "20"],
        "arc_procedural": ["arc", "--set", "procedural", "--train", count(400), "--test",
                           count(200), "--augment", "100"],
    }
    counts = [int(c) for c in args.counts.split(",")] if args.counts else \
        ([1000, 10_000] if args.quick else [10_000, 100_000, 1_000_000])
    what = set(args.what.split(","))
    report = {"config": {"quick": args.quick, "scale": scale, "builds": builds,
                         "cpus": os.cpu_count(),
                         "python": platform.python_version(), "ray": have_ray()}}
    with tempfile.TemporaryDirectory() as tmp:
        if "scaling" in what:
            report["scaling"] = scaling(builds, Path(tmp))
        if "memory" in what:
            report["memory"] = memory(counts, args.arc, Path(tmp))
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
