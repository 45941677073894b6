"""Adapters shipped with the kit: tracegym's own recorders, PySnooper and hunter.

Name one as ``tracegym.tracers.conformance.adapters:NAME``::

    tracegym check-tracer tracegym.tracers.conformance.adapters:PySnooperAdapter

Each is a class: building one raises :class:`AdapterUnavailable` with the reason when it
cannot run here (the package is not installed, the recorder does not exist on this Python),
and the kit then skips it with that message. What PySnooper and hunter do differently on
purpose is declared on their ``records``; the rest is what the kit finds.
"""

from __future__ import annotations

import io
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

from tracegym.tracers.conformance.protocol import (
    AdapterUnavailable,
    Records,
    Run,
    call,
    cut_repr,
    renumber_depths,
)
from tracegym.tracers.cwm import Frame
from tracegym.tracers.recorder import TRUNCATED

__all__ = [
    "CRecorder",
    "HunterAdapter",
    "MonitoringRecorder",
    "PySnooperAdapter",
    "SettraceRecorder",
    "TracegymAdapter",
]


# ---------------------------------------------------------------------------- tracegym
class TracegymAdapter:
    """tracegym's own tracer, ``Tracer(TraceOptions(backend=...)).trace``, with the recorder
    the options choose on this Python (``backend="auto"``)."""

    backend = "auto"
    max_repr = 200

    def __init__(self) -> None:
        from tracegym.tracers.trace import TraceOptions, Tracer

        self.tracer = Tracer(TraceOptions(backend=self.backend, max_repr=self.max_repr))
        self.records = Records(
            repr_of=cut_repr(self.max_repr),
            differences=(f"values longer than {self.max_repr} characters are cut there and "
                         f"marked {TRUNCATED!r} (TraceOptions.max_repr)",))

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Run:
        t = self.tracer.trace(fn, *args, **kwargs)
        return Run(t.frames, t.result, t.exception)


class SettraceRecorder(TracegymAdapter):
    """The pure-Python recorder driven by ``sys.settrace`` (the driver of 3.10 and 3.11; on
    3.12+ chosen here on purpose, to check it there too)."""

    backend = "python"

    def __init__(self) -> None:
        super().__init__()
        from tracegym.tracers.trace import _SettraceTracer

        self.tracer = _SettraceTracer(self.tracer.options)


class MonitoringRecorder(TracegymAdapter):
    """The pure-Python recorder driven by ``sys.monitoring`` (Python 3.12+)."""

    backend = "python"

    def __init__(self) -> None:
        if sys.version_info < (3, 12):
            raise AdapterUnavailable("the sys.monitoring recorder needs Python 3.12+, this is "
                                     f"{sys.version.split()[0]}")
        super().__init__()


class CRecorder(TracegymAdapter):
    """The C recorder, ``tracegym.tracers._ctrace`` (CPython 3.11, when built)."""

    backend = "c"

    def __init__(self) -> None:
        from tracegym.tracers.trace import _MONITORING, C_UNAVAILABLE

        if C_UNAVAILABLE is not None or _MONITORING:
            raise AdapterUnavailable(f"the C recorder is not available: {C_UNAVAILABLE}")
        super().__init__()


# --------------------------------------------------------------------------- PySnooper
_SNOOP_LIMIT = 100  # PySnooper's default max_variable_length
_SNOOP_DEPTH = 64  # frames below the entry PySnooper follows (it needs a bound)


def _shortish(text: str) -> str:
    """PySnooper's documented shortening: newlines dropped, longer than 100 characters cut
    in the middle with '...'."""
    text = text.replace("\r", "").replace("\n", "")
    if len(text) <= _SNOOP_LIMIT:
        return text
    left = (_SNOOP_LIMIT - 3) // 2
    return text[:left] + "..." + text[-(_SNOOP_LIMIT - 3 - left):]


