import os

import pytest

from tracegym.io import atomic_directory, atomic_path, atomic_write_bytes, atomic_write_text


def test_atomic_write__replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    atomic_write_text(path, "new\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert path.read_text() == "new\n" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_atomic_path__a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name == f".model.bin.tmp-{os.getpid()}"
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.bin"]


def test_atomic_directory__swaps_in_a_new_tree_or_nothing(tmp_path):
    out = tmp_path / "deep" / "out"
    with atomic_directory(out) as tmp:
        assert tmp.name == f".out.partial-{os.getpid()}"
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1"
    with atomic_directory(out) as tmp:  # a non-empty directory is replaced whole
        (tmp / "y").write_text("2")
    assert os.listdir(out) == ["y"]
    with pytest.raises(KeyboardInterrupt), atomic_directory(out) as tmp:
        (tmp / "z").write_text("3")
        raise KeyboardInterrupt
    assert os.listdir(out) == ["y"] and os.listdir(out.parent) == ["out"]


def test_atomic_directory__clears_a_leftover_of_a_killed_run_with_our_pid(tmp_path):
    leftover = tmp_path / f".out.partial-{os.getpid()}"
    leftover.mkdir()
    (leftover / "stale").write_text("")
    with atomic_directory(tmp_path / "out") as tmp:
        assert os.listdir(tmp) == []
    assert os.listdir(tmp_path) == ["out"]
