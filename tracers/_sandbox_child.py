"""Child side of :mod:`tracegym.tracers.sandbox`; run as a script, never imported by user code.

``python -s -B _sandbox_child.py LEVEL INPUT_PATH RESULT_FD`` (LEVEL "namespaces" or "rlimits";
``python -s -B _sandbox_child.py probe`` prints which of namespaces and seccomp work here).

Steps, in order (all but the last before the untrusted code can run):
1. level "namespaces": unshare(2) fresh mount/pid/net/ipc/uts namespaces and fork; the first
   process stays as a supervisor relaying the status, the child is pid 1 of the namespace;
2. read the job (code, entry, args repr, limits, uid, bind list) from INPUT_PATH, delete it;
3. level "namespaces": build a tmpfs root with read-only binds of what Python needs, a
   size-capped tmpfs ``/sandbox`` and four devices, ``pivot_root`` into it, mount a new ``/proc``;
4. fork again: the program runs as pid 2 under a relay (pid 1 would ignore SIGXCPU), and at
   either level its ``os.getppid()`` is that relay, not the sandbox's caller;
5. import the tracer; drop to an unprivileged uid (no groups, no capabilities,
   ``no_new_privs``), re-arm the parent-death signal (a uid change clears it), set the
   rlimits, install the seccomp filter (below) and compile the program (a SyntaxError is
   reported with its line);
6. exec the program in a fresh module, look up the entry, trace it and write one JSON object
   to RESULT_FD (never stdout, which the program owns), then ``os._exit``.
"""

import sys

# Running a file puts its folder first on sys.path; this folder holds modules (trace.py) that
# would shadow the standard library for the program, so drop it before any other import.
if sys.path and sys.path[0] == __file__.rpartition("/")[0]:
    del sys.path[0]

import ast  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import types  # noqa: E402

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
# CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
CLONE_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
FILENAME = "<program>"
# Taken before the program runs (it shares this process and may replace module attributes):
# the record still reaches the parent, so the outcome names what happened.
_dumps, _write = json.dumps, os.write
DEVICES = ("null", "zero", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None) -> None:
    def enc(text):
        return None if text is None else text.encode()

    _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _bind_ro(src: str, dst: str) -> None:
    _mount(src, dst, None, MS_BIND | MS_REC)
    # A bind mount ignores MS_RDONLY on creation; only a remount makes it read-only.
    _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(job: dict) -> None:
    """Make a minimal root from ``job["binds"]`` and pivot into it (pid 1, new mount ns)."""
    root, work = job["root_dir"], job["work_path"]
    _fill_root(job)
    _mount_work(root + work, job)
    _pivot_root(root)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(work)


def _fill_root(job: dict) -> None:
    """Mount a small tmpfs at ``job["root_dir"]`` holding read-only binds of ``job["binds"]``,
    four devices, and empty ``/proc`` and work-dir mount points (``/tmp`` links to the latter)."""
    root = job["root_dir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(link):
            os.symlink(os.readlink(link), root + link)
    bound: list[str] = []
    for src in sorted(job["binds"], key=len):
        if not os.path.exists(src) or any(src.startswith(b + "/") for b in bound):
            continue
        os.makedirs(root + src, exist_ok=True)
        _bind_ro(src, root + src)
        bound.append(src)
    os.mkdir(root + "/dev")
    for name in DEVICES:
        open(root + "/dev/" + name, "w").close()
        _mount("/dev/" + name, root + "/dev/" + name, None, MS_BIND)
    os.mkdir(root + "/proc")
    work = job["work_path"]
    os.mkdir(root + work)  # fails loudly if a bind already took the name
    if not os.path.lexists(root + "/tmp"):  # programs that hard-code /tmp get the work dir
        os.symlink(work, root + "/tmp")


def _mount_work(target: str, job: dict) -> None:
    """The program's working directory: a fresh tmpfs, size-capped, owned by its uid."""
    uid = job["uid"]
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={job['work_bytes']},mode=0700,uid={uid},gid={uid}")


def _pivot_root(root: str) -> None:
    """Make ``root`` this mount namespace's ``/`` and detach the old one."""
    os.chdir(root)
    os.mkdir(".old")
    if SYS_PIVOT_ROOT is not None:
        _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b".old"), "pivot_root")
        os.chdir("/")
        _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
        os.rmdir("/.old")
    else:  # unknown arch: chroot is enough once we hold no capabilities
        os.chroot(".")
        os.chdir("/")


