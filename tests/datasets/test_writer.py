import errno
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracegym.datasets import writer
from tracegym.datasets.writer import (
    RowSpill,
    SplitData,
    check_output_dir,
    locked_output,
    read_split,
    staged_directory,
    write_dataset,
)
from tracegym.errors import TracegymError
from tracegym.outputs import OutputBusyError


def test_row_spill__keeps_small_arrays_in_memory(tmp_path):
    spill = RowSpill(tmp_path / "x.bin", 4)
    spill.append(np.ones((2, 4), np.uint8))
    out = spill.array()
    assert not isinstance(out, np.memmap) and out.shape == (2, 4)
    assert not (tmp_path / "x.bin").exists()


def test_row_spill__spills_past_its_memory_and_returns_every_row_in_order(tmp_path):
    spill = RowSpill(tmp_path / "x.bin", 3, memory=10)
    blocks = [np.full((k + 1, 3), k, np.uint8) for k in range(6)]
    for block in blocks:
        spill.append(block)
    out = spill.array()
    assert isinstance(out, np.memmap)
    assert np.array_equal(out, np.concatenate(blocks))


def test_write_dataset__memory_mapped_split_round_trips_through_many_row_groups(tmp_path,
                                                                            monkeypatch):
    from tracegym.datasets import writer

    monkeypatch.setattr(writer, "PARQUET_ROWS", 7)  # several row groups from a small split
    spill = RowSpill(tmp_path / "in.bin", 5, memory=0)
    labels = RowSpill(tmp_path / "lab.bin", 5, memory=0)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 4, (30, 5)).astype(np.uint8)
    for lo in range(0, 30, 4):
        spill.append(inputs[lo:lo + 4])
        labels.append(inputs[lo:lo + 4][:, ::-1])
    split = SplitData(spill.array(), labels.array(), np.arange(1, 11, dtype=np.int32),
                      np.arange(0, 31, 3, dtype=np.int32), np.array([0, 4, 10], np.int32),
                      columns={"name": [f"p{i // 3}" for i in range(30)]})
    meta = split.metadata(vocab_size=4, num_puzzle_identifiers=11)
    write_dataset(tmp_path / "d", {"train": split}, {"train": meta},
                  ["<blank>", *(f"p{i}" for i in range(10))])
    _, arrays = read_split(tmp_path / "d", "train", mmap=False)
    assert np.array_equal(arrays["inputs"], inputs)
    table = pq.read_table(tmp_path / "d" / "train" / "all.parquet")
    assert pq.ParquetFile(tmp_path / "d" / "train" / "all.parquet").num_row_groups == 5
    assert table.num_rows == 30 and table["name"].to_pylist()[-1] == "p9"
    assert table["group_index"].to_pylist() == [0] * 12 + [1] * 18
    assert np.array_equal(np.array(table["labels"].to_pylist()), inputs[:, ::-1])


def test_write_dataset__a_memory_mapped_split_writes_the_bytes_of_the_same_split_in_memory(
        tmp_path, monkeypatch):
    # the maps are read back by blocks from their files (rows_of), never through the map
    monkeypatch.setattr(writer, "PARQUET_ROWS", 4)
    rng = np.random.default_rng(1)
    inputs = rng.integers(0, 6, (13, 5)).astype(np.uint8)
    spilled = {}
    for name, rows in (("inputs", inputs), ("labels", inputs[:, ::-1])):
        spill = RowSpill(tmp_path / f"{name}.bin", 5, memory=0)
        spill.append(rows)
        spilled[name] = spill.array()
    assert all(isinstance(a, np.memmap) for a in spilled.values())
    ids, offsets = np.zeros(13, np.int32), np.arange(14, dtype=np.int32)
    groups = np.array([0, 6, 13], np.int32)
    written = {}
    for how, (x, y) in (("mapped", (spilled["inputs"], spilled["labels"])),
                        ("memory", (inputs, np.ascontiguousarray(inputs[:, ::-1])))):
        split = SplitData(x, y, ids, offsets, groups, columns={"k": np.arange(13)})
        write_dataset(tmp_path / how, {"train": split},
                      {"train": split.metadata(vocab_size=6)})
        written[how] = {p.relative_to(tmp_path / how): p.read_bytes()
                        for p in sorted((tmp_path / how).rglob("*")) if p.is_file()}
    assert written["mapped"] == written["memory"]
    assert writer.rows_of(spilled["inputs"], 11, 20).tolist() == inputs[11:].tolist()
    view = spilled["inputs"][3:]  # a view of a map: its offset attribute is the map's
    assert writer.rows_of(view, 1, 3).tolist() == inputs[4:6].tolist()


