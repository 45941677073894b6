"""The in-process tracer: events, locals before each line, limits, safety, and equality with a
naive eager tracer (the reference the fast snapshot path must match frame for frame).

Every test runs under both recorders (the ``backend`` fixture: pure Python, and the C extension
``tracegym.tracers._ctrace``, skipped with the reason when it is not importable); the tests at
the end compare the two directly."""

from __future__ import annotations

import dis
import importlib
import json
import math
import re
import sys
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager

import pytest

from tracegym.tracers import (
    TRUNCATED,
    Frame,
    Trace,
    TraceOptions,
    Tracer,
    TracerConflictError,
    trace,
)
from tracegym.tracers.trace import DisplacedTracerWarning

trace_module = importlib.import_module("tracegym.tracers.trace")  # the module, not trace()
C_SKIP = pytest.mark.skipif(
    trace_module.C_UNAVAILABLE is not None or sys.version_info >= (3, 12),
    reason=f"C recorder not in use: {trace_module.C_UNAVAILABLE or 'Python >= 3.12'}")
# The C recorder exists for 3.11 only: elsewhere the tests run once, not once skipped.
BACKENDS = [pytest.param("python")] + (
    [pytest.param("c", marks=C_SKIP)] if sys.version_info[:2] == (3, 11) else [])
_REAL_USE_C = trace_module._use_c


def both_backends(test):
    """Marks a test that compares the two recorders itself: it runs once, not per recorder."""
    test.both_backends = True
    return test


def pytest_generate_tests(metafunc):
    # Each test runs under each recorder, but those comparing the two themselves run once.
    if not getattr(metafunc.function, "both_backends", False):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request, monkeypatch):
    """The recorder of this run: options left at backend="auto" get this one."""
    chosen = getattr(request, "param", "auto")
    monkeypatch.setattr(trace_module, "_use_c",
                        lambda b: _REAL_USE_C(chosen if b == "auto" else b))
    return chosen

# ---------------------------------------------------------------------------- programs


def helper(x):
    y = x * 2
    return y


def loop_sum(n):
    total = 0
    for i in range(n):
        total += i
    return total


def nested(n):
    acc = []
    for i in range(n):
        acc.append(helper(i))
    return acc


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


def caught(x):
    try:
        raise ValueError(x)
    except ValueError as e:
        msg = str(e)
    return msg


def uncaught(x):
    y = x + 1
    raise KeyError(y)


def calls_uncaught(x):
    try:
        return uncaught(x)
    finally:
        z = 3  # noqa: F841


def gen(n):
    for i in range(n):
        yield i * i


def use_gen(n):
    out = []
    for v in gen(n):
        out.append(v)
    return out


def closure(n):
    k = 10

    def add(v):
        return v + k

    return [add(i) for i in range(n)]


def mutate_all(n):
    lst = [1, 2]
    d = {"a": 1}
    s = {1, 2, 3}
    for i in range(n):
        lst.append([i, {"k": i}])
        d[i] = (i, str(i))
        s.discard(i)
        s.add(i + 100)
        lst[0] = lst[0] * 3
    return lst, d, s


def nested_sets(n):
    boxes = [set(), frozenset({1, 2})]
    for i in range(n):
        boxes[0].add(i * 9)
        boxes[0].discard(i * 9 - 9)
    blob = bytearray(b"abc")
    blob += b"d"
    tags = ["sec", "code", "<>"]
    return boxes, blob, tags


def odd_values(n):
    big = 10 ** 5000
    f = float("nan")
    z = -0.0
    c = complex(1, -0.0)
    b = b"\x00s<"
    od = OrderedDict(a=1)
    r = range(n)
    t = (1, [2, (3,)])
    code = odd_values.__code__
    cell = [t, t]
    cyc = []
    cyc.append(cyc)
    return len(str(n)) + len(repr(big)) * 0 if n > 10 ** 6 else (f, z, c, b, od, r, cell, code)


class Boom:
    def __repr__(self):
        raise ValueError("no repr")


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n += 1
        return self.n

    def __repr__(self):
        return f"Counter({self.n})"


