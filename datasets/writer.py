"""Writer (and matching reader) of the TRM dataset layout, shared by every grid task.

One dataset directory holds::

    DIR/identifiers.json                  puzzle identifier names, "<blank>" for id 0
    DIR/{split}/dataset.json              metadata (:class:`DatasetMetadata`)
    DIR/{split}/all__inputs.npy           (N, seq_len) uint8 token ids of the inputs
    DIR/{split}/all__labels.npy           (N, seq_len) uint8 token ids of the targets
    DIR/{split}/all__puzzle_identifiers.npy  (P,) int32 identifier of each puzzle
    DIR/{split}/all__puzzle_indices.npy   (P+1,) int32 first example of each puzzle, then N
    DIR/{split}/all__group_indices.npy    (G+1,) int32 first puzzle of each group, then P
    DIR/{split}/all.parquet               the same examples, one row each, plus extra columns

This is the layout of the TRM and HRM data scripts (their loaders read it unchanged): an example
is one input/label pair, a puzzle is a run of examples sharing an identifier, and a group is one
original puzzle with its augmentations (the train loader draws one puzzle per group). Only the
set name ``"all"`` is written.

The Parquet file is a convenience copy for inspection and for other tools: columns ``inputs`` and
``labels`` (fixed-size lists of uint8), ``puzzle_index``, ``group_index``, ``puzzle_identifier``
(int32), then the caller's extra per-example columns in the order given.

Writing is atomic: everything goes into a hidden sibling directory ``.DIR.partial-<pid>`` that is
renamed to ``DIR`` at the end and removed if anything fails. Builders call
:func:`check_output_dir` before their slow part, so a location that cannot be written fails at
once, with an OSError naming ``DIR`` (never the hidden directory). The same arguments give
byte-identical files (sorted JSON keys, no timestamps anywhere).

Crash safety (:mod:`tracegym.outputs`): one process at a time writes ``DIR`` (a lock on
``.DIR.lock``; a second one is refused with :class:`~tracegym.outputs.OutputBusyError` naming the
first one's PID), held by a builder from :func:`locked_output` to the end, and by
:func:`staged_directory` at least. SIGTERM removes the staging directory before the process ends;
what a killed (SIGKILL) writer left beside ``DIR`` is removed by the next writer of ``DIR``.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
from tqdm import tqdm

from tracegym.errors import TracegymError
from tracegym.io import atomic_directory
from tracegym.outputs import OutputLock, pause_point

SET_NAME = "all"
ARRAY_NAMES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
RESERVED_COLUMNS = ("inputs", "labels", "puzzle_index", "group_index", "puzzle_identifier")
BLANK_IDENTIFIER = "<blank>"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class DatasetMetadata:
    """The fields of ``dataset.json`` read by the TRM/HRM loaders (pydantic there, so extra
    fields are ignored; ``total_puzzles`` is read by TRM's newer loader only)."""

    pad_id: int
    ignore_label_id: int
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: int
    sets: tuple[str, ...] = (SET_NAME,)

    def to_json(self) -> dict:
        out = asdict(self)
        out["sets"] = list(self.sets)
        out["mean_puzzle_examples"] = float(self.mean_puzzle_examples)
        return out


@dataclass(frozen=True, eq=False)
class SplitData:
    """The arrays of one split (see the module docstring for shapes) and extra Parquet columns.

    ``columns`` maps a column name to N per-example values: a 1-D numpy array of numbers, of
    bytes (``S`` dtype, written as UTF-8 strings) or of str, or a list.
    """

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray
    columns: Mapping[str, object] = field(default_factory=dict)

    @property
    def num_examples(self) -> int:
        return int(np.shape(self.inputs)[0])

    def metadata(self, *, vocab_size: int, num_puzzle_identifiers: int = 1, pad_id: int = 0,
                 ignore_label_id: int = 0, blank_identifier_id: int = 0,
                 mean_puzzle_examples: float | None = None) -> DatasetMetadata:
        """Metadata of this split; counts and ``seq_len`` are read off the arrays.

        ``mean_puzzle_examples`` defaults to examples per puzzle (0 for an empty split).
        """
        n = self.num_examples
        p = int(np.shape(self.puzzle_identifiers)[0])
        if mean_puzzle_examples is None:
            mean_puzzle_examples = n / p if p else 0.0
        return DatasetMetadata(
            pad_id=pad_id, ignore_label_id=ignore_label_id,
            blank_identifier_id=blank_identifier_id, vocab_size=vocab_size,
            seq_len=int(np.shape(self.inputs)[1]), num_puzzle_identifiers=num_puzzle_identifiers,
            total_groups=int(np.shape(self.group_indices)[0]) - 1,
            mean_puzzle_examples=float(mean_puzzle_examples), total_puzzles=p)


class RowSpill:
    """A growing ``(rows, width)`` uint8 array kept in memory up to ``memory`` bytes, then
    appended to ``path``, so a builder can collect more examples than fit in memory.

    :meth:`array` returns the rows: an in-memory array if nothing spilled, otherwise a read-only
    memory map of ``path`` (the caller removes the file after writing the dataset).
    """

    def __init__(self, path: str | os.PathLike, width: int, memory: int = 256 << 20):
        self.path, self.width, self.memory = Path(path), width, memory
        self.blocks: list[np.ndarray] = []
        self.pending = 0  # bytes in self.blocks
        self.spilled = 0  # rows in the file

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, self.width)
        self.blocks.append(rows)
        self.pending += rows.nbytes
        if self.pending > self.memory:
            self._flush()

    def _flush(self) -> None:
        if self.blocks:
            with open(self.path, "ab") as f:
                for block in self.blocks:
                    block.tofile(f)
                    self.spilled += len(block)
            pause_point("spill")
        self.blocks, self.pending = [], 0

    def array(self) -> np.ndarray:
        if not self.spilled:
            return (np.concatenate(self.blocks) if self.blocks
                    else np.zeros((0, self.width), np.uint8))
        self._flush()
        return np.memmap(self.path, np.uint8, "r", shape=(self.spilled, self.width))


