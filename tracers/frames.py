"""Frames from raw events: after the traced call, ``_build`` turns a recorder's event tuples
into :class:`~tracegym.tracers.cwm.Frame` objects and ``_finish`` wraps them in a
:class:`~tracegym.tracers.cwm.Trace` (source context, entry, outcome).

The recorder (``tracers/recorder.py``) only kept each event's snapshot of the locals; here each
distinct snapshot is unpickled and repr'd once (whole, and per container), then cut to
``max_repr`` and marked with ``TRUNCATED``. The frames are exactly those of an eager
repr-every-local tracer (tests/tracers/test_tracer.py compares on many functions), except that
objects' ``repr`` showing an address differ between any two runs. The C recorder builds its
frames itself and shares only ``_finish`` (and ``_CodeInfo``, its source lookup).
"""

from __future__ import annotations

import dis
import linecache
import pickle
import sys
from collections.abc import Callable
from typing import Any

from tracegym.tracers.cwm import Frame, Trace
from tracegym.tracers.recorder import (
    _IMMUTABLE,
    _LINE,
    _RETURN,
    TRUNCATED,
    TraceOptions,
    _Eager,
    _new_pickler,
    _Recorder,
    safe_repr,
)

# settrace's "return" event fires on a return, a yield, and an exception unwinding the frame;
# the opcode at f_lasti tells them apart (sys.monitoring has an event for each).
_RETURN_OPS = frozenset(
    dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE") if n in dis.opmap
)
# From 3.13 a yield's f_lasti is already on the RESUME after the YIELD_VALUE.
_YIELD_RESUME = (dis.opmap["YIELD_VALUE"], dis.opmap["RESUME"]) \
    if sys.version_info >= (3, 13) else None


# Up to 3.10 a generator suspended in `yield from` has f_lasti one instruction before its
# YIELD_FROM (which runs again on resumption).
_YIELD_FROM = dis.opmap.get("YIELD_FROM")


def _returns_at(co_code: bytes, lasti: int) -> bool:
    """Is settrace's "return" at ``f_lasti`` a return or a yield (not an exception unwinding)?"""
    op = co_code[lasti]
    return (op in _RETURN_OPS
            or (_YIELD_RESUME is not None and lasti >= 2
                and (co_code[lasti - 2], op) == _YIELD_RESUME)
            or (_YIELD_FROM is not None and lasti + 2 < len(co_code)
                and co_code[lasti + 2] == _YIELD_FROM))


_SMALL = 400  # bytes of pickle under which re-pickling a container to find its repr costs more
_EVENT_NAMES = ("call", "line", "return", "exception")  # by raw event kind, for the C build


class _CodeInfo:
    """``info_of(code) -> (lines, qualname)`` for the C recorder's build (once per code)."""

    def __init__(self) -> None:
        self.lines_of: dict[str, list[str]] = {}

    def __call__(self, code: Any) -> tuple[list[str], str]:
        fname = code.co_filename
        lines = self.lines_of.get(fname)
        if lines is None:  # index = line number; [0] and past the end: ""
            lines = self.lines_of[fname] = [""] + [
                s.rstrip("\r\n") for s in linecache.getlines(fname)]
        return lines, getattr(code, "co_qualname", code.co_name)


def _name_of(fn: Any, entry_code: Any) -> str:
    return getattr(fn, "__qualname__", None) or (
        getattr(entry_code, "co_qualname", "") if entry_code is not None else repr(fn))


def _reprs_small(values: tuple, repr_of: dict, limit: int) -> list[str]:
    """Reprs of builtin values whose pickle is small: ``map(repr)`` at C speed."""
    try:
        reprs = list(map(repr, values))
    except Exception:  # noqa: BLE001 - e.g. an int past the digit limit; go value by value
        return _reprs(values, repr_of, limit, None, True)
    if reprs and max(map(len, reprs)) > limit:
        reprs = [r if len(r) <= limit else r[:limit] + TRUNCATED for r in reprs]
    return reprs


def _reprs(values: Any, repr_of: dict, limit: int, key: Callable[[Any], bytes] | None,
           loaded: bool) -> list[str]:
    """Reprs of snapshot items (see :class:`_Recorder`), cut at ``limit``.

    A container's repr is cached by its pickle bytes (equal bytes, equal repr), so a list that
    did not change between events is repr'd once. ``loaded``: the values were unpickled from a
    whole-tuple snapshot (a bytes item is then a value, not a pickle).
    """
    out = []
    for v in values:
        t = type(v)
        if t in _IMMUTABLE:
            r = safe_repr(v) if t is int else repr(v)  # ints past the digit limit refuse
        elif t is _Eager:
            r = str(v)
        elif t is bytes and not loaded:  # one value's pickle
            r = repr_of.get(v)
            if r is None:
                r = repr_of[v] = safe_repr(pickle.loads(v))
        elif key is None:  # a small snapshot: repr is cheaper than a cache key
            r = safe_repr(v)
        else:  # a value unpickled from a whole-tuple snapshot: builtins only, so it pickles
            b = key(v)
            r = repr_of.get(b)
            if r is None:
                r = repr_of[b] = safe_repr(v)
        out.append(r if len(r) <= limit else r[:limit] + TRUNCATED)
    return out