# ---------------------------------------------------------------------------------- seccomp
# A small allow-by-default filter that closes the kernel surfaces an unprivileged program could
# still reach: new namespaces (above all a user namespace, where it would hold capabilities),
# mount calls, io_uring (its operations bypass seccomp), bpf, userfaultfd, perf, keyrings,
# ptrace and module loading. These fail with EPERM (clone3 with ENOSYS, so libc falls back to
# clone, whose flags are checked). x86_64 only; other architectures run without it.
AUDIT_ARCH_X86_64 = 0xC000003E
CLONE_NS_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000  # NEWTIME NS CGROUP UTS IPC USER PID NET
BLOCKED_X86_64 = {
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
    "chroot": 161, "ptrace": 101, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298,
    "add_key": 248, "request_key": 249, "keyctl": 250, "kexec_load": 246, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442,
}
CLONE_X86_64, CLONE3_X86_64 = 56, 435
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program() -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jt, jf, k) rows; jumps are resolved from the labels below."""
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|..|K
    rows: list = [(ld_abs, 0, 0, 4), (jeq, 0, "kill", AUDIT_ARCH_X86_64), (ld_abs, 0, 0, 0),
                  (jge, "deny", 0, 0x40000000)]  # x32 ABI numbers: refuse them all
    rows += [(jeq, "deny", 0, nr) for nr in sorted(BLOCKED_X86_64.values())]
    rows += [(jeq, "nosys", 0, CLONE3_X86_64), (jeq, "clone", 0, CLONE_X86_64),
             (ret, 0, 0, SECCOMP_RET_ALLOW)]
    labels = {"clone": len(rows)}
    rows += [(ld_abs, 0, 0, 16), (jset, "deny", 0, CLONE_NS_FLAGS), (ret, 0, 0, SECCOMP_RET_ALLOW)]
    labels["deny"] = len(rows)
    rows.append((ret, 0, 0, SECCOMP_RET_ERRNO | 1))  # EPERM
    labels["nosys"] = len(rows)
    rows.append((ret, 0, 0, SECCOMP_RET_ERRNO | 38))  # ENOSYS
    labels["kill"] = len(rows)
    rows.append((ret, 0, 0, SECCOMP_RET_KILL_PROCESS))  # a foreign-architecture syscall

    def jump(target, at):
        return target if isinstance(target, int) else labels[target] - at - 1

    return [(c, jump(jt, i), jump(jf, i), k) for i, (c, jt, jf, k) in enumerate(rows)]


def install_seccomp() -> bool:
    """Install the filter on this process (inherited by its children); False if unsupported."""
    if platform.machine() != "x86_64":
        return False
    rows = seccomp_program()
    array = (_SockFilter * len(rows))(*(_SockFilter(*row) for row in rows))
    prog = _SockFprog(len(rows), array)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")
    return True


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # The uid change made us undumpable, which hands our /proc/self to root; give it back
    # (core dumps stay off through RLIMIT_CORE = 0).
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def set_limits(limits: dict) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # RLIMIT_CPU counts the whole process: add what start-up (imports) has already used.
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits["cpu_time_s"]
    pairs = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: limits["address_space_bytes"],
        resource.RLIMIT_FSIZE: limits["file_size_bytes"],
        resource.RLIMIT_NPROC: limits["max_processes"],
        resource.RLIMIT_NOFILE: limits["open_files"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in pairs.items():
        soft, hard = value if isinstance(value, tuple) else (value, value)
        _, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:  # unprivileged: cannot go above the hard limit
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        resource.setrlimit(which, (int(soft), int(hard)))


def run(job: dict) -> dict:
    """Steps 5-6 of the module docstring; returns the record sent to the parent."""
    try:
        from tracegym.tracers import TraceOptions, Tracer

        options = dict(job["trace_options"])
        if "files" in options:  # JSON turned the tuple into a list
            options["files"] = tuple(options["files"])
        tracer = Tracer(TraceOptions(**options))
    except Exception as exc:  # our own setup failing is not the program's fault
        return {"outcome": "setup_error", "message": f"cannot set up the tracer: {exc!r}"}
    code = job["code"]
    # The tracer reads source lines through linecache; exec'd code has no file to read them from.
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(keepends=True), FILENAME)
    args = ast.literal_eval(job["args"])
    kwargs = ast.literal_eval(job["kwargs"])
    if os.geteuid() == 0 and job["uid"] is not None:
        drop_privileges(job["uid"])
    # A uid change clears the parent-death signal set in _fork_and_relay().
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    set_limits(job["limits"])
    if job["seccomp"]:
        install_seccomp()
    try:  # compiled under the limits too: a huge or deeply nested source is untrusted input
        compiled = compile(code, FILENAME, "exec")
    except SyntaxError as exc:
        return {"outcome": "syntax_error", "message": str(exc.msg), "lineno": exc.lineno,
                "offset": exc.offset, "text": exc.text}
    module = types.ModuleType("__program__")
    module.__dict__["__builtins__"] = _own_builtins()
    stage = "module"
    try:
        exec(compiled, module.__dict__)
        stage = "lookup"
        fn = module.__dict__.get(job["entry"], run)  # run: a sentinel the program cannot hold
        if fn is run:
            names = sorted(n for n, v in module.__dict__.items()
                           if callable(v) and not n.startswith("__"))
            return {"outcome": "entry_missing",
                    "message": f"entry {job['entry']!r} not defined; callables: {names}"}
        if not callable(fn):
            return {"outcome": "entry_not_callable",
                    "message": f"entry {job['entry']!r} is a {type(fn).__name__}, not callable"}
        stage = "trace"
        result = tracer.trace(fn, *args, **kwargs)
        stage = "serialise"
        payload = result.to_json()
    except MemoryError:
        return {"outcome": "memory", "message": f"MemoryError during {stage}"}
    except SystemExit as exc:
        return {"outcome": "exit", "message": f"program called sys.exit({exc.code!r})",
                "code": exc.code if isinstance(exc.code, int) else None}
    except BaseException as exc:  # noqa: B036 - the program may raise anything
        if stage in ("trace", "serialise") and _near_memory_limit(exc, job["limits"]):
            return {"outcome": "memory", "message": f"{type(exc).__name__} in the tracer after "
                    "the program neared its address-space limit"}
        kind = {"module": "module_error", "trace": "tracer_error",
                "serialise": "serialise_error"}.get(stage, "module_error")
        try:
            text = f"{type(exc).__name__}: {exc}"
        except BaseException:  # noqa: B036 - an exploding __str__ must not hide the outcome
            text = type(exc).__name__
        return {"outcome": kind, "message": f"{text} (during {stage})"}
    # The tracer keeps the call's exception on the trace; these two mean the run did not finish.
    if isinstance(result.exception, MemoryError):
        return {"outcome": "memory", "message": "MemoryError during the call (address-space "
                "limit)", "trace": payload}
    if isinstance(result.exception, SystemExit):
        code = result.exception.code
        return {"outcome": "exit", "message": f"program called sys.exit({code!r})",
                "code": code if isinstance(code, int) else None, "trace": payload}
    return {"outcome": "ok", "trace": payload}


def _own_builtins() -> dict:
    """A copy of the builtins for the program, also what its ``import builtins`` gives.

    A program that replaces a builtin (``builtins.len = ...``) changes its own copy: its own
    calls see the change, as they would untraced, while the tracer and this script, whose
    globals hold the real builtins, keep working, so the outcome is the program's own error.
    """
    import builtins

    own = types.ModuleType("builtins", builtins.__doc__)
    own.__dict__.update(builtins.__dict__)
    sys.modules["builtins"] = own
    return own.__dict__


def _near_memory_limit(exc: BaseException, limits: dict) -> bool:
    """Did a tracer failure come from memory exhaustion (a MemoryError, seen or not)?

    A MemoryError inside the tracer's own bookkeeping can surface later as another error, so
    besides the exception chain the peak address space is compared with the limit.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    try:
        with open("/proc/self/status") as f:
            peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmPeak:"))
    except (OSError, StopIteration, ValueError):
        return False
    return peak_kib * 1024 >= 0.75 * limits["address_space_bytes"]