# ---------------------------------------------------------------------------------------------
# checks


def _offsets(values, name: str, end: int, where: str) -> np.ndarray:
    """Check an offsets array (first 0, last ``end``, strictly increasing) -> int32."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise TracegymError(f"{where}.{name}: expected a non-empty 1-D integer array, got shape "
                            f"{arr.shape} dtype {arr.dtype}")
    if arr[0] != 0 or arr[-1] != end:
        raise TracegymError(f"{where}.{name}: must start at 0 and end at {end}, got "
                            f"{int(arr[0])}..{int(arr[-1])}")
    if (np.diff(arr) <= 0).any():
        raise TracegymError(f"{where}.{name}: must be strictly increasing (no empty puzzle/group)")
    return arr.astype(np.int32)


def _check_split(name: str, split: SplitData, meta: DatasetMetadata) -> dict[str, np.ndarray]:
    """Validate one split against its metadata; return the arrays as they will be saved."""
    where = f"splits[{name!r}]"
    # asanyarray: a RowSpill's memory map stays one, read by blocks (rows_of)
    inputs, labels = np.asanyarray(split.inputs), np.asanyarray(split.labels)
    for key, arr in (("inputs", inputs), ("labels", labels)):
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise TracegymError(f"{where}.{key}: expected a 2-D uint8 array, got shape {arr.shape} "
                                f"dtype {arr.dtype}")
        if arr.shape[1] != meta.seq_len:
            raise TracegymError(f"{where}.{key}: seq_len {arr.shape[1]} != metadata seq_len "
                                f"{meta.seq_len}")
        top = max((int(block.max()) for block in _blocks(arr) if block.size), default=0)
        if top >= meta.vocab_size:
            raise TracegymError(f"{where}.{key}: token id {top} >= vocab_size "
                                f"{meta.vocab_size}")
    if labels.shape != inputs.shape:
        raise TracegymError(f"{where}.labels: shape {labels.shape} != inputs shape {inputs.shape}")
    ids = np.asarray(split.puzzle_identifiers)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TracegymError(f"{where}.puzzle_identifiers: expected a 1-D integer array, got shape "
                            f"{ids.shape} dtype {ids.dtype}")
    if ids.size and not (0 <= ids.min() and ids.max() < meta.num_puzzle_identifiers):
        raise TracegymError(f"{where}.puzzle_identifiers: ids must be in "
                            f"0..{meta.num_puzzle_identifiers - 1}")
    n, p = inputs.shape[0], ids.shape[0]
    if n == 0:  # an empty split (e.g. a shard with no items): no puzzle, no group
        puzzle_indices = _empty_offsets(split.puzzle_indices, "puzzle_indices", where)
        group_indices = _empty_offsets(split.group_indices, "group_indices", where)
    else:
        puzzle_indices = _offsets(split.puzzle_indices, "puzzle_indices", n, where)
        group_indices = _offsets(split.group_indices, "group_indices", p, where)
    got = {"total_puzzles": p, "total_groups": group_indices.shape[0] - 1}
    for key, value in got.items():
        if getattr(meta, key) != value:
            raise TracegymError(f"metadata[{name!r}].{key}: {getattr(meta, key)} != {value} "
                                f"in the arrays")
    if tuple(meta.sets) != (SET_NAME,):
        raise TracegymError(f"metadata[{name!r}].sets: only [{SET_NAME!r}] is supported, "
                            f"got {list(meta.sets)}")
    for column, values in split.columns.items():
        if column in RESERVED_COLUMNS:
            raise TracegymError(f"{where}.columns: name {column!r} is reserved")
        if len(values) != n:
            raise TracegymError(f"{where}.columns[{column!r}]: {len(values)} values for {n} "
                                f"examples")
    return {"inputs": inputs, "labels": labels, "puzzle_identifiers": ids.astype(np.int32),
            "puzzle_indices": puzzle_indices, "group_indices": group_indices}


def _empty_offsets(values, name: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (1,) or arr[0] != 0:
        raise TracegymError(f"{where}.{name}: an empty split needs [0], got {arr.tolist()}")
    return arr.astype(np.int32)


def check_output_dir(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Return ``out`` as an absolute path if a dataset may be written there; raise otherwise.

    A missing or empty directory is fine; a non-empty one needs ``overwrite``
    (:class:`TracegymError`); a file is never replaced. The location must also be creatable and
    writable: the nearest existing ancestor must be a directory in which a directory can be made
    (tried, then removed), else an OSError (PermissionError, NotADirectoryError, ...) naming
    ``out``. Builders call this before their slow part, :func:`write_dataset` again at the end.
    """
    path = Path(os.path.abspath(os.fspath(out)))
    if not path.name:
        raise TracegymError(f"out: {str(out)!r} is not a directory name")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise _os_error(FileExistsError, errno.EEXIST, path,
                            "exists and is not a directory")
        if not overwrite and any(path.iterdir()):
            raise TracegymError(f"out: directory {str(path)!r} exists and is not empty; pass "
                                f"overwrite=True (--overwrite) to replace it")
    _check_creatable(path)
    return path