def test_write_dataset__a_memory_mapped_split_has_its_tokens_checked(tmp_path):
    spill = RowSpill(tmp_path / "x.bin", 3, memory=0)
    spill.append(np.array([[0, 1, 2], [3, 9, 1]], np.uint8))
    rows = spill.array()
    split = SplitData(rows, rows, np.zeros(2, np.int32), np.arange(3, dtype=np.int32),
                      np.array([0, 2], np.int32))
    with pytest.raises(TracegymError, match=re.escape("splits['train'].inputs: token id 9 >= "
                                                      "vocab_size 4")):
        write_dataset(tmp_path / "d", {"train": split}, {"train": split.metadata(vocab_size=4)})


def _piece(rng, n: int, start: int) -> SplitData:
    """``n`` examples of two per puzzle (one group per puzzle), with extra columns of each kind."""
    inputs = rng.integers(0, 5, (2 * n, 3)).astype(np.uint8)
    ids = np.arange(start, start + n, dtype=np.int32) % 3
    return SplitData(inputs, inputs[:, ::-1].copy(), ids,
                     np.arange(0, 2 * n + 1, 2, dtype=np.int32), np.arange(n + 1, dtype=np.int32),
                     columns={"k": np.arange(2 * n) + 10 * start,
                              "text": np.array([b"ab%d" % i for i in range(2 * n)]),
                              "name": [f"x{start}-{i}" for i in range(2 * n)]})


def test_split_writer__pieces_write_the_bytes_of_the_whole_split(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "PARQUET_ROWS", 4)  # row groups cut across the pieces
    rng = np.random.default_rng(2)
    sizes = [3, 0, 5, 1, 2]
    pieces = [_piece(rng, n, sum(sizes[:k])) for k, n in enumerate(sizes)]
    whole = SplitData(
        np.concatenate([p.inputs for p in pieces]), np.concatenate([p.labels for p in pieces]),
        np.concatenate([p.puzzle_identifiers for p in pieces]),
        np.arange(0, 2 * sum(sizes) + 1, 2, dtype=np.int32),
        np.arange(sum(sizes) + 1, dtype=np.int32),
        columns={"k": np.concatenate([p.columns["k"] for p in pieces]),
                 "text": np.concatenate([p.columns["text"] for p in pieces]),
                 "name": [x for p in pieces for x in p.columns["name"]]})
    meta = whole.metadata(vocab_size=5, num_puzzle_identifiers=3)
    write_dataset(tmp_path / "whole", {"train": whole}, {"train": meta}, ["<blank>", "a", "b"])
    with staged_directory(tmp_path / "pieces") as tmp:
        split = writer.SplitWriter(tmp / "train", seq_len=3, vocab_size=5,
                                   num_puzzle_identifiers=3)
        for piece in pieces:
            split.add(piece)
        assert split.metadata(vocab_size=5, num_puzzle_identifiers=3) == meta
        split.close(meta)
        writer.write_identifiers(tmp, ["<blank>", "a", "b"])
    files = {how: {p.relative_to(tmp_path / how): p.read_bytes()
                   for p in sorted((tmp_path / how).rglob("*")) if p.is_file()}
             for how in ("whole", "pieces")}
    assert files["pieces"] == files["whole"]
    assert pq.ParquetFile(tmp_path / "pieces" / "train" / "all.parquet").num_row_groups == 6


