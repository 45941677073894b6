"""The named properties and the runner: each property is a Hypothesis test over
:func:`~tracegym.tracers.strategies.program_calls` (every program kind), parametrised by the
adapter's :class:`~tracegym.tracers.conformance.Records` declaration.

``check(adapter)`` runs them all and returns one :class:`Result` per property: held, failed
(with the shrunk counterexample program, its call and what went wrong), or skipped (the tracer
does not record what the property needs, or the adapter cannot run here).
"""

from __future__ import annotations

import ast
import gc
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from tracegym.tracers.conformance.protocol import Adapter, AdapterUnavailable, Records, Run
from tracegym.tracers.conformance.reference import reference_frames
from tracegym.tracers.cwm import Frame, scrub_text
from tracegym.tracers.programs import Call, Program
from tracegym.tracers.strategies import PROGRAM_KINDS, program_calls

# No explain phase: on 3.10 and 3.11 it replays a failing example under its own settrace
# function, which would displace the tracer under test and hide the failure.
_PHASES = tuple(p for p in Phase if p is not Phase.explain)


class Violation(AssertionError):
    """A property does not hold for one program and call; the message says how."""


@dataclass(frozen=True)
class Property:
    """A named property: ``check(adapter, program, call)`` raises :class:`Violation`.

    ``needs``: the :class:`Records` fields it cannot do without; ``kinds``: the program kinds
    it is about (None: all).
    """

    name: str
    doc: str
    check: Callable[[Adapter, Program, Call], None]
    needs: tuple[str, ...] = ()
    kinds: tuple[str, ...] | None = None

    def skip_reason(self, records: Records, kinds: Sequence[str]) -> str | None:
        missing = records.missing(*self.needs)
        if missing:
            return "the tracer does not record " + ", ".join(missing)
        if self.kinds is not None and not set(self.kinds) & set(kinds):
            return "needs program kinds " + ", ".join(self.kinds)
        return None


@dataclass(frozen=True)
class Result:
    """One property's outcome for one adapter: ``status`` is "held", "failed" or "skipped"."""

    name: str
    status: str
    message: str = ""
    program: str | None = None
    call: Call | None = None
    examples: int = 0

    def counterexample(self) -> str:
        """The failing program and call as text (empty unless failed)."""
        if self.program is None:
            return ""
        args = ", ".join(repr(a) for a in self.call.args) if self.call else ""
        return f"{self.program.rstrip()}\n# called as f({args})"


# ------------------------------------------------------------------------------ helpers
def run_adapter(adapter: Adapter, fn: Callable[..., Any], call: Call) -> Run:
    """``adapter.run`` on a copy of ``call``; anything but a :class:`Run` back is a violation."""
    call = call.copy()
    try:
        run = adapter.run(fn, tuple(call.args), dict(call.kwargs))
    except AdapterUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - the tracer (or its adapter) failed: a finding
        raise Violation(f"the adapter raised {type(e).__name__}: {e}") from e
    if not isinstance(run, Run):
        raise Violation(f"adapter.run returned {type(run).__name__}, not a Run")
    return run


def outcome(result: Any, exception: BaseException | None) -> tuple:
    """What the caller of a call sees, as comparable text."""
    if exception is not None:
        return ("raised", type(exception).__name__, scrub_text(repr(exception.args)))
    return ("returned", scrub_text(repr(result)))


def untraced(program: Program, call: Call) -> tuple:
    fn = program.load()
    args = call.copy()
    try:
        return outcome(fn(*args.args, **args.kwargs), None)
    except Exception as e:  # noqa: BLE001 - the outcome is compared
        return outcome(None, e)


def _last_name(function: str) -> str:
    return function.rsplit(".", 1)[-1]


