"""tracegym.tracers.sandbox: a corpus of hostile programs, each contained and reported.

Every program prints what it managed to do; the assertions check the outcome, what it printed,
and the host side (no file appeared, no process survived, the test process is alive).
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import json
import linecache
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import tracegym
from tracegym.errors import (
    ArgumentSerialisationError,
    EntryPointError,
    ProgramSyntaxError,
    SandboxCrash,
    SandboxMemoryError,
    SandboxOutputLimit,
    SandboxTimeout,
    SandboxViolation,
)
from tracegym.tracers.sandbox import (
    Limits,
    _package_dirs,
    resolve_isolation,
    run_source,
    sandbox_capabilities,
    trace_source,
)
from tracegym.tracers.zygote import SandboxPool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(tracegym.__file__)))
# Small limits keep the hostile runs short; the defaults are for real use.
FAST = Limits(wall_time_s=6, cpu_time_s=2, address_space_bytes=1 << 30, max_processes=16)
DEFAULT = Limits()
SANDBOX_UID_MIN = 200_000  # run_source picks uids from here up for the namespaces level

LEVELS = ["auto", "rlimits"]  # "auto" is the best level here; "rlimits" is the fallback
needs_namespaces = pytest.mark.skipif(
    sandbox_capabilities()["level"] != "namespaces",
    reason="needs root and unshare(2) mount/pid/net namespaces (the full isolation level)",
)


def _run(code: str, entry: str = "main", args=(), limits: Limits = FAST, **kw):
    return run_source(textwrap.dedent(code), entry, args, limits=limits, **kw)


@pytest.fixture(scope="module")
def warm_pools():
    """One warm sandbox (SandboxPool, 2 workers) per isolation level, shared by the module."""
    pools: dict = {}
    yield pools
    for pool in pools.values():
        pool.close()


@pytest.fixture(autouse=True, params=["per-call", "warm"])
def runner(request, monkeypatch, warm_pools):
    """Every test runs twice: with a process per call, and in warm workers (SandboxPool), which
    must contain and report every hostile program the same way."""
    if request.param == "per-call":
        return request.param

    def warm_run_source(code, entry, args=(), kwargs=None, *, limits=DEFAULT,
                        trace_options=None, isolation="auto"):
        level = resolve_isolation(isolation)
        if level not in warm_pools:
            warm_pools[level] = SandboxPool(workers=2, isolation=level)
        return warm_pools[level].run_source(code, entry, args, kwargs, limits=limits,
                                            trace_options=trace_options)

    def warm_trace_source(code, entry, args=(), kwargs=None, *, limits=DEFAULT,
                          trace_options=None):
        return warm_run_source(code, entry, args, kwargs, limits=limits,
                               trace_options=trace_options).unwrap()

    monkeypatch.setitem(globals(), "run_source", warm_run_source)
    monkeypatch.setitem(globals(), "trace_source", warm_trace_source)
    return request.param


def _host_processes(owned_by) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if owned_by(os.stat(f"/proc/{name}").st_uid):
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def _processes_of(uid: int) -> list[int]:
    """Host pids still running as ``uid``, one run's random uid (there should be none after the
    run). Only that run's: another sandbox alive on the host is none of the test's business."""
    return _host_processes(lambda owner: owner == uid)


def _uid_of(result) -> int:
    """The uid a program ran as; the programs print ``uid N`` first (namespaces level: random)."""
    match = re.search(r"^uid (\d+)$", result.stdout, re.MULTILINE)
    assert match, result
    assert int(match.group(1)) >= SANDBOX_UID_MIN, result
    return int(match.group(1))


PRINT_UID = "print('uid', os.getuid(), flush=True)"  # before any fork: children share stdout



def test_package_dirs__cover_every_tracegym_package_the_child_imports(monkeypatch, tmp_path):
    # The child runs `import tracegym.tracers` inside the binds; each package folder it loads
    # must lie in one, whether the install is editable (folders in the source tree) or a wheel.
    code = ("import sys, tracegym.tracers\n"
            "for m in list(sys.modules.values()):\n"
            "    if m.__name__.split('.')[0] == 'tracegym':\n"
            "        print(*getattr(m, '__path__', []), sep='\\n')\n")
    loaded = subprocess.run([sys.executable, "-s", "-c", code], env={}, cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout.split()
    dirs = _package_dirs()
    assert loaded and dirs
    for path in map(os.path.realpath, loaded):
        assert any(path == d or path.startswith(d + os.sep) for d in dirs), (path, dirs)
    # found through the import system, not an editable install's private finder mapping
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path
                                           if "editable" not in repr(f).lower()])
    assert _package_dirs() == dirs

# ------------------------------------------------------------------------------ Limits
@pytest.mark.parametrize(("field", "value"), [
    ("wall_time_s", 0), ("wall_time_s", -1.5), ("wall_time_s", float("nan")),
    ("cpu_time_s", 1.5), ("cpu_time_s", True),
    ("address_space_bytes", 1024), ("output_bytes", 0), ("max_processes", "8"),
    ("open_files", 3),
])
def test_limits__bad_value_names_field_and_value(field, value):
    pattern = re.escape(f"Limits.{field}") + ".*" + re.escape(repr(value))
    with pytest.raises(ValueError, match=pattern):
        Limits(**{field: value})


def test_limits__numpy_ints_are_stored_as_plain_ints():
    # the limits travel to the child as JSON, which takes no numpy integer
    np = pytest.importorskip("numpy")
    limits = Limits(cpu_time_s=np.int64(3), open_files=np.int32(32))
    assert type(limits.cpu_time_s) is int and type(limits.open_files) is int
    assert json.loads(json.dumps(dataclasses.asdict(limits)))["cpu_time_s"] == 3


def test_limits__frozen_with_cwm_default_address_space():
    limits = Limits()
    assert limits.address_space_bytes == 2 << 30
    with pytest.raises(AttributeError):
        limits.wall_time_s = 1  # type: ignore[misc]


def test_sandbox_capabilities__reports_a_level():
    caps = sandbox_capabilities()
    assert caps["level"] in ("namespaces", "rlimits")
    assert caps["level"] == ("namespaces" if caps["namespaces"] else "rlimits")


# ------------------------------------------------------------------------------ normal programs
PROGRAM = """\
def helper(n):
    return n * n

