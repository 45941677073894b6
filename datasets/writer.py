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
    inputs, labels = np.asarray(split.inputs), np.asarray(split.labels)
    for key, arr in (("inputs", inputs), ("labels", labels)):
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise TracegymError(f"{where}.{key}: expected a 2-D uint8 array, got shape {arr.shape} "
                                f"dtype {arr.dtype}")
        if arr.shape[1] != meta.seq_len:
            raise TracegymError(f"{where}.{key}: seq_len {arr.shape[1]} != metadata seq_len "
                                f"{meta.seq_len}")
        if arr.size and int(arr.max()) >= meta.vocab_size:
            raise TracegymError(f"{where}.{key}: token id {int(arr.max())} >= vocab_size "
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


def _write_parquet(path: Path, arrays: dict[str, np.ndarray], columns: Mapping, bar) -> None:
    """One row per example; deterministic (no pandas metadata, fixed compression). Advances the
    tqdm ``bar`` by the examples of each row group written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    inputs, labels = arrays["inputs"], arrays["labels"]
    n, seq_len = inputs.shape
    puzzles = len(arrays["puzzle_identifiers"])
    # example -> puzzle -> group, from the offsets arrays
    puzzle_of = np.repeat(np.arange(puzzles, dtype=np.int32), np.diff(arrays["puzzle_indices"]))
    group_of = np.repeat(np.arange(len(arrays["group_indices"]) - 1, dtype=np.int32),
                         np.diff(arrays["group_indices"]))

    def tokens(arr: np.ndarray):
        flat = np.ascontiguousarray(arr).reshape(-1)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.uint8()), seq_len)

    def rows(lo: int, hi: int):
        p = puzzle_of[lo:hi]
        return pa.table({
            "inputs": tokens(inputs[lo:hi]),
            "labels": tokens(labels[lo:hi]),
            "puzzle_index": pa.array(p, pa.int32()),
            "group_index": pa.array(group_of[p], pa.int32()),
            "puzzle_identifier": pa.array(arrays["puzzle_identifiers"][p], pa.int32()),
            **{name: _arrow_column(values[lo:hi]) for name, values in columns.items()},
        })

    first = rows(0, min(n, PARQUET_ROWS))
    # no dictionary for the token lists: it halves their size but triples the writing time
    strings = [name for name, column in zip(first.column_names, first.columns)
               if pa.types.is_string(column.type)]
    with pq.ParquetWriter(path, first.schema, compression="zstd", compression_level=3,
                          use_dictionary=strings) as writer:
        writer.write_table(first, row_group_size=PARQUET_ROWS)
        bar.update(len(first))
        pause_point("parquet")
        for lo in range(PARQUET_ROWS, n, PARQUET_ROWS):
            hi = min(n, lo + PARQUET_ROWS)
            writer.write_table(rows(lo, hi).cast(first.schema), row_group_size=PARQUET_ROWS)
            bar.update(hi - lo)


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
            folder = tmp / name
            folder.mkdir()
            _write_json(folder / "dataset.json", metadata[name].to_json())
            for key in ARRAY_NAMES:
                np.save(folder / f"{SET_NAME}__{key}.npy", arrays[key], allow_pickle=False)
            _write_parquet(folder / f"{SET_NAME}.parquet", arrays, splits[name].columns, bar)
        _write_json(tmp / "identifiers.json", identifiers)
        for name, text in extra_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out


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