def view(frame: Frame, records: Records) -> tuple:
    """What of ``frame`` the comparison looks at, per the declaration (addresses scrubbed)."""
    out: list[Any] = [frame.event]
    if records.linenos:
        out.append(frame.lineno)
    if records.sources:
        out.append(frame.source.strip())
    if records.functions:
        out.append(_last_name(frame.function))
    if records.depths:
        out.append(frame.depth)
    if records.locals and frame.event in ("call", "line"):
        visible = {k: v for k, v in frame.locals.items() if k[:1] != "."}
        out.append(sorted((k, scrub_text(v)) for k, v in visible.items()) if records.reprs
                   else sorted(visible))
    if records.reprs and ((frame.event == "return" and records.return_values)
                          or (frame.event == "exception" and records.exception_values)):
        out.append(scrub_text(frame.arg))
    return tuple(out)


def expected(frames: list[Frame], records: Records) -> list[Frame]:
    """The reference's frames less the events the tracer does not record."""
    kinds = {k for k, on in (("call", records.calls), ("line", records.lines),
                             ("return", records.returns), ("exception", records.exceptions))
             if on}
    return [f for f in frames if f.event in kinds]


def _show(frame: Frame | None) -> str:
    if frame is None:
        return "(none)"
    parts = [f"{frame.event} line {frame.lineno} depth {frame.depth}"]
    if frame.function:
        parts.append(f"in {frame.function}")
    if frame.source:
        parts.append(f"`{frame.source.strip()}`")
    if frame.locals:
        parts.append("locals " + ", ".join(f"{k}={v}" for k, v in frame.locals.items()))
    if frame.arg is not None:
        parts.append(f"value {frame.arg}")
    return " ".join(parts)


def compare(want: list[Frame], got: list[Frame], records: Records, what: str) -> None:
    """Raise a Violation at the first event where ``got`` differs from ``want``."""
    a = [view(f, records) for f in want]
    b = [view(f, records) for f in got]
    if a == b:
        return
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    raise Violation(
        f"{what}: event {i + 1} differs ({len(want)} events expected, {len(got)} recorded)\n"
        f"  expected: {_show(want[i] if i < len(want) else None)}\n"
        f"  recorded: {_show(got[i] if i < len(got) else None)}")


# ---------------------------------------------------------------------------- properties
def returns_as_untraced(adapter: Adapter, program: Program, call: Call) -> None:
    plain = untraced(program, call)
    run = run_adapter(adapter, program.load(), call)
    traced = outcome(run.result, run.exception)
    if traced != plain:
        raise Violation(f"untraced the call {_said(plain)}; traced it {_said(traced)}")


def _said(o: tuple) -> str:
    return f"returned {o[1]}" if o[0] == "returned" else f"raised {o[1]}{o[2]}"


def _global_state() -> dict[str, Any]:
    state = {"sys.gettrace()": sys.gettrace(), "sys.getprofile()": sys.getprofile(),
             "threading.gettrace()": getattr(threading, "gettrace", lambda: None)(),
             "threading.getprofile()": getattr(threading, "getprofile", lambda: None)(),
             "sys.getrecursionlimit()": sys.getrecursionlimit(),
             "gc.isenabled()": gc.isenabled()}
    mon = getattr(sys, "monitoring", None)
    if mon is not None:
        for tool in range(6):
            state[f"sys.monitoring tool {tool}"] = (mon.get_tool(tool), mon.get_events(tool))
    return state


def _restore(state: dict[str, Any]) -> None:
    sys.settrace(state["sys.gettrace()"])
    sys.setprofile(state["sys.getprofile()"])
    if hasattr(threading, "gettrace"):
        threading.settrace(state["threading.gettrace()"])
        threading.setprofile(state["threading.getprofile()"])
    sys.setrecursionlimit(state["sys.getrecursionlimit()"])
    (gc.enable if state["gc.isenabled()"] else gc.disable)()
    mon = getattr(sys, "monitoring", None)
    for tool in range(6) if mon is not None else ():
        name, events = state[f"sys.monitoring tool {tool}"]
        if mon.get_tool(tool) is not None and name is None:  # taken and left: free it
            mon.set_events(tool, 0)
            mon.free_tool_id(tool)
        elif name is not None and mon.get_tool(tool) == name:
            mon.set_events(tool, events)