def _os_error(kind: type[OSError], code: int | None, path: Path, why: str) -> OSError:
    """``kind("out: 'PATH' why")`` with ``errno`` set: one line naming the user's path."""
    err = kind(f"out: {str(path)!r} {why}")
    err.errno = code
    return err


def _check_creatable(path: Path) -> None:
    """Raise an OSError naming ``path`` unless its dataset (staged in a sibling directory, then
    renamed) can be created: checked by making and removing a directory where the staging one
    will go, since permission bits alone miss read-only mounts, /proc and /sys."""
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()):  # missing parents are made later
        parent = parent.parent
    if not parent.is_dir():
        raise _os_error(NotADirectoryError, errno.ENOTDIR, path,
                        f"cannot be created: {str(parent)!r} is not a directory")
    try:
        # the pid in the name: a writer killed right here leaves a leftover the next one removes
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.probe-{os.getpid()}-", dir=parent))
    except OSError as err:
        why = err.strerror or str(err)
        raise _os_error(type(err), err.errno, path,
                        f"cannot be created: {why} (in {str(parent)!r})") from None


# ---------------------------------------------------------------------------------------------
# writing


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def _arrow_column(values):
    """One extra column as a pyarrow array: bytes become UTF-8 strings, the rest is inferred."""
    import pyarrow as pa

    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        return pa.array(values).cast(pa.string())
    return pa.array(values)