def test_split_writer__metadata_that_disagrees_with_the_pieces_is_refused(tmp_path):
    split = writer.SplitWriter(tmp_path / "train", seq_len=3, vocab_size=5,
                               num_puzzle_identifiers=3)
    split.add(_piece(np.random.default_rng(0), 2, 0))
    wrong = split.metadata(vocab_size=5, num_puzzle_identifiers=3)
    with pytest.raises(TracegymError, match=re.escape("metadata['train'].total_puzzles: 5 != 2")):
        split.close(type(wrong)(**{**wrong.__dict__, "total_puzzles": 5}))


# ---------------------------------------------------------------------------------------------
# the output location: checked before anything is generated, errors name the user's path


def _tiny_split():
    split = SplitData(np.ones((3, 2), np.uint8), np.ones((3, 2), np.uint8),
                      np.zeros(3, np.int32), np.arange(4, dtype=np.int32),
                      np.arange(4, dtype=np.int32))
    return {"train": split}, {"train": split.metadata(vocab_size=2)}


def test_check_output_dir__a_file_as_parent_is_an_os_error_naming_out(tmp_path):
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "sub", tmp_path / "afile" / "sub" / "deeper"):
        with pytest.raises(NotADirectoryError, match=re.escape(f"out: {str(out)!r} cannot be "
                                                               f"created: ")) as info:
            check_output_dir(out)
        assert info.value.errno == errno.ENOTDIR and "afile' is not a directory" in str(info.value)
    with pytest.raises(FileExistsError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "afile", overwrite=True)


def test_check_output_dir__missing_parents_are_fine_and_nothing_is_left(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    assert check_output_dir(out) == out
    assert list(tmp_path.iterdir()) == []  # the probe directory was removed, no parent made


def test_check_output_dir__an_unwritable_parent_names_out_not_the_probe(tmp_path, monkeypatch):
    # root ignores permission bits, so refuse the probe the way a read-only mount would
    def refuse(prefix, dir):
        raise PermissionError(errno.EROFS, "Read-only file system", f"{dir}/{prefix}xyz")

    monkeypatch.setattr(writer.tempfile, "mkdtemp", refuse)
    out = tmp_path / "d"
    with pytest.raises(PermissionError) as info:
        write_dataset(out, *_tiny_split())
    message = str(info.value)
    assert message == f"out: {str(out)!r} cannot be created: Read-only file system (in " \
                      f"{str(tmp_path)!r})"
    assert info.value.errno == errno.EROFS and "probe" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_check_output_dir__proc_is_refused_up_front():
    with pytest.raises(OSError, match=re.escape("out: '/proc/tracegym-x' cannot be created")):
        check_output_dir("/proc/tracegym-x")


def test_staged_directory__an_os_error_inside_names_out_not_the_staging_dir(tmp_path):
    out = tmp_path / "d"
    with pytest.raises(OSError) as info, staged_directory(out) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "all.parquet"))
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"out: {str(out)!r} could not be written: No space left on device"
    assert list(tmp_path.iterdir()) == []  # the staging directory is gone


def test_staged_directory__other_errors_pass_unchanged(tmp_path):
    elsewhere = OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "input.txt"))
    with pytest.raises(OSError) as info, staged_directory(tmp_path / "d"):
        raise elsewhere
    assert info.value is elsewhere
    assert list(tmp_path.iterdir()) == []