def _globals_view(namespace: dict) -> dict[str, str]:
    return {k: scrub_text(repr(v)) for k, v in namespace.items()
            if k != "__builtins__" and not callable(v) and not isinstance(v, type)}


def leaves_state_as_found(adapter: Adapter, program: Program, call: Call) -> None:
    before = _global_state()
    namespace = program.namespace()
    run_adapter(adapter, namespace[program.entry], call)
    after = _global_state()
    changed = [f"{k}: {before[k]!r} before, {after.get(k)!r} after" for k in before
               if after.get(k) != before[k]]
    if changed:
        _restore(before)  # so that the next programs (and properties) start clean
        raise Violation("the tracer changed global state: " + "; ".join(changed))
    plain = program.namespace()
    untraced_fn, args = plain[program.entry], call.copy()
    try:
        untraced_fn(*args.args, **args.kwargs)
    except Exception:  # noqa: BLE001, S110 - only the globals it leaves are compared
        pass
    traced_globals, plain_globals = _globals_view(namespace), _globals_view(plain)
    if traced_globals != plain_globals:
        raise Violation(f"the program's globals differ from an untraced run's: traced "
                        f"{traced_globals}, untraced {plain_globals}")


def well_nested(adapter: Adapter, program: Program, call: Call) -> None:
    records = adapter.records
    frames = run_adapter(adapter, program.load(), call).frames
    if not frames:
        raise Violation("no events recorded")
    first = frames[0]
    if first.event != "call" or first.depth != 0:
        raise Violation(f"the first event is not the entry's call at depth 0: {_show(first)}")
    stack: list[Frame] = []  # open frames: their call events
    raised: list[bool] = []  # whether an exception event came since each one's call

    def leave_to(depth: int, i: int) -> None:
        # A frame left without its return event was left by an exception; after a finally
        # block runs, it is re-raised with no event of its own, so any exception event of
        # the frame's current run will do.
        while len(stack) > depth:
            if records.exceptions and not raised[-1]:
                raise Violation(f"event {i + 1} ({_show(frames[i])}) leaves the frame of "
                                f"{_show(stack[-1])} without a return or exception event")
            stack.pop()
            raised.pop()

    for i, f in enumerate(frames):
        if f.depth < 0:
            raise Violation(f"event {i + 1} has depth {f.depth}")
        if f.event == "call":
            leave_to(f.depth, i)
            if f.depth != len(stack):
                raise Violation(f"event {i + 1} ({_show(f)}) is a call at depth {f.depth} "
                                f"with {len(stack)} frames open")
            stack.append(f)
            raised.append(False)
            continue
        if f.depth >= len(stack):
            raise Violation(f"event {i + 1} ({_show(f)}) is at depth {f.depth} with "
                            f"{len(stack)} frames open: no call event entered it")
        leave_to(f.depth + 1, i)
        if records.functions and _last_name(f.function) != _last_name(stack[-1].function):
            raise Violation(f"event {i + 1} ({_show(f)}) names another function than the "
                            f"call that opened its frame ({_show(stack[-1])})")
        if f.event == "exception":
            raised[-1] = True
        elif f.event == "return":
            stack.pop()
            raised.pop()
    leave_to(0, len(frames) - 1)