def _snoop_repr(value: Any) -> str:
    try:
        r = repr(value)
    except Exception:  # noqa: BLE001 - PySnooper writes this marker
        r = "REPR FAILED"
    return _shortish(r)


def _snoop_exception(exc: BaseException) -> str:
    return _shortish("\n".join(traceback.format_exception_only(type(exc), exc)).strip())


_SNOOP_EVENT = re.compile(
    r"^(?P<indent> *)\d\d:\d\d:\d\d\.\d{6} (?P<event>call|line|return|exception) +"
    r"(?P<lineno>\d+) (?P<source>.*)$")
_SNOOP_VAR = re.compile(r"^(?P<indent> *)(?P<what>Starting var|New var|Modified var):\.+ "
                        r"(?P<name>[^ ]+) = (?P<value>.*)$", re.DOTALL)
_SNOOP_VALUE = re.compile(r"^(?P<indent> *)(?P<what>Return value|Exception):\.+ (?P<value>.*)$",
                          re.DOTALL)
_SNOOP_PATH = re.compile(r"^ *Source path:\.\.\. (?P<path>.*)$")


class PySnooperAdapter:
    """PySnooper (``pysnooper.snoop``, depth 64): its text output, parsed back into events."""

    records = Records(
        functions=False, sources=False, repr_of=_snoop_repr, exception_repr_of=_snoop_exception,
        differences=(
            "values: newlines dropped, longer than 100 characters cut in the middle with '...' "
            "(max_variable_length=100)",
            "exceptions are written as traceback.format_exception_only text, not repr",
            "no function names; source lines are read from the file or the module's loader, "
            "not linecache, so code compiled from a string shows 'SOURCE IS UNAVAILABLE'",
            "its depth counts frames of other files too (contextlib): the adapter renumbers",
        ))

    def __init__(self) -> None:
        try:
            import pysnooper
        except ImportError as e:
            raise AdapterUnavailable(
                f"PySnooper is not installed ({e}): pip install pysnooper") from None
        self.pysnooper = pysnooper

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Run:
        writes: list[str] = []
        snoop = self.pysnooper.snoop(output=writes.append, depth=_SNOOP_DEPTH, color=False,
                                     max_variable_length=_SNOOP_LIMIT)
        result, exception = call(snoop(fn), args, kwargs)
        return Run(parse_pysnooper([w.rstrip("\n") for w in writes], fn.__code__.co_filename),
                   result, exception)


def parse_pysnooper(writes: list[str], filename: str) -> list[Frame]:
    """Events of ``filename``'s code from PySnooper's output (one item per write).

    PySnooper writes a frame's new and changed variables before the event line they precede,
    and only changes: the locals of an event are the frame's locals so far.
    """
    frames: list[Frame] = []
    raw: list[int] = []
    state: dict[int, dict[str, str]] = {}  # raw depth -> that frame's locals so far
    pending: list[tuple[str, str, str]] = []
    path = None
    for text in writes:
        m = _SNOOP_PATH.match(text)
        if m:
            path = m.group("path")
            continue
        m = _SNOOP_VAR.match(text)
        if m:
            pending.append((m.group("what"), m.group("name"), m.group("value")))
            continue
        m = _SNOOP_EVENT.match(text)
        if m:
            event, depth = m.group("event"), len(m.group("indent")) // 4
            if event == "call":
                state[depth] = {}
            loc = state.setdefault(depth, {})
            loc.update((name, value) for _, name, value in pending)
            pending.clear()
            if path == filename:
                frames.append(Frame(event, int(m.group("lineno")), "",
                                    dict(loc) if event in ("call", "line") else {}, None, "",
                                    depth))
                raw.append(depth)
            continue
        m = _SNOOP_VALUE.match(text)
        if m and path == filename and frames and frames[-1].event in ("return", "exception"):
            frames[-1] = frames[-1]._replace(arg=m.group("value"))
            continue
        if text.strip() == "Call ended by exception":
            pending.clear()
    return renumber_depths(frames, raw)


