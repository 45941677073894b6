"""The adapter protocol: how the kit runs a call under someone's tracer, and what it may expect.

An adapter is any object with a ``records`` attribute (a :class:`Records` declaration) and a
method ``run(fn, args, kwargs) -> Run``: call ``fn(*args, **kwargs)`` under the tracer and hand
back what the tracer saw (:class:`Run`). The events are our :class:`~tracegym.tracers.Frame`
records (or a :class:`~tracegym.tracers.Trace`, or CWM trace text), one per event of the code in
``fn``'s own file (``fn.__code__.co_filename``): the kit's programs are self-contained, and
frames of other files (the standard library, the tracer itself) are left out, as the reference
leaves them out.

The conventions are CWM's and tracegym's (see ``tracers/trace.py``): a ``call`` event with the
arguments, a ``line`` event before each line runs with the locals *as they stand before it*, a
``return`` event with the returned (or yielded) value, an ``exception`` event where an exception
is raised or passes through; a frame left by an exception has no return event; a generator
resumed is a ``call`` again; ``depth`` counts traced frames above (the entry is 0). What a tracer
does differently on purpose is declared on :class:`Records` and then expected, not a failure.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tracegym.errors import TracegymError
from tracegym.tracers.cwm import Frame, Trace
from tracegym.tracers.recorder import TRUNCATED, safe_repr


class AdapterUnavailable(RuntimeError):
    """The adapter cannot run here (its package is not installed, or the recorder does not exist
    on this Python): the kit reports every property as skipped with this message."""


class BadAdapterError(TracegymError, ValueError):
    """``module:attribute`` does not name an adapter (bad input to the plugin or command)."""


def exact_repr(value: Any) -> str:
    """``repr(value)``; ``<repr failed: ExcType>`` when that raises (the default rendering)."""
    return safe_repr(value)


def cut_repr(limit: int, marker: str = TRUNCATED) -> Callable[[Any], str]:
    """The rendering of a tracer that cuts a repr at ``limit`` characters and appends
    ``marker`` (tracegym's own: ``cut_repr(200)``)."""

    def render(value: Any) -> str:
        r = safe_repr(value)
        return r if len(r) <= limit else r[:limit] + marker

    return render


@dataclass(frozen=True)
class Records:
    """What a tracer records, and how: the declaration the properties are parametrised by.

    A property needing something the tracer does not record is reported as skipped (with what it
    needs), and the comparison with the reference ignores what is not recorded.

    Args:
        calls, lines, returns, exceptions: which events the tracer records.
        locals: call and line events carry the locals (before the line runs).
        reprs: values (locals, returned values, exceptions) are written as text the kit can
            compare: the reference renders them with ``repr_of`` / ``exception_repr_of``.
            False: only which names are bound is compared.
        return_values: return events carry the returned value's rendering.
        exception_values: exception events carry the exception's rendering.
        linenos, sources, functions, depths: each event's line number, source line (stripped
            of its line end), function name (a qualname or its last part: ``f.<locals>.add``
            or ``add``) and depth are given and compared.
        repr_of: how the tracer renders a value, e.g. ``cut_repr(100)``; the reference
            renders every value with it, so a tracer that shortens long values on purpose
            declares it here rather than fail.
        exception_repr_of: how it renders a raised exception (default: ``repr_of``).
        returns_on_unwind: a frame left by an exception also gets a return event (whose value
            renders None), as ``sys.settrace`` sends one.
        differences: the expected differences in words, shown in reports.
    """

    calls: bool = True
    lines: bool = True
    returns: bool = True
    exceptions: bool = True
    locals: bool = True
    reprs: bool = True
    return_values: bool = True
    exception_values: bool = True
    linenos: bool = True
    sources: bool = True
    functions: bool = True
    depths: bool = True
    repr_of: Callable[[Any], str] = exact_repr
    exception_repr_of: Callable[[BaseException], str] | None = None
    returns_on_unwind: bool = False
    differences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("calls", "lines", "returns", "exceptions", "locals", "reprs",
                     "return_values", "exception_values", "linenos", "sources", "functions",
                     "depths", "returns_on_unwind"):
            if not isinstance(getattr(self, name), bool):
                raise BadAdapterError(f"Records.{name} must be True or False, got "
                                      f"{getattr(self, name)!r}")
        if not callable(self.repr_of):
            raise BadAdapterError(f"Records.repr_of must be callable, got {self.repr_of!r}")
        if isinstance(self.differences, str):
            raise BadAdapterError("Records.differences must be a tuple of strings, got the "
                                  f"string {self.differences!r}")

    def render_exception(self, exc: BaseException) -> str:
        render = self.exception_repr_of or self.repr_of
        return render(exc)

    def missing(self, *needs: str) -> list[str]:
        """The names among ``needs`` this tracer does not record."""
        return [n for n in needs if not getattr(self, n)]


@dataclass
class Run:
    """What an adapter hands back for one call: the events, and the call's outcome as the
    traced program saw it (``result``, or ``exception`` when the call raised)."""

    events: Sequence[Frame] | Trace | str
    result: Any = None
    exception: BaseException | None = None
    frames: list[Frame] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.frames = frames_of(self.events)


@runtime_checkable
class Adapter(Protocol):
    """Runs one call under a tracer; see the module docstring."""

    records: Records

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Run: ...


def frames_of(events: Sequence[Frame] | Trace | str) -> list[Frame]:
    """The events as Frame records: a Trace gives its frames, CWM text is parsed."""
    if isinstance(events, str):
        return list(Trace.from_cwm(events).frames)
    if isinstance(events, Trace):
        return list(events.frames)
    out = []
    for i, e in enumerate(events):
        if not isinstance(e, tuple) or len(e) != len(Frame._fields):
            raise TypeError(f"event {i}: expected a tracegym Frame, got {e!r}")
        out.append(Frame(*e))
    return out


def call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, BaseException | None]:
    """``(result, None)`` or ``(None, exception)`` of ``fn(*args, **kwargs)``: for adapters."""
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - the program's own exception is an outcome
        return None, e