def with_objects(n):
    c = Counter()
    b = Boom()
    for _ in range(n):
        c.bump()
    return c, b


def long_values(n):
    s = "x" * n
    return s


def uses_stdlib(n):
    data = json.dumps({"n": n})
    return json.loads(data)


def tricky_containers(n):
    from collections import defaultdict

    dd = defaultdict(list)
    shared = [0]
    pair = (shared, shared)
    words = ["set\n", "sets", "<>", "cc"]
    funcs = [helper, loop_sum, Counter]
    objs = [Counter(), {"k": Counter()}]
    s = set(range(40))
    for i in range(n):
        dd[i % 2].append(i)
        shared[0] += 1
        s -= set(range(i * 8, i * 8 + 8))
        objs[0].bump()
        deep = [[[[i]]]]
    return dd, pair, words, funcs, s, deep


def containers_galore(n):
    empty = [[], (), {}, set(), frozenset(), ("one",), [()], {(): frozenset()}]
    grid = [[i * j for j in range(n)] for i in range(n)]
    pairs = [(i, str(i), i / 3, -i * 1j, b"\x00'\"") for i in range(n)]
    table = {str(i): [i, {i: (i,)}, {i, -i}] for i in range(n)}
    sets = [frozenset({i, (i, "x")}) for i in range(n)]
    big = [1, 2, 10 ** 700]
    unicode = ["é\u2028", "\U0001f600" * n, True, None, -0.0, float("inf")]
    for i in range(n * 3):
        grid[i % n].append(i)
        table[str(i % n)][1][i] = (i, None)
        sets.append(frozenset(range(i % 4)))
        big[0] += 1
    return len(grid), empty, pairs, unicode


def one_line_loops(n):
    # settrace sends a line event for each backward jump, even to the same line
    while n > 0: n -= 1  # noqa: E701
    for i in range(3): n += i  # noqa: E701
    squares = [i * i for i in range(4)]; total = sum(x for x in squares)  # noqa: E702
    return n, squares, total


def catching_gen():
    try:
        yield 1
    except KeyError:
        yield "caught"


def generator_protocols(n):
    g = catching_gen()
    first = next(g)
    second = g.throw(KeyError(n))  # resumed by throw(): a "call" too
    g.close()
    it = iter(range(n))
    out = []
    while True:
        try:
            out.append(next(it))
        except StopIteration:
            break
    return first, second, out, next(iter([]), "empty")


async def _add_one(x):
    return x + 1


def drives_a_coroutine(n):
    co = _add_one(n)
    try:
        co.send(None)
    except StopIteration as stop:
        return stop.value


PROGRAMS = [
    (loop_sum, (5,)), (nested, (3,)), (fact, (4,)), (caught, ("boom",)), (uncaught, (1,)),
    (calls_uncaught, (2,)), (use_gen, (3,)), (closure, (3,)), (mutate_all, (4,)),
    (nested_sets, (5,)), (odd_values, (3,)), (with_objects, (2,)), (long_values, (500,)),
    (uses_stdlib, (3,)), (tricky_containers, (4,)), (containers_galore, (12,)),
    (one_line_loops, (3,)), (generator_protocols, (3,)), (drives_a_coroutine, (1,)),
]


# ---------------------------------------------------------------------- naive reference
_RETURN_OPS = {dis.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE")
               if n in dis.opmap}
MONITORING = sys.version_info >= (3, 12)  # the recorder runs on sys.monitoring, not settrace


def _is_return(code, lasti):
    """settrace's "return" at f_lasti: a return or yield (True) or an exception unwinding."""
    op = code.co_code[lasti]
    if sys.version_info >= (3, 13) and op == dis.opmap["RESUME"] and lasti >= 2:
        return code.co_code[lasti - 2] == dis.opmap["YIELD_VALUE"]  # 3.13: past the yield
    return op in _RETURN_OPS


def naive_trace(fn, *args, max_repr=200):
    """Eager reference: the conformance kit's reference recorder (every local repr'd at every
    event, same scope: this file, and conventions)."""
    from tracegym.tracers.conformance import Records, cut_repr, reference_frames

    return reference_frames(fn, args, {}, Records(repr_of=cut_repr(max_repr)))[0]


