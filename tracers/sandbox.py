"""Trace untrusted Python source in a separate, isolated, resource-limited process.

>>> trace_source("def f(x):\\n    return x + 1\\n", "f", (41,))  # doctest: +SKIP
Trace(...)

``trace_source`` returns the :class:`~tracegym.tracers.Trace`, or raises a
:class:`~tracegym.errors.TracegymError` for bad input (no parse, no entry, arguments that cannot be
sent) or a :class:`~tracegym.errors.SandboxError` when the run fails; ``run_source`` returns a
:class:`RunResult` recording the outcome instead, for dataset builders that keep failures as data.
Neither hangs: the parent owns the wall clock and ends the child with SIGKILL (no handler in the
child can catch it).

Isolation levels (``sandbox_capabilities()["level"]``; every ``RunResult.isolation`` records the
level it ran at). "namespaces" needs root and unshare(2); "rlimits" is the fallback.

=============================  ==============================  ===============================
enforced                       ``"namespaces"``                ``"rlimits"``
=============================  ==============================  ===============================
wall time (parent SIGKILL)     yes: the whole pid namespace    yes: the child's process group
CPU, address space, file       yes (setrlimit in the child)    yes
size, processes, open files,
no core dumps
stdout+stderr cap              yes (the parent counts bytes)   yes
cleared environment            yes                             yes
working directory              fresh tmpfs ``/sandbox``,       fresh host temp dir, removed
                               size-capped, gone at the end    afterwards (no size cap)
file reads                     only read-only binds: ``/usr``, whatever the uid may read
                               the interpreter, the venv,
                               tracegym's package folders
file writes                    only ``/sandbox`` (``/tmp`` is  whatever the uid may write
                               a link to it, unless Python or
                               tracegym lives under /tmp: then
                               /tmp holds their read-only
                               binds)
network                        none (empty net namespace)      not restricted
other processes                invisible (pid namespace); the  visible; signalable when the
                               program is pid 2, not init      uid is shared
privileges                     random uid, no groups, no       random uid when run as root,
                               capabilities, no_new_privs,     else the caller's uid
                               nosuid mounts
seccomp (x86_64, when probed)  refuses unshare/setns/clone of  same filter
                               namespaces, mount calls,
                               io_uring, bpf, ptrace, keyrings
=============================  ==============================  ===============================

Not used: Landlock (the kernel here exposes no LSM list); with the mount namespace in place it
would add nothing. ``sandbox_capabilities()`` reports what the probe found on this machine.

The program can write to the result pipe too (it lives in the same process as the tracer), so a
program can forge or corrupt *its own* trace; corruption is reported as ``SandboxViolation``.

Each ``run_source`` call starts a new Python (about 0.2 s, most of it ``import tracegym``).
:class:`~tracegym.tracers.zygote.SandboxPool` (also importable from here) pays that once per
worker and forks each program from it, with the same isolation per program as the table above
and the same results: ``with SandboxPool(workers=2) as pool: pool.run_source(...)``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import math
import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from tracegym.checks import check_int
from tracegym.errors import (
    ArgumentSerialisationError,
    EntryPointError,
    ProgramSyntaxError,
    SandboxCrash,
    SandboxError,
    SandboxMemoryError,
    SandboxOutputLimit,
    SandboxTimeout,
    SandboxViolation,
)
from tracegym.tracers.outcomes import RUN_OUTCOMES

__all__ = ["Limits", "RunResult", "run_source", "sandbox_capabilities", "trace_source"]

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
_MiB = 1 << 20
_WORK = "/sandbox"  # the program's working directory inside the namespaces level


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed run; bad values raise ValueError naming the field.

    Args:
        wall_time_s (float): seconds of real time before the parent kills the child. Default 10.
        cpu_time_s (int): CPU seconds (RLIMIT_CPU; SIGXCPU, then SIGKILL a second later). Default 5.
        address_space_bytes (int): RLIMIT_AS; 2 GiB as in CWM's sandbox.
        file_size_bytes (int): RLIMIT_FSIZE, the largest file the program may write. Default 16 MiB.
        max_processes (int): RLIMIT_NPROC for the sandbox's own uid. Default 32.
        open_files (int): RLIMIT_NOFILE. Default 64.
        output_bytes (int): stdout + stderr bytes before the run is stopped. Default 1 MiB.
        work_dir_bytes (int): size of the tmpfs working directory (namespaces level). 64 MiB.
        result_bytes (int): largest trace JSON accepted from the child. Default 64 MiB.
    """

    wall_time_s: float = 10.0
    cpu_time_s: int = 5
    address_space_bytes: int = 2 << 30
    file_size_bytes: int = 16 * _MiB
    max_processes: int = 32
    open_files: int = 64
    output_bytes: int = 1 * _MiB
    work_dir_bytes: int = 64 * _MiB
    result_bytes: int = 64 * _MiB

    def __post_init__(self) -> None:
        minimum = {"address_space_bytes": 256 * _MiB, "open_files": 16}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "wall_time_s":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"Limits.{f.name} must be a number, got {value!r}")
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"Limits.{f.name} must be > 0, got {value!r}")
                continue
            # a plain int: the limits go to the child as JSON
            value = check_int(f"Limits.{f.name}", value, 1)
            object.__setattr__(self, f.name, value)
            if value < minimum.get(f.name, 0):
                raise ValueError(f"Limits.{f.name} must be >= {minimum[f.name]} (Python needs "
                                 f"it to start), got {value!r}")


