"""The in-process runner (``tracegym.tracers.in_process``): outcomes in the sandbox's vocabulary,
the wall-time alarm (main thread only), and 3.10's forked worker, exercised on any Python."""

import signal
import sys
import threading

import pytest

from tracegym.tracers import TraceOptions, in_process
from tracegym.tracers.in_process import run_in_process
from tracegym.tracers.outcomes import RUN_OUTCOMES
from tracegym.tracers.programs import Program

SOURCE = '''\
import sys

LIMIT = 3


def add(a, b):
    return a + b


def boom(x):
    raise ValueError(f"bad {x}")


def leave(code):
    sys.exit(code)


def hungry():
    raise MemoryError


def spin(n):
    while True:
        n += 1


def forever(n):
    i = 0
    while True:
        try:
            i += n
        except BaseException:
            pass


def grow(xs):
    xs.append(1)
    return len(xs)
'''


@pytest.fixture
def here(monkeypatch):
    """Runs in this very process, on any Python (3.10 would use the forked worker)."""
    monkeypatch.setattr(in_process, "_FORKED", False)


@pytest.mark.parametrize("entry, args, outcome, message", [
    ("add", (1, 2), "ok", ""),
    ("boom", (3,), "ok", ""),  # raised: still a full trace
    ("leave", (4,), "exit", "program called sys.exit(4)"),
    ("hungry", (), "memory", "MemoryError during the call"),
    ("LIMIT", (), "entry_not_callable", "entry 'LIMIT' is not callable"),
    ("nope", (), "entry_missing", "entry 'nope' not defined; callables: ['add', 'boom'"),
])
def test_run__outcomes_share_the_sandbox_vocabulary(here, entry, args, outcome, message):
    result = run_in_process(SOURCE, entry, args)
    assert result.outcome == outcome and result.outcome in RUN_OUTCOMES, result
    assert result.message.startswith(message) and result.isolation == "in-process"
    assert (result.trace is not None) == (outcome in ("ok", "exit", "memory"))


def test_run__ok_keeps_the_result_and_the_exception(here):
    done = run_in_process(SOURCE, "add", (1,), {"b": 2})
    assert done.trace.return_repr == "3" and done.trace.result == 3
    raised = run_in_process(SOURCE, "boom", (3,))
    assert raised.trace.exception_repr == "ValueError('bad 3')"
    assert isinstance(raised.trace.exception, ValueError)
    assert raised.unwrap() is raised.trace


def test_run__the_callers_arguments_stay_intact(here):
    xs = [0]
    assert run_in_process(SOURCE, "grow", (xs,)).trace.return_repr == "2"
    assert xs == [0]


def test_run__module_code_failures(here):
    broken = run_in_process("def f(:\n    pass\n", "f")
    assert broken.outcome == "syntax_error" and broken.detail["lineno"] == 1
    assert broken.trace is None
    raising = run_in_process("raise KeyError('at import')\ndef f():\n    pass\n", "f")
    assert (raising.outcome, raising.message) == ("module_error", "KeyError: 'at import'")
    leaving = run_in_process("import sys\nsys.exit(2)\n", "f")  # as the sandbox reports it
    assert (leaving.outcome, leaving.detail) == ("exit", {"code": 2}) and leaving.trace is None


def test_run__a_program_runs_under_its_own_name_and_options(here):
    program = Program("p", SOURCE, "add", ((1, 2),), origin="directory", location="p.py")
    result = run_in_process(program, None, (1, 2), trace_options={"max_events": 2})
    assert result.outcome == "ok" and result.trace.truncated
    assert run_in_process(program, "add", (5, 6),
                          trace_options=TraceOptions(max_repr=5)).trace.return_repr == "11"


@pytest.mark.parametrize("entry", ["spin", pytest.param("forever", marks=pytest.mark.skipif(
    in_process._FORKED, reason="3.10 cannot end this loop in-process: the forked worker's job"))])
def test_run__a_looping_call_times_out_with_its_trace(here, entry):
    result = run_in_process(SOURCE, entry, (1,), timeout=0.2,
                            trace_options={"max_events": 100})
    assert result.outcome == "timeout" and result.message == "wall time 0.2s exceeded"
    assert "CallTimeout" in result.trace.exception_repr and result.trace.truncated


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_run__a_loop_that_swallows_the_alarm_ends_on_every_python():
    # 3.11+: the alarm raises again every 0.2 s until it lands outside the try; 3.10: the call
    # goes to the forked worker, which is killed
    result = run_in_process(SOURCE, "forever", (1,), timeout=0.2,
                            trace_options={"max_events": 100})
    assert result.outcome == "timeout", result


def test_run__looping_module_code_times_out(here):
    result = run_in_process("while True:\n    pass\n\ndef f():\n    pass\n", "f", timeout=0.2)
    assert result.outcome == "timeout" and "module code" in result.message
    assert result.trace is None


