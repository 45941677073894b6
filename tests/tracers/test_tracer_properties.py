"""Properties of the tracer over generated programs, drawn with tracegym's own strategies."""

import ast
import copy
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracegym.tracers import Trace, trace
from tracegym.tracers.strategies import inputs_for, programs, traced_programs

SETTINGS = settings(max_examples=60, deadline=None,
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


@SETTINGS
@given(program_calls())
def test_trace__returns_and_raises_as_the_untraced_call(item):
    program, call = item
    fn = program.load()
    untraced = _outcome(fn, call)
    args = call.copy()
    result = trace(fn, *args.args, **args.kwargs)
    if untraced[0] == "return":
        assert result.exception is None and repr(result.result) == untraced[1]
        assert result.return_repr == untraced[1][:len(result.return_repr)] or \
            result.return_repr.endswith("<truncated>")
    else:
        err = result.exception
        assert ("raise", type(err).__name__, repr(err.args)) == untraced
    assert _outcome(fn, call) == untraced  # and the function still behaves the same afterwards


@SETTINGS
@given(program_calls())
def test_trace__leaves_global_state_as_it_was(item):
    program, call = item
    namespace = program.namespace()
    before = (sys.gettrace(), sys.getprofile(), sorted(namespace), sys.getrecursionlimit())
    args = call.copy()
    trace(namespace[program.entry], *args.args, **args.kwargs)
    after = (sys.gettrace(), sys.getprofile(), sorted(namespace), sys.getrecursionlimit())
    assert after == before
    # the program's globals hold what an untraced run leaves there
    plain = program.namespace()
    _outcome(plain[program.entry], call)
    assert {k: repr(v) for k, v in namespace.items() if k != "__builtins__"
            and not callable(v)} == {k: repr(v) for k, v in plain.items()
                                     if k != "__builtins__" and not callable(v)}


@SETTINGS
@given(traced_programs())
def test_trace__cwm_and_json_round_trips(item):
    t = item.trace
    text = t.to_cwm()
    assert Trace.from_cwm(text).to_cwm() == text
    assert Trace.from_json(t.to_json()) == t


@SETTINGS
@given(traced_programs())
def test_trace__line_numbers_lie_inside_their_function(item):
    tree = ast.parse(item.program.source)
    spans = {node.name: (node.lineno, node.end_lineno) for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef)}
    lines = item.program.source.splitlines()
    for frame in item.trace.frames:
        if frame.function in spans:  # comprehension frames are named <listcomp> etc.
            first, last = spans[frame.function]
            assert first <= frame.lineno <= last, (frame, first, last)
            assert lines[frame.lineno - 1].strip() == frame.source.strip()


def _values(reprs: dict) -> dict | None:
    """The locals back from their reprs, or None when one is not a Python literal."""
    try:
        return {name: ast.literal_eval(text) for name, text in reprs.items()}
    except (ValueError, SyntaxError):
        return None


@SETTINGS
@given(traced_programs(kind="straight_line"))
def test_trace__replaying_straight_line_frames_gives_the_next_locals(item):
    frames = item.trace.frames
    replayed = 0
    for now, nxt in zip(frames, frames[1:]):
        if now.event not in ("call", "line") or nxt.event != "line" or now.depth or nxt.depth:
            continue
        if now.event == "call":
            continue
        state = _values(now.locals)
        if state is None:
            continue
        exec(compile(now.source.strip(), "<replay>", "exec"), {}, state)  # noqa: S102
        assert {k: repr(v) for k, v in state.items()} == nxt.locals, now.source
        replayed += 1
    assert replayed or sum(f.event == "line" for f in frames) <= 2


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program_calls())
def test_trace__sandbox_and_in_process_agree(item):
    from tracegym.tracers import trace_source

    program, call = item
    local = trace(program.load(), *copy.deepcopy(call.args), **copy.deepcopy(call.kwargs))
    remote = trace_source(program.source, program.entry, call.args, call.kwargs)
    assert remote.to_cwm() == local.to_cwm()
    assert [f[:5] for f in remote.frames] == [f[:5] for f in local.frames]