def main(xs, k=1):
    total = 0
    for x in xs:
        total += helper(x) * k
    return {"total": total, "n": len(xs)}
"""


def test_trace_source__same_frames_as_in_process_tracer():
    from tracegym.tracers import trace

    linecache.cache["<program>"] = (len(PROGRAM), None, PROGRAM.splitlines(True), "<program>")
    namespace: dict = {}
    exec(compile(PROGRAM, "<program>", "exec"), namespace)
    expected = trace(namespace["main"], [1, 2, 3], k=2)
    got = trace_source(PROGRAM, "main", ([1, 2, 3],), {"k": 2})
    assert got.return_repr == "{'total': 28, 'n': 3}"
    assert got.frames == expected.frames
    assert got.to_cwm() == expected.to_cwm()


@pytest.mark.parametrize("isolation", ["auto", "rlimits"])
def test_run_source__records_outcome_output_and_level(isolation):
    result = _run("def main(x):\n    print('hello', x)\n    return x + 1\n", args=(41,),
                  isolation=isolation)
    assert result.outcome == "ok", result
    assert result.stdout == "hello 41\n"
    assert result.trace.return_repr == "42"
    assert result.isolation == (sandbox_capabilities()["level"] if isolation == "auto"
                                else "rlimits")


def test_trace_source__literal_arguments_round_trip():
    got = trace_source("def main(a, b, c):\n    return (a, b, c)\n", "main",
                       ((1, 2), {3, 4}, b"\x00"), limits=FAST)
    assert got.return_repr == repr(((1, 2), {3, 4}, b"\x00"))


def test_trace_source__program_exception_is_a_trace_not_an_error():
    got = trace_source("def main():\n    return 1 / 0\n", "main", limits=FAST)
    assert got.exception_repr.startswith("ZeroDivisionError")


def test_run_source__trace_options_reach_the_tracer():
    from tracegym.tracers import TraceOptions

    code = "def main():\n    total = 0\n    for i in range(100):\n        total += i\n"
    full = trace_source(code, "main", limits=FAST)
    cut = run_source(code, "main", limits=FAST, trace_options=TraceOptions(max_events=10))
    assert cut.outcome == "ok" and cut.trace.truncated and len(cut.trace.frames) == 10
    assert not full.truncated and len(full.frames) > 10
    with pytest.raises(ValueError, match="max_repr"):
        run_source(code, "main", trace_options={"max_repr": 0})
    with pytest.raises(ValueError, match=re.escape("unknown fields ['depth']")):
        run_source(code, "main", trace_options={"depth": 3})


def test_run_source__parallel_runs_stay_apart():
    from concurrent.futures import ThreadPoolExecutor

    code = "import time\ndef main(i):\n    time.sleep(0.2)\n    print(i)\n    return i * i\n"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: _run(code, args=(i,)), range(4)))
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    assert [r.trace.return_repr for r in results] == ["0", "1", "4", "9"]


def test_trace_source__cruxeval_programs_reproduce_their_outputs():
    import ast
    from concurrent.futures import ThreadPoolExecutor

    from tracegym.tracers.programs import cruxeval_programs

    programs = cruxeval_programs()[:10]  # the copy shipped in tracers/data/cruxeval

    def check(program):
        call = program.inputs[0]
        got = trace_source(program.source, program.entry, call.args, call.kwargs, limits=FAST)
        return ast.literal_eval(got.return_repr), ast.literal_eval(program.outputs[0])

    with ThreadPoolExecutor(2) as pool:
        for got, expected in pool.map(check, programs):
            assert got == expected


# ------------------------------------------------------------------------------ bad input
def test_trace_source__syntax_error_carries_the_line():
    with pytest.raises(ProgramSyntaxError, match=re.escape("(line 3)")) as info:
        trace_source("def main():\n    return 1\ndef broken(:\n", "main", limits=FAST)
    assert info.value.lineno == 3


@pytest.mark.parametrize(("code", "message"), [
    ("def other():\n    pass\n", "entry 'main' not defined; callables: ['other']"),
    ("main = 3\n", "entry 'main' is a int, not callable"),
    ("main = None\n", "entry 'main' is a NoneType, not callable"),
])
def test_trace_source__missing_or_uncallable_entry(code, message):
    with pytest.raises(EntryPointError, match=re.escape(message)):
        trace_source(code, "main", limits=FAST)


@pytest.mark.parametrize("args", [(object(),), (lambda: 1,), ([1, {2: socket}],), (float("nan"),)])
def test_run_source__unserialisable_args_fail_before_starting(args):
    with pytest.raises(ArgumentSerialisationError, match="cannot be sent to the sandbox"):
        run_source("def main(x):\n    return x\n", "main", args)


@pytest.mark.parametrize(("field", "value"), [("code", b"x"), ("entry", "not an id"),
                                              ("isolation", "chroot"), ("args", "abc"),
                                              ("trace_options", 3)])
def test_run_source__bad_arguments_name_field_and_value(field, value):
    kw = {"code": "def main():\n    pass\n", "entry": "main", field: value}
    with pytest.raises(ValueError, match=re.escape(field)):
        run_source(**kw)


# ------------------------------------------------------------------------------ hostile corpus
@needs_namespaces
def test_hostile__file_writes_outside_work_dir_are_contained():
    token = f"tracegym-pwned-{uuid.uuid4().hex}"
    targets = [f"/tmp/{token}", f"{REPO}/{token}", f"{REPO}/tracegym/{token}", f"/root/{token}",
               f"/usr/{token}", "/etc/cron.d/x", "local.txt"]
    result = _run(f"""
        def main():
            for path in {targets!r}:
                try:
                    with open(path, "w") as f:
                        f.write("owned")
                    print("wrote", path)
                except OSError as exc:
                    print("blocked", path, type(exc).__name__)
        """)
    assert result.outcome == "ok", result
    lines = result.stdout.splitlines()
    # /tmp inside the sandbox is the private work dir, unless tracegym itself lives under /tmp
    # (a CI clone): then /tmp holds its read-only binds. Local files land in the work dir.
    assert "wrote local.txt" in lines
    tmp_line = f"wrote /tmp/{token}" if not REPO.startswith("/tmp/") else f"blocked /tmp/{token} "
    assert any(line.startswith(tmp_line) for line in lines), result.stdout
    for path in targets[1:-1]:
        assert any(line.startswith(f"blocked {path} ") for line in lines), result.stdout
    for path in targets[:-1]:
        assert not os.path.exists(path), path


@needs_namespaces
def test_hostile__reads_outside_are_blocked_except_read_only_python():
    result = _run(f"""
        import os
        def main():
            for path in ["/etc/passwd", "/etc/shadow", "{REPO}/pyproject.toml", "/root/.bashrc",
                         "/proc/1/environ", "{REPO}/tracegym/errors.py"]:
                try:
                    with open(path) as f:
                        f.read(10)
                    print("read", path)
                except OSError as exc:
                    print("blocked", path, type(exc).__name__)
            print("root", sorted(os.listdir("/")))
        """)
    assert result.outcome == "ok", result
    out = result.stdout
    for path in ["/etc/passwd", "/etc/shadow", f"{REPO}/pyproject.toml", "/root/.bashrc",
                 "/proc/1/environ"]:
        assert f"blocked {path} " in out, out
    # Enforced: only what Python needs is visible, read-only (tracegym's own source included).
    assert f"read {REPO}/tracegym/errors.py" in out
    assert "'etc'" not in out and "'home'" not in out


@needs_namespaces
def test_hostile__network_is_unreachable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        result = _run(f"""
            import socket
            def main():
                for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
                    try:
                        socket.create_connection((host, port), timeout=1).close()
                        print("connected", host)
                    except OSError as exc:
                        print("blocked", host, type(exc).__name__)
                try:
                    socket.getaddrinfo("example.com", 80)
                    print("resolved")
                except OSError as exc:
                    print("no dns", type(exc).__name__)
            """)
        assert result.outcome == "ok", result
        assert "connected" not in result.stdout and "resolved" not in result.stdout
        assert result.stdout.count("blocked") == 3
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody reached the host's loopback
    finally:
        server.close()


@pytest.mark.slow
@needs_namespaces
def test_hostile__fork_bomb_is_bounded_and_fully_killed():
    limits = Limits(wall_time_s=3, cpu_time_s=2, max_processes=16, address_space_bytes=1 << 30)
    result = _run(f"""
        import os
        def main():
            {PRINT_UID}
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """, limits=limits)
    assert result.outcome == "timeout", result
    assert _processes_of(_uid_of(result)) == []


DAEMON = f"""
import os, time
def main():
    {PRINT_UID}
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    return "left a daemon"
"""


@needs_namespaces
def test_hostile__escaped_daemon_dies_with_the_namespace():
    result = _run(DAEMON)
    assert result.outcome == "ok", result
    assert _processes_of(_uid_of(result)) == []


@pytest.mark.slow
@needs_namespaces
def test_hostile__host_checks_see_only_their_own_run():
    # Another sandbox alive on the host (a parallel test run, a `tracegym trace` in a shell)
    # must not fail the checks of this one.
    sleeper = f"import os, time\ndef main():\n    {PRINT_UID}\n    time.sleep(4)\n"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other = pool.submit(_run, sleeper, limits=Limits(wall_time_s=30, cpu_time_s=2))
        deadline = time.monotonic() + 20
        while not _host_processes(lambda owner: owner >= SANDBOX_UID_MIN) and (
                time.monotonic() < deadline):
            time.sleep(0.02)
        assert _host_processes(lambda owner: owner >= SANDBOX_UID_MIN), "the sleeper never ran"
        result = _run(DAEMON)
        assert result.outcome == "ok", result
        assert _processes_of(_uid_of(result)) == []
        assert other.result().outcome == "ok"


@pytest.mark.parametrize("code", [
    "def main():\n    return bytearray(10 ** 12)\n",
    "def main():\n    xs = []\n    while True:\n        xs.append(bytes(128 * 2 ** 20))\n",
])
@pytest.mark.parametrize("isolation", LEVELS)
def test_hostile__memory_bomb_hits_address_space_limit(code, isolation):
    limits = Limits(wall_time_s=10, address_space_bytes=512 << 20)
    with pytest.raises(SandboxMemoryError):
        run_source(code, "main", limits=limits, isolation=isolation).unwrap()


@pytest.mark.parametrize(("limits", "why"), [
    (Limits(wall_time_s=1.5, cpu_time_s=30), "wall time"),
    (Limits(wall_time_s=20, cpu_time_s=1), "CPU time"),
])
@pytest.mark.parametrize("isolation", LEVELS)
def test_hostile__infinite_loop_is_killed(limits, why, isolation):
    result = run_source("def main():\n    while True:\n        pass\n", "main", limits=limits,
                        isolation=isolation)
    with pytest.raises(SandboxTimeout, match=why):
        result.unwrap()


def test_hostile__closing_every_pipe_and_looping_is_still_a_timeout():
    result = _run("""
        import os
        def main():
            os.closerange(0, 64)
            while True:
                pass
        """, limits=Limits(wall_time_s=1.5, cpu_time_s=30))
    assert result.outcome == "timeout" and "wall" in result.message, result


@pytest.mark.slow
def test_hostile__ignoring_signals_does_not_help():
    result = _run("""
        import signal
        def main():
            for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            while True:
                pass
        """, limits=Limits(wall_time_s=10, cpu_time_s=1))
    # SIGXCPU ignored: RLIMIT_CPU's hard limit (one second later) sends SIGKILL.
    assert result.outcome == "timeout" and "CPU" in result.message, result


@needs_namespaces
def test_hostile__os_system_runs_contained():
    result = _run(f"""
        import os
        def main():
            print("rc", os.system("echo hi; id -u; touch {REPO}/pwned-by-shell; ls /etc"))
        """)
    assert result.outcome == "ok", result
    assert "hi\n" in result.stdout
    uid = int(result.stdout.split("hi\n")[1].split()[0])
    assert uid >= SANDBOX_UID_MIN
    assert not os.path.exists(f"{REPO}/pwned-by-shell")


@needs_namespaces
def test_hostile__ctypes_libc_calls_are_contained():
    result = _run(f"""
        import ctypes, os
        def main():
            {PRINT_UID}
            libc = ctypes.CDLL(None)
            print("system", libc.system(b"touch {REPO}/pwned-by-ctypes"))
            print("kill1", libc.kill(1, 9))
            print("kill-1", libc.kill(-1, 9))   # all it may signal: none but its own uid's
            return libc.getuid()
        """)
    assert result.outcome == "ok", result
    assert "kill1 -1" in result.stdout  # pid 1 of the namespace is root's
    assert not os.path.exists(f"{REPO}/pwned-by-ctypes")
    assert _processes_of(_uid_of(result)) == []


@pytest.mark.skipif(not sandbox_capabilities()["seccomp"],
                    reason="needs the seccomp filter (x86_64, probed by sandbox_capabilities)")
@pytest.mark.parametrize("isolation", LEVELS)
def test_hostile__new_namespaces_mounts_and_io_uring_are_refused(isolation):
    result = _run("""
        import ctypes, os, subprocess
        def main():
            libc = ctypes.CDLL(None, use_errno=True)
            for name, flag in [("user", 0x10000000), ("net", 0x40000000), ("mount", 0x20000)]:
                print("unshare", name, libc.unshare(flag), ctypes.get_errno())
            print("mount", libc.mount(b"none", b"/", b"tmpfs", 0, None), ctypes.get_errno())
            print("io_uring", libc.syscall(425, 4, None), ctypes.get_errno())
            print("sub", subprocess.run(["true"]).returncode)  # fork + exec still work
        """, isolation=isolation)
    assert result.outcome == "ok", result
    assert result.stdout.splitlines() == [
        "unshare user -1 1", "unshare net -1 1", "unshare mount -1 1", "mount -1 1",
        "io_uring -1 1", "sub 0"]


def test_hostile__segfault_is_a_crash():
    with pytest.raises(SandboxCrash, match="SIGSEGV"):
        trace_source("import ctypes\ndef main():\n    return ctypes.string_at(0)\n", "main",
                     limits=FAST)


@pytest.mark.parametrize("isolation", LEVELS)
@pytest.mark.parametrize("target", ["os.getppid()", "-os.getpgid(0)", "1"])
def test_hostile__killing_the_parent_does_not_reach_the_test_process(target, isolation):
    result = _run(isolation=isolation, code=f"""
        import os
        def main():
            try:
                os.kill({target}, 9)
            except OSError as exc:
                print("blocked", type(exc).__name__)
            return "survived"
        """)
    # Whatever happened inside, we are still here and the run was reported.
    assert result.outcome in ("ok", "crash"), result


@pytest.mark.parametrize("isolation", LEVELS)
def test_hostile__printing_100mb_hits_output_limit(isolation):
    result = run_source("import sys\ndef main():\n    sys.stdout.write('x' * 100_000_000)\n",
                        "main", limits=FAST, isolation=isolation)
    with pytest.raises(SandboxOutputLimit, match="exceeded 1048576 bytes") as info:
        result.unwrap()
    assert len(info.value.result.stdout) == FAST.output_bytes


@pytest.mark.parametrize(("code", "outcome", "message"), [
    ("import sys\ndef main():\n    sys.exit(3)\n", "exit", "sys.exit(3)"),
    ("import os\ndef main():\n    os._exit(0)\n", "crash", "exited with code 0"),
    ("import os\ndef main():\n    os._exit(7)\n", "crash", "exited with code 7"),
    ("raise RuntimeError('at import')\ndef main():\n    pass\n", "module_error",
     "RuntimeError: at import"),
])
def test_hostile__ending_the_process_early_is_reported(code, outcome, message):
    result = run_source(code, "main", limits=FAST)
    assert result.outcome == outcome and message in result.message, result
    with pytest.raises(SandboxCrash, match=re.escape(message)):
        result.unwrap()


@pytest.mark.parametrize(("code", "marker"), [
    ("class Bad:\n    def __repr__(self):\n        raise ValueError('boom')\n"
     "def main():\n    return Bad()\n", "<repr failed: ValueError>"),
    ("def main():\n    return (lambda: 1)\n", "<function main.<locals>.<lambda>"),
    ("import threading\ndef main():\n    return threading.Lock()\n", "<unlocked _thread.lock"),
])
def test_hostile__unpicklable_or_exploding_return_values_are_traced(code, marker):
    got = trace_source(code, "main", limits=FAST)
    assert got.return_repr.startswith(marker), got.return_repr


@pytest.mark.parametrize("isolation", LEVELS)
def test_hostile__parent_environment_does_not_leak(monkeypatch, isolation):
    monkeypatch.setenv("TRACEGYM_TEST_SECRET", "hunter2")
    result = _run(isolation=isolation, code="""
        import os
        def main():
            print(sorted(os.environ))
            print(open("/proc/self/environ").read())
            return os.environ.get("TRACEGYM_TEST_SECRET")
        """)
    assert result.outcome == "ok", result
    assert "hunter2" not in result.stdout and "TRACEGYM_TEST_SECRET" not in result.stdout
    assert result.trace.return_repr == "None"


@needs_namespaces
def test_hostile__work_dir_is_size_capped_and_file_size_limited():
    limits = Limits(wall_time_s=10, file_size_bytes=1 << 20, work_dir_bytes=4 << 20)
    result = _run("""
        def main():
            try:
                open("big", "wb").write(b"x" * (2 << 20))
            except OSError as exc:
                print("big", exc.errno)
            for i in range(10):
                try:
                    open(f"f{i}", "wb").write(b"x" * 1_000_000)
                except OSError as exc:
                    print("full", i, exc.errno)
                    break
        """, limits=limits)
    assert result.outcome == "ok", result
    assert "big 27" in result.stdout  # EFBIG: RLIMIT_FSIZE (Python ignores SIGXFSZ)
    assert "full" in result.stdout and " 28" in result.stdout  # ENOSPC: the tmpfs is full


def test_hostile__forging_a_malformed_trace_is_a_violation():
    result = _run("""
        import os
        def main():
            for fd in range(3, 64):
                try:
                    os.write(fd, b'{"outcome": "ok", "trace": "{}"}')
                except OSError:
                    pass
            os._exit(0)
        """)
    assert result.outcome == "violation" and "malformed trace" in result.message, result


def test_hostile__corrupting_the_result_channel_is_a_violation():
    with pytest.raises(SandboxViolation, match="no valid record"):
        trace_source("""