def _build(rec: _Recorder, fn: Any, entry_code: Any, opts: TraceOptions, result: Any,
           exception: BaseException | None) -> Trace:
    """Turn raw events into frames: reprs, truncation, source lines, depths."""
    limit = opts.max_repr
    lines_of: dict[str, list[str]] = {}
    code_info: dict[Any, tuple[list[str], str, bytes]] = {}
    frames: list[Frame] = []
    append = frames.append
    new = tuple.__new__

    # Equal marshal bytes mean equal reprs: each distinct snapshot is repr'd once per trace,
    # whole (all the locals of one event) and per container value.
    repr_of: dict[bytes | str, str] = {}
    whole_of: dict[bytes, list[str]] = {}
    whole = whole_of.get
    dump, pop = _new_pickler()

    def key(v: Any) -> bytes:
        dump(v)
        return pop()

    for ev in rec.events:
        kind, code, lineno, depth = ev[0], ev[1], ev[2], ev[5]
        info = code_info.get(code)
        if info is None:
            fname = code.co_filename
            lines = lines_of.get(fname)
            if lines is None:  # index = line number; [0] and past the end: ""
                lines = lines_of[fname] = [""] + [
                    s.rstrip("\r\n") for s in linecache.getlines(fname)]
            info = code_info[code] = (lines, getattr(code, "co_qualname", code.co_name),
                                      code.co_code)
        lines, qualname, co_code = info
        try:
            source = lines[lineno]
        except (IndexError, TypeError):  # no source, or f_lineno None
            source = ""
        if kind <= _LINE:
            snap = ev[4]
            if type(snap) is bytes:
                reprs = whole(snap)
                if reprs is None:
                    values = pickle.loads(snap)
                    reprs = whole_of[snap] = (
                        _reprs(values, repr_of, limit, key, True) if len(snap) > _SMALL
                        else _reprs_small(values, repr_of, limit))
            elif type(snap) is tuple:
                reprs = _reprs_small(snap, repr_of, limit)
            else:
                reprs = _reprs(snap, repr_of, limit, key, False)
            append(new(Frame, ("line" if kind else "call", lineno, source,
                               dict(zip(ev[3], reprs)), None, qualname, depth)))
        elif kind == _RETURN:
            # settrace also sends "return" when an exception unwinds the frame: the opcode at
            # f_lasti then is not a return or a yield. That frame's last frame is the exception.
            if ev[3] >= 0 and not _returns_at(co_code, ev[3]):
                continue
            r = ev[4]
            append(new(Frame, ("return", lineno, source, {}, r if len(r) <= limit else
                               r[:limit] + TRUNCATED, qualname, depth)))
        else:
            r = ev[4]
            append(new(Frame, ("exception", lineno, source, {}, r if len(r) <= limit else
                               r[:limit] + TRUNCATED, qualname, depth)))
    return _finish(frames, rec.truncated, fn, entry_code, opts, result, exception)


def _finish(frames: list[Frame], truncated: bool, fn: Any, entry_code: Any, opts: TraceOptions,
            result: Any, exception: BaseException | None) -> Trace:
    """The Trace around built frames: context, entry, outcome."""
    limit = opts.max_repr
    context, context_lineno, entry_lineno, filename = "", 1, None, ""
    if entry_code is not None:
        filename = entry_code.co_filename
        entry_lineno = entry_code.co_firstlineno
        all_lines = linecache.getlines(filename)
        if opts.context == "file":
            context = "".join(all_lines)
        else:
            import inspect

            try:
                src, start = inspect.getsourcelines(entry_code)
                context, context_lineno = "".join(src), max(start, 1)
            except (OSError, TypeError):
                context = ""
    entry = _name_of(fn, entry_code)
    ret = None if exception is not None else safe_repr(result)
    exc = None if exception is None else safe_repr(exception)
    if ret is not None and len(ret) > limit:
        ret = ret[:limit] + TRUNCATED
    if exc is not None and len(exc) > limit:
        exc = exc[:limit] + TRUNCATED
    return Trace(entry=entry, context=context, frames=frames, entry_lineno=entry_lineno,
                 context_lineno=context_lineno, filename=filename, return_repr=ret,
                 exception_repr=exc, truncated=truncated, result=result, exception=exception)
