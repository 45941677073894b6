"""The trace dataset's files: records streamed to ``traces.jsonl`` and ``traces.parquet``, and
``meta.json``.

Part of :mod:`tracegym.datasets.traces`. The bytes depend on nothing but the records: sorted JSON
keys, no timestamps, fixed Parquet settings (zstd level 3, ``PARQUET_ROWS`` rows per group).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tracegym.outputs import pause_point

PARQUET_ROWS = 1024  # records per row group, flushed as they come so memory stays bounded

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
    "outcome": "string",         # tracegym.tracers.outcomes.RECORD_OUTCOMES
    "error": "string",           # what went wrong (null for ok / exception)
    "return_repr": "string",     # repr of the returned value
    "exception_repr": "string",  # repr of the exception the traced function raised
    "num_frames": "int32",       # frames in the trace (0 without a trace)
    "truncated": "bool_",        # max events hit
    "cwm": "string",             # Trace.to_cwm()
    "trace_json": "string",      # Trace.to_json()
    "split": "string",           # train | test, by program
}


class TraceWriter:
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
        pause_point("generate")
        if len(self.rows) >= PARQUET_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
            self.parquet.write_table(table, row_group_size=PARQUET_ROWS)
            self.rows = []
            pause_point("parquet")

    def close(self) -> None:
        self.flush()
        self.parquet.close()  # an empty shard still gets a file with the schema
        self.jsonl.close()


def write_meta(folder: Path, summary: dict) -> None:
    """``meta.json``: the summary, keys sorted."""
    (folder / "meta.json").write_text(json.dumps(summary, sort_keys=True, indent=2) + "\n",
                                      encoding="utf-8")


def versions() -> dict:
    """What the bytes of a build depend on besides its arguments."""
    import pyarrow

    import tracegym
    from tracegym.tracers.cwm import JSON_VERSION

    return {"tracegym": tracegym.__version__, "pyarrow": pyarrow.__version__,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "trace_json": JSON_VERSION}
