"""The reference recorder: a naive eager ``sys.settrace`` tracer the properties compare with.

It is deliberately the simplest tracer that follows the conventions (see ``protocol.py``): it
renders every local at every event with the adapter's declared ``repr_of``, keeps the events of
code in the entry's own file, and tells a return from an exception unwinding the frame by the
opcode at ``f_lasti`` (and, at a yield, by an exception raised there with nothing run
since: a suspended generator closed). On Python 3.12+ ``sys.settrace`` still sends the legacy
events, so it is the same oracle there.
"""

from __future__ import annotations

import dis
import linecache
import sys
from collections.abc import Callable
from typing import Any

from tracegym.tracers.conformance.protocol import Records
from tracegym.tracers.cwm import Frame

_RETURN_OPS = frozenset(dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE")
                        if n in dis.opmap)


def _returns_at(code: Any, lasti: int) -> bool:
    """settrace's "return" at ``f_lasti``: a return or a yield (True), or an unwind."""
    op = code.co_code[lasti]
    if sys.version_info >= (3, 13) and op == dis.opmap["RESUME"] and lasti >= 2:
        return code.co_code[lasti - 2] == dis.opmap["YIELD_VALUE"]  # 3.13: past the yield
    if "YIELD_FROM" in dis.opmap and lasti + 2 < len(code.co_code) \
            and code.co_code[lasti + 2] == dis.opmap["YIELD_FROM"]:
        return True  # up to 3.10: suspended in `yield from`, one instruction before it
    return op in _RETURN_OPS


def reference_frames(fn: Callable[..., Any], args: tuple, kwargs: dict,
                     records: Records) -> tuple[list[Frame], Any, BaseException | None]:
    """``(frames, result, exception)`` of ``fn(*args, **kwargs)``: every event of the code in
    ``fn``'s file, each value rendered as ``records`` declares (all events, all fields: the
    comparison leaves out what the adapter does not record)."""
    frames: list[Frame] = []
    stack: list[Any] = []
    raised: dict[Any, int] = {}  # frame -> f_lasti of its exception event, until it runs on
    filename = fn.__code__.co_filename
    render = records.repr_of

    def src(frame: Any) -> str:
        return linecache.getline(frame.f_code.co_filename, frame.f_lineno).rstrip("\r\n")

    def name(code: Any) -> str:
        return getattr(code, "co_qualname", code.co_name)

    def local_reprs(frame: Any) -> dict[str, str]:
        return {k: render(v) for k, v in frame.f_locals.items() if k[:1] != "."}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if not stack or stack[-1] is not frame:
            return local  # events only between a frame's call and its return
        code, depth = frame.f_code, len(stack) - 1
        if event == "line":
            raised.pop(frame, None)
            frames.append(Frame("line", frame.f_lineno, src(frame), local_reprs(frame), None,
                                name(code), depth))
        elif event == "return":
            stack.pop()
            # Raised where the frame stands, nothing run since: an unwind, even at a yield
            # (a suspended generator closed), where the opcode alone would say "yield".
            unwinds = raised.pop(frame, None) == frame.f_lasti and arg is None
            if (_returns_at(code, frame.f_lasti) and not unwinds) or records.returns_on_unwind:
                frames.append(Frame("return", frame.f_lineno, src(frame), {}, render(arg),
                                    name(code), depth))
        elif event == "exception":
            raised[frame] = frame.f_lasti
            frames.append(Frame("exception", frame.f_lineno, src(frame), {},
                                records.render_exception(arg[1]), name(code), depth))
        return local

    def glob(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != filename:
            return None
        stack.append(frame)
        frames.append(Frame("call", frame.f_lineno, src(frame), local_reprs(frame), None,
                            name(frame.f_code), len(stack) - 1))
        return local

    result = exception = None
    prior = sys.gettrace()
    sys.settrace(glob)
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the program's own exception is an outcome
        exception = e
    finally:
        sys.settrace(prior)
        stack.clear()  # a generator resumed later records nothing
    return list(frames), result, exception