PARQUET_ROWS = 65536  # rows per row group, written one at a time so memory stays bounded


def rows_of(arr: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo..hi-1`` of ``arr``. A memory map's rows are read from its file instead: pages
    touched through a map count in this process's RSS until it ends, which for a build of
    millions of examples (ARC ``--augment 1000``: 6 GB of tokens) is the whole file."""
    # a memmap whose base is the map itself starts at its offset; a view of one does not
    if not (isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap)
            and arr.filename is not None and arr.flags.c_contiguous):
        return arr[lo:hi]
    hi = min(hi, len(arr))
    row = arr.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
    out = np.fromfile(arr.filename, arr.dtype, count=max(0, hi - lo) * row // arr.itemsize,
                      offset=arr.offset + lo * row)
    return out.reshape(max(0, hi - lo), *arr.shape[1:])


def _blocks(arr: np.ndarray, rows: int = PARQUET_ROWS) -> Iterator[np.ndarray]:
    for lo in range(0, len(arr), rows):
        yield rows_of(arr, lo, lo + rows)


class NpyRows:
    """A ``.npy`` file written a block of rows at a time, the bytes ``np.save`` writes for the
    rows joined: numpy pads the header so that the first dimension can grow, and the header is
    written again with the final shape when the file is closed. ``row_shape`` ``()``: a 1-D
    array; ``first``: rows to start with."""

    def __init__(self, path: Path, dtype, row_shape: tuple = (), first=None):
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.dtype, self.row_shape, self.rows = np.dtype(dtype), tuple(row_shape), 0
        self._header()
        self.start = self.file.tell()
        if first is not None:
            self.append(first)

    def _header(self) -> None:
        from numpy.lib import format as npy

        npy.write_array_header_1_0(self.file, {"descr": npy.dtype_to_descr(self.dtype),
                                               "fortran_order": False,
                                               "shape": (self.rows, *self.row_shape)})

    def append(self, rows: np.ndarray) -> None:
        for block in _blocks(rows):
            self.file.write(np.ascontiguousarray(block, dtype=self.dtype).data)
            self.rows += len(block)

    def close(self) -> None:
        self.file.seek(0)
        self._header()
        if self.file.tell() != self.start:  # numpy's padding covers 21 digits: never
            raise RuntimeError(f"{self.file.name}: the header changed length")
        self.file.close()


def _join(parts: list):
    """Per-example values of consecutive pieces as one column (arrays, or lists)."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [x for p in parts for x in p]


class _ParquetRows:
    """``all.parquet`` written in row groups of ``PARQUET_ROWS`` whatever the sizes of the pieces
    added: the bytes of one piece holding every row. One row per example; deterministic (no
    pandas metadata, fixed compression). Advances the tqdm ``bar`` by the rows written."""

    def __init__(self, path: Path, seq_len: int, bar):
        self.path, self.seq_len, self.bar = path, seq_len, bar
        self.pending: list[list] = []  # [{column: values}, next row, end]; tokens may be maps
        self.rows = 0
        self.writer = self.schema = None

    def add(self, columns: dict) -> None:
        """``columns``: inputs, labels, puzzle_index, group_index, puzzle_identifier, extras."""
        n = len(columns["inputs"])
        if n or not self.pending:  # an empty piece is kept only for its columns' types
            self.pending = [p for p in self.pending if p[2] > p[1]] + [[columns, 0, n]]
            self.rows += n
        while self.rows >= PARQUET_ROWS:
            self._write(PARQUET_ROWS)

    def close(self) -> None:
        if self.rows or self.writer is None:  # an empty split still gets its (empty) table
            self._write(self.rows)
        self.writer.close()

    def _take(self, count: int) -> dict:
        """The next ``count`` pending rows, all pieces' columns joined. A piece is read a group
        at a time (a memory map by blocks, :func:`rows_of`), never copied whole."""
        parts, left = [], count
        while left:
            piece = self.pending[0]  # [columns, next row, end]
            columns, lo, hi = piece
            k = min(hi - lo, left)
            parts.append({name: rows_of(v, lo, lo + k) if name in ("inputs", "labels")
                          else v[lo:lo + k] for name, v in columns.items()})
            piece[1] += k
            if piece[1] == hi:
                self.pending.pop(0)
            left -= k
        if not parts:  # an empty split: the empty piece's columns
            parts = [self.pending[0][0]]
        self.rows -= count
        return {name: _join([p[name] for p in parts]) for name in parts[0]}

    def _write(self, count: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def tokens(arr: np.ndarray):
            flat = np.ascontiguousarray(arr).reshape(-1)
            return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.uint8()), self.seq_len)

        columns = self._take(count)
        table = pa.table({
            "inputs": tokens(columns.pop("inputs")), "labels": tokens(columns.pop("labels")),
            **{name: pa.array(columns.pop(name), pa.int32())
               for name in ("puzzle_index", "group_index", "puzzle_identifier")},
            **{name: _arrow_column(values) for name, values in columns.items()},
        })
        if self.writer is None:
            self.schema = table.schema
            # no dictionary for the token lists: it halves their size but triples the writing time
            strings = [name for name, column in zip(table.column_names, table.columns)
                       if pa.types.is_string(column.type)]
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd",
                                           compression_level=3, use_dictionary=strings)
            self.writer.write_table(table, row_group_size=PARQUET_ROWS)
            self.bar.update(len(table))
            pause_point("parquet")
            return
        self.writer.write_table(table.cast(self.schema), row_group_size=PARQUET_ROWS)
        self.bar.update(len(table))