@dataclass
class RunResult:
    """What one run produced: sandboxed (:func:`run_source`) or in-process.

    ``outcome`` is one of :data:`~tracegym.tracers.outcomes.RUN_OUTCOMES` (one vocabulary with
    the in-process runner, :func:`~tracegym.tracers.in_process.run_in_process`; the table in
    :mod:`tracegym.tracers.outcomes` says which runner gives each and what ``unwrap`` raises).
    ``trace`` (and its ``trace_json``) is set for ``ok`` and also for ``memory`` and ``exit``
    when the tracer saw the call end that way; ``unwrap()`` returns it only for ``ok`` and
    raises the matching exception otherwise.
    """

    outcome: str
    message: str = ""
    trace_json: str | None = None
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    elapsed_s: float = 0.0
    isolation: str = ""
    detail: dict = field(default_factory=dict)
    trace: Any = field(default=None, repr=False)  # the parsed Trace, when one came back

    def unwrap(self):
        """The Trace for ``ok``; otherwise raise the exception that matches the outcome."""
        if self.outcome == "ok":
            return self.trace
        msg = f"{self.outcome}: {self.message}"
        if self.outcome == "syntax_error":
            raise ProgramSyntaxError(
                f"program does not parse: {self.message} (line {self.detail.get('lineno')})",
                lineno=self.detail.get("lineno"), offset=self.detail.get("offset"),
                text=self.detail.get("text"))
        if self.outcome in ("entry_missing", "entry_not_callable"):
            raise EntryPointError(self.message)
        error = {"timeout": SandboxTimeout, "memory": SandboxMemoryError,
                 "output_limit": SandboxOutputLimit, "result_limit": SandboxOutputLimit,
                 "violation": SandboxViolation,
                 "setup_error": SandboxError}.get(self.outcome, SandboxCrash)
        raise error(msg, self)


@functools.lru_cache(maxsize=1)
def sandbox_capabilities() -> dict:
    """Probe (once) which isolation this machine allows; ``level`` is what runs will use."""
    caps = {"root": os.geteuid() == 0, "namespaces": False, "seccomp": False,
            "landlock": False}
    # The probe runs the child's own namespace and seccomp set-up, so what it reports is what
    # runs will get. The namespaces level also needs root (mounts, the uid drop).
    try:
        probe = subprocess.run([sys.executable, "-s", "-B", _CHILD, "probe"], env={},
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        found = json.loads(probe.stdout) if probe.returncode == 0 else {}
        caps["namespaces"] = caps["root"] and found.get("namespaces") is True
        caps["seccomp"] = found.get("seccomp") is True
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    caps["level"] = "namespaces" if caps["namespaces"] else "rlimits"
    return caps


# What the child imports: tracegym and the tracers, nothing above them
# (tests/tracers/test_sandbox.py checks this covers every tracegym package that loads).
_CHILD_PACKAGES = ("tracegym", "tracegym.tracers")


def _package_dirs() -> list[str]:
    """Folders the child needs to import tracegym, found as the import system finds them.

    An editable install maps each root folder (``envs/``, ``tracers/``, ...) to
    ``tracegym.<name>`` from the source tree; a wheel keeps them all under
    ``site-packages/tracegym``. Either way each package's search path names its folder.
    """
    dirs: set[str] = set()
    for name in _CHILD_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"the sandbox cannot locate the package {name!r} to bind",
                                      name=name)
        dirs.update(spec.submodule_search_locations)
    return sorted(os.path.realpath(d) for d in dirs)