def renumber_depths(frames: Sequence[Frame], raw: Sequence[int]) -> list[Frame]:
    """Frames whose depth counts only the frames given, from a tracer whose depth (``raw``,
    one per frame) also counts frames left out (other files): a call at raw depth d closes
    the open frames at raw depth >= d; another event closes those deeper than d."""
    open_depths: list[int] = []
    out = []
    for frame, d in zip(frames, raw):
        if frame.event == "call":
            while open_depths and open_depths[-1] >= d:
                open_depths.pop()
            open_depths.append(d)
        else:
            while len(open_depths) > 1 and open_depths[-1] > d:
                open_depths.pop()
        out.append(frame._replace(depth=max(len(open_depths) - 1, 0)))
        if frame.event == "return" and open_depths:
            open_depths.pop()
    return out


def load_adapter(spec: str) -> Adapter:
    """The adapter named ``module:attribute`` (an instance, or a class or factory called with no
    arguments). Raises :class:`BadAdapterError` naming what is wrong, or
    :class:`AdapterUnavailable` when the adapter says it cannot run here."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise BadAdapterError(f"adapter must be written module:attribute, got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise BadAdapterError(f"adapter: no module {module_name!r} ({e})") from None
        raise AdapterUnavailable(f"{spec}: importing {module_name} failed: {e}") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise BadAdapterError(f"adapter: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Adapter)):
        obj = obj()
    if not isinstance(obj, Adapter) or not isinstance(getattr(obj, "records", None), Records):
        raise BadAdapterError(f"adapter: {spec} is not an adapter: it needs a `records` "
                              "attribute (a Records) and a run(fn, args, kwargs) method")
    return obj


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
