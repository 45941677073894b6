"""Engines that run a dataset build's items: in this process, in local worker processes, or as
Ray tasks on a cluster.

A builder cuts its items into :class:`Chunk` s (a range of item indices, plus whatever data its
items need that a worker cannot compute itself) and calls :meth:`Engine.map` with a *task*: a
picklable callable ``task(chunk) -> result`` holding what every chunk shares (the generator, the
seeds, the test keys), shipped once per worker, not once per chunk. Results come back in chunk
order whatever order the workers finish in, and every item is drawn from its own random stream
(:mod:`.common`), so the output is byte-identical on every engine and for any worker count.

* ``local``, ``workers=1``: a loop in this process (the reference).
* ``local``, ``workers=N``: N worker processes (``concurrent.futures``; spawn start, so the
  workers never inherit the driver's threads: a script that builds with workers > 1 needs the
  ``if __name__ == "__main__":`` guard, as multiprocessing asks). A build of one chunk runs in
  this process.
* ``ray``: Ray tasks on the cluster at ``address`` (default: ``RAY_ADDRESS``, else a local Ray
  with ``workers`` CPUs started for the build and stopped after it; a Ray the caller started is
  used as it is). Workers run the tasks on their main thread, get the driver's
  ``PYTHONHASHSEED`` (a set's order in a trace), and need tracegym installed. A task whose
  worker dies, or that raises anything but bad input (:class:`~tracegym.errors.TracegymError`,
  raised at once), is retried ``max_retries`` times; a chunk that still fails raises
  :class:`ChunkFailed` naming its items.

At most ``2 * workers`` chunks are in flight (submitted, not yet consumed), so the driver holds a
bounded number of results whatever the build's size. The progress bar lives on the driver.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tracegym.checks import check_int
from tracegym.errors import TracegymError

ENGINES = ("local", "ray")
MAX_RETRIES = 3  # Ray: tries of a chunk after its first
IN_FLIGHT = 2  # chunks submitted per worker: one running, one queued behind it


def default_workers() -> int:
    """The cores this process may run on (the CLI's ``--workers`` default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Chunk:
    """Items ``lo..hi-1`` of a build; ``data``: what they need that a worker cannot rebuild."""

    lo: int
    hi: int
    data: object = None

    def __len__(self) -> int:
        return self.hi - self.lo

    def __str__(self) -> str:
        return f"items {self.lo}..{self.hi - 1}"


def chunks(lo: int, hi: int, size: int) -> Iterator[Chunk]:
    """``range(lo, hi)`` in chunks of ``size`` items (the last one shorter)."""
    for start in range(lo, hi, size):
        yield Chunk(start, min(start + size, hi))


def chunk_size(count: int, workers: int, *, step: int, most: int) -> int:
    """Items per chunk: about four chunks per worker, a multiple of ``step`` (a builder's own
    batch), at most ``most``. The output never depends on it, only the balance and the bar."""
    per = math.ceil(count / max(1, 4 * workers)) if count else step
    return max(step, min(most, math.ceil(per / step) * step))


class ChunkFailed(RuntimeError):
    """A chunk failed on every try; ``chunk`` names its items."""

    def __init__(self, chunk: Chunk, tries: int, why: str):
        super().__init__(f"{chunk} failed on all {tries} tries: {why}")
        self.chunk = chunk


class Engine:
    """Maps a task over chunks, in order (see the module docstring). A context manager: the
    workers (a process pool, a local Ray) stop when the block ends."""

    name = "local"
    workers = 1

    def map(self, task: Callable, items: Iterable[Chunk], *, bar=None) -> Iterator:
        """``task(chunk)`` for each chunk, in order, advancing the tqdm ``bar`` by the items of
        each chunk consumed."""
        for chunk in items:
            result = task(chunk)
            if bar is not None:
                bar.update(len(chunk))
            yield result

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# local worker processes

_TASK = None  # a worker process's task, installed once by its pool's initializer


def _install(task) -> None:
    global _TASK
    _TASK = task


def _run_installed(chunk: Chunk):
    return _TASK(chunk)


class LocalEngine(Engine):
    """``workers`` processes on this machine (1: this process)."""

    def __init__(self, workers: int = 1):
        self.workers = check_int("workers", workers, 1)
        self.pools: set = set()  # of maps not read to the end yet (a build that failed)

    def map(self, task, items, *, bar=None):
        items = iter(items)
        head = list(itertools.islice(items, 2))
        items = itertools.chain(head, items)  # a generator: chunks are made as they are sent
        if self.workers == 1 or len(head) < 2:  # nothing to share: no pool to start
            yield from super().map(task, items, bar=bar)
            return
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the workers never inherit the driver's threads, and each takes the driver's
        # sys.path before unpickling its task (a forkserver keeps the cwd it started in first on
        # its path, so a tracegym/ folder there would shadow the package)
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_install,
                                   initargs=(task,))
        self.pools.add(pool)
        try:
            pending: deque = deque()
            for chunk in items:
                pending.append((chunk, pool.submit(_run_installed, chunk)))
                if len(pending) >= IN_FLIGHT * self.workers:
                    yield _take(pending, bar)
            while pending:
                yield _take(pending, bar)
        finally:  # a failure or a consumer that stopped early: drop what is queued
            self.pools.discard(pool)
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        # a map left unread (its consumer raised) holds its workers until collected: stop them
        while self.pools:
            self.pools.pop().shutdown(wait=True, cancel_futures=True)


def _take(pending: deque, bar):
    from concurrent.futures.process import BrokenProcessPool

    chunk, future = pending.popleft()
    try:
        result = future.result()  # the task's own exception, as raised in the worker
    except BrokenProcessPool as err:  # a worker died (killed, out of memory)
        raise ChunkFailed(chunk, 1, f"a worker process died ({err})") from err
    if bar is not None:
        bar.update(len(chunk))
    return result


