"""The Trace model's text forms: CWM trace text (exact format, round trip, errors) and JSON."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracegym.errors import TraceFormatError, TracegymError
from tracegym.tracers import Frame, Trace, TraceOptions, Tracer


def square_sum(xs):
    total = 0
    for x in xs:
        total += x * x
    return total


EXPECTED_SQUARE_SUM = (
    "<|trace_context_start|>"
    "def square_sum(xs):  # << START_OF_TRACE\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        total += x * x\n"
    "    return total\n"
    "<|frame_sep|>"
    '<|call_sep|>{"xs": "[1, 2]"}<|action_sep|>def square_sum(xs):\n<|frame_sep|>'
    '<|line_sep|>{"xs": ".."}<|action_sep|>    total = 0\n<|frame_sep|>'
    '<|line_sep|>{"xs": "..", "total": "0"}<|action_sep|>    for x in xs:\n<|frame_sep|>'
    '<|line_sep|>{"xs": "..", "total": "..", "x": "1"}<|action_sep|>'
    "        total += x * x\n<|frame_sep|>"
    '<|line_sep|>{"xs": "..", "total": "1", "x": ".."}<|action_sep|>    for x in xs:\n'
    "<|frame_sep|>"
    '<|line_sep|>{"xs": "..", "total": "..", "x": "2"}<|action_sep|>'
    "        total += x * x\n<|frame_sep|>"
    '<|line_sep|>{"xs": "..", "total": "5", "x": ".."}<|action_sep|>    for x in xs:\n'
    "<|frame_sep|>"
    '<|line_sep|>{"xs": "..", "total": "..", "x": ".."}<|action_sep|>    return total\n'
    "<|frame_sep|>"
    '<|return_sep|><|action_sep|>    return total<|arg_sep|>"5"<|frame_sep|>'
)


@pytest.fixture
def square_trace() -> Trace:
    return Tracer(TraceOptions(context="function")).trace(square_sum, [1, 2])


def test_to_cwm__matches_hand_written_text(square_trace):
    assert square_trace.to_cwm() == EXPECTED_SQUARE_SUM


def test_from_cwm__recovers_full_locals(square_trace):
    back = Trace.from_cwm(EXPECTED_SQUARE_SUM)
    assert [f.locals for f in back.frames] == [f.locals for f in square_trace.frames]
    assert [f.event for f in back.frames] == [f.event for f in square_trace.frames]
    assert [f.lineno for f in back.frames] == [
        f.lineno - square_trace.context_lineno + 1 for f in square_trace.frames
    ]
    assert back.context == square_trace.context and back.entry_lineno == 1
    assert back.return_repr == "5"
    assert back.to_cwm() == EXPECTED_SQUARE_SUM


def test_to_cwm__no_unchanged_marker_after_a_callee_returns():
    def inner(v):
        return v

    def outer(a):
        b = inner(a)
        return b

    text = Tracer(TraceOptions(context="function")).trace(outer, 1).to_cwm()
    # After inner's return frame, outer's next line frame carries full values again.
    after = text.split('<|arg_sep|>"1"<|frame_sep|><|line_sep|>', 1)[1].split("<|action_sep|>")[0]
    assert json.loads(after)["a"] == "1" and ".." not in json.loads(after).values()


def test_to_cwm__refuses_special_tokens_in_sources():
    t = Trace(entry="f", context="x = '<|frame_sep|>'\n", frames=[])
    with pytest.raises(TraceFormatError, match=re.escape("context contains the special token")):
        t.to_cwm()


def test_json__round_trip(square_trace):
    assert Trace.from_json(square_trace.to_json()) == square_trace


CTX = "<|trace_context_start|>def f():\n<|frame_sep|>"


@pytest.mark.parametrize(
    "text,offset,expected",
    [
        ("", 0, "<|trace_context_start|>"),
        ("def f(): pass", 0, "<|trace_context_start|>"),
        ("<|trace_context_start|>abc", 26, "<|frame_sep|> after the context"),
        (CTX + "garbage", len(CTX), "an event token"),
        (CTX + "<|line_sep|>{bad", len(CTX) + 12, "a JSON object of locals"),
        (CTX + "<|line_sep|>[1]<|action_sep|>x\n<|frame_sep|>", len(CTX) + 12,
         "a JSON object of locals"),
        (CTX + '<|line_sep|>{"a": 1}<|action_sep|>x\n<|frame_sep|>', len(CTX) + 20,
         "locals whose values are JSON strings"),
        (CTX + "<|line_sep|>{}x", len(CTX) + 14, "<|action_sep|>"),
        (CTX + "<|line_sep|>{}<|action_sep|>x", len(CTX) + 29, "a newline ending the source"),
        (CTX + "<|line_sep|>{}<|action_sep|>x\n", len(CTX) + 30, "<|frame_sep|>"),
        (CTX + "<|return_sep|>x", len(CTX) + 14, "<|action_sep|>"),
        (CTX + "<|return_sep|><|action_sep|>x<|frame_sep|>", len(CTX) + 28,
         "a source line followed by <|arg_sep|>"),
        (CTX + "<|return_sep|><|action_sep|>x<|arg_sep|>5<|frame_sep|>", len(CTX) + 40,
         "a JSON string value"),
        (CTX + '<|exception_sep|><|action_sep|>x<|arg_sep|>"E"', len(CTX) + 46, "<|frame_sep|>"),
    ],
)
def test_from_cwm__errors_name_offset_and_expectation(text, offset, expected):
    with pytest.raises(TraceFormatError) as info:
        Trace.from_cwm(text)
    msg = str(info.value)
    assert msg.startswith(f"malformed CWM trace at offset {offset}: expected {expected}")
    assert isinstance(info.value, TracegymError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["", "[]", "{", '{"version": 1}', '{"version": 99}'])
def test_from_json__errors(text):
    with pytest.raises(TraceFormatError):
        Trace.from_json(text)


# ------------------------------------------------------------------ random Trace objects
# Text without special tokens (a "<" never followed by "|") and, for lines, without newlines.
_plain = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="|\r\n"),
                 max_size=12)
_names = st.sampled_from(["a", "b", "xs", "total", "_k", "ü"])
_reprs = st.one_of(_plain, st.just(".."), st.sampled_from(["1", "[1, 2]", "'s'", "None"]))
_locals = st.dictionaries(_names, _reprs, max_size=4)


@st.composite
def frames(draw) -> Frame:
    event = draw(st.sampled_from(["call", "line", "return", "exception"]))
    has_locals = event in ("call", "line")
    return Frame(
        event=event,
        lineno=draw(st.integers(0, 50)),
        source=draw(_plain),
        locals=draw(_locals) if has_locals else {},
        arg=None if has_locals else draw(st.one_of(st.none(), _reprs)),
        function=draw(st.sampled_from(["", "f", "g.<locals>.h"])),
        depth=draw(st.integers(0, 3)),
    )


@st.composite
def traces(draw) -> Trace:
    lines = draw(st.lists(_plain, max_size=6))
    return Trace(
        entry=draw(st.sampled_from(["f", "C.m"])),
        context="\n".join(lines) + draw(st.sampled_from(["", "\n"])),
        frames=draw(st.lists(frames(), max_size=12)),
        entry_lineno=draw(st.one_of(st.none(), st.integers(-1, 8))),
        context_lineno=draw(st.integers(1, 3)),
        filename=draw(st.sampled_from(["", "/tmp/p.py"])),
        return_repr=draw(st.one_of(st.none(), _reprs)),
        exception_repr=draw(st.one_of(st.none(), _reprs)),
        truncated=draw(st.booleans()),
    )


def _has_literal_marker(t: Trace) -> bool:
    prev = None
    for f in t.frames:
        if f.event == "line":
            before = prev.locals if prev is not None and prev.event in ("call", "line") else {}
            if any(v == ".." and before.get(k) != v for k, v in f.locals.items()):
                return True
        prev = f
    return False


def test_to_cwm__refuses_a_literal_unchanged_marker():
    t = Trace(entry="f", context="", frames=[
        Frame("call", 1, "def f():", {"a": "1"}), Frame("line", 2, "  x", {"a": ".."})])
    with pytest.raises(TraceFormatError, match=re.escape("the repr of 'a' is the literal '..'")):
        t.to_cwm()


@given(traces())
def test_cwm__round_trip_of_random_traces(t):
    if _has_literal_marker(t):
        with pytest.raises(TraceFormatError):
            t.to_cwm()
        return
    text = t.to_cwm()
    assert Trace.from_cwm(text).to_cwm() == text


@given(traces())
def test_json__round_trip_of_random_traces(t):
    assert Trace.from_json(t.to_json()) == t


# ------------------------------------------- depths and outcome after frames left silently
CAUGHT = '''def g(x):
    if x > 1:
        raise ValueError(x)
    return x


def f(n):
    try:
        g(n)
    except ValueError:
        pass
    return n + 1


log = []


def gen():
    try:
        yield 1
    finally:
        log.append("closed")


def helper():
    it = gen()
    next(it)
    return 1


def h():
    helper()
    return len(log)
'''


@pytest.mark.parametrize("entry,args,ret", [("f", (3,), "4"), ("h", (), "1")],
                         ids=["exception-caught-by-caller", "generator-closed-in-callee"])
def test_from_cwm__keeps_depths_and_the_return_after_frames_left_without_a_return(
        entry, args, ret):
    # g left by an exception, gen closed when helper's frame is cleared: neither has a return
    # frame; the parser used to leave the depth one too deep and lose the return value
    from tracegym.tracers import trace
    from tracegym.tracers.programs import Program

    t = trace(Program("caught", CAUGHT, entry).load(), *args)
    back = Trace.from_cwm(t.to_cwm())
    assert t.return_repr == back.return_repr == ret
    assert [(f.depth, f.lineno) for f in back.frames] == [(f.depth, f.lineno) for f in t.frames]