def _fork_and_relay(*fds: int) -> None:
    """Fork; the child returns and goes on, the parent waits and exits with its status.

    The parent closes its copies of the program's pipes (so the sandbox parent sees EOF when
    the child ends) and exits with the child's exit code, or 128 + signal number when killed.
    """
    pid = os.fork()
    if pid == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    for fd in (0, 1, 2, *fds):
        os.close(fd)
    while True:
        try:
            got, status = os.waitpid(-1, 0)  # as pid 1 we also reap orphans of the program
        except ChildProcessError:
            os._exit(1)
        if got == pid:
            break
    os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def enter_namespaces(*fds: int) -> None:
    """unshare(2) mount/net/ipc/uts/pid namespaces and fork: the child goes on as pid 1.

    The first process stays behind as a supervisor relaying pid 1's status; when the sandbox
    parent kills it, the parent-death signal kills pid 1 and so the whole pid namespace.
    """
    _check(_libc.unshare(CLONE_FLAGS), "unshare")
    _fork_and_relay(*fds)


def probe() -> None:
    """Print {"namespaces": bool, "seccomp": bool}: the set-up runs would use, tried for real."""
    pid = os.fork()
    if pid == 0:  # seccomp works if unshare(CLONE_NEWUSER) now fails, even for root
        try:
            ok = install_seccomp() and _libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1
        except OSError:
            ok = False
        os._exit(0 if ok else 1)
    found = {"seccomp": os.waitpid(pid, 0)[1] == 0, "namespaces": False}
    try:
        enter_namespaces()  # only pid 1 of the new namespaces comes back from here
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # first, or the next mount reaches the host
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        found["namespaces"] = os.getpid() == 1
    except OSError:
        pass
    os.write(1, json.dumps(found).encode())
    os._exit(0)


