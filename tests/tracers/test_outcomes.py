"""One program per outcome label (tracers/outcomes.py): each label names what happened.

Every run goes through the sandbox (``run_source``, and the warm ``SandboxPool``), which gives
every run label; the dataset record's own labels come from :func:`trace_outcome` and from the
errors the builder turns into ``argument_error`` and ``format_error``.
"""

from __future__ import annotations

import sys

import pytest

from tracegym.errors import ArgumentSerialisationError, SandboxOutputLimit, TraceFormatError
from tracegym.tracers import Limits, run_source, sandbox
from tracegym.tracers.outcomes import RECORD_OUTCOMES, RUN_OUTCOMES, trace_outcome
from tracegym.tracers.zygote import SandboxPool

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

RETURNS = "def f():\n    return 1\n"
LOOP = "def f():\n    t = 0\n    for i in range(300):\n        t += i\n    return t\n"
if sys.version_info >= (3, 12):  # every tool id the tracer may take is in use
    TAKES_THE_TRACER = "import sys\nfor i in (3, 4, 5):\n    sys.monitoring.use_tool_id(i, 'x')\n"
else:  # a settrace function the tracer would have to hide
    TAKES_THE_TRACER = "import sys\nsys.settrace(lambda *a: None)\n"

# label -> (source, limits, what the message says)
PROGRAMS = {
    "ok": (RETURNS, Limits(), ""),
    "timeout": ("import time\ndef f():\n    time.sleep(60)\n", Limits(wall_time_s=1.0),
                "wall time"),
    "memory": ("def f():\n    return bytearray(8 << 30)\n", Limits(), "MemoryError"),
    "exit": ("import sys\ndef f():\n    sys.exit(3)\n", Limits(), "sys.exit(3)"),
    "syntax_error": ("def f(:\n", Limits(), ""),
    "module_error": ("raise ValueError('at import')\n", Limits(), "at import"),
    "entry_missing": ("def g():\n    pass\n", Limits(), "not defined"),
    "entry_not_callable": ("f = 3\n", Limits(), "not callable"),
    "crash": ("import os\ndef f():\n    os._exit(7)\n", Limits(), "code 7"),
    "output_limit": ("def f():\n    print('x' * 5000)\n", Limits(output_bytes=1000),
                     "1000 bytes"),
    # a harmless loop whose trace is too large to send back: not a forged result (violation)
    "result_limit": (LOOP, Limits(result_bytes=5000), "Limits.result_bytes=5000"),
    "violation": ("import os, sys\ndef f():\n    os.write(int(sys.argv[3]), b'forged')\n"
                  "    os._exit(0)\n", Limits(), "no valid record"),
    "tracer_error": (TAKES_THE_TRACER + RETURNS, Limits(), "during trace"),
    "serialise_error": ("import json\njson.dumps = None\n" + RETURNS, Limits(),
                        "during serialise"),
}


def test_every_run_label_has_a_program_here():
    assert set(PROGRAMS) | {"setup_error"} == set(RUN_OUTCOMES)
    assert set(RUN_OUTCOMES) - {"ok"} < set(RECORD_OUTCOMES)


@pytest.fixture(scope="module")
def pool():
    """A warm sandbox (tracers/zygote.py): it must give every label as run_source does."""
    with SandboxPool(workers=1) as pool:
        yield pool


@pytest.fixture(params=["per-call", "warm"])
def run(request):
    """``run_source``, per call or in the warm sandbox."""
    if request.param == "per-call":
        return run_source
    return request.getfixturevalue("pool").run_source


@pytest.mark.parametrize("label", sorted(PROGRAMS))
def test_run_source__one_program_per_label(label, run):
    source, limits, says = PROGRAMS[label]
    result = run(source, "f", limits=limits)
    assert result.outcome == label, result
    assert says in result.message, result.message


def test_run_source__result_limit_unwraps_to_an_output_limit():
    result = run_source(LOOP, "f", limits=Limits(result_bytes=5000))
    with pytest.raises(SandboxOutputLimit, match="result_limit"):
        result.unwrap()
    assert run_source(LOOP, "f").outcome == "ok"  # the same program under the default limits


def test_run_source__setup_error_is_the_sandbox_failing(monkeypatch, run):
    # options the parent's check lets through but the child's TraceOptions refuses
    monkeypatch.setattr(sandbox, "_check_trace_options", lambda options: {"max_repr": 0})
    result = run(RETURNS, "f")
    assert result.outcome == "setup_error" and "cannot set up the tracer" in result.message


@pytest.mark.parametrize("where", ["module", "call"])
@pytest.mark.parametrize("name", ["len", "isinstance", "type", "str", "getattr", "callable",
                                  "bool", "repr"])
def test_run_source__a_program_replacing_builtins_gets_its_own_outcome(name, where, run):
    """The program has its own copy of the builtins: replacing one breaks only the program."""
    change = f"import builtins\nbuiltins.{name} = None\n"
    if where == "module":
        source = change + f"def f():\n    return {name}(1)\n"
    else:
        source = "def f():\n" + "".join(f"    {line}\n" for line in change.splitlines()) + \
            f"    return {name}(1)\n"
    result = run(source, "f")
    assert result.outcome == "ok", result
    assert trace_outcome(result.trace) == "exception"
    assert result.trace.exception_repr.startswith("TypeError(")  # None(1): not callable


def test_record_labels_from_the_trace():
    ok = run_source(RETURNS, "f")
    raised = run_source("def f():\n    raise KeyError(1)\n", "f")
    truncated = run_source(LOOP, "f", trace_options={"max_events": 5})
    assert [trace_outcome(r.trace) for r in (ok, raised, truncated)] == [
        "ok", "exception", "truncated"]


def test_record_labels_of_the_builder():
    # argument_error: the arguments cannot be sent; format_error: no CWM text for the trace
    with pytest.raises(ArgumentSerialisationError):
        run_source(RETURNS, "f", args=(object(),))
    special = run_source("def f():\n    x = 1  # <|frame_sep|>\n    return x\n", "f")
    assert special.outcome == "ok"
    with pytest.raises(TraceFormatError):
        special.trace.to_cwm()
