"""Build engines (``datasets/engines.py``): every builder writes the same bytes in this process,
on local worker processes and as Ray tasks (a local Ray of 2 CPUs; skipped without ray); a chunk
that fails names its items, a Ray worker that dies is retried, bad input is not."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tracegym.cli import main as cli_main
from tracegym.datasets import engines
from tracegym.datasets.arc import build_arc_dataset
from tracegym.datasets.engines import (
    Chunk,
    ChunkFailed,
    LocalEngine,
    check_engine,
    chunk_size,
    chunks,
    map_items,
    open_engine,
)
from tracegym.datasets.maze import build_maze_dataset
from tracegym.datasets.sudoku import build_sudoku_dataset
from tracegym.datasets.trace_lm import build_trace_lm_dataset
from tracegym.datasets.traces import build_trace_dataset
from tracegym.errors import TracegymError


@pytest.fixture(autouse=True)
def _outside_the_clone(tmp_path, monkeypatch):
    """Worker processes (forkserver, Ray) start Pythons whose sys.path begins with the cwd: in a
    clone with tracegym installed non-editable (CI's other Pythons) the source tree's tracegym/
    folder would shadow the installed package."""
    monkeypatch.chdir(tmp_path)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---------------------------------------------------------------------------------------------
# tasks of the unit tests (module level: worker processes import them)


def _items(chunk: Chunk) -> list[int]:
    return [i * i for i in range(chunk.lo, chunk.hi)]


def _pid(chunk: Chunk) -> int:
    return os.getpid()


class _DieAt:
    """Kills its worker at chunk ``lo`` on the first ``times`` tries (counted in files)."""

    def __init__(self, lo: int, folder: Path, times: int):
        self.lo, self.folder, self.times = lo, folder, times

    def __call__(self, chunk: Chunk) -> list[int]:
        if chunk.lo == self.lo:
            tries = len(list(self.folder.iterdir()))
            (self.folder / str(tries)).touch()
            if tries < self.times:
                os._exit(3)
        return _items(chunk)


class _Raise:
    """Raises ``error`` at chunk ``lo``, counting tries in ``folder``."""

    def __init__(self, lo: int, error: Exception, folder: Path):
        self.lo, self.error, self.folder = lo, error, folder

    def __call__(self, chunk: Chunk) -> list[int]:
        if chunk.lo == self.lo:
            (self.folder / str(len(list(self.folder.iterdir())))).touch()
            raise self.error
        return _items(chunk)


def _flat(results) -> list[int]:
    return [x for part in results for x in part]


# ---------------------------------------------------------------------------------------------
# the engine alone


def test_chunks__cover_the_range_in_order():
    got = list(chunks(3, 14, 4))
    assert [(c.lo, c.hi) for c in got] == [(3, 7), (7, 11), (11, 14)]
    assert str(got[-1]) == "items 11..13" and len(got[-1]) == 3


@pytest.mark.parametrize("count, workers, expected", [(0, 2, 256), (100, 2, 256),
                                                      (10_000, 2, 1280), (10**7, 2, 4096)])
def test_chunk_size__whole_steps_about_four_per_worker_bounded(count, workers, expected):
    assert chunk_size(count, workers, step=256, most=4096) == expected


@pytest.mark.parametrize("args, message", [
    (("spark",), "engine must be one of ['local', 'ray'], got 'spark'"),
    (("local", 0), "workers"),
    (("local", None, "ray://head:10001"), "ray_address: only the ray engine takes one, got "
                                          "'ray://head:10001'"),
])
def test_check_engine__bad_options_name_the_field(args, message):
    with pytest.raises(TracegymError, match=re.escape(message)):
        check_engine(*args)


def test_local_engine__processes_give_the_results_in_order():
    with LocalEngine(2) as engine:
        assert _flat(engine.map(_items, chunks(0, 50, 3))) == [i * i for i in range(50)]
        pids = set(engine.map(_pid, chunks(0, 8, 1)))
    assert os.getpid() not in pids


def test_local_engine__one_chunk_runs_in_this_process():
    with LocalEngine(2) as engine:
        assert list(engine.map(_pid, chunks(0, 5, 10))) == [os.getpid()]


def test_local_engine__a_dead_worker_names_the_chunks_items(tmp_path):
    with LocalEngine(2) as engine, pytest.raises(ChunkFailed, match=r"items 6\.\.8 failed"):
        _flat(engine.map(_DieAt(6, tmp_path, times=1), chunks(0, 30, 3)))


def test_local_engine__a_tasks_error_is_raised_as_it_was(tmp_path):
    task = _Raise(6, TracegymError("train item 7: bad"), tmp_path)
    with LocalEngine(2) as engine, pytest.raises(TracegymError, match="train item 7: bad"):
        _flat(engine.map(task, chunks(0, 30, 3)))


def test_local_engine__closing_stops_the_workers_of_a_map_left_unread():
    engine = LocalEngine(2)
    results = engine.map(_items, chunks(0, 50, 3))
    next(results)  # a consumer that raised after its first result
    (pool,) = engine.pools
    engine.close()
    assert not engine.pools
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(_items, Chunk(0, 1))


def test_map_items__items_in_order_on_threads():
    with open_engine("local", 2) as engine:
        got = list(map_items(engine, abs, range(-40, 0), per_chunk=7, threads=3))
    assert got == [abs(i) for i in range(-40, 0)]


def test_open_engine__leaves_an_engine_given_open():
    engine = LocalEngine(1)
    with open_engine(engine) as same:
        assert same is engine


# ---------------------------------------------------------------------------------------------
# Ray


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for the module; builds find it started and leave it running."""
    ray = pytest.importorskip("ray")
    # the workers import this module's tasks (pytest put its folder on our path, not theirs);
    # trace reprs order sets of str by the hash seed, so the workers get the reference's
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                          os.environ.get("PYTHONPATH", "")]),
           "PYTHONHASHSEED": "0"}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def test_ray__results_in_order(ray_cluster):
    with engines.RayEngine() as engine:
        assert engine.workers == 2
        assert _flat(engine.map(_items, chunks(0, 50, 3))) == [i * i for i in range(50)]
    assert ray_cluster.is_initialized()  # a Ray the caller started stays up


