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

Execution: user code (a directory) runs in the sandbox by default (``run_source``: a separate,
resource-limited process per call); generated programs and CRUXEval run in-process by default,
far faster, bounded by ``--max-events`` (recording stops; ``truncated``) and by ``--timeout``
wall seconds per call: a ``SIGALRM`` timer raises :class:`CallTimeout` (a BaseException, so
``except Exception`` in the program does not swallow it) inside the program's own frames only,
never inside the tracer's, and re-fires every 0.2 s until the call ends. The timer needs the
main thread; elsewhere in-process calls are bounded by nothing but ``--max-events``. On Python
3.10, whose interpreter never runs a signal handler inside some loops (``while True: try: ...
except BaseException: pass``), in-process calls run one at a time in a forked worker process
that is killed (outcome ``timeout``, no trace) when a call outlives ``--timeout`` by
``KILL_GRACE_S``; a worker that dies gives ``crash``. In-process runs have no memory limit: use
``--sandbox`` for anything untrusted.

Outcomes: ``ok``; ``exception`` (the traced function raised: still a full trace);
``truncated`` (``--max-events`` hit: the trace holds the first events); ``timeout``; ``memory``;
``exit`` (``sys.exit``); ``syntax_error`` (a listed file that does not parse: each of its calls
gets this record, and the build goes on); ``module_error``; and from the sandbox also
``output_limit``, ``crash``, ``entry_missing``, ``violation``... as :class:`~tracegym.tracers.
sandbox.RunResult` names them; ``argument_error`` (arguments that cannot be sent to the sandbox) and
``format_error`` (a trace whose text cannot be written as CWM). Nothing is dropped: every call of
every program in the shard has its record.

Split: ``split`` is ``"test"`` for a program when a hash of ``(seed, source)`` falls below
``--test-fraction``, else ``"train"``; every call of a program, and every program with the same
source, lands in one split.

Determinism: the same arguments give byte-identical files (sorted JSON keys, no timestamps or
timings, fixed Parquet settings). Object addresses in reprs (``<object object at 0x7f...>``) are
written ``<... at 0x...>`` (:func:`~tracegym.tracers.cwm.scrub_addresses`, as ExecTrace-v0).
In-process, the order of a set of str follows ``PYTHONHASHSEED`` (set it for identical bytes
across processes; the sandbox fixes it to 0). ``--shard i/n`` builds the i-th of n contiguous
slices of the programs; the shards' records, concatenated in order, equal the whole build's.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import hashlib
import json
import math
import os
import pickle
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tracegym.errors import TracegymError

from .common import (
    add_out_arguments,
    add_progress_argument,
    add_shard_argument,
    check_int,
    check_shard,
    shard_slice,
    stream_seed,
    user_options,
)
from .writer import check_output_dir, staged_directory

SOURCES = ("generated", "cruxeval")
PROGRAM_STREAM = 0  # stream_seed(seed, PROGRAM_STREAM) seeds the generated programs
PARQUET_ROWS = 1024  # records per row group, flushed as they come so memory stays bounded
ALARM_REPEAT_S = 0.2  # the in-process timer re-fires this often while a program ignores it
_HERE = os.path.abspath(__file__)
# Before 3.11 CPython checks for pending signals only at some backward jumps and calls, and skips
# the check before a SETUP_FINALLY: in ``while True: try: i += 1 ...`` the alarm's handler never
# runs, nor can another thread take the GIL. No Python code can end such a call, so on 3.10 the
# in-process calls run in a forked worker process, killed when a call outlives its wall time.
_FORKED = sys.version_info < (3, 11)
KILL_GRACE_S = 2.0  # the worker's own alarm gets this long past --timeout before the kill

