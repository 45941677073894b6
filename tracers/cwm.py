"""The trace model (:class:`Trace`, :class:`Frame`) and its two text forms: CWM trace text and JSON.

CWM (Meta's Code World Model, facebookresearch/cwm: ``PROMPTING_GUIDE.md``, ``demos/cwmdbg.py``)
writes an execution trace as the source context followed by one *frame* per event. Each frame is an
observation (the locals *before* the line runs) and an action (the source line). Grammar, with the
special tokens written as names (``FRAME_SEP`` is the literal ``<|frame_sep|>``, and so on)::

    trace      = TRACE_CONTEXT_START context FRAME_SEP { frame }
    frame      = ( CALL_SEP | LINE_SEP ) locals ACTION_SEP source "\\n" FRAME_SEP
               | ( RETURN_SEP | EXCEPTION_SEP ) ACTION_SEP source ARG_SEP value FRAME_SEP
    locals     = JSON object: name -> JSON string (the value's repr), as json.dumps writes it
    value      = JSON string: the repr of the returned value / of the raised exception
    context    = source text; the entry line ends with "  # << START_OF_TRACE"
    source     = one source line, no newline, no special token

A line frame writes ``".."`` for a value unchanged since the previous frame when that previous
frame is a call or line frame (cwmdbg.py resolves ``".."`` so: it walks back and stops at a call or
return). The tracer never puts a call or line frame of another invocation right before a line
frame: a callee is entered by a call frame and left by a return or exception frame, so "the
previous frame" is always the same invocation. Call frames always carry every value. Return and
exception frames carry no locals. A line frame value whose repr is literally ``".."`` (a custom
``__repr__``) cannot be written unless unchanged: ``to_cwm`` raises rather than write it.
``to_cwm`` does not write the tokenizer's ``<|end_of_text|>``.

Reading CWM text back (:meth:`Trace.from_cwm`) recovers everything the text holds: the context and
the entry line, each frame's event, source, locals and value, its depth and line, and the entry's
outcome (``return_repr`` from the entry's own return frame, else ``exception_repr`` from its last
exception frame; frames after it, such as a generator it left open being closed, do not change
it). A frame left by an exception, or a generator closed with its frame, has no return frame:
consecutive exception frames mean the exception reached the caller, and a line the innermost open
frame's function (found in the context with :mod:`ast`) does not hold closes frames until one
does; lines are numbered within that function. Two things stay undecidable from the text: a line
written alike in that function and in its caller, and which of two alike lines of one function
ran. What the text does not hold (function names, file name, the first line number of the
context, ``truncated``, the result objects) comes back empty, so
``Trace.from_cwm(t.to_cwm()).to_cwm() == t.to_cwm()`` but not ``== t``
(tests/tracers/test_tracer_properties.py compares the whole Trace less those fields).
JSON (:meth:`Trace.to_json`) holds every serialised field: ``Trace.from_json(t.to_json()) == t``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tracegym.errors import TraceFormatError

TRACE_CONTEXT_START = "<|trace_context_start|>"
FRAME_SEP = "<|frame_sep|>"
CALL_SEP = "<|call_sep|>"
LINE_SEP = "<|line_sep|>"
RETURN_SEP = "<|return_sep|>"
EXCEPTION_SEP = "<|exception_sep|>"
ACTION_SEP = "<|action_sep|>"
ARG_SEP = "<|arg_sep|>"
SPECIAL_TOKENS = (
    TRACE_CONTEXT_START, FRAME_SEP, CALL_SEP, LINE_SEP,
    RETURN_SEP, EXCEPTION_SEP, ACTION_SEP, ARG_SEP,
)
START_MARKER = "  # << START_OF_TRACE"
UNCHANGED = ".."
EVENTS = ("call", "line", "return", "exception")
JSON_VERSION = 1

_EVENT_TOKEN = {
    "call": CALL_SEP, "line": LINE_SEP, "return": RETURN_SEP, "exception": EXCEPTION_SEP,
}
_TOKEN_EVENT = {v: k for k, v in _EVENT_TOKEN.items()}
_decoder = json.JSONDecoder()


class Frame(NamedTuple):
    """One traced event.

    ``locals`` maps every local name to its repr *before* the line runs (call and line frames;
    empty for return and exception frames); ``arg`` is the returned value's repr (return) or the
    exception's repr (exception), else None. ``depth`` counts traced frames above this one
    (the entry call is 0). ``lineno`` is 0 and ``function`` empty when unknown (parsed CWM text).
    A NamedTuple, not a dataclass: the tracer builds one per event, and ``tuple.__new__`` is the
    cheapest constructor Python has.
    """

    event: str
    lineno: int
    source: str
    locals: dict[str, str]
    arg: str | None = None
    function: str = ""
    depth: int = 0


@dataclass
class Trace:
    """A traced call: the source context, the frames, and the outcome.

    ``result`` and ``exception`` hold the real return value / raised exception of the traced call;
    they are not serialised and not compared (``return_repr`` / ``exception_repr`` are).
    """

    entry: str
    context: str
    frames: list[Frame]
    entry_lineno: int | None = None
    context_lineno: int = 1
    filename: str = ""
    return_repr: str | None = None
    exception_repr: str | None = None
    truncated: bool = False
    result: Any = field(default=None, compare=False, repr=False)
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    # ----------------------------------------------------------------------------------- CWM
    def marked_context(self) -> str:
        """The context with ``# << START_OF_TRACE`` appended to the entry line."""
        if self.entry_lineno is None:
            return self.context
        lines = self.context.split("\n")  # "\n" only: str.splitlines also splits on \x0b etc.
        i = self.entry_lineno - self.context_lineno
        if 0 <= i < len(lines) - (not lines[-1]):
            line = lines[i]
            body = line.rstrip("\r")
            lines[i] = body + START_MARKER + line[len(body):]
        return "\n".join(lines)

    def to_cwm(self) -> str:
        """The CWM trace text (grammar in the module docstring)."""
        context = self.marked_context()
        _check_plain(context, "context", allow_newlines=True)
        out = [TRACE_CONTEXT_START, context, FRAME_SEP]
        dumps = json.dumps
        prev: Frame | None = None
        for f in self.frames:
            _check_plain(f.source, "frame source", allow_newlines=False)
            if f.event == "call" or f.event == "line":
                loc = f.locals
                if f.event == "line" and prev is not None and (
                    prev.event == "line" or prev.event == "call"
                ):
                    before = prev.locals
                    loc = {k: UNCHANGED if before.get(k) == v else v for k, v in loc.items()}
                    if UNCHANGED in f.locals.values():
                        _check_no_literal_marker(f, before)
                elif f.event == "line" and UNCHANGED in loc.values():
                    _check_no_literal_marker(f, {})
                out += (_EVENT_TOKEN[f.event], dumps(loc), ACTION_SEP, f.source, "\n", FRAME_SEP)
            elif f.event in ("return", "exception"):
                out += (_EVENT_TOKEN[f.event], ACTION_SEP, f.source, ARG_SEP,
                        dumps(f.arg if f.arg is not None else "None"), FRAME_SEP)
            else:
                raise TraceFormatError(f"frame event must be one of {EVENTS}, got {f.event!r}")
            prev = f
        return "".join(out)

    @classmethod
    def from_cwm(cls, text: str) -> Trace:
        """Parse CWM trace text; raise :class:`TraceFormatError` naming the offset on bad input."""
        return _parse_cwm(text)

    # ---------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "entry": self.entry,
            "filename": self.filename,
            "context": self.context,
            "context_lineno": self.context_lineno,
            "entry_lineno": self.entry_lineno,
            "return_repr": self.return_repr,
            "exception_repr": self.exception_repr,
            "truncated": self.truncated,
            "frames": [
                [f.event, f.lineno, f.source, f.locals, f.arg, f.function, f.depth]
                for f in self.frames
            ],
        }

    def to_json(self) -> str:
        """Lossless JSON of every serialised field (``from_json(t.to_json()) == t``)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        try:
            if d.get("version") != JSON_VERSION:
                raise TraceFormatError(
                    f"trace JSON field 'version' must be {JSON_VERSION}, got {d.get('version')!r}"
                )
            frames = [
                Frame(event=e, lineno=n, source=s, locals=loc, arg=a, function=fn, depth=dp)
                for e, n, s, loc, a, fn, dp in d["frames"]
            ]
            return cls(
                entry=d["entry"], context=d["context"], frames=frames,
                entry_lineno=d["entry_lineno"], context_lineno=d["context_lineno"],
                filename=d["filename"], return_repr=d["return_repr"],
                exception_repr=d["exception_repr"], truncated=d["truncated"],
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, TraceFormatError):
                raise
            raise TraceFormatError(f"trace JSON is missing or has a malformed field: {e!r}") from e

    @classmethod
    def from_json(cls, text: str) -> Trace:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(f"trace JSON does not parse at offset {e.pos}: {e.msg}") from e
        if not isinstance(d, dict):
            raise TraceFormatError(f"trace JSON must be an object, got {type(d).__name__}")
        return cls.from_dict(d)


# "<object object at 0x7f3a...>": the default repr of an object, a function, a generator... holds
# its address, which changes from run to run; written "0x..." so that the same call gives the
# same text in every process. The hex run and the closing ">" keep a string value that merely
# says " at 0x1F" intact.
ADDRESS_PLACEHOLDER = "0x..."
_ADDRESS = re.compile(r"( at )0x[0-9a-fA-F]{4,16}>")


def scrub_text(text: str | None) -> str | None:
    """``text`` with every object address (``<... at 0x7f3a...>``) written ``<... at 0x...>``."""
    if text is None or " at 0x" not in text:
        return text
    return _ADDRESS.sub(rf"\g<1>{ADDRESS_PLACEHOLDER}>", text)


def scrub_addresses(trace: Trace) -> Trace:
    """The trace with every object address in a value (``<... at 0x7f3a...>``) written
    ``<... at 0x...>``, so its text depends on the program and the call only.

    The trace dataset (``tracegym data traces``) and the ExecTrace env both scrub with this, so a
    trace model is scored on the text it was trained on. Frames without an address are kept as
    they are (the same objects).
    """
    def dirty(f: Frame) -> bool:
        return (f.arg is not None and " at 0x" in f.arg) or any(
            " at 0x" in v for v in f.locals.values())

    frames = [f._replace(locals={k: scrub_text(v) for k, v in f.locals.items()},
                         arg=scrub_text(f.arg)) if dirty(f) else f for f in trace.frames]
    return dataclasses.replace(trace, frames=frames, return_repr=scrub_text(trace.return_repr),
                               exception_repr=scrub_text(trace.exception_repr))


def _check_no_literal_marker(f: Frame, before: dict[str, str]) -> None:
    """A line frame's repr that is literally ".." and not unchanged reads back as "unchanged"."""
    for k, v in f.locals.items():
        if v == UNCHANGED and before.get(k) != v:
            raise TraceFormatError(
                f"line {f.lineno}: the repr of {k!r} is the literal {UNCHANGED!r}, which CWM "
                "text reads as 'unchanged since the previous frame'"
            )


