"""Properties of the tracer over generated programs, drawn with tracegym's own strategies.

The properties any tracer should have (returns and raises as untraced, leaves global state as
found, well nested, lines in their function, straight-line replay, equal to the reference,
deterministic) are the conformance kit's (tracegym.tracers.conformance), run against every
recorder in tests/tracers/test_conformance.py; here are those about tracegym's own formats
(CWM, JSON), its sandbox and its recorders compared with each other."""

import copy
import dataclasses
import importlib
import sys

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tracegym.tracers import Trace, TraceOptions, Tracer, trace
from tracegym.tracers.cwm import scrub_addresses
from tracegym.tracers.strategies import (
    generator_programs,
    inputs_for,
    programs,
    traced_programs,
)

trace_module = importlib.import_module("tracegym.tracers.trace")  # the module, not trace()
MONITORING = sys.version_info >= (3, 12)
HAS_C = trace_module.C_UNAVAILABLE is None and not MONITORING

# No explain phase: on 3.10 and 3.11 it replays a failing example under its own settrace
# function, which the tracer refuses to hide (TracerConflictError) and so would mask the failure.
PHASES = tuple(p for p in Phase if p is not Phase.explain)
SETTINGS = settings(max_examples=60, deadline=None, phases=PHASES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _outcome(fn, call):
    """(``"return"``, repr) or (``"raise"``, type name, args) of an untraced call on a copy."""
    call = call.copy()
    try:
        return ("return", repr(fn(*call.args, **call.kwargs)))
    except Exception as err:  # noqa: BLE001 - the outcome is what we compare
        return ("raise", type(err).__name__, repr(err.args))


@st.composite
def program_calls(draw, kind="mixed"):
    program = draw(programs(kind=kind, max_statements=10))
    return program, draw(inputs_for(program))


def _cwm_view(t: Trace) -> Trace:
    """``t`` as its CWM text holds it (see tracers/cwm.py): no function names, file name, entry
    name or truncation flag; lines counted from the context's first. A source line written more
    than once in the context gets line 0 here, on both sides: the text cannot say which."""
    counts: dict[str, int] = {}
    for line in t.context.split("\n"):
        counts[line] = counts.get(line, 0) + 1
    first = 1 if t.context_lineno is None else t.context_lineno
    return dataclasses.replace(
        t, entry="", filename="", context_lineno=1, truncated=False,
        entry_lineno=None if t.entry_lineno is None else t.entry_lineno - first + 1,
        frames=[f._replace(function="", lineno=f.lineno - first + 1 if counts.get(f.source) == 1
                           else 0) for f in t.frames])


def _check_round_trips(t: Trace) -> None:
    text = t.to_cwm()
    back = Trace.from_cwm(text)
    assert back.to_cwm() == text
    assert _cwm_view(back) == _cwm_view(t)  # the whole Trace: depths, outcome, context too
    assert Trace.from_json(t.to_json()) == t


@SETTINGS
@given(traced_programs())
def test_trace__cwm_and_json_round_trips(item):
    _check_round_trips(item.trace)


@SETTINGS
@given(generator_programs())
def test_generators__cwm_and_json_round_trips(program):
    """The outcome and every frame's text come back. Depths too in most programs, but not all:
    after a frame left without a return frame (an exception, a generator closed) the parser
    finds the frame a line belongs to from the context, and a line written in both (``try:``
    in the generator and in its caller) leaves it undecided (see tracers/cwm.py)."""
    t = _scrubbed(_with("auto", program, program.inputs[0]))
    text = t.to_cwm()
    back = Trace.from_cwm(text)
    assert back.to_cwm() == text and Trace.from_json(t.to_json()) == t
    assert (back.return_repr, back.exception_repr) == (t.return_repr, t.exception_repr)
    assert [f[:1] + f[2:5] for f in back.frames] == [f[:1] + f[2:5] for f in t.frames]


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
@settings(max_examples=5, deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow])
@given(program_calls())
def test_trace__sandbox_and_in_process_agree(item):
    from tracegym.tracers import trace_source

    program, call = item
    local = trace(program.load(), *copy.deepcopy(call.args), **copy.deepcopy(call.kwargs))
    remote = trace_source(program.source, program.entry, call.args, call.kwargs)
    assert remote.to_cwm() == local.to_cwm()
    assert [f[:5] for f in remote.frames] == [f[:5] for f in local.frames]


# ------------------------------------------------------------------------ generators
# Generators consumed, abandoned (at once, in a callee, until the entry returns), closed, left
# by break, raising inside, delegating with yield from, through generator expressions.
def _scrubbed(t: Trace) -> Trace:
    return scrub_addresses(t)  # generator objects' reprs hold addresses


def _with(backend: str, program, call) -> Trace:
    args = call.copy()
    return Tracer(TraceOptions(backend=backend)).trace(program.load(), *args.args, **args.kwargs)


@SETTINGS
@given(generator_programs())
def test_generators__traced_call_behaves_as_untraced(program):
    """A generator is closed (its finally run) where it would be untraced: the result, which
    holds what the generators logged, is the untraced one, under every recorder."""
    call = program.inputs[0]
    untraced = _outcome(program.load(), call)
    for backend in ("python", "c") if HAS_C else ("python",):
        t = _with(backend, program, call)
        got = ("return", repr(t.result)) if t.exception is None else (
            "raise", type(t.exception).__name__, repr(t.exception.args))
        assert got == untraced, (backend, program.source)


@pytest.mark.skipif(not HAS_C, reason="the C recorder runs on CPython 3.11 when built")
@SETTINGS
@given(generator_programs())
def test_generators__c_and_python_recorders_give_the_same_trace(program):
    call = program.inputs[0]
    py, c = _with("python", program, call), _with("c", program, call)
    assert _scrubbed(c) == _scrubbed(py), program.source


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring is used from Python 3.12")
@SETTINGS
@given(generator_programs())
def test_generators__monitoring_and_settrace_give_the_same_trace(program):
    call = program.inputs[0]
    monitored = _with("python", program, call)
    args = call.copy()
    settraced = trace_module._SettraceTracer(TraceOptions(backend="python")).trace(
        program.load(), *args.args, **args.kwargs)
    assert _scrubbed(monitored) == _scrubbed(settraced), program.source


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
@settings(max_examples=5, deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow])
@given(generator_programs())
def test_generators__sandbox_and_in_process_agree(program):
    from tracegym.tracers import trace_source

    call = program.inputs[0]
    remote = trace_source(program.source, program.entry, call.args, call.kwargs)
    local = _with("auto", program, call)
    # the sandbox compiles the source as "<program>"; everything else is the same
    assert _scrubbed(remote) == dataclasses.replace(_scrubbed(local), filename="<program>")