# ---------------------------------------------------------------------------------------------
# Ray


@dataclass(frozen=True)
class _Refused:
    """A task's bad-input error, returned as a value so that Ray does not retry it."""

    error: TracegymError


_SHARED: dict = {}  # a Ray worker's task of the current build, by its object id


def _run_on_ray(shared: list, chunk: Chunk):
    """Run one chunk on a Ray worker. The task comes as ``[ObjectRef]`` (a nested ref Ray does
    not resolve) so that a worker unpickles it once per build, not once per chunk: an ARC task
    carries a million augmentations."""
    key = shared[0].hex()
    task = _SHARED.get(key)
    if task is None:
        import ray

        _SHARED.clear()  # one build's task at a time
        task = _SHARED[key] = ray.get(shared[0])
    try:
        return task(chunk)
    except TracegymError as err:  # the same on every try: report it at once
        return _Refused(err)


class RayEngine(Engine):
    """Ray tasks at ``address`` (None: ``RAY_ADDRESS``, else a local Ray of ``workers`` CPUs,
    default all of them); see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 max_retries: int = MAX_RETRIES):
        import ray  # ModuleNotFoundError names the extra in the CLI

        self.ray = ray
        self.max_retries = check_int("max_retries", max_retries, 0)
        if workers is not None:
            workers = check_int("workers", workers, 1)
        address = address or os.environ.get("RAY_ADDRESS") or None
        self.started = not ray.is_initialized()
        if self.started:
            options = {"address": address} if address else {"num_cpus": workers}
            # a set of str is ordered by the hash seed (trace reprs): the workers get ours
            env = {k: os.environ[k] for k in ("PYTHONHASHSEED",) if k in os.environ}
            # quiet: the build's own bar and summary are what the user reads
            ray.init(**options, include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(_run_on_ray).options(
            max_retries=self.max_retries, retry_exceptions=True, num_cpus=1)

    def map(self, task, items, *, bar=None):
        ray = self.ray
        shared = [ray.put(task)]  # once per build; workers read it from the object store
        pending: deque = deque()
        for chunk in items:
            pending.append((chunk, self._remote.remote(shared, chunk)))
            if len(pending) >= IN_FLIGHT * self.workers:
                yield self._take(pending, bar)
        while pending:
            yield self._take(pending, bar)

    def _take(self, pending: deque, bar):
        chunk, ref = pending.popleft()
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None)  # a RayTaskError carries the worker's exception
            why = f"{type(cause).__name__}: {cause}" if cause is not None else \
                f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
            raise ChunkFailed(chunk, 1 + self.max_retries, why) from err
        if isinstance(result, _Refused):
            raise result.error
        if bar is not None:
            bar.update(len(chunk))
        return result

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


@dataclass(frozen=True)
class _EachItem:
    """An engine task: ``fn`` over the items a chunk carries, on ``threads`` threads."""

    fn: Callable
    threads: int

    def __call__(self, chunk: Chunk) -> list:
        if self.threads == 1:  # this thread: the main one of a worker (signals work there)
            return [self.fn(item) for item in chunk.data]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(self.fn, chunk.data))


def map_items(engine: Engine, fn: Callable, items: Iterable, *, per_chunk: int,
              threads: int = 1, bar=None) -> Iterator:
    """``fn(item)`` for each item, in order, sent to ``engine`` ``per_chunk`` items at a time
    (``fn`` pickles: a module-level function or a partial of one) and run there on ``threads``
    threads (for items that wait on something, such as a sandboxed process). Read lazily, so a
    long iterable is never held whole. ``bar`` advances by a chunk's items as it comes back."""
    if not isinstance(engine, Engine):
        raise TracegymError(f"engine: expected an Engine, got {engine!r}")
    per_chunk = check_int("per_chunk", per_chunk, 1)
    threads = check_int("threads", threads, 1)
    batches = (Chunk(lo, lo + len(batch), batch) for lo, batch in batched(items, per_chunk))
    for part in engine.map(_EachItem(fn, threads), batches, bar=bar):
        yield from part


def batched(items: Iterable, size: int) -> Iterator[tuple[int, list]]:
    """``(index of the first, [up to size items])`` over an iterable, read as it goes."""
    batch, lo = [], 0
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield lo, batch
            lo, batch = lo + size, []
    if batch:
        yield lo, batch


def check_engine(engine: str | Engine = "local", workers: int | None = None,
                 address: str | None = None) -> tuple:
    """The checked engine options, before anything is built (TracegymError naming the field)."""
    if workers is not None:
        workers = check_int("workers", workers, 1)
    if isinstance(engine, Engine):
        return engine, workers, address
    if engine not in ENGINES:
        raise TracegymError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if address is not None and engine != "ray":
        raise TracegymError(f"ray_address: only the ray engine takes one, got {address!r}")
    return engine, workers, address


@contextmanager
def open_engine(engine: str | Engine = "local", workers: int | None = None,
                address: str | None = None) -> Iterator[Engine]:
    """``with open_engine("ray") as engine:`` the engine named ``engine`` (``local`` or
    ``ray``), closed when the block ends; an :class:`Engine` given is used, and left open.
    ``workers``: local processes (default 1), or the CPUs of a local Ray started for the build
    (default all); ``address``: the Ray cluster (``ray`` only)."""
    engine, workers, address = check_engine(engine, workers, address)
    if isinstance(engine, Engine):
        yield engine
        return
    made = LocalEngine(workers or 1) if engine == "local" else RayEngine(address, workers=workers)
    with made:
        yield made
