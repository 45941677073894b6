"""Tracer speed: tracegym (both recorders) against a naive settrace+repr tracer, PySnooper, hunter.

Two workloads (loops, list and dict mutation, nested calls; ~10k events each), one with bounded
state and one whose state grows with every iteration, run untraced and under each tracer: a
burn-in run, then measured repeats (median reported). Every traced run records the
full state (every local, every event). PySnooper and hunter write to a null sink, so their time is
tracing and formatting, not I/O. tracegym's time covers ``trace()`` returning a Trace with all
frames built (reprs, sources, depths). tracegym runs with each recorder: ``tracegym_python`` (the
pure-Python recorder) and ``tracegym_c`` (the C extension ``tracegym.tracers._ctrace``, CPython
3.11; listed under "skipped" when not importable); both must give the same frames, which is
checked before timing. Prints one JSON object.

    python benchmarks/tracer.py [--n 350] [--n-growing 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from tracegym.tracers import TraceOptions, Tracer, safe_repr
from tracegym.tracers import trace as _trace_fn  # noqa: F401 - the public entry point

BACKENDS = ("python", "c")


def _c_unavailable() -> str | None:
    import importlib

    mod = importlib.import_module("tracegym.tracers.trace")
    if mod.C_UNAVAILABLE is not None:
        return mod.C_UNAVAILABLE
    if sys.version_info >= (3, 12):
        return "Python >= 3.12 uses sys.monitoring"
    return None

FRUITS = ["apple", "banana", "cherry", "kiwi", "mango", "plum"]


def _score(word, weights):
    s = 0
    for ch in word:
        s += weights.get(ch, 1)
    return s


def _bucket(counts, key, value):
    if key not in counts:
        counts[key] = 0
    counts[key] += value
    return counts[key]


def workload(n):
    """Bounded state, as in short test programs: a 3-key dict, a 6-key dict, a 5-item window."""
    weights = {"a": 2, "e": 3, "i": 5}
    counts = {}
    window = []
    total = 0
    for i in range(n):
        word = FRUITS[i % len(FRUITS)]
        sc = _score(word, weights)
        size = _bucket(counts, word, sc)
        window.append((i, sc))
        if len(window) > 5:
            window.pop(0)
        total += sc * size
    return total, window


def workload_growing(n):
    """Growing state: the list of every result so far and a dict of lists, snapshotted at every
    line, so each event costs O(n) for every full-state tracer."""
    weights = {"a": 2, "e": 3, "i": 5}
    groups = {}
    seen = []
    total = 0
    for i in range(n):
        word = FRUITS[i % len(FRUITS)]
        sc = _score(word, weights)
        groups.setdefault(word, []).append(sc)
        seen.append((i, sc))
        total += sc * len(groups[word])
    return total, len(seen)


WORKLOADS = {"bounded": workload, "growing": workload_growing}


# ----------------------------------------------------------------------------- tracers
def naive(fn, *args):
    """settrace + repr of every local at every event: the simplest full-state tracer."""
    frames = []
    filename = fn.__code__.co_filename

    def local(frame, event, arg):
        frames.append((event, frame.f_lineno,
                       {k: safe_repr(v) for k, v in frame.f_locals.items()},
                       safe_repr(arg) if event == "return" else None))
        return local

    def glob(frame, event, arg):
        if frame.f_code.co_filename != filename:
            return None
        return local(frame, event, arg)

    sys.settrace(glob)
    try:
        fn(*args)
    finally:
        sys.settrace(None)
    return frames


class _NullStream:
    def write(self, s):
        pass

    def flush(self):
        pass


def make_runners(fn, n):
    runners = {"untraced": lambda: fn(n)}
    skipped = {}
    for backend in BACKENDS:
        why = _c_unavailable() if backend == "c" else None
        if why:
            skipped[f"tracegym_{backend}"] = why
            continue
        tracer = Tracer(TraceOptions(backend=backend))
        runners[f"tracegym_{backend}"] = lambda tracer=tracer: tracer.trace(fn, n)
    runners["naive_settrace_repr"] = lambda: naive(fn, n)
    try:
        import pysnooper

        snooped = pysnooper.snoop(output=lambda s: None, depth=2, color=False)(fn)
        runners["pysnooper"] = lambda: snooped(n)
    except ImportError as e:
        skipped["pysnooper"] = f"not installed ({e})"
    try:
        import hunter

        def run_hunter():
            tracer = hunter.trace(filename=__file__,
                                  action=hunter.VarsSnooper(stream=_NullStream()))
            try:
                fn(n)
            finally:
                tracer.stop()

        runners["hunter"] = run_hunter
    except ImportError as e:
        skipped["hunter"] = f"not installed ({e})"
    return runners, skipped


def measure(fn, n, repeats):
    runners, skipped = make_runners(fn, n)
    traces = {b: runners[f"tracegym_{b}"]() for b in BACKENDS if f"tracegym_{b}" in runners}
    t = traces["python"]
    events = len(t.frames)
    assert not t.truncated and t.result == fn(n)
    for other in traces.values():  # every recorder gives the same frames
        assert other.frames == t.frames and other.return_repr == t.return_repr
    results = {}
    for name, run in runners.items():
        run()  # burn-in: caches, linecache, imports
        wall, cpu = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        sec = statistics.median(cpu)
        results[name] = {"cpu_seconds": sec, "wall_seconds": statistics.median(wall),
                         "events_per_s": events / sec}
    base = results["untraced"]["cpu_seconds"]
    for r in results.values():
        r["slowdown"] = r["cpu_seconds"] / base
    del results["untraced"]["events_per_s"]
    out = {"n": n, "events": events, "results": results, "skipped": skipped}
    for name in [k for k in results if k.startswith("tracegym_")]:
        ours = results[name]["cpu_seconds"]
        if "pysnooper" in results:
            out[f"{name}_speedup_over_pysnooper"] = results["pysnooper"]["cpu_seconds"] / ours
        if "hunter" in results:
            out[f"{name}_speedup_over_hunter"] = results["hunter"]["cpu_seconds"] / ours
        out[f"{name}_speedup_over_naive"] = results["naive_settrace_repr"]["cpu_seconds"] / ours
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=350, help="bounded workload size (350 -> ~10k events)")
    p.add_argument("--n-growing", type=int, default=300, help="growing workload size (~8k events)")
    p.add_argument("--repeats", type=int, default=5, help="measured repeats per tracer")
    args = p.parse_args()
    out = {
        "config": {
            "repeats": args.repeats, "statistic": "median of repeats", "burn_in": 1,
            "clock": "process CPU time (time.process_time): the machine is shared, CPU time is "
                     "what contention distorts least; wall time reported beside it",
            "events_counted_by": "tracegym (call+line+return+exception frames)",
            "sinks": "pysnooper: output=callable that discards; hunter: VarsSnooper(stream=null "
                     "writer); no I/O measured",
            "tracegym_time_includes": "trace() returning a Trace with every frame built",
            "tracegym_backends": "tracegym_python: pure-Python recorder; tracegym_c: the C "
                                 "extension (same frames, checked before timing)",
            "pysnooper_options": "depth=2, default max_variable_length (100)",
        },
        "device": {"python": platform.python_version(), "machine": platform.machine(),
                   "cpus": os.cpu_count()},
        "bounded": measure(workload, args.n, args.repeats),
        "growing": measure(workload_growing, args.n_growing, args.repeats),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