def _binds() -> list[str]:
    paths = {"/usr", sys.base_prefix, sys.prefix, *_package_dirs()}
    for link in ("/lib", "/lib64", "/bin"):
        if os.path.isdir(link) and not os.path.islink(link):
            paths.add(link)
    # sys.path entries outside the above (e.g. a user site dir) are not exposed, on purpose.
    return sorted(os.path.realpath(p) for p in paths)


def _literal(value, what: str) -> str:
    """repr() that ast.literal_eval gives back equal, else ArgumentSerialisationError."""
    try:
        text = repr(value)
        ok = ast.literal_eval(text) == value
    except Exception as exc:
        raise ArgumentSerialisationError(
            f"{what} cannot be sent to the sandbox: {type(exc).__name__}: {exc}") from None
    if not ok:
        raise ArgumentSerialisationError(
            f"{what} cannot be sent to the sandbox: {text[:200]} is not a literal round trip")
    return text


def _check_trace_options(options) -> dict:
    """TraceOptions or a dict of its fields -> a JSON-able dict, checked here, not in the child."""
    from tracegym.tracers import TraceOptions

    if options is None:
        return {}
    if isinstance(options, TraceOptions):
        options = dataclasses.asdict(options)
    if not isinstance(options, dict):
        raise ValueError(f"trace_options must be a TraceOptions or dict, got {options!r}")
    unknown = set(options) - {f.name for f in dataclasses.fields(TraceOptions)}
    if unknown:
        raise ValueError(f"trace_options has unknown fields {sorted(unknown)}")
    TraceOptions(**{k: tuple(v) if k == "files" else v for k, v in options.items()})
    try:
        json.dumps(options)
    except TypeError as exc:
        raise ArgumentSerialisationError(f"trace_options must be JSON: {exc}") from None
    return options


def _kill(proc: subprocess.Popen, level: str) -> None:
    """SIGKILL everything: the pid-namespace init (takes all its descendants), then the group.

    The supervisor (``proc``) reaps pid 1 only once the kernel has killed and reaped every
    process of the namespace, so waiting for it means nothing of the program is left.
    """
    if level == "namespaces" and proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                for pid in f.read().split():
                    os.kill(int(pid), signal.SIGKILL)
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL),
                 lambda: proc.send_signal(signal.SIGKILL)):
        try:
            kill()
        except (OSError, ProcessLookupError):
            pass