class SplitWriter:
    """Writes one split into ``folder`` a piece at a time, with bounded memory: the files
    :func:`write_dataset` writes for the pieces joined (the offsets of each piece shifted by the
    examples, puzzles and groups before it). A builder that streams its items::

        writer = SplitWriter(tmp / "train", seq_len=81, vocab_size=11)
        for piece in pieces:            # SplitData, each with its offsets from 0
            writer.add(piece)
        writer.close(writer.metadata(vocab_size=11))

    Pieces are checked as :func:`write_dataset` checks a split; ``close`` writes ``dataset.json``
    from the metadata, checked against the totals. ``bar``: a tqdm bar of the rows written.
    """

    def __init__(self, folder: Path, *, seq_len: int, vocab_size: int,
                 num_puzzle_identifiers: int = 1, bar=None):
        self.folder = Path(folder)
        self.folder.mkdir()
        self.seq_len, self.vocab_size = seq_len, vocab_size
        self.num_puzzle_identifiers = num_puzzle_identifiers
        self.examples = self.puzzles = self.groups = 0
        file = {key: self.folder / f"{SET_NAME}__{key}.npy" for key in ARRAY_NAMES}
        zero = np.zeros(1, np.int32)  # the offsets arrays start at 0
        self.npy = {"inputs": NpyRows(file["inputs"], np.uint8, (seq_len,)),
                    "labels": NpyRows(file["labels"], np.uint8, (seq_len,)),
                    "puzzle_identifiers": NpyRows(file["puzzle_identifiers"], np.int32),
                    "puzzle_indices": NpyRows(file["puzzle_indices"], np.int32, (), zero),
                    "group_indices": NpyRows(file["group_indices"], np.int32, (), zero)}
        self.parquet = _ParquetRows(self.folder / f"{SET_NAME}.parquet", seq_len,
                                    bar if bar is not None else _NoBar())

    def add(self, piece: SplitData) -> None:
        meta = piece.metadata(vocab_size=self.vocab_size,
                              num_puzzle_identifiers=self.num_puzzle_identifiers)
        if meta.seq_len != self.seq_len:
            raise TracegymError(f"splits[{self.folder.name!r}].inputs: seq_len {meta.seq_len} "
                                f"!= {self.seq_len}")
        self._add(_check_split(self.folder.name, piece, meta), piece.columns)

    def _add(self, arrays: dict[str, np.ndarray], columns: Mapping) -> None:
        """A checked piece (``_check_split``'s arrays) and its extra columns."""
        puzzle_indices, group_indices = arrays["puzzle_indices"], arrays["group_indices"]
        ids = arrays["puzzle_identifiers"]
        # example -> puzzle -> group, from the offsets arrays (numbered within the piece)
        puzzle_of = np.repeat(np.arange(len(ids), dtype=np.int32), np.diff(puzzle_indices))
        group_of = np.repeat(np.arange(len(group_indices) - 1, dtype=np.int32),
                             np.diff(group_indices))
        self.parquet.add({"inputs": arrays["inputs"], "labels": arrays["labels"],
                          "puzzle_index": puzzle_of + np.int32(self.puzzles),
                          "group_index": group_of[puzzle_of] + np.int32(self.groups),
                          "puzzle_identifier": ids[puzzle_of], **columns})
        self.npy["inputs"].append(arrays["inputs"])
        self.npy["labels"].append(arrays["labels"])
        self.npy["puzzle_identifiers"].append(ids)
        self.npy["puzzle_indices"].append(puzzle_indices[1:] + np.int32(self.examples))
        self.npy["group_indices"].append(group_indices[1:] + np.int32(self.puzzles))
        self.examples += len(arrays["inputs"])
        self.puzzles += len(ids)
        self.groups += len(group_indices) - 1

    def metadata(self, *, vocab_size: int, num_puzzle_identifiers: int = 1, pad_id: int = 0,
                 ignore_label_id: int = 0, blank_identifier_id: int = 0,
                 mean_puzzle_examples: float | None = None) -> DatasetMetadata:
        """Metadata of the pieces added so far, as :meth:`SplitData.metadata` gives it."""
        if mean_puzzle_examples is None:
            mean_puzzle_examples = self.examples / self.puzzles if self.puzzles else 0.0
        return DatasetMetadata(
            pad_id=pad_id, ignore_label_id=ignore_label_id,
            blank_identifier_id=blank_identifier_id, vocab_size=vocab_size,
            seq_len=self.seq_len, num_puzzle_identifiers=num_puzzle_identifiers,
            total_groups=self.groups, mean_puzzle_examples=float(mean_puzzle_examples),
            total_puzzles=self.puzzles)

    def close(self, metadata: DatasetMetadata) -> None:
        """Write ``dataset.json`` and finish the files; TracegymError when ``metadata``
        disagrees with what was added."""
        name = self.folder.name
        got = {"total_puzzles": self.puzzles, "total_groups": self.groups,
               "seq_len": self.seq_len, "vocab_size": self.vocab_size,
               "num_puzzle_identifiers": self.num_puzzle_identifiers}
        for key, value in got.items():
            if getattr(metadata, key) != value:
                raise TracegymError(f"metadata[{name!r}].{key}: {getattr(metadata, key)} != "
                                    f"{value} in the arrays")
        if tuple(metadata.sets) != (SET_NAME,):
            raise TracegymError(f"metadata[{name!r}].sets: only [{SET_NAME!r}] is supported, "
                                f"got {list(metadata.sets)}")
        _write_json(self.folder / "dataset.json", metadata.to_json())
        for npy in self.npy.values():
            npy.close()
        self.parquet.close()