def test_run__the_alarm_gives_back_sigalrm(here):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        run_in_process(SOURCE, "spin", (0,), timeout=0.1, trace_options={"max_events": 10})
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_run__off_the_main_thread_the_alarm_stands_aside(here):
    # Python installs and runs signal handlers in the main thread only: elsewhere the alarm
    # does nothing (and touches no handler), and a call that ends still gives its trace
    found = {}

    def work():
        found["usable"] = in_process._Alarm(1.0).usable
        found["result"] = run_in_process(SOURCE, "add", (1, 2))

    handler = signal.getsignal(signal.SIGALRM)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert found["usable"] is False and found["result"].trace.return_repr == "3"
    assert signal.getsignal(signal.SIGALRM) is handler


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout": 0}, "timeout must be a number of seconds > 0, got 0"),
    ({"timeout": float("inf")}, "timeout must be a number of seconds > 0, got inf"),
    ({"timeout": True}, "timeout must be a number of seconds > 0, got True"),
    ({"entry": "no such"}, "entry must be an identifier, got 'no such'"),
    ({"args": 5}, "args must be a tuple or list, got int"),
    ({"kwargs": {1: 2}}, "kwargs must be a mapping with str keys, got {1: 2}"),
    ({"trace_options": {"depth": 3}}, "trace_options has unknown fields ['depth']"),
    ({"trace_options": 3}, "trace_options must be a TraceOptions or dict, got 3"),
    ({"program": b"def f(): pass"}, "program must be source text or a Program, got bytes"),
])
def test_run__bad_input_names_the_field(here, kwargs, message):
    call = {"program": SOURCE, "entry": "add", "args": (1, 2), **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_in_process(call.pop("program"), call.pop("entry"), **call)


def test_run__a_program_with_another_entry_is_refused():
    program = Program("p", SOURCE, "add", ())
    with pytest.raises(ValueError, match="entry: the program's entry is 'add', got 'boom'"):
        run_in_process(program, "boom")


# ---------------------------------------------------------------------------------------------
# 3.10's forked worker, on any Python

HOSTILE = '''\
import os
import signal


def spin(n):
    while True:
        n += 1


def deaf(n):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # no alarm ends it, on any Python
    while True:
        n += 1


def gone(n):
    os._exit(3)


def add(a, b):
    return a + b
'''


@pytest.fixture
def forked(monkeypatch):
    """In-process calls through 3.10's forked worker, on any Python."""
    worker = in_process._Worker()
    monkeypatch.setattr(in_process, "_FORKED", True)
    monkeypatch.setattr(in_process, "_WORKER", worker)
    yield worker
    worker.close()


# the test process may have threads (pyarrow's); the worker runs pure Python until it is killed
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked__killed_past_the_timeout_and_replaced(forked):
    options = {"max_events": 50}
    spin = run_in_process(HOSTILE, "spin", (0,), timeout=0.2, trace_options=options)
    assert spin.outcome == "timeout" and "CallTimeout" in spin.trace.exception_repr  # its alarm
    assert spin.trace.exception is None and spin.trace.truncated  # live objects stay behind
    first = forked.process
    deaf = run_in_process(HOSTILE, "deaf", (0,), timeout=0.2, trace_options=options)
    assert deaf.outcome == "timeout" and "killed" in deaf.message and deaf.trace is None
    assert not first.is_alive()
    gone = run_in_process(HOSTILE, "gone", (0,), timeout=0.2)
    assert gone.outcome == "crash" and "exit code 3" in gone.message and gone.returncode == 3
    add = run_in_process(HOSTILE, "add", (1, 2), timeout=0.2)
    assert add.outcome == "ok" and add.trace.return_repr == "3"  # a fresh worker after each
    assert forked.process is not None and forked.process.is_alive()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked__gives_what_this_process_gives(monkeypatch, forked):
    for entry, args in (("add", (1, 2)), ("boom", (3,)), ("leave", (5,)), ("nope", ())):
        monkeypatch.setattr(in_process, "_FORKED", True)
        there = run_in_process(SOURCE, entry, args)
        monkeypatch.setattr(in_process, "_FORKED", False)
        here = run_in_process(SOURCE, entry, args)
        assert (there.outcome, there.message, there.detail) == \
            (here.outcome, here.message, here.detail)
        assert (there.trace is None) == (here.trace is None)
        if here.trace is not None:
            assert there.trace.to_json() == here.trace.to_json()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked__arguments_that_do_not_pickle_run_here(forked):
    result = run_in_process("def f(g):\n    return g(2)\n", "f", (lambda x: x + 1,))
    assert result.outcome == "ok" and result.trace.return_repr == "3"
    assert forked.process is not None  # started, but the call did not go to it


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ traces beside a settrace function")
def test_run__a_tracer_the_module_installs_is_a_tracer_error(here):
    source = "import sys\nsys.settrace(lambda *a: None)\ndef f():\n    return 1\n"
    try:
        result = run_in_process(source, "f")
    finally:
        sys.settrace(None)  # in-process: the module code's tracer is this process's
    assert result.outcome == "tracer_error" and "already installed" in result.message