def _check_plain(text: str, what: str, *, allow_newlines: bool) -> None:
    """Refuse text that would make the CWM form ambiguous (a special token, a newline)."""
    if "<|" in text:
        for tok in SPECIAL_TOKENS:
            if tok in text:
                raise TraceFormatError(f"{what} contains the special token {tok!r}: {text[:80]!r}")
    if not allow_newlines and ("\n" in text or "\r" in text):
        raise TraceFormatError(f"{what} contains a line break: {text[:80]!r}")


# --------------------------------------------------------------------------------- parser
def _fail(text: str, pos: int, expected: str) -> TraceFormatError:
    found = text[pos:pos + 30]
    return TraceFormatError(
        f"malformed CWM trace at offset {pos}: expected {expected}, found {found!r}"
        if found else f"malformed CWM trace at offset {pos}: expected {expected}, found end of text"
    )


def _expect(text: str, pos: int, token: str) -> int:
    if not text.startswith(token, pos):
        raise _fail(text, pos, token)
    return pos + len(token)


def _json_at(text: str, pos: int, kind: type, expected: str) -> tuple[Any, int]:
    try:
        value, end = _decoder.raw_decode(text, pos)
    except json.JSONDecodeError as e:
        raise _fail(text, pos, expected) from e
    if not isinstance(value, kind):
        raise _fail(text, pos, expected)
    return value, end