# column -> pyarrow type name; the order of the Parquet columns
COLUMNS = {
    "program": "string",         # the program's name (file.entry, CRUXEval id, gen_<kind>_<i>)
    "program_index": "int64",    # index of the program in the whole source (not the shard)
    "origin": "string",          # generated | cruxeval | directory
    "location": "string",        # seed/index, file path, data-set line
    "source": "string",          # the program's source text
    "entry": "string",           # the traced function's name
    "call_index": "int32",       # index of the call among the program's inputs
    "args_repr": "string",       # the call's argument list as Python text: "[1, 2], k=3"
    "args_json": "string",       # {"args": [...], "kwargs": {...}} when JSON holds them exactly
    "expected_output": "string",  # repr of the recorded result (CRUXEval), else null
    "outcome": "string",         # see the module docstring
    "error": "string",           # what went wrong (null for ok / exception)
    "return_repr": "string",     # repr of the returned value
    "exception_repr": "string",  # repr of the exception the traced function raised
    "num_frames": "int32",       # frames in the trace (0 without a trace)
    "truncated": "bool_",        # max events hit
    "cwm": "string",             # Trace.to_cwm()
    "trace_json": "string",      # Trace.to_json()
    "split": "string",           # train | test, by program
}


class CallTimeout(BaseException):
    """Raised inside an in-process program that ran past its wall time."""


@dataclass(frozen=True)
class _Settings:
    sandbox: bool
    max_events: int
    timeout: float


# ---------------------------------------------------------------------------------------------
# programs


def _resolve_source(source, spec) -> tuple[str, Path | None]:
    """``(kind, directory)``: kind is generated, cruxeval or directory."""
    if source in SOURCES:
        if spec is not None:
            raise TracegymError(f"spec: only a directory source takes a spec, got "
                                f"spec={str(spec)!r} with source={source!r}")
        return source, None
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        raise TracegymError(f"source: expected 'generated', 'cruxeval' or a directory, got "
                            f"{source!r}" + (" (no such directory)" if isinstance(source, str)
                                             else ""))
    if spec is None:
        raise TracegymError(f"spec: a directory source needs a spec file (--spec) listing its "
                            f"entries and inputs, got none for source={str(source)!r}")
    return "directory", Path(source)


def _programs(kind: str, folder, spec, *, n, seed, program_kind, inputs_per_program,
              lo: int, hi: int | None, size: dict) -> tuple[list, int]:
    """``(programs, size)``: generated programs ``lo..hi-1`` and ``n``; for the other sources
    their first ``n`` (or all) programs and that count, which the caller then shards."""
    from tracegym.tracers.programs import cruxeval_programs, generate_program

    if kind == "generated":
        derived = stream_seed(seed, PROGRAM_STREAM)
        num_inputs = 3 if inputs_per_program is None else inputs_per_program
        return [generate_program(derived, i, kind=program_kind, num_inputs=num_inputs, **size)
                for i in range(lo, hi)], n
    found = cruxeval_programs() if kind == "cruxeval" else _directory_programs(folder, spec)
    total = len(found) if n is None else min(n, len(found))
    return found[:total], total


def _directory_programs(folder: Path, spec) -> list:
    """:func:`~tracegym.tracers.programs.programs_from_directory`, file by file, except that a
    file that does not parse still gives one program per listed entry, so each of its calls gets
    a ``syntax_error`` record instead of stopping the build. Other spec errors (a missing file
    or entry, bad inputs) still raise, before anything runs."""
    from tracegym.tracers.programs import _load_spec, programs_from_directory

    with user_options():  # a missing or malformed spec file
        data, where = _load_spec(spec)
    programs = []
    for file_name, entries in data.items():
        file = folder / file_name
        try:
            source = file.read_text()
            ast.parse(source, str(file))
        except SyntaxError:
            programs += _unparsable_programs(file, source, entries, f"{where}[{file_name!r}]")
            continue
        except (OSError, ValueError):
            pass  # a missing or unreadable file: programs_from_directory names it
        try:
            programs += programs_from_directory(folder, {file_name: entries})
        except ValueError as err:  # its messages start "spec[...]": name the user's spec file
            message = str(err)
            raise TracegymError(where + message[len("spec"):] if message.startswith("spec[")
                                else message) from None
    return programs