# ------------------------------------------------------------------------------ hunter
_HUNTER_LIMIT = 1024  # hunter's default repr_limit
_HUNTER_SAFE_MODULES = ("builtins", "io", "socket", "_socket", "zoneinfo", "decimal")


def _hunter_declared(value: Any, depth: int = 5) -> str:
    """hunter's documented rendering (``hunter.util.safe_repr``): ``repr`` of builtin values,
    ``object.__repr__`` for instances of other classes (their ``__repr__`` may have side
    effects), containers item by item, '...' below five levels."""
    if not depth:
        return "..."
    t = type(value)
    if t in (list, tuple, set, frozenset, dict):
        return repr(type(value)(value)) if not value else _container(value, depth - 1)
    if isinstance(value, BaseException) and type(t) is type:
        return f"{t.__name__}({', '.join(_hunter_declared(a, depth - 1) for a in value.args)})"
    if type(t) is type and t.__module__ in _HUNTER_SAFE_MODULES:
        return repr(value)
    return object.__repr__(value)


def _container(value: Any, depth: int) -> str:
    if type(value) is dict:
        return "{" + ", ".join(f"{_hunter_declared(k, depth + 1)}: {_hunter_declared(v, depth)}"
                               for k, v in value.items()) + "}"
    items = ", ".join(_hunter_declared(v, depth) for v in value)
    if type(value) is list:
        return f"[{items}]"
    if type(value) is tuple:
        return f"({items}{',' if len(value) == 1 else ''})"
    return f"{{{items}}}" if type(value) is set else f"frozenset({{{items}}})"


def _hunter_limit(text: str) -> str:
    text = text.replace("\n", "\\n")
    if len(text) <= _HUNTER_LIMIT:
        return text
    cut = _HUNTER_LIMIT // 2
    return f"{text[:cut]} [...] {text[-cut:]}"


def _hunter_repr(value: Any) -> str:
    return _hunter_limit(_hunter_declared(value))


class HunterAdapter:
    """hunter: a ``hunter.Tracer`` filtered by ``Q(filename=...)``; each event's values
    rendered as hunter's ``CallPrinter`` writes them (``try_repr``)."""

    records = Records(
        repr_of=_hunter_repr, returns_on_unwind=True,
        differences=(
            "values are rendered by hunter's safe_repr: object.__repr__ (an address) for "
            "instances of classes outside the standard library, '...' below five levels; "
            "newlines written \\n; longer than 1024 characters cut in the middle with [...]",
            "an exception event's value is the (type, value, traceback) triple settrace hands "
            "it (its traceback None where settrace has none): the adapter keeps the value",
            "a frame left by an exception gets a return event (value None), as settrace sends",
            "function names are co_name, not qualnames; its depth counts every frame (the "
            "adapter renumbers)",
        ))

    def __init__(self) -> None:
        try:
            import hunter
        except ImportError as e:
            raise AdapterUnavailable(f"hunter is not installed ({e}): pip install hunter") \
                from None
        self.hunter = hunter
        self.printer = hunter.CallPrinter(stream=io.StringIO(), force_colors=False)

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Run:
        hunter = self.hunter
        frames: list[Frame] = []
        raw: list[int] = []
        render = self.printer.try_repr

        def collect(event: Any) -> None:
            kind = event.kind
            loc = {k: render(v) for k, v in event.locals.items()} \
                if kind in ("call", "line") else {}
            arg = None
            if kind == "return":
                arg = render(event.arg)
            elif kind == "exception":
                arg = render(event.arg[1])
            frames.append(Frame(kind, event.lineno, event.source.rstrip("\r\n"), loc, arg,
                                event.function, 0))
            raw.append(event.depth)

        tracer = hunter.Tracer(threading_support=False)
        tracer.trace(hunter.Q(filename=fn.__code__.co_filename, action=collect))
        try:
            result, exception = call(fn, args, kwargs)
        finally:
            tracer.stop()
        return Run(renumber_depths(frames, raw), result, exception)