def _no_addresses(frames):
    return json.loads(re.sub(r" at 0x[0-9a-f]+", " at 0x?", json.dumps(frames)))


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("fn,args", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
def test_trace__equals_naive_reference(fn, args):
    # Two runs make new objects: only "at 0x..." addresses may differ.
    assert _no_addresses(trace(fn, *args).frames) == _no_addresses(naive_trace(fn, *args))


def test_trace__locals_before_the_line():
    t = trace(loop_sum, 3)
    lines = [f for f in t.frames if f.event == "line"]
    assert lines[0].source.strip() == "total = 0" and "total" not in lines[0].locals
    assert lines[1].locals == {"n": "3", "total": "0"}
    assert [f.locals.get("total") for f in lines if "total +=" in f.source] == ["0", "0", "1"]
    assert t.frames[0] == Frame("call", loop_sum.__code__.co_firstlineno, "def loop_sum(n):",
                                {"n": "3"}, None, "loop_sum", 0)
    assert t.frames[-1].event == "return" and t.frames[-1].arg == "3"
    assert t.return_repr == "3" and t.result == 3 and t.exception is None


def test_trace__nested_calls_have_depths():
    t = trace(fact, 3)
    calls = [(f.locals["n"], f.depth) for f in t.frames if f.event == "call"]
    assert calls == [("3", 0), ("2", 1), ("1", 2)]
    returns = [(f.arg, f.depth) for f in t.frames if f.event == "return"]
    assert returns == [("1", 2), ("2", 1), ("6", 0)]


def test_trace__exceptions_caught_and_uncaught():
    t = trace(caught, "x")
    assert [f.event for f in t.frames].count("exception") == 1
    assert t.result == "x" and t.exception is None
    t = trace(calls_uncaught, 1)
    exc = [(f.function, f.arg) for f in t.frames if f.event == "exception"]
    assert exc == [("uncaught", "KeyError(2)"), ("calls_uncaught", "KeyError(2)")]
    # A frame left by an exception ends with it: no "return None" frame for it.
    assert not any(f.event == "return" for f in t.frames)
    assert isinstance(t.exception, KeyError) and t.exception_repr == "KeyError(2)"
    assert t.return_repr is None


def test_trace__generator_resume_is_call_yield_is_return():
    t = trace(use_gen, 2)
    g = [(f.event, f.arg) for f in t.frames if f.function == "gen" and f.event != "line"]
    assert g == [("call", None), ("return", "0"), ("call", None), ("return", "1"),
                 ("call", None), ("return", "None")]
    assert t.result == [0, 1]


def test_trace__closure_sees_free_variables():
    t = trace(closure, 2)
    add_calls = [f.locals for f in t.frames if f.event == "call" and f.function.endswith("add")]
    assert add_calls == [{"v": "0", "k": "10"}, {"v": "1", "k": "10"}]


def test_trace__depth_limit():
    t = Tracer(TraceOptions(max_depth=1)).trace(fact, 5)
    assert {f.depth for f in t.frames} == {0, 1}
    assert t.result == 120
    t = Tracer(TraceOptions(max_depth=0)).trace(nested, 3)
    assert {f.function for f in t.frames} == {"nested"}


def test_trace__max_events_truncates_and_the_call_finishes():
    t = Tracer(TraceOptions(max_events=7)).trace(loop_sum, 1000)
    assert len(t.frames) == 7 and t.truncated
    assert t.result == sum(range(1000)) and t.return_repr == repr(sum(range(1000)))
    assert sys.gettrace() is None or sys.gettrace() is not t
    assert not trace(loop_sum, 3).truncated


def test_trace__repr_truncation_marker():
    t = Tracer(TraceOptions(max_repr=10)).trace(long_values, 50)
    assert t.frames[-1].arg == "'" + "x" * 9 + TRUNCATED
    assert t.return_repr == "'" + "x" * 9 + TRUNCATED
    assert t.result == "x" * 50


def test_trace__exploding_repr_is_a_marker():
    t = trace(with_objects, 1)
    last_line = [f for f in t.frames if f.event == "line"][-1]
    assert last_line.locals["b"] == "<repr failed: ValueError>"
    assert last_line.locals["c"] == "Counter(1)"
    assert t.return_repr == "<repr failed: ValueError>"  # the tuple's repr calls Boom's


def test_trace__result_and_exception_are_the_real_objects():
    obj = []

    def ident(x):
        return x

    assert trace(ident, obj).result is obj
    err = RuntimeError("e")

    def raiser():
        raise err

    t = trace(raiser)
    assert t.exception is err and t.result is None


def test_trace__kwargs_go_to_fn():
    def f(a, max_events=0, scope="x"):
        return (a, max_events, scope)

    assert trace(f, 1, max_events=5, scope="y").result == (1, 5, "y")


@contextmanager
def displacing(prior):
    """Expect the warning that tracing sets ``prior`` aside (settrace), or none (monitoring)."""
    if MONITORING:  # sys.monitoring leaves the trace function in place: nothing to report
        with warnings.catch_warnings():
            warnings.simplefilter("error", DisplacedTracerWarning)
            yield
    else:
        with pytest.warns(DisplacedTracerWarning, match=re.escape(repr(prior))):
            yield


def test_trace__prior_tracer_restored():
    seen = []

    def prior(frame, event, arg):
        seen.append(event)
        return None

    sys.settrace(prior)
    try:
        with displacing(prior):
            Tracer(TraceOptions(other_tracer="set_aside")).trace(loop_sum, 3)
        assert sys.gettrace() is prior
    finally:
        sys.settrace(None)


def test_trace__a_displaced_tracer_is_reported_once_per_call_and_tracing_works():
    seen = []

    def prior(frame, event, arg):
        seen.append(frame.f_code)
        return None

    expected = trace(loop_sum, 30)
    sys.settrace(prior)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            aside = Tracer(TraceOptions(other_tracer="set_aside"))
            traces = [aside.trace(loop_sum, 30) for _ in range(2)]
        assert sys.gettrace() is prior
    finally:
        sys.settrace(None)
    for t in traces:  # the trace is whole, displaced tracer or not
        assert t.frames == expected.frames and t.result == expected.result
    reported = [w for w in caught if issubclass(w.category, DisplacedTracerWarning)]
    if MONITORING:  # sys.monitoring: the tracer stays installed and sees the call
        assert reported == [] and loop_sum.__code__ in seen
    else:  # one warning per traced call (not per event), naming the function and this file
        assert len(reported) == 2 and loop_sum.__code__ not in seen
        assert all(repr(prior) in str(w.message) and w.filename == __file__ for w in reported)


def test_trace__another_tracer_is_refused_not_replaced():
    """settrace (3.10, 3.11) holds one function: by default tracing refuses before the call runs
    and leaves the debugger or coverage in place; sys.monitoring (3.12+) runs beside it."""
    seen, calls = [], []

    def prior(frame, event, arg):
        seen.append(frame.f_code)
        return None

    def appends(n):
        calls.append(n)
        return n

    sys.settrace(prior)
    try:
        if MONITORING:
            t = trace(appends, 1)
            assert t.result == 1 and t.frames and appends.__code__ in seen
        else:
            with pytest.raises(TracerConflictError, match=re.escape(
                    f"a trace function is already installed ({prior!r}")):
                trace(appends, 1)
            assert calls == [] and appends.__code__ not in seen
        assert sys.gettrace() is prior
    finally:
        sys.settrace(None)


def test_trace__tracing_inside_a_traced_call_is_not_reported():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DisplacedTracerWarning)
        t = trace(traces_inside, 3)
    assert t.exception is None and t.result == trace(traces_inside, 3).result


