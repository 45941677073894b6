"""Trace dataset: execution traces of Python programs as Parquet and JSON Lines.

Layout::

    OUT/traces.parquet    one row per traced call (columns: ``COLUMNS``), zstd
    OUT/traces.jsonl      the same records, one JSON object per line (sorted keys)
    OUT/meta.json         the arguments, counts per outcome and split, versions

Sources (``--source``): ``generated`` (program ``i`` of :func:`~tracegym.tracers.programs.
generate_program` under a seed derived from ``--seed``, ``--kind``), ``cruxeval`` (the 800
CRUXEval functions, the first ``--n`` of them), or a directory of ``.py`` files listed by a
``--spec`` file (:func:`~tracegym.tracers.programs.programs_from_directory`). ``--n`` counts
programs; each program gives one record per call (``--inputs-per-program``: the calls generated
per program, or the most kept of the listed ones).

Execution: user code (a directory) runs in the sandbox by default (a separate, resource-limited
process per call, forked by ``--workers`` warm sandbox workers: :mod:`tracegym.tracers.zygote`,
as isolated as ``run_source``'s process per call and byte-identical to it); generated programs
and CRUXEval run in-process by default
(``run_in_process``, :mod:`tracegym.tracers.in_process`), far faster, bounded by
``--max-events`` (recording stops; ``truncated``) and by ``--timeout`` wall seconds per call: a
``SIGALRM`` timer raises ``CallTimeout`` (a BaseException, so ``except Exception`` in the program
does not swallow it) inside the program's own frames only, never inside the tracer's, and
re-fires every 0.2 s until the call ends. The timer needs the main thread; elsewhere in-process
calls are bounded by nothing but ``--max-events``. On Python 3.10, whose interpreter never runs
a signal handler inside some loops (``while True: try: ... except BaseException: pass``),
in-process calls run one at a time in a forked worker process that is killed (outcome
``timeout``, no trace) when a call outlives ``--timeout`` by ``KILL_GRACE_S``; a worker that
dies gives ``crash``. In-process runs have no memory limit: use ``--sandbox`` for anything
untrusted.

Outcomes (:data:`~tracegym.tracers.outcomes.RECORD_OUTCOMES`): ``ok``; ``exception`` (the traced
function raised: still a full trace); ``truncated`` (``--max-events`` hit: the trace holds the
first events); ``timeout``; ``memory``; ``exit`` (``sys.exit``); ``syntax_error`` (a listed file
that does not parse: each of its calls gets this record, and the build goes on);
``module_error``; ``tracer_error`` (another tracer was installed, or the sandbox's tracer
failed); and from the sandbox also ``output_limit``, ``result_limit`` (the trace is larger than
``Limits.result_bytes``), ``crash``, ``entry_missing``, ``violation``... as
:mod:`tracegym.tracers.outcomes` lists them; ``argument_error``
(arguments that cannot be sent to the sandbox) and ``format_error`` (a trace whose text cannot be
written as CWM). Nothing is dropped: every call of every program in the shard has its record.

Split: ``split`` is ``"test"`` for a program when a hash of ``(seed, source)`` falls below
``--test-fraction``, else ``"train"``; every call of a program, and every program with the same
source, lands in one split.

Determinism: the same arguments give byte-identical files (sorted JSON keys, no timestamps or
timings, fixed Parquet settings). Object addresses in reprs (``<object object at 0x7f...>``) are
written ``<... at 0x...>`` (:func:`~tracegym.tracers.cwm.scrub_addresses`, as ExecTrace-v0).
In-process, the order of a set of str follows ``PYTHONHASHSEED`` (set it for identical bytes
across processes; the sandbox fixes it to 0). ``--shard i/n`` builds the i-th of n contiguous
slices of the programs; the shards' records, concatenated in order, equal the whole build's.

The builder's steps, one module each: :mod:`.traces_programs` (options, programs, split),
:mod:`.traces_calls` (running one call, its record, the map over calls) and
:mod:`.traces_writer` (the files).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from tqdm import tqdm

from tracegym.errors import TracegymError
from tracegym.tracers.in_process import KILL_GRACE_S, CallTimeout  # noqa: F401 - old home

from .common import (
    shard_slice,
)
from .engines import Engine, check_engine, map_items, open_engine
from .traces_calls import CallSettings as _Settings
from .traces_calls import args_json as _args_json  # noqa: F401 - tests read it here
from .traces_calls import map_ordered as _map_ordered
from .traces_calls import record as _record
from .traces_programs import PROGRAM_STREAM, SOURCES, BuildOptions, resolve_options  # noqa: F401
from .traces_programs import list_programs as _programs
from .traces_programs import split_of as _split_of
from .traces_writer import COLUMNS, PARQUET_ROWS, TraceWriter, versions, write_meta  # noqa: F401
from .writer import locked_output, staged_directory

# ---------------------------------------------------------------------------------------------
# the builder


def build_trace_dataset(out, *, source: str = "generated", spec=None, n: int | None = None,
                        seed: int = 0, kind: str = "mixed", shard=(0, 1),
                        max_events: int = 10_000, sandbox: bool | None = None,
                        inputs_per_program: int | None = None, test_fraction: float = 0.1,
                        timeout: float = 10.0, workers: int = 1, overwrite: bool = False,
                        progress: bool = True, max_statements: int = 8,
                        max_params: int = 3, warm_sandbox: bool = True,
                        engine: str | Engine = "local", ray_address: str | None = None) -> dict:
    """Trace programs and write ``OUT/traces.parquet``, ``traces.jsonl`` and ``meta.json``.

    Args:
        out: the output directory (missing or empty unless ``overwrite``).
        source: ``"generated"``, ``"cruxeval"`` or a directory of ``.py`` files.
        spec: the directory's spec file (``.json``/``.toml``); only for a directory.
        n: programs in the whole dataset (>= 1). Default: 100 generated, else all of them.
        seed: seeds the generated programs and the train/test split.
        kind: generated programs' kind: ``straight_line``, ``loops`` or ``mixed``.
        shard: ``(i, n)``: build the i-th of n contiguous slices of the programs.
        max_events: trace events recorded per call before ``truncated`` (>= 1).
        sandbox: run each call in the sandbox; None: yes for a directory, no otherwise.
        inputs_per_program: calls generated per program (default 3), or at most this many of
            each listed program's calls (default all).
        test_fraction: share of programs (by source hash) in the test split, 0..1.
        timeout: wall seconds per call (> 0).
        workers: sandboxed calls run at once (threads, each waiting on its own process, forked
            by one of ``workers`` warm sandbox workers); in-process calls always run one at a
            time. The records' order does not change.
        overwrite: replace a non-empty ``out``.
        progress: show a progress bar.
        max_statements, max_params: generated programs only: at most this many statements in
            ``f``'s body (>= 2, nested ones included) and parameters (``generate_program``'s
            options; smaller programs give shorter traces, e.g. for a short-context model).
        warm_sandbox: sandboxed calls run in ``workers`` warm sandbox workers
            (:class:`~tracegym.tracers.zygote.SandboxPool`, tens of times faster); False: a new
            process per call (``run_source``). Both give the same bytes.
        engine, ray_address: ``"ray"`` runs the calls as Ray tasks (:mod:`.engines`), in chunks
            of ``CALLS_PER_CHUNK``, each run there as here (``workers`` threads for sandboxed
            calls, a process per call); the files are the same.

    Returns the summary written to ``meta.json`` plus ``out``. Raises TracegymError naming the
    argument for bad input, before anything runs.
    """
    options = resolve_options(
        source=source, spec=spec, n=n, seed=seed, kind=kind, shard=shard, max_events=max_events,
        sandbox=sandbox, inputs_per_program=inputs_per_program, test_fraction=test_fraction,
        timeout=timeout, workers=workers, max_statements=max_statements, max_params=max_params)
    engine = check_engine(engine, None, ray_address)
    # fail before the slow part; one writer of OUT from here to the end
    with locked_output(out, overwrite=overwrite) as out, open_engine(*engine) as engine:
        programs, lo, total = _shard_programs(options)
        jobs = _jobs(programs, lo, options)
        with staged_directory(out, overwrite=overwrite) as tmp:
            counts = _write_records(tmp, programs, jobs, options, progress=progress,
                                    warm_sandbox=warm_sandbox, engine=engine)
            summary = _summary(options, programs, jobs, lo, total, *counts)
            write_meta(tmp, summary)
    return {**summary, "out": str(out)}


def _shard_programs(options: BuildOptions) -> tuple[list, int, int]:
    """``(programs, lo, total)``: the shard's programs, the index of its first in the whole
    source, and the programs in the whole source."""
    lo, hi = shard_slice(options.n, options.shard) if options.n is not None else (0, None)
    programs, total = _programs(options.source_kind, options.folder, options.spec, n=options.n,
                                seed=options.seed, program_kind=options.kind,
                                inputs_per_program=options.inputs_per_program, lo=lo, hi=hi,
                                size=options.size)
    if options.source_kind != "generated":  # the size was known only after loading
        lo, hi = shard_slice(total, options.shard)
        programs = programs[lo:hi]
    return programs, lo, total


def _jobs(programs: list, lo: int, options: BuildOptions) -> list[tuple]:
    """``(program index, call index, program, call)`` of every call of the shard, in order."""
    keep = None if options.source_kind == "generated" else options.inputs_per_program
    return [(lo + k, j, p, c) for k, p in enumerate(programs)
            for j, c in enumerate(p.inputs[:keep])]


def _write_records(folder: Path, programs: list, jobs: list, options: BuildOptions, *,
                   progress: bool, warm_sandbox: bool = True,
                   engine: Engine | None = None) -> tuple[Counter, Counter, Counter]:
    """Run every job and stream its record into ``folder``; the counts of records per outcome,
    of records per split and of programs per split."""
    with contextlib.ExitStack() as stack:
        pool = None
        ray = engine is not None and engine.name == "ray"
        # a SandboxPool lives in this process: on Ray each call forks its own sandbox
        if options.sandbox and warm_sandbox and jobs and not ray:
            from tracegym.tracers.zygote import SandboxPool

            pool = stack.enter_context(SandboxPool(workers=options.workers))
        settings = _Settings(sandbox=options.sandbox, max_events=options.max_events,
                             timeout=options.timeout, pool=pool)
        return _run_jobs(folder, programs, jobs, options, settings, progress=progress,
                         engine=engine if ray else None)


def _run_jobs(folder: Path, programs: list, jobs: list, options: BuildOptions,
              settings: _Settings, *, progress: bool,
              engine: Engine | None = None) -> tuple[Counter, Counter, Counter]:
    """:func:`_write_records` once its sandbox workers (if any) are up."""
    outcomes: Counter = Counter()
    splits: Counter = Counter()
    split_programs: Counter = Counter()
    writer = TraceWriter(folder)
    try:
        split_of = {}
        for p in programs:
            split_of[p.name, p.source] = _split_of(options.seed, p.source, options.test_fraction)
            split_programs[split_of[p.name, p.source]] += 1
        with tqdm(total=len(jobs), desc="traces", unit="call", disable=not progress,
                  delay=1.0, leave=False) as bar:
            # in-process calls run one at a time: the alarm (and 3.10's worker) is per process
            threads = options.workers if options.sandbox else 1
            one = partial(_job_record, split_of, settings)
            records = _map_ordered(one, jobs, threads) if engine is None else \
                map_items(engine, one, jobs, per_chunk=CALLS_PER_CHUNK, threads=threads)
            for record in records:
                outcomes[record["outcome"]] += 1
                splits[record["split"]] += 1
                writer.add(record)
                bar.update(1)
    finally:
        writer.close()
    return outcomes, splits, split_programs


CALLS_PER_CHUNK = 64  # calls sent to a Ray worker at a time (a call may take seconds)


def _job_record(split_of: dict, settings: _Settings, job: tuple) -> dict:
    """The record of one ``(program index, call index, program, call)`` job."""
    index, j, program, call = job
    return _record(program, index, j, call, split_of[program.name, program.source], settings)


def _summary(options: BuildOptions, programs: list, jobs: list, lo: int, total: int,
             outcomes: Counter, splits: Counter, split_programs: Counter) -> dict:
    """What ``meta.json`` holds."""
    return {
        "arguments": {
            "source": options.source,
            "spec": None if options.spec is None else str(options.spec), "n": options.n,
            "seed": options.seed, "kind": options.kind, "shard": list(options.shard),
            "max_events": options.max_events, "sandbox": options.sandbox,
            "inputs_per_program": options.inputs_per_program,
            "test_fraction": options.test_fraction, "timeout": options.timeout, **options.size,
        },
        "programs_in_source": total, "programs": len(programs), "records": len(jobs),
        "program_range": [lo, lo + len(programs)],
        "outcomes": dict(sorted(outcomes.items())),
        "records_per_split": {s: splits[s] for s in ("train", "test")},
        "programs_per_split": {s: split_programs[s] for s in ("train", "test")},
        "columns": list(COLUMNS),
        "isolation": _isolation() if options.sandbox else "in-process",
        "hash_seed": os.environ.get("PYTHONHASHSEED"),
        "versions": versions(),
    }


def _isolation() -> str:
    from tracegym.tracers.sandbox import sandbox_capabilities

    return sandbox_capabilities()["level"]


# ---------------------------------------------------------------------------------------------
# reading


def read_traces(out) -> Iterator[dict]:
    """The records of ``OUT/traces.jsonl``, in order."""
    with open(Path(out) / "traces.jsonl", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def split_programs(out, split: str = "test") -> list:
    """The programs of one ``split`` of a trace dataset, as :class:`Program` objects with the
    dataset's calls (for ``tracegym/ExecTrace-v0``'s ``programs=``: evaluate on programs a model
    never trained on). Calls whose arguments are not Python literals are left out; a program
    left with no call is dropped. TracegymError when the split holds no program."""
    from tracegym.tracers.programs import Program, parse_arguments

    if split not in ("train", "test"):
        raise TracegymError(f"split must be 'train' or 'test', got {split!r}")
    found: dict[tuple, dict] = {}
    for r in read_traces(out):
        if r["split"] != split:
            continue
        item = found.setdefault((r["program_index"], r["source"], r["entry"]),
                                {"name": r["program"], "origin": r["origin"],
                                 "location": r["location"], "calls": {}})
        try:
            item["calls"][r["call_index"]] = parse_arguments(r["args_repr"], field_name="args")
        except ValueError:
            continue  # not literal: the env could not rebuild this call
    programs = [Program(v["name"], source, entry, tuple(c for _, c in sorted(v["calls"].items())),
                        origin=v["origin"], location=v["location"])
                for (_, source, entry), v in found.items() if v["calls"]]
    if not programs:
        raise TracegymError(f"traces: no {split} program with literal arguments in {str(out)!r}")
    return programs