def _parse_cwm(text: str) -> Trace:
    if not isinstance(text, str):
        raise TraceFormatError(f"CWM trace must be str, got {type(text).__name__}")
    pos = _expect(text, 0, TRACE_CONTEXT_START)
    end = text.find(FRAME_SEP, pos)
    if end < 0:
        raise _fail(text, len(text), f"{FRAME_SEP} after the context")
    marked = text[pos:end]
    pos = end + len(FRAME_SEP)

    # Unmark the entry line; lines are numbered from 1 since the text does not hold the offset.
    lines = marked.split("\n")
    entry_lineno = None
    for i, line in enumerate(lines):
        body = line.rstrip("\r")
        if body.endswith(START_MARKER):
            entry_lineno = i + 1
            lines[i] = body[: -len(START_MARKER)] + line[len(body):]
            break
    line_of: dict[str, list[int]] = {}  # a source line -> the line numbers that hold it
    for i, line in enumerate(lines):
        line_of.setdefault(line.rstrip("\r"), []).append(i + 1)
    context = "\n".join(lines)
    span_at = _scope_spans(context)
    scopes: list[tuple[int, int] | None] = []  # the open invocations' line spans (None: unknown)
    returned: list[tuple[int, int]] = []  # spans of invocations that returned, oldest first

    def place(source: str) -> int:
        """The line of ``source`` inside the innermost open invocation, else its first line."""
        found = line_of.get(source)
        if not found:
            return 0
        span = scopes[-1] if scopes else None
        if span is not None:
            for n in found:
                if span[0] <= n <= span[1]:
                    return n
        return found[0]

    def leave_to(source: str) -> None:
        """Close invocations left without a frame (by an exception; a generator closed while its
        frame is cleared) until the innermost one holds ``source``."""
        nonlocal depth
        found = line_of.get(source, [])
        while depth > 0 and scopes and scopes[-1] is not None and not any(
                scopes[-1][0] <= n <= scopes[-1][1] for n in found):
            scopes.pop()
            depth -= 1

    frames: list[Frame] = []
    prev: Frame | None = None
    depth = -1  # depth of the invocation the next line frame belongs to
    n = len(text)
    while pos < n:
        event = None
        for tok, ev in _TOKEN_EVENT.items():
            if text.startswith(tok, pos):
                event, pos = ev, pos + len(tok)
                break
        if event is None:
            raise _fail(text, pos, "an event token (<|call_sep|>, <|line_sep|>, <|return_sep|> "
                                   "or <|exception_sep|>)")
        if event in ("call", "line"):
            loc, pos = _json_at(text, pos, dict, "a JSON object of locals")
            if not all(isinstance(v, str) for v in loc.values()):
                raise _fail(text, pos, "locals whose values are JSON strings")
            pos = _expect(text, pos, ACTION_SEP)
            nl = text.find("\n", pos)
            if nl < 0:
                raise _fail(text, n, "a newline ending the source line")
            source = text[pos:nl]
            pos = _expect(text, nl + 1, FRAME_SEP)
            if event == "call":
                depth += 1
                # a call frame's line starts its scope, or (a generator resumed) lies inside
                # one that returned (yielded) before: the latest such, when several could be
                found = line_of.get(source, [])
                lineno = next((n for n in found if n in span_at), 0)
                if not lineno:
                    lineno = next((n for sp in reversed(returned) for n in found
                                   if sp[0] <= n <= sp[1]), found[0] if found else 0)
                scopes.append(span_at.get(lineno) or min(
                    (sp for sp in span_at.values() if sp[0] <= lineno <= sp[1]),
                    key=lambda sp: sp[1] - sp[0], default=None))
            else:
                if depth < 0:
                    depth = 0
                leave_to(source)
                lineno = place(source)
            if event == "line" and prev is not None and prev.event in ("call", "line"):
                before = prev.locals
                loc = {k: before[k] if v == UNCHANGED and k in before else v
                       for k, v in loc.items()}
            frame = Frame(event, lineno, source, loc, None, "", max(depth, 0))
        else:
            pos = _expect(text, pos, ACTION_SEP)
            sep = text.find(ARG_SEP, pos)
            nl = text.find("\n", pos)
            if sep < 0 or 0 <= nl < sep:
                raise _fail(text, pos, f"a source line followed by {ARG_SEP}")
            source = text[pos:sep]
            arg, pos = _json_at(text, sep + len(ARG_SEP), str, "a JSON string value")
            pos = _expect(text, pos, FRAME_SEP)
            if event == "exception" and prev is not None and prev.event == "exception" \
                    and prev.depth > 0:
                # An exception frame right after one is the same exception reaching the caller:
                # the frame it left has no return frame (a frame left by an exception ends with
                # its exception frame), so this is where the text says it was left.
                depth -= 1
                if scopes:
                    scopes.pop()
            leave_to(source)
            frame = Frame(event, place(source), source, {}, arg, "", max(depth, 0))
            if event == "return":
                depth -= 1
                if scopes:
                    span = scopes.pop()
                    if span is not None:
                        returned.append(span)
        frames.append(frame)
        prev = frame
    return_repr, exception_repr = _entry_outcome(frames)
    return Trace(entry="", context=context, frames=frames, entry_lineno=entry_lineno,
                 context_lineno=1, return_repr=return_repr, exception_repr=exception_repr)


def _scope_spans(context: str) -> dict[int, tuple[int, int]]:
    """First line -> (first, last) line of every function, lambda, comprehension and class in
    the context (a call frame's line is its first: a decorator's, when decorated); empty when
    the context does not parse (then depths follow call and return frames only)."""
    try:
        tree = ast.parse(context)
    except (SyntaxError, ValueError):
        return {}
    spans: dict[int, tuple[int, int]] = {}
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
             ast.SetComp, ast.DictComp, ast.GeneratorExp)
    for node in ast.walk(tree):
        if isinstance(node, kinds):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            last = max(node.end_lineno or node.lineno, spans.get(first, (0, 0))[1])
            spans[first] = (first, last)
    return spans


def _entry_outcome(frames: list[Frame]) -> tuple[str | None, str | None]:
    """``(return_repr, exception_repr)`` of the entry call as the frames show it: its own return
    frame (the first return at depth 0), else its last exception frame when it was left by one.
    Frames after the entry's end (a generator it left open, closed as its frame is cleared)
    do not change it."""
    for f in frames:
        if f.depth == 0 and f.event == "return":
            return f.arg, None
    last = [f for f in frames if f.depth == 0]
    if last and last[-1].event == "exception":
        return None, last[-1].arg
    return None, None