def test_write_dataset__progress_counts_every_example_written(tmp_path, monkeypatch):
    bars = []

    class Bar:
        def __init__(self, total, disable, **kwargs):
            self.total, self.disable, self.n = total, disable, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def set_description(self, text, refresh=True):
            self.text = text

        def update(self, n):
            self.n += n

    monkeypatch.setattr(writer, "tqdm", Bar)
    monkeypatch.setattr(writer, "PARQUET_ROWS", 2)  # two row groups for three examples
    write_dataset(tmp_path / "d", *_tiny_split(), progress=True)
    assert [(b.total, b.n, b.disable) for b in bars] == [(3, 3, False)]


def test_write_dataset__extra_files_land_in_the_same_rename(tmp_path, monkeypatch):
    write_dataset(tmp_path / "d", *_tiny_split(), extra_files={"notes.json": "{}\n"})
    assert (tmp_path / "d" / "notes.json").read_text() == "{}\n"
    for bad in ("../x", ".hidden", "identifiers.json", "train"):
        with pytest.raises(TracegymError, match="extra_files: bad or clashing file name"):
            write_dataset(tmp_path / "e", *_tiny_split(), extra_files={bad: ""})
    # a crash after the arrays leaves no directory without the extra file: nothing at all
    monkeypatch.setattr(writer, "_write_json", lambda *a: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        write_dataset(tmp_path / "f", *_tiny_split(), extra_files={"notes.json": "{}"})
    assert not (tmp_path / "f").exists()


# ---------------------------------------------------------------------------------------------
# one writer per output; leftovers of killed writers go (tests/datasets/test_writers_killed.py
# kills real builds)


def test_staged_directory__holds_the_output_lock_and_leaves_no_lock_file(tmp_path):
    refused = []
    with staged_directory(tmp_path / "d") as tmp:
        (tmp / "x").write_text("1")
        assert (tmp_path / ".d.lock").read_text() == f"{os.getpid()}\n"
        thread = threading.Thread(target=lambda: refused.append(
            pytest.raises(OutputBusyError, write_dataset, tmp_path / "d", *_tiny_split(),
                          overwrite=True)))
        thread.start()
        thread.join()
    assert len(refused) == 1 and "is being written by another thread" in str(refused[0].value)
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == ["x"]


def test_write_dataset__removes_what_a_dead_writer_left_and_says_so(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: no process has its pid now
    for name in (f".d.partial-{dead.pid}", f".d.spill-{dead.pid}"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "all.parquet").write_bytes(b"PAR1")
    (tmp_path / ".d.lock").write_text(f"{dead.pid}\n")  # a killed writer's lock file stays
    write_dataset(tmp_path / "d", *_tiny_split())
    assert os.listdir(tmp_path) == ["d"]
    assert capsys.readouterr().err == (
        f"tracegym: leftovers of killed writers of {str(tmp_path / 'd')!r}: removed "
        f".d.partial-{dead.pid}, .d.spill-{dead.pid}\n")


def test_locked_output__an_output_a_killed_replace_moved_aside_is_back_before_the_check(
        tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp_path / f".d.old-{dead.pid}"  # killed between moving OUT aside and renaming
    old.mkdir()
    (old / "identifiers.json").write_text("[]\n")
    with pytest.raises(TracegymError, match="exists and is not empty"), \
            locked_output(tmp_path / "d"):
        pass
    assert os.listdir(tmp_path) == ["d"]


def test_output_lock__a_run_lock_held_at_exit_is_released_once_and_quietly(tmp_path):
    # a Trainer whose __init__ failed after taking its run directory's lock: the exit releases
    # the lock (atexit), then the owner's finalizer releases it again; that must not raise
    # (a weakref.finalize made before tracegym is imported, as by a TemporaryDirectory, runs
    # the finalizers after tracegym's own exit hook)
    code = ("import sys, tempfile; scratch = tempfile.TemporaryDirectory()\n"
            "from tracegym.training.rundir import lock_run_dir\n"
            "class Owner: pass\n"
            f"owner = Owner(); lock_run_dir({str(tmp_path)!r}, owner=owner)\n"
            "sys.modules['__main__'].keep = owner\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert not (tmp_path / ".lock").exists()
