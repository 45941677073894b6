"""tracegym.tracers.zygote: the warm sandbox keeps every program apart from the next one.

The hostile corpus (test_sandbox.py) and the outcome labels (test_outcomes.py) run through
SandboxPool too; here: what warm workers add, a zygote that outlives its programs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import textwrap
import threading

import pytest

from tracegym.errors import SandboxError
from tracegym.tracers.sandbox import Limits, run_source, sandbox_capabilities
from tracegym.tracers.zygote import SandboxPool

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

LEVELS = ["auto", "rlimits"]
FAST = Limits(wall_time_s=6, cpu_time_s=2, address_space_bytes=1 << 30, max_processes=16)

# Tries to leave something behind for whoever runs next in the same zygote: the tracer, the
# builtins, modules, the environment, process settings, files, a daemon, kernel objects
# (an abstract socket: net namespace; a SysV segment: IPC namespace) and every fd it can find.
POISON = textwrap.dedent("""
    import builtins, ctypes, gc, json, linecache, os, random, resource, signal, sys
    import tracegym.tracers as tt
    import tracegym.tracers.trace as ttrace
    def daemon():
        if os.fork() == 0:
            os.setsid()
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
            os.system("sleep 3")
            os._exit(0)
    def abstract_socket():  # the rlimits level under root may not import socket (stdlib)
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind("\\0tracegym-poison")
        s.listen(1)
        globals()["kept"] = s
    def files():
        for name in ("/tmp/poison", "poison", "json.py", "tracegym.py"):
            with open(name, "w") as f:
                f.write("raise SystemExit('poisoned')")
    def fds():
        for fd in range(3, 256):
            try:
                os.write(fd, b"poison")
            except OSError:
                pass
    STEPS = [
        lambda: setattr(tt.Tracer, "trace", lambda *a, **k: 1 / 0),
        lambda: setattr(ttrace, "safe_repr", lambda *a, **k: "poisoned"),
        lambda: setattr(json, "dumps", lambda *a, **k: "poisoned"),
        lambda: setattr(builtins, "len", lambda x: 42),
        lambda: sys.modules.__setitem__("ast", None),
        linecache.cache.clear,
        lambda: setattr(linecache, "getline", lambda *a, **k: "poisoned\\n"),
        lambda: os.environ.__setitem__("POISON", "1"),
        lambda: os.putenv("POISON2", "1"),
        lambda: sys.setrecursionlimit(80),
        lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
        lambda: os.umask(0o777),
        lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16)),
        gc.disable,
        lambda: random.seed(1234),
        lambda: sys.path.insert(0, os.getcwd()),
        files, abstract_socket,
        lambda: ctypes.CDLL(None).shmget(0x7467, 4096, 0o1666),
        daemon, fds,
    ]
    def main():
        done = 0
        for step in STEPS:
            try:
                step()
                done += 1
            except Exception:
                pass
        return done
    """)

# What an innocent program sees of its process and machine; equal in a fresh sandbox.
OBSERVE = textwrap.dedent("""
    import ctypes, gc, json, os, random, resource, signal, sys
    def main():
        try:  # at the rlimits level under root the dropped uid may not read the stdlib
            import socket
        except ImportError:
            print("no socket module")
            socket = None
        print("env", sorted(os.environ), os.environ["HOME"] == os.getcwd())
        print("work", sorted(os.listdir(".")), "tmp", os.path.exists("/tmp/poison"))
        print("pid", os.getpid() == 2, os.getppid() == 1)
        print("umask", oct(os.umask(0o022)))
        print("nofile", resource.getrlimit(resource.RLIMIT_NOFILE))
        print("recursion", sys.getrecursionlimit(), "gc", gc.isenabled())
        print("sigterm", signal.getsignal(signal.SIGTERM))
        print("fds", len(os.listdir("/proc/self/fd")))
        print("json", json.dumps([1]), "len", len([1, 2]), "ast", type(sys.modules.get("ast")))
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect("\\0tracegym-poison")
            print("abstract socket reached")
        except (OSError, AttributeError) as exc:
            print("abstract socket", type(exc).__name__)
        libc = ctypes.CDLL(None)
        print("shm", libc.shmget(0x7467, 0, 0))
        print("draws", len({random.random() for _ in range(3)}))
        return "observed"
    """)

# Traced the same way anywhere: loops, a helper, containers, an exception caught.
INNOCENT = textwrap.dedent("""
    def helper(n):
        return n * n

    def main(xs, k=1):
        seen = {}
        total = 0
        for x in xs:
            total += helper(x) * k
            seen[x] = sorted({x, -x})
        try:
            1 / 0
        except ZeroDivisionError as exc:
            seen["err"] = repr(exc)
        return total, len(seen), seen
    """)


def _fresh(code, args=(), isolation="auto"):
    return run_source(code, "main", args, limits=FAST, isolation=isolation)


def _zygote_pids(pool: SandboxPool) -> set[int]:
    return {z.proc.pid for z in pool._zygotes}


@pytest.fixture
def host_leftovers():
    """Remove what the poisoner leaves on the host at the rlimits level (no mount or IPC
    namespace there, per call as in a pool): /tmp/poison and its SysV segment."""
    yield
    if os.path.exists("/tmp/poison"):
        os.unlink("/tmp/poison")
    libc = ctypes.CDLL(None)
    shmid = libc.shmget(0x7467, 0, 0)
    if shmid >= 0:
        libc.shmctl(shmid, 0, None)  # IPC_RMID


@pytest.mark.parametrize("isolation", LEVELS)
def test_poisoning_program__next_program_runs_as_in_a_fresh_sandbox(isolation, host_leftovers):
    with SandboxPool(workers=1, isolation=isolation) as pool:
        first = pool.run_source(INNOCENT, "main", ([3, 1, 2],), limits=FAST)
        zygotes = _zygote_pids(pool)
        poisoned = pool.run_source(POISON, "main", limits=FAST)
        # it wrote over its own result channel, among other things
        assert poisoned.outcome in ("violation", "ok"), poisoned
        observed = pool.run_source(OBSERVE, "main", limits=FAST)
        after = pool.run_source(INNOCENT, "main", ([3, 1, 2],), limits=FAST)
        assert _zygote_pids(pool) == zygotes  # one zygote ran all four
    # a fresh sandbox, on the host as the poisoner left it (the rlimits level shares /tmp and
    # SysV IPC between runs, per call too)
    expected_trace = _fresh(INNOCENT, ([3, 1, 2],), isolation)
    expected_observed = _fresh(OBSERVE, isolation=isolation)
    assert observed.outcome == "ok" and expected_observed.outcome == "ok", observed
    assert observed.stdout == expected_observed.stdout
    assert "abstract socket reached" not in observed.stdout
    assert "POISON" not in observed.stdout
    if sandbox_capabilities()["level"] == "namespaces" and isolation == "auto":
        assert "shm -1" in observed.stdout and "tmp False" in observed.stdout
    for got in (first, after):
        assert got.outcome == "ok", got
        assert got.trace_json == expected_trace.trace_json
        assert got.stdout == expected_trace.stdout == ""


@pytest.mark.skipif(sandbox_capabilities()["level"] != "namespaces",
                    reason="needs root and unshare(2) (the namespaces level)")
def test_each_program_gets_fresh_namespaces_uid_and_work_dir():
    code = textwrap.dedent("""
        import os
        def main():
            print(os.getpid(), os.getuid(), sorted(os.listdir(".")))
            print(os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/mnt"))
            print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
            open("left-behind", "w").close()
        """)
    with SandboxPool(workers=1) as pool:
        runs = [pool.run_source(code, "main", limits=FAST).stdout.splitlines() for _ in range(3)]
    assert [r[0].split()[0] for r in runs] == ["2", "2", "2"]  # pid 2 of a new namespace
    assert [r[0].split(maxsplit=2)[2] for r in runs] == ["[]"] * 3  # an empty work dir
    assert len({r[0].split()[1] for r in runs}) == 3  # a fresh uid each
    assert len({r[1] for r in runs}) == 3  # fresh net and mount namespaces
    assert [r[2] for r in runs] == ["['1', '2']"] * 3  # the zygote is not in sight
    host_net = os.readlink("/proc/self/ns/net")
    assert all(host_net not in r[1] for r in runs)


def test_threads_share_the_workers_and_keep_their_results():
    code = "import time\ndef main(i):\n    time.sleep(0.05)\n    print(i)\n    return i * i\n"
    results: dict = {}
    with SandboxPool(workers=2) as pool:
        def go(i):
            results[i] = pool.run_source(code, "main", (i,), limits=FAST)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(pool._zygotes) <= 2
    assert [results[i].stdout for i in range(6)] == [f"{i}\n" for i in range(6)]
    assert [results[i].trace.return_repr for i in range(6)] == [str(i * i) for i in range(6)]


def test_a_zygote_killed_between_runs_is_replaced():
    with SandboxPool(workers=1) as pool:
        assert pool.run_source("def main():\n    return 1\n", "main").outcome == "ok"
        (old,) = _zygote_pids(pool)
        os.kill(old, signal.SIGKILL)
        result = pool.run_source("def main():\n    return 2\n", "main")
        assert result.outcome == "ok" and result.trace.return_repr == "2", result
        assert _zygote_pids(pool) and old not in _zygote_pids(pool)


def test_a_zygote_killed_during_a_run_is_a_crash_and_is_replaced():
    code = "import time\ndef main():\n    time.sleep(30)\n"
    with SandboxPool(workers=1) as pool:
        pool.run_source("def main():\n    pass\n", "main")
        (old,) = _zygote_pids(pool)
        timer = threading.Timer(0.5, os.kill, (old, signal.SIGKILL))
        timer.start()
        result = pool.run_source(code, "main", limits=Limits(wall_time_s=20))
        timer.join()
        assert result.outcome == "crash" and "zygote process ended" in result.message, result
        assert pool.run_source("def main():\n    return 3\n", "main").outcome == "ok"


def test_timeout_kills_the_program_and_keeps_the_zygote():
    with SandboxPool(workers=1) as pool:
        pool.run_source("def main():\n    pass\n", "main")
        zygotes = _zygote_pids(pool)
        result = pool.run_source("def main():\n    while True:\n        pass\n", "main",
                                 limits=Limits(wall_time_s=0.5, cpu_time_s=30))
        assert result.outcome == "timeout" and "wall time" in result.message, result
        assert pool.run_source("def main():\n    return 4\n", "main").outcome == "ok"
        assert _zygote_pids(pool) == zygotes


def test_close_ends_the_zygotes_and_later_calls_fail():
    pool = SandboxPool(workers=2)
    pool.run_source("def main():\n    pass\n", "main")
    pids, base = _zygote_pids(pool), pool._base
    pool.close()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie_free(pid)
    assert not os.path.exists(base)
    with pytest.raises(SandboxError, match="closed"):
        pool.run_source("def main():\n    pass\n", "main")
    pool.close()  # twice is fine


def _is_zombie_free(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_forked_copy_of_the_pool_refuses_to_run():
    with SandboxPool(workers=1) as pool:
        pid = os.fork()
        if pid == 0:
            try:
                pool.run_source("def main():\n    pass\n", "main")
                code = 1
            except SandboxError:
                code = 0
            except BaseException:
                code = 2
            os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"workers": 0}, "workers"), ({"workers": "2"}, "workers"),
    ({"isolation": "chroot"}, "isolation"),
])
def test_bad_arguments_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SandboxPool(**kwargs)


def test_bad_run_arguments_fail_before_a_zygote_starts():
    with SandboxPool() as pool:
        with pytest.raises(ValueError, match="entry"):
            pool.run_source("def main():\n    pass\n", "not an id")
        assert not pool._zygotes