def run_source(code: str, entry: str, args=(), kwargs=None, *, limits: Limits = Limits(),
               trace_options=None, isolation: str = "auto") -> RunResult:
    """Trace ``entry(*args, **kwargs)`` from ``code`` in a sandbox; never raises for the program.

    ``trace_options`` is a :class:`~tracegym.tracers.TraceOptions` or a dict of its fields.
    Raises (before starting a child) only for bad input here, a ValueError naming the field: a
    non-str ``code``, a non-identifier ``entry``, non-literal arguments (the ValueError
    subclass ArgumentSerialisationError), bad ``trace_options``, an unknown ``isolation``
    ("auto", "namespaces", "rlimits").

    Each call starts a new Python (about 0.2 s); :class:`SandboxPool` runs the same calls, as
    isolated, in warm workers.
    """
    isolation = resolve_isolation(isolation)
    job = make_job(code, entry, args, kwargs, limits=limits, trace_options=trace_options)
    base = tempfile.mkdtemp(prefix="tracegym-sandbox-")
    try:
        os.chmod(base, 0o711)  # rlimits level: the dropped uid must reach work/ (TMPDIR)
        input_path = os.path.join(base, "job.json")
        job["root_dir"] = os.path.join(base, "root")
        job["binds"] = _binds() if isolation == "namespaces" else []
        work = os.path.join(base, "work")
        os.mkdir(job["root_dir"])
        make_work_dir(work, job["uid"])
        with open(os.open(input_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(job, f)
        return _run_child(input_path, work, limits, isolation)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def resolve_isolation(isolation: str) -> str:
    """``"auto"`` -> this machine's best level; a level it lacks or an unknown name: ValueError."""
    caps = sandbox_capabilities()
    if isolation == "auto":
        return caps["level"]
    if isolation not in ("namespaces", "rlimits") or (
            isolation == "namespaces" and not caps["namespaces"]):
        raise ValueError(f"isolation must be 'auto', 'rlimits' or an available level "
                         f"(this machine: {caps['level']!r}), got {isolation!r}")
    return isolation


def make_job(code: str, entry: str, args=(), kwargs=None, *, limits: Limits,
             trace_options) -> dict:
    """Check one run's input (a ValueError naming the field) and make the child's job: what
    every program process gets, whether started per call or forked from a warm worker."""
    if not isinstance(code, str):
        raise ValueError(f"code must be a str, got {type(code).__name__}")
    if not isinstance(entry, str) or not entry.isidentifier():
        raise ValueError(f"entry must be an identifier, got {entry!r}")
    if not isinstance(limits, Limits):
        raise ValueError(f"limits must be a Limits, got {type(limits).__name__}")
    if not isinstance(args, (tuple, list)):
        raise ValueError(f"args must be a tuple or list, got {type(args).__name__}")
    kwargs = {} if kwargs is None else kwargs
    trace_options = _check_trace_options(trace_options)
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ArgumentSerialisationError(f"kwargs must be a dict with str keys, got {kwargs!r}")
    return {"code": code, "entry": entry, "args": _literal(tuple(args), "args"),
            "kwargs": _literal(kwargs, "kwargs"), "trace_options": trace_options or {},
            "limits": dataclasses.asdict(limits),
            # a fresh uid per run: nothing one program leaves behind is the next one's
            "uid": 200_000 + secrets.randbelow(1 << 30) if os.geteuid() == 0 else None,
            "work_bytes": limits.work_dir_bytes, "work_path": _WORK,
            "seccomp": sandbox_capabilities()["seccomp"]}


def make_work_dir(path: str, uid: int | None) -> None:
    """The rlimits level's working directory (a host folder), owned by the run's uid."""
    os.mkdir(path, 0o700)
    if uid is not None:
        os.chown(path, uid, uid)


def child_env(home: str) -> dict:
    """The program's whole environment."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0"}  # fixed hash seed: set reprs repeat from run to run


class _Started:
    """A per-call child (the Popen'd supervisor) as :func:`collect` drives it."""

    def __init__(self, proc: subprocess.Popen, level: str) -> None:
        self.proc, self.level = proc, level
        self.cpu_before = _children_cpu()

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        _kill(self.proc, self.level)
        self.proc.wait()

    def cpu_s(self) -> float:
        return _children_cpu() - self.cpu_before

    lost = ""  # a per-call child has no worker that could die under it


def _run_child(input_path: str, work: str, limits: Limits, level: str) -> RunResult:
    home = _WORK if level == "namespaces" else work
    pipes = open_pipes()
    result_w = pipes[2][1]
    cmd = [sys.executable, "-s", "-B", _CHILD, level, input_path, str(result_w)]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=pipes[0][1],
                                stderr=pipes[1][1], env=child_env(home), cwd=work,
                                pass_fds=(result_w,), start_new_session=True)
    except BaseException:
        for r, _ in pipes:
            os.close(r)
        raise
    finally:
        for _, w in pipes:
            os.close(w)
    return collect(_Started(proc, level), *(r for r, _ in pipes), limits, level, start)


def open_pipes() -> list[tuple[int, int]]:
    """(read, write) fds of the program's stdout, stderr and result pipes."""
    pipes: list[tuple[int, int]] = []
    try:
        for _ in range(3):
            pipes.append(os.pipe())
    except BaseException:
        for fd in (fd for pair in pipes for fd in pair):
            os.close(fd)
        raise
    return pipes


def collect(child, stdout_fd: int, stderr_fd: int, result_fd: int, limits: Limits, level: str,
            start: float) -> RunResult:
    """Read a started program's three pipes until they close, under the wall clock and the
    output caps; kill whatever is left; turn it all into a RunResult. Closes the three fds.

    ``child`` has ``poll()``, ``wait(timeout)`` (subprocess.TimeoutExpired), ``kill()`` (leaves
    nothing of the program running), ``returncode``, ``cpu_s()`` and ``lost`` (why the
    program's process was lost with no status, or "").
    """
    buffers = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray()}
    killed_for = None
    sel = selectors.DefaultSelector()
    sel.register(stdout_fd, selectors.EVENT_READ, "stdout")
    sel.register(stderr_fd, selectors.EVENT_READ, "stderr")
    sel.register(result_fd, selectors.EVENT_READ, "result")
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now - start > limits.wall_time_s:
                killed_for = "timeout"
                break
            if exited_at is None and child.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 1.0:
                break  # a leftover descendant holds a pipe open (rlimits level); stop waiting
            for key, _ in sel.select(timeout=0.05):
                chunk = os.read(key.fileobj, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffers[key.data] += chunk
            if len(buffers["stdout"]) + len(buffers["stderr"]) > limits.output_bytes:
                killed_for = "output_limit"
                break
            if len(buffers["result"]) > limits.result_bytes:
                killed_for = "violation"
                break
    finally:
        sel.close()
        if killed_for is None and exited_at is None:
            # Pipes closed: the supervisor reports pid 1's status once the namespace is empty;
            # a program that closed its pipes and went on running is still held to the clock.
            try:
                child.wait(max(0.0, start + limits.wall_time_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed_for = "timeout"
        child.kill()  # always: nothing of the program outlives the call
        for fd in (stdout_fd, stderr_fd, result_fd):
            os.close(fd)
    elapsed = time.monotonic() - start

    def text(name: str) -> str:
        return bytes(buffers[name][:limits.output_bytes]).decode("utf-8", "replace")

    result = RunResult(outcome="crash", stdout=text("stdout"), stderr=text("stderr"),
                       returncode=child.returncode, elapsed_s=elapsed, isolation=level)
    if killed_for == "timeout":
        result.outcome, result.message = "timeout", f"wall time {limits.wall_time_s}s exceeded"
    elif killed_for == "output_limit":
        result.outcome = "output_limit"
        result.message = f"stdout+stderr exceeded {limits.output_bytes} bytes"
    elif killed_for == "violation":
        result.outcome = "violation"
        result.message = f"result channel exceeded {limits.result_bytes} bytes"
    elif buffers["result"]:
        _read_record(result, bytes(buffers["result"]))
    elif child.lost:
        result.message = child.lost
    else:
        _classify_death(result, child.returncode, child.cpu_s(), limits)
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _read_record(result: RunResult, raw: bytes) -> None:
    # The program shares the child's process, so the record may be anything: check it with an
    # if (an assert would vanish under python -O).
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the limit
        record = None
    outcome = record.get("outcome") if isinstance(record, dict) else None
    if not isinstance(outcome, str) or outcome not in RUN_OUTCOMES:
        result.outcome = "violation"
        result.message = f"result channel held no valid record: {raw[:100]!r}"
        return
    del record["outcome"]
    trace_json = record.pop("trace", None)
    if trace_json is not None:
        from tracegym.tracers import Trace

        try:  # the program shares the child's process, so check what it sent
            result.trace = Trace.from_json(trace_json)
        except Exception as exc:
            result.outcome = "violation"
            result.message = f"result channel held a malformed trace: {exc}"
            return
        result.trace_json = trace_json
    result.outcome = outcome
    result.message = str(record.pop("message", ""))
    result.detail = record


def _classify_death(result: RunResult, rc: int | None, cpu_used: float, limits: Limits) -> None:
    """No record came back: the program ended the process itself, or the kernel did."""
    sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc and rc > 128 else None)
    if "MemoryError" in result.stderr[-2000:]:
        result.outcome, result.message = "memory", "MemoryError (address-space limit)"
    # RLIMIT_CPU sends SIGXCPU, then SIGKILL at the hard limit when SIGXCPU is ignored. The CPU
    # reading is process-wide, so runs from parallel threads can blur it; the signal is exact.
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= limits.cpu_time_s - 0.5):
        result.outcome, result.message = "timeout", f"CPU time {limits.cpu_time_s}s exceeded"
    elif sig is not None:
        result.outcome = "crash"
        result.message = f"killed by signal {signal.Signals(sig).name}" if sig in \
            signal.Signals._value2member_map_ else f"killed by signal {sig}"
    else:
        result.outcome = "crash"
        result.message = f"process exited with code {rc} before returning a trace"
    result.detail = {"signal": sig}


def trace_source(code: str, entry: str, args=(), kwargs=None, *, limits: Limits = Limits(),
                 trace_options=None):
    """Trace ``entry(*args, **kwargs)`` defined in ``code`` in a sandbox; return the Trace.

    Raises ProgramSyntaxError (with ``lineno``), EntryPointError, ArgumentSerialisationError,
    SandboxTimeout, SandboxMemoryError, SandboxOutputLimit, SandboxViolation or SandboxCrash
    (the first three are ValueErrors; the Sandbox* ones are SandboxErrors, not ValueErrors,
    SandboxTimeout also a TimeoutError, and carry the :class:`RunResult` as ``.result``).
    """
    return run_source(code, entry, args, kwargs, limits=limits,
                      trace_options=trace_options).unwrap()


def __getattr__(name: str):
    # SandboxPool lives in .zygote, which imports this module
    if name == "SandboxPool":
        from tracegym.tracers.zygote import SandboxPool

        return SandboxPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