def test_trace__stdlib_not_traced_by_default():
    t = trace(uses_stdlib, 2)
    assert {f.function for f in t.frames} == {"uses_stdlib"}
    assert t.result == {"n": 2}


def test_trace__scope_entry_skips_same_file_helpers():
    t = Tracer(TraceOptions(scope="entry")).trace(nested, 2)
    assert {f.function for f in t.frames} == {"nested"}


def test_trace__marshal_sensitive_values_repr_exactly():
    t = trace(nested_sets, 4)
    last = [f for f in t.frames if f.event == "line"][-1].locals
    boxes, blob, tags = nested_sets(4)
    assert last["boxes"] == repr(boxes) and last["blob"] == repr(blob)
    assert last["tags"] == repr(tags)
    t = trace(odd_values, 2)
    last = [f for f in t.frames if f.event == "line"][-1].locals
    assert last["f"] == "nan" and last["z"] == "-0.0" and last["cyc"] == "[[...]]"
    assert last["big"] == "<repr failed: ValueError>"
    assert math.isnan(t.result[0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"scope": "all"}, "scope must be 'file', 'entry' or 'user', got 'all'"),
        ({"context": "module"}, "context must be 'file' or 'function', got 'module'"),
        ({"max_depth": -1}, "max_depth must be >= 0, got -1"),
        ({"max_events": 1.5}, "max_events must be an int or None, got 1.5"),
        ({"max_repr": 0}, "max_repr must be >= 1, got 0"),
        ({"max_repr": True}, "max_repr must be an int, got True"),
        ({"files": "a.py"}, "files must be a tuple of paths, got the string 'a.py'"),
        ({"backend": "rust"}, "backend must be 'auto', 'python' or 'c', got 'rust'"),
        ({"other_tracer": "chain"}, "other_tracer must be 'refuse' or 'set_aside', got 'chain'"),
    ],
)
def test_trace_options__bad_values(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TraceOptions(**kwargs)


def test_trace__json_round_trip_of_real_traces():
    for fn, args in PROGRAMS:
        t = trace(fn, *args)
        assert Trace.from_json(t.to_json()) == t
        assert Trace.from_cwm(t.to_cwm()).to_cwm() == t.to_cwm()


def test_trace__generator_resumed_after_the_trace_records_nothing():
    def make():
        g = gen(3)
        next(g)  # the generator's frame now carries our local trace function
        return g

    t = trace(make)
    n = len(t.frames)
    g = t.result
    sys.settrace(lambda *a: None)  # a later tracer must not wake our recorder up
    try:
        assert list(g) == [1, 4]
    finally:
        sys.settrace(None)
    assert len(t.frames) == n


CLOSE_LOG: list = []


def gen_logs_close():
    try:
        yield 1
    finally:
        CLOSE_LOG.append("closed")


def abandons_generator():
    g = gen_logs_close()
    next(g)
    return 1  # g is closed as this frame is cleared: its finally runs now


def sees_close():
    abandons_generator()
    return len(CLOSE_LOG)


def test_trace__an_abandoned_generator_is_closed_where_it_would_be_untraced():
    # The Python recorder used to keep every traced frame alive until the end of the trace, so
    # the generator's finally ran after the call, not when abandons_generator returned
    CLOSE_LOG.clear()
    untraced = sees_close()
    CLOSE_LOG.clear()
    t = trace(sees_close)
    assert untraced == t.result == 1
    assert ("exception", "GeneratorExit()", "gen_logs_close", 1) in [
        (f.event, f.arg, f.function, f.depth) for f in t.frames]


GEN_MODULE = """def gen(n):
    for i in range(n):
        yield i


def f(n):
    g = gen(n)
    first = next(g)
    return first
"""


@C_SKIP
@both_backends
def test_backends__generator_closed_after_the_entry_returns():
    # the 9-line module of issue 19 and the stdlib case: the C recorder logged the generator's
    # close (after f returned) and the Python recorder did not; both log it now
    import statistics

    from tracegym.tracers.programs import Program

    fn = Program("gen", GEN_MODULE, "f").load()
    py, c = _both(fn, 3)
    _same(py, c)
    end = next(i for i, f in enumerate(c.frames) if f.function == "f" and f.event == "return")
    after = c.frames[end + 1:]  # the close, as f's frame is cleared
    assert {f.function for f in after} == {"gen"} and ("exception", "GeneratorExit()") in [
        (f.event, f.arg) for f in after]
    _same(*_both(statistics.harmonic_mean, [1, 2, 0]))
    _same(*_both(statistics.harmonic_mean, [1.0, 2.0, 4.0]))


def test_trace__values_mutated_later_keep_their_state_at_each_line():
    def grow():
        xs = []
        box = [xs, {1}]
        for i in range(3):
            xs.append(bytearray(b"a" * i))
            box[1].add(i * 8)
        return box

    frames = [f for f in trace(grow).frames if f.event == "line"]
    assert [f.locals.get("xs") for f in frames if "append" in f.source] == [
        "[]", "[bytearray(b'')]", "[bytearray(b''), bytearray(b'a')]"]
    assert _no_addresses(trace(grow).frames) == _no_addresses(naive_trace(grow))


def test_trace__gc_state_is_left_as_found():
    import gc

    assert gc.isenabled()
    trace(loop_sum, 3)
    assert gc.isenabled()


# ------------------------------------------------------------- backends: C against Python
def _both(fn, *args, **opts):
    py = Tracer(TraceOptions(backend="python", **opts)).trace(fn, *args)
    c = Tracer(TraceOptions(backend="c", **opts)).trace(fn, *args)
    return py, c


def _same(py, c):
    assert _no_addresses(c.frames) == _no_addresses(py.frames)
    assert (c.return_repr is None) == (py.return_repr is None)
    assert c.truncated == py.truncated and c.context == py.context and c.entry == py.entry
    assert type(c.exception) is type(py.exception)


@C_SKIP
@both_backends
@pytest.mark.parametrize("fn,args", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
@pytest.mark.parametrize("opts", [{}, {"max_repr": 1}, {"max_repr": 7}, {"max_repr": 64},
                                  {"max_events": 9}, {"max_depth": 0}, {"scope": "entry"}],
                         ids=str)
def test_backends__identical_traces(fn, args, opts):
    _same(*_both(fn, *args, **opts))


def test_trace__hidden_comprehension_locals_are_skipped():
    t = trace(closure, 3)
    assert not any(k.startswith(".") for f in t.frames for k in f.locals)
    # From 3.12 a comprehension runs inline in its function (PEP 709): no frame of its own.
    assert any(f.function.endswith("<listcomp>") for f in t.frames) == (not MONITORING)


class CallsTraced:
    def __repr__(self):
        return f"CallsTraced({helper(2)})"  # traced code run from inside the tracer


def repr_calls_traced(n):
    obj = CallsTraced()
    return n, obj


def test_trace__repr_calling_traced_code_is_not_traced():
    t = trace(repr_calls_traced, 1)
    assert {f.function for f in t.frames} == {"repr_calls_traced"}
    assert t.frames[-1].arg == "(1, CallsTraced(4))"
    assert _no_addresses(t.frames) == _no_addresses(naive_trace(repr_calls_traced, 1))


class Interrupting:
    def __repr__(self):
        raise KeyboardInterrupt  # a BaseException from __repr__ is not a repr failure


def deep(n):
    return 0 if n == 0 else 1 + deep(n - 1)


def test_trace__recursion_error_with_event_limit():
    t = Tracer(TraceOptions(max_events=300)).trace(deep, 100_000)
    assert isinstance(t.exception, RecursionError) and t.truncated and len(t.frames) == 300
    assert [f.depth for f in t.frames if f.event == "call"] == list(range(150))


def test_trace__prior_profile_and_tracer_restored():
    seen = []

    def prof(frame, event, arg):
        seen.append(event)

    def prior(frame, event, arg):
        return None

    sys.setprofile(prof)
    sys.settrace(prior)
    try:
        with displacing(prior):
            t = Tracer(TraceOptions(other_tracer="set_aside")).trace(loop_sum, 3)
        assert sys.gettrace() is prior and sys.getprofile() is prof
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    assert t.result == 3 and "call" in seen


def test_trace__prior_tracer_restored_after_max_events():
    def prior(frame, event, arg):
        return None

    sys.settrace(prior)
    try:
        with displacing(prior):
            options = TraceOptions(max_events=3, other_tracer="set_aside")
            assert Tracer(options).trace(loop_sum, 50).truncated
        assert sys.gettrace() is prior
    finally:
        sys.settrace(None)


def test_trace__from_a_thread():
    out = {}

    def work():
        out["t"] = trace(nested, 3)
        out["after"] = sys.gettrace()

    th = threading.Thread(target=work)
    th.start()
    th.join()
    assert out["t"] == trace(nested, 3) and out["after"] is None
    assert sys.gettrace() is None


@C_SKIP
@both_backends
def test_backends__threads_trace_independently():
    res, errors = {}, []

    def work(i):
        try:
            res[i] = _both(tricky_containers, 3)
        except BaseException as e:  # noqa: BLE001 - reported below: a dead thread must fail
            errors.append(e)

    ths = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert not errors and sorted(res) == [0, 1, 2]
    for py, c in res.values():
        _same(py, c)


@C_SKIP
@both_backends
def test_backends__base_exception_from_repr_propagates():
    def f():
        x = Interrupting()  # noqa: F841
        return 1

    py, c = _both(f)
    assert isinstance(py.exception, KeyboardInterrupt)
    assert isinstance(c.exception, KeyboardInterrupt)
    assert sys.gettrace() is None


@C_SKIP
@both_backends
def test_backends__c_is_used_by_auto_on_3_11():
    assert _REAL_USE_C("auto") is True and _REAL_USE_C("c") is True
    assert _REAL_USE_C("python") is False


@both_backends
def test_backends__c_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(trace_module, "_use_c", _REAL_USE_C)
    monkeypatch.setattr(trace_module, "_ctrace", None)
    monkeypatch.setattr(trace_module, "C_UNAVAILABLE", "not built")
    with pytest.raises(RuntimeError, match="backend='c' needs the C recorder"):
        Tracer(TraceOptions(backend="c")).trace(loop_sum, 2)
    assert Tracer(TraceOptions(backend="auto")).trace(loop_sum, 2).result == 1


@C_SKIP
@both_backends
def test_backends__hypothesis_programs():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tracegym.tracers.strategies import inputs_for, programs

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(programs(), st.data())
    def check(program, data):
        call = data.draw(inputs_for(program))
        fn = program.load()
        a, b = call.copy(), call.copy()
        py = Tracer(TraceOptions(backend="python")).trace(fn, *a.args, **a.kwargs)
        c = Tracer(TraceOptions(backend="c")).trace(fn, *b.args, **b.kwargs)
        _same(py, c)
        assert c == py

    check()


def swaps_tracer(n):
    saved = sys.gettrace()  # the tracer's own object, handed back below
    sys.settrace(None)
    x = helper(n)
    sys.settrace(saved)
    y = helper(x)
    return x + y


def test_trace__program_that_swaps_the_tracer_out_and_back():
    t = trace(swaps_tracer, 2)
    assert t.exception is None and t.result == 12
    sources = [f.source.strip() for f in t.frames if f.function == "swaps_tracer"]
    helper_calls = [f.locals["x"] for f in t.frames if f.function == "helper" and
                    f.event == "call"]
    if MONITORING:  # sys.monitoring: the program's settrace calls do not touch the tracer
        assert helper_calls == ["2", "4"]
        assert sources == ["def swaps_tracer(n):", sources[1], "sys.settrace(None)",
                           "x = helper(n)", "sys.settrace(saved)", "y = helper(x)",
                           "return x + y", "return x + y"]
    else:  # only the call made after the tracer came back
        assert helper_calls == ["4"]
        assert sources == ["def swaps_tracer(n):", sources[1], "sys.settrace(None)",
                           "y = helper(x)", "return x + y", "return x + y"]
    assert sources[1].startswith("saved = sys.gettrace()")
    assert sys.gettrace() is None


def traces_inside(n):
    # tracegym's own frames are not traced; the inner trace is whole, the outer goes on
    # (set_aside: under naive_trace, a foreign settrace function, the inner one would refuse)
    inner = Tracer(TraceOptions(backend="python", other_tracer="set_aside")).trace(loop_sum, n)
    total = len(inner.frames)
    return total + helper(n)


def deep_nest(x):
    y = {"k": x}
    return len(y)


def _nested(n):
    x = []
    for _ in range(n):
        x = [x]
    return x


class Namespace(dict):
    pass


class Meta(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return Namespace()


def makes_classes(n):
    class Plain:
        a = n
        b = [a, a]

    class Custom(metaclass=Meta):
        c = n + 1

    return Plain.b, Custom.c


@pytest.mark.parametrize("fn,args", [(traces_inside, (3,)), (deep_nest, (_nested(3000),)),
                                     (makes_classes, (2,))], ids=["nested", "deep", "classes"])
# traces_inside under naive_trace: the inner trace sets the naive tracer aside (and says so)
@pytest.mark.filterwarnings("ignore::tracegym.tracers.trace.DisplacedTracerWarning")
def test_trace__nested_tracing_deep_values_class_bodies(fn, args):
    t = trace(fn, *args)
    assert t.exception is None
    assert _no_addresses(t.frames) == _no_addresses(naive_trace(fn, *args))
    if fn is deep_nest and sys.version_info < (3, 13):  # 3.13's repr has a deeper C stack
        # far past the recursion limit: no tracer's own stack depth makes a difference
        assert t.frames[-2].locals["y"] == "<repr failed: RecursionError>"


# ------------------------------------------------------------- failures of the tracer itself
def _tool_ids():
    return [sys.monitoring.get_tool(i) for i in range(6)] if MONITORING else []


def test_trace__a_failing_scope_decision_is_raised_not_put_on_the_trace(monkeypatch):
    real = trace_module._scope_predicate

    def broken(opts, entry_code):
        decide = real(opts, entry_code)

        def fails_on_helper(code):
            if code is helper.__code__:
                raise LookupError("injected")
            return decide(code)

        return fails_on_helper

    monkeypatch.setattr(trace_module, "_scope_predicate", broken)
    tools = _tool_ids()
    with pytest.raises(RuntimeError, match="the tracer failed while tracing nested: "
                                           "LookupError: injected") as info:
        trace(nested, 2)
    assert isinstance(info.value.__cause__, LookupError)
    assert sys.gettrace() is None and _tool_ids() == tools  # nothing left installed


@both_backends
def test_trace__a_failing_recorder_is_raised_not_put_on_the_trace(monkeypatch):
    def broken(self, values):
        raise AttributeError("injected")

    # per_value runs for locals the pickler refuses, such as with_objects' Counter
    monkeypatch.setattr(trace_module._Recorder, "per_value", broken)
    with pytest.raises(RuntimeError, match="AttributeError: injected"):
        Tracer(TraceOptions(backend="python")).trace(with_objects, 2)
    assert sys.gettrace() is None
    # the traced call's own exception still goes on the Trace
    t = Tracer(TraceOptions(backend="python")).trace(uncaught, 1)
    assert isinstance(t.exception, KeyError)


def test_trace__calls_from_other_threads_are_not_recorded():
    started, done = threading.Event(), threading.Event()

    def other():
        started.wait(5)
        helper(100)  # traced code, run by another thread while this one traces
        done.set()

    def waits(n):
        started.set()
        done.wait(5)
        return helper(n)

    th = threading.Thread(target=other)
    th.start()
    t = trace(waits, 1)
    th.join()
    assert t.result == 2 and done.is_set()
    assert [f.locals["x"] for f in t.frames if f.function == "helper" and
            f.event == "call"] == ["1"]


# ------------------------------------------------- sys.monitoring against settrace (3.12+)
@pytest.mark.skipif(not MONITORING, reason="sys.monitoring is used from Python 3.12")
@both_backends
@pytest.mark.parametrize("fn,args", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
@pytest.mark.parametrize("opts", [{}, {"max_events": 9}, {"max_events": 40}, {"max_depth": 0},
                                  {"scope": "user"}], ids=str)
def test_recorders__monitoring_equals_settrace(fn, args, opts, monkeypatch):
    tracer = Tracer(TraceOptions(backend="python", **opts))
    monitored = tracer.trace(fn, *args)
    monkeypatch.setattr(trace_module, "_MONITORING", False)
    settraced = tracer.trace(fn, *args)
    assert monitored.frames  # 3.12's first fix: traces were empty
    assert _no_addresses(monitored.frames) == _no_addresses(settraced.frames)
    assert monitored.truncated == settraced.truncated
    assert type(monitored.exception) is type(settraced.exception)
    assert monitored.return_repr == settraced.return_repr