def _unparsable_programs(file: Path, source: str, entries, field_name: str) -> list:
    """The programs of a file that does not parse: its listed entries and their calls."""
    from tracegym.tracers.programs import Call, Program, parse_arguments

    if not isinstance(entries, dict) or not entries:
        raise TracegymError(f"{field_name}: must be a non-empty table of entry -> inputs, "
                            f"got {entries!r}")
    programs = []
    for entry, inputs in entries.items():
        entry_field = f"{field_name}[{entry!r}]"
        if not isinstance(inputs, list):
            raise TracegymError(f"{entry_field}: inputs must be a list, got {inputs!r}")
        calls = []
        for i, item in enumerate(inputs):
            if isinstance(item, list):
                calls.append(Call(tuple(item)))
                continue
            if not isinstance(item, str):
                raise TracegymError(f"{entry_field}[{i}]: an input is an argument-list string "
                                    f"or a list of arguments, got {item!r}")
            try:
                calls.append(parse_arguments(item, field_name=f"{entry_field}[{i}]"))
            except ValueError as err:
                raise TracegymError(str(err)) from None
        # named as programs_from_directory names them
        programs.append(Program(name=f"{file.stem}.{entry}", source=source, entry=entry,
                                inputs=tuple(calls), origin="directory", location=str(file)))
    return programs


def _split_of(seed: int, source: str, test_fraction: float) -> str:
    digest = hashlib.sha256(f"tracegym.traces.split/{seed}/".encode() + source.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "little") / 2**64 < test_fraction else "train"


def _args_text(call) -> str:
    from tracegym.tracers import safe_repr
    from tracegym.tracers.cwm import scrub_text

    return scrub_text(", ".join([*(safe_repr(a) for a in call.args),
                                 *(f"{k}={safe_repr(v)}" for k, v in call.kwargs.items())]))


def _args_json(call) -> str | None:
    """The call as JSON, or None when JSON would not give back the same values."""
    value = {"args": list(call.args), "kwargs": dict(call.kwargs)}
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)
        if json.loads(text) != value:  # a tuple, an int key, ... (a list never equals a tuple)
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return text


# ---------------------------------------------------------------------------------------------
# running one call


@functools.cache
def _tracers_dir() -> str:
    import tracegym.tracers

    return os.path.dirname(os.path.abspath(tracegym.tracers.__file__)) + os.sep