def _scopes(source: str) -> list[tuple[str, int, int]]:
    """``(qualname, first line, last line)`` of every function, lambda and comprehension."""
    out = []
    names = {ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>", ast.DictComp: "<dictcomp>",
             ast.GeneratorExp: "<genexpr>", ast.Lambda: "<lambda>"}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append((qual, first, child.end_lineno))
                walk(child, qual + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            elif type(child) in names:
                qual = prefix + names[type(child)]
                out.append((qual, child.lineno, child.end_lineno))
                walk(child, qual + ".<locals>.")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return out


def lines_in_their_function(adapter: Adapter, program: Program, call: Call) -> None:
    records = adapter.records
    frames = run_adapter(adapter, program.load(), call).frames
    lines = program.source.splitlines()
    scopes = _scopes(program.source)
    for i, f in enumerate(frames):
        if not 1 <= f.lineno <= len(lines):
            raise Violation(f"event {i + 1} ({_show(f)}) names line {f.lineno}; the program "
                            f"has {len(lines)}")
        if records.sources and f.source.strip() != lines[f.lineno - 1].strip():
            raise Violation(f"event {i + 1} ({_show(f)}) shows the source `{f.source.strip()}`"
                            f" for line {f.lineno}, which is `{lines[f.lineno - 1].strip()}`")
        if records.functions:
            name = _last_name(f.function)
            spans = [(a, b) for qual, a, b in scopes if _last_name(qual) == name]
            if not spans:
                raise Violation(f"event {i + 1} ({_show(f)}) names function {f.function!r}, "
                                "which the program does not define")
        else:
            spans = [(a, b) for _, a, b in scopes]
        if not any(a <= f.lineno <= b for a, b in spans):
            raise Violation(f"event {i + 1} ({_show(f)}): line {f.lineno} is outside "
                            + (f"function {f.function!r}" if records.functions
                               else "every function"))


def _literals(reprs: dict[str, str]) -> dict[str, Any] | None:
    try:
        return {k: ast.literal_eval(v) for k, v in reprs.items() if k[:1] != "."}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def replays_straight_line(adapter: Adapter, program: Program, call: Call) -> None:
    records = adapter.records
    if program.meta.get("kind") != "straight_line" or not (records.sources or records.linenos):
        return  # nothing to replay: another kind, or no way to tell which line ran
    frames = run_adapter(adapter, program.load(), call).frames
    lines = program.source.splitlines()
    for i, (now, nxt) in enumerate(zip(frames, frames[1:])):
        if now.event != "line" or nxt.event != "line" or now.depth != nxt.depth:
            continue
        state = _literals(now.locals)
        if state is None:  # a value the tracer shortened, or not a literal
            continue
        source = now.source if records.sources else (
            lines[now.lineno - 1] if 1 <= now.lineno <= len(lines) else "")
        try:
            exec(compile(source.strip(), "<replay>", "exec"), {}, state)  # noqa: S102
        except Exception:  # noqa: BLE001, S112 - not replayable alone (e.g. a bad source)
            continue
        replayed = {k: records.repr_of(v) for k, v in state.items()}
        got = {k: v for k, v in nxt.locals.items() if k[:1] != "."}
        if replayed != got:
            raise Violation(f"event {i + 2} ({_show(nxt)}): replaying `{source.strip()}` "
                            f"on the locals of event {i + 1} gives {replayed}")


def matches_reference(adapter: Adapter, program: Program, call: Call) -> None:
    records = adapter.records
    want, _, _ = reference_frames(program.load(), *_args(call), records)
    got = run_adapter(adapter, program.load(), call).frames
    compare(expected(want, records), got, records, "the events differ from the reference's")


def _args(call: Call) -> tuple[tuple, dict]:
    c = call.copy()
    return tuple(c.args), dict(c.kwargs)


def deterministic(adapter: Adapter, program: Program, call: Call) -> None:
    first = run_adapter(adapter, program.load(), call).frames
    second = run_adapter(adapter, program.load(), call).frames
    compare(first, second, adapter.records, "a second trace of the same call differs")


PROPERTIES: tuple[Property, ...] = (
    Property("returns_as_untraced", "the traced call returns what the untraced call returns "
             "and raises what it raises", returns_as_untraced),
    Property("leaves_state_as_found", "sys.gettrace(), sys.getprofile(), threading's hooks, "
             "sys.monitoring's tools, the recursion limit, gc and the program's globals are "
             "as an untraced call leaves them", leaves_state_as_found),
    Property("well_nested", "every call has its return or exception; depths match the "
             "frames open; events of a frame name its function", well_nested,
             needs=("calls", "returns", "depths")),
    Property("lines_in_their_function", "each event's line lies in the function it names "
             "and shows that line's source", lines_in_their_function, needs=("linenos",)),
    Property("replays_straight_line", "in a straight-line program, the locals after a line "
             "equal replaying that line on the locals before it", replays_straight_line,
             needs=("lines", "locals", "reprs"), kinds=("straight_line",)),
    Property("matches_reference", "the events equal the reference recorder's, less what the "
             "tracer declares it does not record", matches_reference),
    Property("deterministic", "the same call traced twice gives the same events",
             deterministic),
)
PROPERTY_NAMES = tuple(p.name for p in PROPERTIES)


# -------------------------------------------------------------------------------- runner
def check_property(adapter: Adapter, prop: Property, *, kinds: Sequence[str] | None = None,
                   max_examples: int = 50, seed: int | None = 0,
                   max_statements: int = 8) -> Result:
    """Run one property against ``adapter``: a Hypothesis search over ``kinds`` (default
    every kind) that shrinks a failure to a minimal program. ``seed`` None: random."""
    kinds = PROGRAM_KINDS if kinds is None else tuple(kinds)
    reason = prop.skip_reason(adapter.records, kinds)
    if reason is not None:
        return Result(prop.name, "skipped", reason)
    if prop.kinds is not None:
        kinds = tuple(k for k in kinds if k in prop.kinds)
    last: dict[str, Any] = {}
    count = [0]

    @settings(max_examples=max_examples, deadline=None, database=None, phases=_PHASES,
              derandomize=False, report_multiple_bugs=False, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(program_calls(kinds, max_statements=max_statements))
    def search(item: tuple[Program, Call]) -> None:
        program, call = item
        count[0] += 1
        try:
            prop.check(adapter, program, call)
        except Violation as v:
            last.update(program=program, call=call, message=str(v))
            raise

    if seed is not None:
        search = hypothesis_seed(seed)(search)
    # settrace holds one function (3.10, 3.11): a coverage or debugger tracer installed around
    # the check would be displaced by the tracer under test and reported as state it changed.
    prior = sys.gettrace() if sys.version_info < (3, 12) else None
    if prior is not None:
        sys.settrace(None)
    try:
        search()
    except Violation:
        return Result(prop.name, "failed", last["message"], last["program"].source,
                      last["call"], count[0])
    except Flaky as e:  # failed, but not again on replay: still a finding
        if last:
            return Result(prop.name, "failed", f"(flaky) {last['message']}",
                          last["program"].source, last["call"], count[0])
        raise Violation(f"{prop.name}: flaky failure: {e}") from e
    except AdapterUnavailable as e:
        return Result(prop.name, "skipped", str(e))
    finally:
        if prior is not None:
            sys.settrace(prior)
    return Result(prop.name, "held", examples=count[0])


def check(adapter: Adapter, *, properties: Sequence[str] | None = None,
          kinds: Sequence[str] | None = None, max_examples: int = 50,
          seed: int | None = 0) -> list[Result]:
    """Every property (or those named) against ``adapter``; one :class:`Result` each."""
    chosen = PROPERTIES if properties is None else tuple(by_name(n) for n in properties)
    return [check_property(adapter, p, kinds=kinds, max_examples=max_examples, seed=seed)
            for p in chosen]


def by_name(name: str) -> Property:
    for p in PROPERTIES:
        if p.name == name:
            return p
    raise ValueError(f"property must be one of {PROPERTY_NAMES}, got {name!r}")


def format_results(results: Sequence[Result], *, title: str = "",
                   records: Records | None = None) -> str:
    """The table of properties held / failed / skipped, then each failure's counterexample."""
    out = [title] if title else []
    if records is not None and records.differences:
        out.append("declared differences (expected, not failures):")
        out += [f"  - {d}" for d in records.differences]
    width = max(len(r.name) for r in results) if results else 10
    out.append(f"{'property':<{width}}  result")
    for r in results:
        note = f" ({r.examples} examples)" if r.status == "held" else (
            f" ({r.message})" if r.status == "skipped" else "")
        out.append(f"{r.name:<{width}}  {r.status.upper() if r.status == 'failed' else r.status}"
                   f"{note}")
    for r in results:
        if r.status == "failed":
            out += ["", f"--- {r.name}: {r.message}", "minimal program:",
                    *("    " + line for line in r.counterexample().splitlines())]
    return "\n".join(out) + "\n"
