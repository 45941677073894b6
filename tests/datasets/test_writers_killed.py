"""Every dataset writer under SIGKILL and SIGTERM: nothing of a killed build outlives the next
build of the same output, and that build's files equal those of a build never interrupted.

Each writer runs as the real CLI in a subprocess that stops at a named point
(``TRACEGYM_PAUSE_AT``, :func:`tracegym.outputs.pause_point`), is killed there, and is rebuilt
in this process. Also: a second writer of a busy output is refused, naming the first one's PID,
and the leftovers of a process that still runs are left alone.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracegym.cli import main as cli_main
from tracegym.datasets.traces import build_trace_dataset
from tracegym.outputs import (
    PAUSE_AT_ENV,
    PAUSE_FILE_ENV,
    OutputBusyError,
    OutputLock,
    pid_running,
    remove_leftovers,
)

# the CLI, with ARC's rows spilled to disk from the first one (its "spill" point in a tiny build)
DRIVER = ("import sys; import tracegym.datasets.arc as arc; arc.SPILL_MEMORY = 0; "
          "from tracegym.cli import main; sys.exit(main(sys.argv[1:]))")
# task -> (tiny options, the points where a build of it stops)
WRITERS = {
    "sudoku": (["--size", "4", "--train", "4", "--test", "2", "--no-progress"],
               ("generate", "parquet", "rename")),
    "maze": (["--kind", "backtracker", "--size", "7", "--train", "4", "--test", "2",
              "--no-progress"], ("generate", "parquet", "rename")),
    "arc": (["--set", "procedural", "--train", "3", "--test", "2", "--no-progress"],
            ("generate", "spill", "parquet", "rename")),
    "traces": (["--n", "4", "--no-progress"], ("generate", "parquet", "rename")),
    "trace_lm": (["--seq-len", "256"], ("generate", "rename")),
}
# the first point of each builder at which it holds the output's lock (maze's builder takes it
# for its write only)
BUSY_POINT = {"sudoku": "generate", "maze": "generate", "arc": "generate", "traces": "generate",
              "trace_lm": "generate"}
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}
WAIT_S = 120  # for a subprocess to reach its point: generous, a loaded CI machine is slow


@pytest.fixture(scope="module")
def traces_dir(tmp_path_factory) -> Path:
    """trace_lm's input: a tiny traces build."""
    out = tmp_path_factory.mktemp("input") / "traces"
    build_trace_dataset(out, n=4, progress=False)
    return out


def _argv(task: str, out: Path, traces_dir: Path) -> list[str]:
    options = WRITERS[task][0]
    if task == "trace_lm":
        options = ["--traces", str(traces_dir), *options]
    return ["data", task, "--out", str(out), *options]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, traces_dir):
    """task -> the files of an uninterrupted build (built here once per task)."""
    built = {}

    def get(task: str) -> dict[str, bytes]:
        if task not in built:
            out = tmp_path_factory.mktemp(f"reference-{task}") / "out"
            assert cli_main(_argv(task, out, traces_dir)) == 0
            built[task] = _tree(out)
        return built[task]
    return get


def _start_paused(argv: list[str], point: str, flag: Path) -> subprocess.Popen:
    """Start the CLI in a subprocess and return once it is paused at ``point``."""
    env = {**os.environ, PAUSE_AT_ENV: point, PAUSE_FILE_ENV: str(flag)}
    # cwd outside the clone: `python -c` puts the cwd first on sys.path, and the source tree's
    # tracegym/ folder is not the installed package (CI's other Pythons install non-editable)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], env=env, cwd=flag.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S
    while not flag.exists():  # waits for the writer to say where it is, not for a guessed time
        if proc.poll() is not None:
            pytest.fail(f"the writer ended (status {proc.returncode}) before reaching "
                        f"{point!r}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the writer did not reach {point!r} in {WAIT_S} s")
        time.sleep(0.01)
    assert flag.read_text() == point
    return proc


def _kill(proc: subprocess.Popen, sig: int) -> str:
    """Send ``sig``, wait for the end; the process must end as killed by it. Its stderr."""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == -sig, (proc.returncode, err.decode())
    return err.decode()


def _cases():
    for task, (_, points) in WRITERS.items():
        for point in points:
            for name in SIGNALS:
                yield pytest.param(task, point, name, id=f"{task}-{point}-{name}")


@pytest.mark.slow  # a subprocess each (about 1 s to start), 30 in all
@pytest.mark.parametrize("task, point, signame", list(_cases()))
def test_writer__killed_at_a_point_leaves_nothing_after_the_next_build(
        task, point, signame, tmp_path, traces_dir, reference, capsys):
    sig = SIGNALS[signame]
    parent = tmp_path / "data"
    parent.mkdir()
    out = parent / "out"
    proc = _start_paused(_argv(task, out, traces_dir), point, tmp_path / "paused")
    err = _kill(proc, sig)
    left = sorted(os.listdir(parent))
    points = WRITERS[task][1]
    locked = points.index(point) >= points.index(BUSY_POINT[task])
    if sig == signal.SIGTERM:  # cleaned up before it ended, and said so
        assert left == [], left
        assert ("SIGTERM: stopping; removing the unfinished output" in err) == locked, err
    else:
        assert (".out.lock" in left) == locked and "out" not in left, left
        if point != "generate" or task in ("arc", "traces"):  # past the first staged file
            assert any(re.fullmatch(rf"\.out\.(partial|spill)-{proc.pid}", n) for n in left), left

    capsys.readouterr()
    assert cli_main(_argv(task, out, traces_dir)) == 0
    err = capsys.readouterr().err
    assert sorted(os.listdir(parent)) == ["out"]
    assert _tree(out) == reference(task)
    staged = [n for n in left if n != ".out.lock"]
    if staged:  # one line naming each leftover it removed
        assert err.count("\n") == 1 and f"removed {', '.join(staged)}" in err, err
    else:
        assert err == ""