class _Alarm:
    """The in-process wall-time guard (see the module docstring)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False
        self.usable = threading.current_thread() is threading.main_thread()

    def _fire(self, signum, frame):
        if not self.armed:
            return
        name = os.path.abspath(frame.f_code.co_filename) if frame is not None else _HERE
        if name == _HERE or name.startswith(_tracers_dir()):
            # inside the tracer (or us): raising here would break it; try again shortly
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            return
        signal.setitimer(signal.ITIMER_REAL, ALARM_REPEAT_S)  # in case the program swallows it
        raise CallTimeout(f"wall time {self.seconds}s exceeded")

    def __enter__(self):
        if self.usable:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.usable:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def _in_process(program, call, settings: _Settings) -> tuple[str, str | None, object]:
    """``(outcome, error, trace or None)`` of one in-process call (in a worker on 3.10)."""
    if _FORKED:
        return _WORKER.run(program, call, settings)
    return _in_process_here(program, call, settings)


def _in_process_here(program, call, settings: _Settings) -> tuple[str, str | None, object]:
    """:func:`_in_process` in this very process."""
    from tracegym.tracers import TraceOptions, Tracer

    try:
        fn = program.load()
    except SyntaxError as err:
        return "syntax_error", f"line {err.lineno}: {err.msg}", None
    except Exception as err:  # noqa: BLE001 - the program's module code may raise anything
        return "module_error", f"{type(err).__name__}: {err}", None
    if not callable(fn):
        return "entry_not_callable", f"entry {program.entry!r} is not callable", None
    tracer = Tracer(TraceOptions(max_events=settings.max_events))
    call = call.copy()
    try:
        with _Alarm(settings.timeout):
            trace = tracer.trace(fn, *call.args, **call.kwargs)
    except CallTimeout as err:  # fired after the call, before the tracer finished
        return "timeout", str(err), None
    exc = trace.exception
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    if isinstance(exc, CallTimeout):
        return "timeout", str(exc), trace
    if isinstance(exc, MemoryError):
        return "memory", "MemoryError during the call", trace
    if isinstance(exc, SystemExit):
        return "exit", f"program called sys.exit({exc.code!r})", trace
    return _trace_outcome(trace), None, trace


def _serve(conn, parent_end) -> None:
    """The forked worker's loop: a job in, ``("ok", (outcome, error, trace))`` or ``("error",
    message)`` out, until the parent closes its end (or is gone)."""
    parent_end.close()  # else the parent's exit would not reach us as EOF
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            outcome, error, trace = _in_process_here(*job)
            if trace is not None:  # the live objects need not (and may not) travel
                trace = dataclasses.replace(trace, result=None, exception=None)
            reply = ("ok", (outcome, error, trace))
        except KeyboardInterrupt:  # Ctrl-C reached the whole process group: the parent too
            return
        except Exception as err:  # noqa: BLE001 - the tracer's own failure: the parent raises it
            reply = ("error", f"{type(err).__name__}: {err}")
        finally:
            for stream in (sys.stdout, sys.stderr):  # the program's prints, before the reply
                stream.flush()
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - e.g. a repr object that does not pickle
            conn.send(("error", f"the worker cannot send its result: {type(err).__name__}: "
                                f"{err}"))


class _Worker:
    """The forked process that runs in-process calls on 3.10 (see ``_FORKED``), one at a time;
    started on the first call, killed when a call outlives its time (the next call forks a new
    one), a daemon: it ends with this process."""

    def __init__(self) -> None:
        self.process = self.conn = None
        self.lock = threading.Lock()

    def start(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")  # a copy of this process: nothing to import
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_end, self.conn), daemon=True,
                                   name="tracegym-in-process")
        self.process.start()
        child_end.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.conn.close()
            self.process = self.conn = None

    def run(self, program, call, settings: _Settings) -> tuple[str, str | None, object]:
        with self.lock:
            if self.process is None or not self.process.is_alive():
                self.close()
                self.start()
            try:
                self.conn.send((program, call, settings))  # pickled whole before it is sent
            except (pickle.PicklingError, TypeError, AttributeError):
                # arguments that do not pickle (none from a spec or the generator): run them
                # here, bounded as on 3.11 by the alarm alone
                return _in_process_here(program, call, settings)
            try:
                if not self.conn.poll(settings.timeout + KILL_GRACE_S):
                    self.close()
                    return "timeout", (f"wall time {settings.timeout}s exceeded; the call did "
                                       "not stop at CallTimeout and its process was killed"), None
                kind, value = self.conn.recv()
            except EOFError:  # the worker died: os._exit in the program, the OOM killer...
                self.process.join()
                code = self.process.exitcode
                self.close()
                return "crash", f"the process running the call ended (exit code {code})", None
            except BaseException:  # Ctrl-C while waiting: leave no worker running the call
                self.close()
                raise
        if kind == "error":
            raise RuntimeError(f"in-process call of {program.name}: {value}")
        return value


_WORKER = _Worker()


def _in_sandbox(program, call, settings: _Settings) -> tuple[str, str | None, object]:
    from tracegym.errors import ArgumentSerialisationError
    from tracegym.tracers.sandbox import Limits, run_source

    limits = Limits(wall_time_s=settings.timeout, cpu_time_s=max(1, math.ceil(settings.timeout)))
    try:
        result = run_source(program.source, program.entry, call.args, dict(call.kwargs),
                            limits=limits, trace_options={"max_events": settings.max_events})
    except ArgumentSerialisationError as err:
        return "argument_error", str(err), None
    if result.outcome == "ok":
        return _trace_outcome(result.trace), None, result.trace
    if result.outcome == "syntax_error":  # the same text as in-process
        return "syntax_error", f"line {result.detail.get('lineno')}: {result.message}", None
    return result.outcome, result.message or None, result.trace


def _trace_outcome(trace) -> str:
    if trace.truncated:
        return "truncated"
    return "exception" if trace.exception_repr is not None else "ok"


def _record(program, index: int, call_index: int, call, split: str,
            settings: _Settings) -> dict:
    run = _in_sandbox if settings.sandbox else _in_process
    args_repr, args_json = _args_text(call), _args_json(call)
    outcome, error, trace = run(program, call, settings)
    cwm = trace_json = None
    if trace is not None:
        from tracegym.errors import TraceFormatError
        from tracegym.tracers.cwm import scrub_addresses

        trace = scrub_addresses(trace)  # as the ExecTrace env writes it
        trace_json = trace.to_json()
        try:
            cwm = trace.to_cwm()
        except TraceFormatError as err:
            outcome, error = "format_error", f"to_cwm: {err}"
    outputs = program.outputs
    return {
        "program": program.name, "program_index": index, "origin": program.origin,
        "location": program.location, "source": program.source, "entry": program.entry,
        "call_index": call_index, "args_repr": args_repr, "args_json": args_json,
        "expected_output": outputs[call_index] if outputs and call_index < len(outputs)
        else None,
        "outcome": outcome, "error": error,
        "return_repr": trace.return_repr if trace is not None else None,
        "exception_repr": trace.exception_repr if trace is not None else None,
        "num_frames": len(trace.frames) if trace is not None else 0,
        "truncated": bool(trace is not None and trace.truncated),
        "cwm": cwm, "trace_json": trace_json, "split": split,
    }


# ---------------------------------------------------------------------------------------------
# writing


class _Writer:
    """Streams records to ``traces.jsonl`` and ``traces.parquet`` in ``folder``."""

    def __init__(self, folder: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS.items()])
        self.jsonl = open(folder / "traces.jsonl", "w", encoding="utf-8", newline="\n")
        self.parquet = pq.ParquetWriter(folder / "traces.parquet", self.schema,
                                        compression="zstd", compression_level=3)
        self.rows: list[dict] = []

    def add(self, record: dict) -> None:
        self.jsonl.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        self.rows.append(record)
        if len(self.rows) >= PARQUET_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
            self.parquet.write_table(table, row_group_size=PARQUET_ROWS)
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.parquet.close()  # an empty shard still gets a file with the schema
        self.jsonl.close()


def _versions() -> dict:
    import pyarrow

    import tracegym
    from tracegym.tracers.cwm import JSON_VERSION

    return {"tracegym": tracegym.__version__, "pyarrow": pyarrow.__version__,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "trace_json": JSON_VERSION}


# ---------------------------------------------------------------------------------------------
# the builder


def build_trace_dataset(out, *, source: str = "generated", spec=None, n: int | None = None,
                        seed: int = 0, kind: str = "mixed", shard=(0, 1),
                        max_events: int = 10_000, sandbox: bool | None = None,
                        inputs_per_program: int | None = None, test_fraction: float = 0.1,
                        timeout: float = 10.0, workers: int = 1, overwrite: bool = False,
                        progress: bool = True, max_statements: int = 8,
                        max_params: int = 3) -> dict:
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
        workers: sandboxed calls run at once (threads, each waiting on its own process);
            in-process calls always run one at a time. The records' order does not change.
        overwrite: replace a non-empty ``out``.
        progress: show a progress bar.
        max_statements, max_params: generated programs only: at most this many statements in
            ``f``'s body (>= 2, nested ones included) and parameters (``generate_program``'s
            options; smaller programs give shorter traces, e.g. for a short-context model).

    Returns the summary written to ``meta.json`` plus ``out``. Raises TracegymError naming the
    argument for bad input, before anything runs.
    """
    from tracegym.tracers.programs import KINDS, ProgramConfig

    source_kind, folder = _resolve_source(source, spec)
    if n is not None:
        n = check_int("n", n, 1)
    elif source_kind == "generated":
        n = 100
    seed = check_int("seed", seed, 0)
    if kind not in KINDS:
        raise TracegymError(f"kind must be one of {KINDS}, got {kind!r}")
    size = {"max_statements": check_int("max_statements", max_statements, 2),
            "max_params": check_int("max_params", max_params, 1)}
    with user_options():
        ProgramConfig(kind=kind, **size).validate()  # the generator's own limits
    shard = check_shard(shard)
    max_events = check_int("max_events", max_events, 1)
    if inputs_per_program is not None:
        inputs_per_program = check_int("inputs_per_program", inputs_per_program, 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0 <= test_fraction <= 1:
        raise TracegymError(f"test_fraction must be a number in 0..1, got {test_fraction!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise TracegymError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    workers = check_int("workers", workers, 1)
    if sandbox is None:
        sandbox = source_kind == "directory"
    elif not isinstance(sandbox, bool):
        raise TracegymError(f"sandbox must be True, False or None, got {sandbox!r}")
    out = check_output_dir(out, overwrite=overwrite)  # fail before the slow part

    lo, hi = shard_slice(n, shard) if n is not None else (0, None)
    programs, total = _programs(source_kind, folder, spec, n=n, seed=seed, program_kind=kind,
                                inputs_per_program=inputs_per_program, lo=lo, hi=hi, size=size)
    if source_kind != "generated":  # the size was known only after loading
        lo, hi = shard_slice(total, shard)
        programs = programs[lo:hi]
    keep = None if source_kind == "generated" else inputs_per_program
    jobs = [(lo + k, j, p, c) for k, p in enumerate(programs)
            for j, c in enumerate(p.inputs[:keep])]
    settings = _Settings(sandbox=sandbox, max_events=max_events, timeout=float(timeout))

    outcomes: Counter = Counter()
    splits: Counter = Counter()
    split_programs: Counter = Counter()
    with staged_directory(out, overwrite=overwrite) as tmp:
        writer = _Writer(tmp)
        try:
            split_of = {}
            for p in programs:
                split_of[p.name, p.source] = _split_of(seed, p.source, test_fraction)
                split_programs[split_of[p.name, p.source]] += 1
            with tqdm(total=len(jobs), desc="traces", unit="call", disable=not progress,
                      delay=1.0, leave=False) as bar:
                def one(job):
                    index, j, program, call = job
                    split = split_of[program.name, program.source]
                    return _record(program, index, j, call, split, settings)

                for record in _map_ordered(one, jobs, workers if sandbox else 1):
                    outcomes[record["outcome"]] += 1
                    splits[record["split"]] += 1
                    writer.add(record)
                    bar.update(1)
        finally:
            writer.close()
        summary = {
            "arguments": {
                "source": source_kind if folder is None else str(source),
                "spec": None if spec is None else str(spec), "n": n, "seed": seed,
                "kind": kind, "shard": list(shard), "max_events": max_events,
                "sandbox": sandbox, "inputs_per_program": inputs_per_program,
                "test_fraction": test_fraction, "timeout": float(timeout), **size,
            },
            "programs_in_source": total, "programs": len(programs), "records": len(jobs),
            "program_range": [lo, lo + len(programs)],
            "outcomes": dict(sorted(outcomes.items())),
            "records_per_split": {s: splits[s] for s in ("train", "test")},
            "programs_per_split": {s: split_programs[s] for s in ("train", "test")},
            "columns": list(COLUMNS),
            "isolation": _isolation() if sandbox else "in-process",
            "hash_seed": os.environ.get("PYTHONHASHSEED"),
            "versions": _versions(),
        }
        (tmp / "meta.json").write_text(json.dumps(summary, sort_keys=True, indent=2) + "\n",
                                       encoding="utf-8")
    return {**summary, "out": str(out)}


def _map_ordered(fn, jobs: list, workers: int) -> Iterator[dict]:
    """``map(fn, jobs)``, on ``workers`` threads when > 1, in order, a window at a time."""
    if workers == 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ThreadPoolExecutor

    window = workers * 8  # results held at most: memory stays bounded
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(jobs), window):
            yield from pool.map(fn, jobs[start:start + window])


def _isolation() -> str:
    from tracegym.tracers.sandbox import sandbox_capabilities

    return sandbox_capabilities()["level"]


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


# ---------------------------------------------------------------------------------------------
# command line: `tracegym data traces`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # the source is an option, not a positional FILE: it defaults to generated programs
    parser.add_argument("--source", default="generated", metavar="SOURCE",
                        help="generated, cruxeval, or a DIR of .py files (with --spec FILE)")
    parser.add_argument("--spec", default=None, metavar="FILE",
                        help="a DIR source's .json/.toml spec: file -> entry -> inputs")
    add_out_arguments(parser)
    parser.add_argument("--n", type=int, default=None, metavar="N",
                        help="programs in the whole dataset (>= 1; unset: 100 generated, or "
                             "every program of the source)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seeds the generated programs and the train/test split")
    parser.add_argument("--kind", default="mixed", choices=("straight_line", "loops", "mixed"),
                        help="kind of generated program")
    parser.add_argument("--max-statements", type=int, default=8, metavar="N",
                        help="generated programs: at most N statements in f (>= 2)")
    parser.add_argument("--max-params", type=int, default=3, metavar="N",
                        help="generated programs: at most N parameters of f (>= 1)")
    add_shard_argument(parser, "the programs")
    parser.add_argument("--max-events", type=int, default=10_000, metavar="N",
                        help="trace events recorded per call, then 'truncated' (>= 1)")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--sandbox", dest="sandbox", action="store_true", default=None,
                     help="run each call in the sandbox (the default for a DIR source)")
    run.add_argument("--in-process", dest="sandbox", action="store_false", default=None,
                     help="run calls in this process (the default for generated and cruxeval)")
    parser.add_argument("--inputs-per-program", type=int, default=None, metavar="K",
                        help="calls generated per program (unset: 3), or at most K of each "
                             "listed program's calls (unset: all)")
    parser.add_argument("--test-fraction", type=float, default=0.1, metavar="F",
                        help="share of programs in the test split, by source hash (0..1)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="wall time per call (> 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="sandboxed calls run at once (>= 1; in-process runs use one)")
    add_progress_argument(parser)


def main(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-line summary."""
    summary = build_trace_dataset(
        args.out, source=args.source, spec=args.spec, n=args.n, seed=args.seed, kind=args.kind,
        shard=args.shard, max_events=args.max_events, sandbox=args.sandbox,
        inputs_per_program=args.inputs_per_program, test_fraction=args.test_fraction,
        timeout=args.timeout, workers=args.workers, overwrite=args.overwrite,
        progress=not args.no_progress, max_statements=args.max_statements,
        max_params=args.max_params)
    i, n = summary["arguments"]["shard"]
    counts = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()) or "none"
    print(f"wrote {summary['out']}: {summary['records']} traces of {summary['programs']} "
          f"programs ({summary['isolation']}, shard {i}/{n}; {counts})")
    return 0