class _NoBar:
    def update(self, n) -> None:
        pass



@contextmanager
def locked_output(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """``with locked_output(out) as out:`` build a dataset into ``out`` as its only writer.

    Checks ``out`` (:func:`check_output_dir`: a bad location fails before the slow part), takes
    its lock (:class:`~tracegym.outputs.OutputBusyError` while another process writes it; the
    leftovers of killed writers are removed), checks again (a leftover may have been an output
    put back), and yields the absolute path. Inside the block SIGTERM ends the process after the
    cleanup (:func:`~tracegym.outputs.signals_clean_up`)."""
    out = check_output_dir(out, overwrite=overwrite)
    lock = OutputLock(out)
    try:
        with lock:
            yield check_output_dir(out, overwrite=overwrite)
    except OSError as err:
        if not _names(err, lock.path):
            raise
        raise _os_error(type(err), err.errno, out,
                        f"cannot be locked: {err.strerror or err}") from None


@contextmanager
def staged_directory(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write a dataset directory atomically (:func:`tracegym.io.atomic_directory`): yields a
    hidden sibling ``.OUT.partial-<pid>`` to fill; when the block ends it replaces ``out`` (see
    :func:`check_output_dir`), and when the block raises it is removed, so ``out`` is never
    half-written. The block runs under ``out``'s lock (:func:`locked_output`, reentrant: a
    builder may hold it already). OSErrors name ``out``, never the staging directory."""
    with locked_output(out, overwrite=overwrite) as out:
        with _staged(out, overwrite=overwrite) as tmp:
            yield tmp


@contextmanager
def _staged(out: Path, *, overwrite: bool) -> Iterator[Path]:
    tmp = None
    try:
        with atomic_directory(out) as tmp:
            yield tmp
            check_output_dir(out, overwrite=overwrite)  # again: it may have changed meanwhile
            pause_point("rename")
    except OSError as err:
        if tmp is None:  # making the staging directory failed
            raise _os_error(type(err), err.errno, out,
                            f"cannot be created: {err.strerror or err}") from None
        if not _names(err, tmp):
            raise
        # e.g. a full disk: the user knows OUT, not our hidden staging directory
        raise _os_error(type(err), err.errno, out,
                        f"could not be written: {err.strerror or err}") from err


def _names(err: OSError, folder: Path) -> bool:
    """Whether ``err`` is about a file in ``folder``."""
    names = [os.fspath(f) for f in (err.filename, err.filename2)
             if isinstance(f, (str, os.PathLike))]
    return any(name == str(folder) or name.startswith(str(folder) + os.sep) for name in names)


def write_dataset(out: str | os.PathLike, splits: Mapping[str, SplitData],
                  metadata: Mapping[str, DatasetMetadata],
                  identifiers: Sequence[str] = (BLANK_IDENTIFIER,), *,
                  extra_files: Mapping[str, str] = MappingProxyType({}),
                  overwrite: bool = False, progress: bool = False) -> Path:
    """Write ``splits`` (e.g. ``{"train": ..., "test": ...}``) to ``out`` in the TRM layout.

    ``metadata`` holds one :class:`DatasetMetadata` per split, checked against the arrays;
    ``identifiers`` names the puzzle identifiers (``"<blank>"`` for id 0); ``extra_files`` maps
    file names to texts written beside them (a task's own files, such as ARC's
    ``test_puzzles.json``), in the same atomic rename. Raises TracegymError for
    inconsistent input or a non-empty ``out`` without ``overwrite``, an OSError naming ``out``
    when it cannot be written. ``progress`` shows a bar of the examples written (the Parquet
    file is the slow part of a large build). Returns the absolute path.
    """
    out = check_output_dir(out, overwrite=overwrite)
    if not splits:
        raise TracegymError("splits: need at least one split")
    if set(metadata) != set(splits):
        raise TracegymError(f"metadata: keys {sorted(metadata)} != split names {sorted(splits)}")
    for name in extra_files:
        if not isinstance(name, str) or "/" in name or name.startswith(".") \
                or name in ("identifiers.json", *splits):
            raise TracegymError(f"extra_files: bad or clashing file name {name!r}")
    identifiers = list(identifiers)
    if not identifiers or not all(isinstance(x, str) for x in identifiers):
        raise TracegymError(f"identifiers: expected a non-empty list of str, got {identifiers!r}")
    checked = {}
    for name, split in splits.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            raise TracegymError(f"splits: bad split name {name!r} (letters, digits, _ and - only)")
        meta = metadata[name]
        if meta.num_puzzle_identifiers != len(identifiers):
            raise TracegymError(f"metadata[{name!r}].num_puzzle_identifiers: "
                                f"{meta.num_puzzle_identifiers} != {len(identifiers)} identifiers")
        checked[name] = _check_split(name, split, meta)

    total = sum(arrays["inputs"].shape[0] for arrays in checked.values())
    with staged_directory(out, overwrite=overwrite) as tmp, \
            tqdm(total=total, desc="writing", unit="example", disable=not progress, delay=1.0,
                 leave=False) as bar:
        for name, arrays in checked.items():
            bar.set_description(f"writing {name}", refresh=False)  # shown after the delay
            meta = metadata[name]
            split = SplitWriter(tmp / name, seq_len=meta.seq_len, vocab_size=meta.vocab_size,
                                num_puzzle_identifiers=meta.num_puzzle_identifiers, bar=bar)
            split._add(arrays, splits[name].columns)  # checked above
            split.close(meta)
        write_identifiers(tmp, identifiers)
        for name, text in extra_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out


def write_dataset_split(folder: Path, split: SplitData, metadata: DatasetMetadata) -> None:
    """One split into ``folder`` (made here), inside a staged output (:func:`staged_directory`):
    what :func:`write_dataset` writes for it."""
    writer = SplitWriter(folder, seq_len=metadata.seq_len, vocab_size=metadata.vocab_size,
                         num_puzzle_identifiers=metadata.num_puzzle_identifiers)
    writer.add(split)
    writer.close(metadata)


def write_identifiers(folder: Path, identifiers: Sequence[str]) -> None:
    """``identifiers.json``: the puzzle identifier names, ``"<blank>"`` for id 0."""
    _write_json(Path(folder) / "identifiers.json", list(identifiers))


# ---------------------------------------------------------------------------------------------
# reading


def read_split(path: str | os.PathLike, split: str = "train", *,
               mmap: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """Read one split: ``(dataset.json as a dict, {array name: array})``.

    With ``mmap`` the arrays are memory-mapped read-only. Raises FileNotFoundError naming the
    missing directory or file and TracegymError for arrays that disagree with each other.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset: no such directory {str(root)!r}")
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if (p / "dataset.json").is_file())
        raise FileNotFoundError(f"dataset: no split {split!r} in {str(root)!r} (found: {found})")
    meta_path = folder / "dataset.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"dataset: missing file {str(meta_path)!r}")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        raise TracegymError(f"dataset: {str(meta_path)!r} is not valid JSON: {err}") from None
    arrays = {}
    for key in ARRAY_NAMES:
        file = folder / f"{SET_NAME}__{key}.npy"
        if not file.is_file():
            raise FileNotFoundError(f"dataset: missing file {str(file)!r}")
        arrays[key] = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    n = arrays["inputs"].shape[0]
    if arrays["labels"].shape != arrays["inputs"].shape:
        raise TracegymError(f"dataset: {folder}: labels shape {arrays['labels'].shape} != inputs "
                            f"shape {arrays['inputs'].shape}")
    if arrays["inputs"].shape[1] != metadata.get("seq_len"):
        raise TracegymError(f"dataset: {folder}: inputs have seq_len {arrays['inputs'].shape[1]}, "
                            f"dataset.json says {metadata.get('seq_len')}")
    if (len(arrays["puzzle_indices"]) != len(arrays["puzzle_identifiers"]) + 1
            or arrays["puzzle_indices"][-1] != n):
        raise TracegymError(f"dataset: {folder}: puzzle_indices do not match {n} examples and "
                            f"{len(arrays['puzzle_identifiers'])} puzzles")
    return metadata, arrays