# ---------------------------------------------------------------------------------- zygote
# ``python -s -B _sandbox_child.py zygote LEVEL SOCKET_FD``: a warm worker of
# tracegym.tracers.zygote.SandboxPool. It pays the start-up once (Python, ``import tracegym``
# and, at the namespaces level, the read-only root), then forks one process per program, which
# goes on exactly as a per-call child does from step 3: fresh mount/pid/net/ipc/uts namespaces,
# a fresh tmpfs work dir and /proc, a relay, then step 5 (a fresh uid, rlimits, seccomp) and 6.
# The zygote never runs program code and reads nothing a program wrote (only exit statuses), so
# every fork starts from the same untouched state: a program can change only its own copy.
#
# Frames on the socket, both ways: a 4-byte big-endian length, then that much JSON. The pool
# sends {"config"} once (answered {"ready": pid} or {"error": text}), then per program a job
# with its stdout, stderr and result pipes attached (SCM_RIGHTS), answered by {"started": pid}
# once forked and {"returncode", "cpu_s"} once the program's processes are gone; {"kill": true}
# while a job runs ends it first. EOF on the socket (the pool closed, or its process died)
# ends the zygote.
RESULT_FD = 3  # a forked program's fds: 0 /dev/null, 1 stdout, 2 stderr, 3 the result pipe
CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000


def _send_frame(sock, obj: dict, fds=()) -> None:
    import socket

    data = json.dumps(obj).encode()
    head = len(data).to_bytes(4, "big")
    if fds:
        socket.send_fds(sock, [head], list(fds))  # the fds ride on the header's first byte
        sock.sendall(data)
    else:
        sock.sendall(head + data)


def _recv_exact(sock, n: int, got: bytes = b"") -> bytes | None:
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            return None
        got += chunk
    return got