def test_ray__a_worker_that_dies_is_retried(ray_cluster, tmp_path):
    with engines.RayEngine(max_retries=2) as engine:
        got = _flat(engine.map(_DieAt(6, tmp_path, times=2), chunks(0, 30, 3)))
    assert got == [i * i for i in range(30)]
    assert len(list(tmp_path.iterdir())) == 3  # two deaths, then the try that worked


def test_ray__a_chunk_that_always_fails_names_its_items(ray_cluster, tmp_path):
    task = _Raise(6, RuntimeError("disk on fire"), tmp_path)
    with engines.RayEngine(max_retries=1) as engine, pytest.raises(
            ChunkFailed, match=re.escape("items 6..8 failed on all 2 tries: RuntimeError: "
                                         "disk on fire")):
        _flat(engine.map(task, chunks(0, 30, 3)))
    assert len(list(tmp_path.iterdir())) == 2


def test_ray__bad_input_is_raised_at_once(ray_cluster, tmp_path):
    task = _Raise(6, TracegymError("train item 7: bad"), tmp_path)
    with engines.RayEngine(max_retries=3) as engine, pytest.raises(
            TracegymError, match="train item 7: bad"):
        _flat(engine.map(task, chunks(0, 30, 3)))
    assert len(list(tmp_path.iterdir())) == 1


# ---------------------------------------------------------------------------------------------
# every builder: the same bytes on every engine (sizes that make several chunks)


@pytest.fixture(scope="module")
def traces_dir(tmp_path_factory) -> Path:
    """trace_lm's input: 90 records, two chunks of them."""
    out = tmp_path_factory.mktemp("input") / "traces"
    build_trace_dataset(out, n=30, seed=1, progress=False)
    return out


def _build(task: str, out: Path, traces_dir: Path, **engine):
    if task == "sudoku":
        build_sudoku_dataset(out, size=4, train=600, test=20, augment=1, seed=2,
                             progress=False, **engine)
    elif task == "maze":
        build_maze_dataset(out, kind="backtracker", size=7, train=600, test=20, augment=1,
                           seed=2, progress=False, **engine)
    elif task == "arc":
        build_arc_dataset(out, arc_set="procedural", tasks=(5, 4), augment=2, seed=1,
                          progress=False, **engine)
    else:
        build_trace_lm_dataset(traces_dir, out, task="both", seq_len=256, **engine)


BUILDERS = ("sudoku", "maze", "arc", "trace_lm")


@pytest.mark.parametrize("task", BUILDERS)
def test_builders__worker_processes_write_the_same_bytes(task, tmp_path, traces_dir):
    _build(task, tmp_path / "one", traces_dir, workers=1)
    _build(task, tmp_path / "two", traces_dir, workers=2)
    assert _files(tmp_path / "two") == _files(tmp_path / "one")


@pytest.mark.parametrize("task", BUILDERS)
def test_builders__ray_writes_the_same_bytes(task, tmp_path, traces_dir, ray_cluster):
    _build(task, tmp_path / "local", traces_dir)
    _build(task, tmp_path / "ray", traces_dir, engine="ray")
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")


def test_cli__engine_ray_writes_what_the_local_build_writes(tmp_path, ray_cluster):
    options = ["--size", "4", "--train", "600", "--test", "20", "--seed", "5", "--no-progress"]
    assert cli_main(["data", "sudoku", "--out", str(tmp_path / "l"), "--workers", "1",
                     *options]) == 0
    assert cli_main(["data", "sudoku", "--out", str(tmp_path / "r"), "--engine", "ray",
                     *options]) == 0
    assert _files(tmp_path / "r") == _files(tmp_path / "l")


@pytest.mark.skipif("engine" not in inspect.signature(build_trace_dataset).parameters,
                    reason="the traces builder takes no engine")
def test_traces__ray_writes_the_same_bytes(tmp_path, ray_cluster):
    options = ["--n", "150", "--seed", "3", "--no-progress"]
    # the local build in a process of the workers' hash seed (a set's order in a trace)
    subprocess.run([sys.executable, "-m", "tracegym", "data", "traces", "--out",
                    str(tmp_path / "local"), *options], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    build_trace_dataset(tmp_path / "ray", n=150, seed=3, progress=False, engine="ray")
    local, ray = _files(tmp_path / "local"), _files(tmp_path / "ray")
    # meta.json records the driver's PYTHONHASHSEED; the records are what must agree
    assert ray.pop("meta.json") and local.pop("meta.json")
    assert ray == local