# ---------------------------------------------------------------------------------------------
# two writers of one output


@pytest.mark.slow
@pytest.mark.parametrize("task", list(WRITERS))
def test_writer__a_second_writer_of_a_busy_output_is_refused_naming_the_first(
        task, tmp_path, traces_dir, capsys):
    out = tmp_path / "data" / "out"
    proc = _start_paused(_argv(task, out, traces_dir), BUSY_POINT[task], tmp_path / "paused")
    try:
        for extra in ([], ["--overwrite"]):
            capsys.readouterr()
            assert cli_main([*_argv(task, out, traces_dir), *extra]) == 2
            err = capsys.readouterr().err
            assert err == (f"tracegym: error: out: {str(out)!r} is being written by another "
                           f"process (pid {proc.pid}); wait for it to end, or write "
                           "elsewhere\n"), err
        # the refused writer touched nothing of the first one's
        assert any(n == f".out.partial-{proc.pid}" or n == f".out.spill-{proc.pid}"
                   for n in os.listdir(out.parent)) or BUSY_POINT[task] == "generate"
    finally:
        _kill(proc, signal.SIGTERM)
    assert not out.parent.exists()  # the first writer made it, and took it away unused


def test_output_lock__another_thread_is_refused_and_the_owner_reenters(tmp_path):
    out = tmp_path / "out"
    errors = []
    with OutputLock(out), OutputLock(out):  # reentrant: a builder, then its writer
        assert (tmp_path / ".out.lock").read_text() == f"{os.getpid()}\n"

        def other():
            try:
                OutputLock(out).acquire()
            except OutputBusyError as err:
                errors.append(str(err))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors == [f"out: {str(out)!r} is being written by another thread of this process"]
    assert os.listdir(tmp_path) == []  # the lock file goes with the lock


def test_output_lock__parents_it_made_go_when_nothing_was_written(tmp_path):
    with OutputLock(tmp_path / "a" / "b" / "out"):
        assert (tmp_path / "a" / "b" / ".out.lock").is_file()
    assert os.listdir(tmp_path) == []
    with OutputLock(tmp_path / "a" / "b" / "out"):
        (tmp_path / "a" / "b" / "out").mkdir()
    assert os.listdir(tmp_path / "a" / "b") == ["out"]


# ---------------------------------------------------------------------------------------------
# leftovers: of dead processes only


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no process now
    return proc.pid


def test_pid_running__a_reaped_or_zombie_child_is_not_running():
    dead = _dead_pid()
    assert not pid_running(dead) and pid_running(os.getpid()) and not pid_running(0)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_running(proc.pid)
        proc.kill()
        if os.path.isdir("/proc"):  # a zombie until reaped: no code of it runs
            deadline = time.monotonic() + WAIT_S
            while pid_running(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not pid_running(proc.pid)
    finally:
        proc.wait()


def test_remove_leftovers__removes_the_dead_keeps_the_living_and_says_so(tmp_path, capsys):
    dead, alive = _dead_pid(), os.getppid()
    names = [f".out.partial-{dead}", f".out.spill-{dead}", f".out.probe-{dead}-x1_y",
             f".out.partial-{alive}", f".out.partial-{os.getpid()}"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "half.parquet").write_bytes(b"PAR1")
    unrelated = [f".other.partial-{dead}", f".out.partial-{dead}.bak", ".out.lock", "out2"]
    for name in unrelated:
        (tmp_path / name).write_text("")
    removed = remove_leftovers(tmp_path / "out")
    assert sorted(removed) == sorted(set(names) - {f".out.partial-{alive}"})
    assert sorted(os.listdir(tmp_path)) == sorted([f".out.partial-{alive}", *unrelated])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"left .out.partial-{alive} (pid {alive} is running)" in err


def test_remove_leftovers__puts_back_an_output_moved_aside_by_a_killed_replace(tmp_path):
    dead = _dead_pid()
    old = tmp_path / f".out.old-{dead}"
    old.mkdir()
    (old / "identifiers.json").write_text("[]")
    remove_leftovers(tmp_path / "out")  # killed between its two renames: OUT missing
    assert os.listdir(tmp_path) == ["out"] and (tmp_path / "out" / "identifiers.json").is_file()
    old.mkdir()  # killed while deleting the old tree, after the new one was renamed in
    remove_leftovers(tmp_path / "out")
    assert os.listdir(tmp_path) == ["out"]


def test_build__leaves_a_live_process_partial_directory_alone(tmp_path, capsys):
    alive = os.getppid()
    theirs = tmp_path / f".out.partial-{alive}"
    theirs.mkdir()
    argv = ["data", "sudoku", "--out", str(tmp_path / "out"), *WRITERS["sudoku"][0]]
    assert cli_main(argv) == 0
    assert sorted(os.listdir(tmp_path)) == [theirs.name, "out"]
    assert f"left {theirs.name} (pid {alive} is running)" in capsys.readouterr().err