def _recv_frame(sock, maxfds: int = 0) -> tuple[dict | None, list[int]]:
    """The next frame and the fds that came with it; ``(None, [])`` at EOF."""
    import socket

    if maxfds:
        head, fds, _, _ = socket.recv_fds(sock, 4, maxfds)
    else:
        head, fds = sock.recv(4), []
    head = _recv_exact(sock, 4, head) if head else None
    body = _recv_exact(sock, int.from_bytes(head, "big")) if head else None
    if body is None:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(body), fds


def zygote(level: str, sock_fd: int) -> None:
    """The warm worker's loop (see above); never returns."""
    try:
        config = json.loads(_read_frame(sock_fd))
        pid_ns = None
        if level == "namespaces":
            # A mount namespace of our own holding the programs' read-only root; each program
            # gets a copy of it (unshare) with its own work dir and /proc mounted on top.
            pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            _check(_libc.unshare(CLONE_NEWNS), "unshare")
            _fill_root(config)
            _pivot_root(config["root_dir"])
            _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        elif os.geteuid() != 0:
            # The programs share our uid here: keep our memory (/proc/PID/mem,
            # process_vm_writev) closed to them. Forks set it back for themselves.
            _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        from tracegym.tracers import TraceOptions, Tracer  # noqa: F401 - what the warmth is for
    except BaseException as exc:  # noqa: B036 - report any failure to the pool, then stop
        _write_frame(sock_fd, {"error": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    # What a per-call child has loaded by now; the zygote's own modules below are dropped in
    # each fork, so a program imports them afresh, as it would per call (or fails to).
    loaded = set(sys.modules)
    import select
    import socket

    own_modules = set(sys.modules) - loaded
    sock = socket.socket(fileno=sock_fd)
    _send_frame(sock, {"ready": os.getpid()})
    while True:
        job, fds = _recv_frame(sock, maxfds=3)
        if job is None:
            os._exit(0)
        if "kill" in job or len(fds) != 3:  # a kill that crossed its run's end: nothing to do
            for fd in fds:
                os.close(fd)
            continue
        pid = _spawn(level, job, fds, sock, pid_ns, devnull, own_modules)
        for fd in fds:
            os.close(fd)
        _send_frame(sock, {"started": pid})
        status, closing = _await(level, pid, sock, select)
        _send_frame(sock, status)
        if closing:
            os._exit(0)


def _read_frame(fd: int) -> bytes:
    """One frame's body from a raw fd (the config, before the socket module is loaded)."""
    def exact(n: int) -> bytes:
        got = b""
        while len(got) < n:
            chunk = os.read(fd, n - len(got))
            if not chunk:
                raise EOFError("the pool closed the socket")
            got += chunk
        return got

    return exact(int.from_bytes(exact(4), "big"))


def _write_frame(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def _spawn(level: str, job: dict, fds: list[int], sock, pid_ns, devnull: int,
           own_modules: set) -> int:
    """Fork the program's first process: pid 1 of a new pid namespace at the namespaces level,
    a session leader at both. The child sets up and runs the job and never returns."""
    if level == "namespaces":
        # unshare(CLONE_NEWPID) puts our next child in a new pid namespace; setns back to ours
        # first, as the kernel refuses a second unshare while the first one's is still set.
        _check(_libc.setns(pid_ns, CLONE_NEWPID), "setns")
        _check(_libc.unshare(CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid:
        return pid
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the zygote gone: so are we
        import fcntl

        # the job's pipes onto 1, 2, 3 (through high numbers: they may sit on 0..3 now), then
        # nothing else of the zygote's: not its socket, not its pid namespace
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (devnull, *fds)]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
        sock.detach()
        os.closerange(RESULT_FD + 1, _max_fd())
        for name in own_modules:
            sys.modules.pop(name, None)
        os.environ.clear()
        os.environ.update(job["env"])
        sys.argv[:] = [sys.argv[0], level, "-", str(RESULT_FD)]  # as a per-call child's
        record = None
        try:
            if level == "namespaces":
                _check(_libc.unshare(CLONE_FLAGS & ~CLONE_NEWPID), "unshare")
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                _mount_work(job["work_path"], job)
                _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                os.chdir(job["work_path"])
            else:
                if os.geteuid() != 0:
                    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
                os.chdir(job["home"])
            os.setsid()  # its own group: a program's kill(0) or killpg stays in its run
            _fork_and_relay(RESULT_FD)  # as in main(): the program runs as pid 2
            record = run(job)
        except MemoryError:
            record = {"outcome": "memory", "message": "MemoryError in the sandbox"}
        except BaseException as exc:  # noqa: B036
            record = {"outcome": "setup_error", "message": f"{type(exc).__name__}: {exc}"}
        report(record, job, RESULT_FD)
    finally:
        os._exit(1)  # never back into the zygote's loop


def _max_fd() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if 0 < soft < (1 << 20) else (1 << 20)


def _await(level: str, pid: int, sock, select) -> tuple[dict, bool]:
    """Wait for the forked program's first process to end (killing it when the pool asks, or
    when the pool is gone); ``(status, the pool is gone)``.

    At the namespaces level that process is pid 1: it ends only once the kernel has killed and
    reaped everything else in its namespace, so nothing of the program is left by then.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: poll the child instead
        pidfd = None
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    killed = closing = False
    while True:
        if pidfd is None:
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got:
                break
        events = poller.poll(None if pidfd is not None else 10)
        if not closing and any(fd == sock.fileno() for fd, _ in events):
            frame, _ = _recv_frame(sock)
            if frame is None:  # the pool is gone: end the run, then ourselves
                closing = True
                poller.unregister(sock)
            if not killed:
                _kill_program(level, pid)
                killed = True
        if pidfd is not None and any(fd == pidfd for fd, _ in events):
            _, status, usage = os.wait4(pid, 0)
            os.close(pidfd)
            break
    code = os.waitstatus_to_exitcode(status)
    if level == "namespaces" and code < 0:
        code = 128 - code  # what a per-call supervisor relays for a killed pid 1
    return {"returncode": code, "cpu_s": usage.ru_utime + usage.ru_stime}, closing


def _kill_program(level: str, pid: int) -> None:
    """SIGKILL the program: pid 1 takes its whole namespace; else its session's group."""
    if level != "namespaces":
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # not yet a group leader: it has forked nothing yet
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def main() -> None:
    level = sys.argv[1]
    if level == "probe":  # what works on this machine? (sandbox_capabilities)
        probe()
    if level == "zygote":  # a warm worker (SandboxPool)
        zygote(sys.argv[2], int(sys.argv[3]))
    input_path, result_fd = sys.argv[2], int(sys.argv[3])
    if level == "namespaces":
        enter_namespaces(result_fd)
    with open(input_path, encoding="utf-8") as f:
        job = json.load(f)
    os.unlink(input_path)
    try:
        if level == "namespaces":
            build_root(job)
        # pid 1 ignores signals it has no handler for (SIGXCPU, SIGTERM, ...), so the program
        # runs as pid 2; pid 1 only waits, and its exit ends the namespace. At the rlimits
        # level the same fork makes os.getppid() this relay, not the sandbox's caller.
        _fork_and_relay(result_fd)
        record = run(job)
    except MemoryError:
        record = {"outcome": "memory", "message": "MemoryError in the sandbox"}
    except BaseException as exc:  # noqa: B036
        record = {"outcome": "setup_error", "message": f"{type(exc).__name__}: {exc}"}
    report(record, job, result_fd)


def report(record: dict, job: dict, result_fd: int) -> None:
    """Write ``record`` to the result pipe and ``os._exit``: the end of every program process."""
    for stream in (sys.stdout, sys.stderr):  # os._exit below skips the usual flush
        try:
            stream.flush()
        except BaseException:  # noqa: B036 - a program may have replaced or closed them
            pass
    data = _dumps(record).encode()
    limit = job["limits"]["result_bytes"]
    if len(data) > limit:  # the parent takes an oversized record for a forged one (violation)
        data = _dumps({"outcome": "result_limit", "message": f"the trace's JSON is "
                           f"{len(data)} bytes, more than Limits.result_bytes={limit}"}).encode()
    try:
        view = memoryview(data)
        while view:
            view = view[_write(result_fd, view):]
        os.close(result_fd)
    finally:
        # Skip atexit handlers and non-daemon threads the program may have left behind.
        os._exit(0)


if __name__ == "__main__":
    main()