import os
def main():
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) > 2:
            try:
                os.write(int(fd), b"garbage")
            except OSError:
                pass
    os._exit(0)
""", "main", limits=FAST)


BAD_RECORDS = [b'{"outcome": 5}', b'{"outcome": null, "trace": "{}"}', b'{"message": "ok"}',
               b'["outcome", "ok"]', b'"ok"', b"\xff", b"[" * 100_000,
               b'{"outcome": "fine"}', b'{"outcome": ["ok"]}']  # not in RUN_OUTCOMES


def test_read_record__a_record_of_the_wrong_type_is_a_violation_even_under_O(tmp_path):
    # What the child sends back is untrusted (the program shares its process): the check must
    # hold under python -O, which strips asserts. Run outside the clone, so the installed
    # package is imported, not the source folder.
    script = textwrap.dedent(f"""
        import json
        from tracegym.tracers.sandbox import RunResult, _read_record
        out = []
        for raw in {BAD_RECORDS!r}:
            result = RunResult(outcome="crash")
            _read_record(result, raw)
            out.append([result.outcome, result.message.split(":")[0]])
        print(json.dumps(out))
        """)
    proc = subprocess.run([sys.executable, "-O", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["violation", "result channel held no valid record"]
                                       for _ in BAD_RECORDS]


def test_outcomes__the_child_reports_only_the_shared_vocabulary():
    # every outcome the child can send is one RunResult documents (tracers/outcomes.py), so the
    # parent's check against RUN_OUTCOMES never turns a real outcome into a violation
    from tracegym.tracers.outcomes import RUN_OUTCOMES
    from tracegym.tracers.sandbox import _CHILD

    with open(_CHILD, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    sent = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            pairs = dict(zip(node.keys, node.values))
            for key, value in pairs.items():
                if isinstance(key, ast.Constant) and key.value == "outcome":
                    if isinstance(value, ast.Constant):
                        sent.add(value.value)
            # the stage -> outcome table of failures during the run
            if {k.value for k in node.keys if isinstance(k, ast.Constant)} >= {"module", "trace"}:
                sent |= {v.value for v in node.values if isinstance(v, ast.Constant)}
    assert len(sent) >= 10 and sent <= set(RUN_OUTCOMES), sent - set(RUN_OUTCOMES)
