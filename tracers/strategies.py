"""Hypothesis strategies for programs, their inputs and their traces.

Public strategies in the style of ``hypothesis.extra.numpy``::

    from hypothesis import given
    from tracegym.tracers.strategies import programs, inputs_for

    @given(programs(kind="loops"), st.data())
    def test_runs(program, data):
        call = data.draw(inputs_for(program))
        program.run(call)

:func:`programs` runs the same builder as :func:`~tracegym.tracers.programs.generate_program`,
but every decision (statement count, statement kind, constants, names used) is drawn from
Hypothesis, listed simplest first, so a failing example shrinks toward a short program of
constant assignments with small numbers, not merely toward a smaller seed.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from tracegym.tracers.programs import Call, Program, ProgramConfig, build_program

__all__ = [
    "InvalidStrategyArgument",
    "PROGRAM_KINDS",
    "TracedProgram",
    "generator_programs",
    "inputs_for",
    "program_calls",
    "programs",
    "traced_programs",
    "values_of_type",
]


class InvalidStrategyArgument(InvalidArgument, ValueError):
    """A strategy was built with a bad argument (both Hypothesis' error and a ValueError)."""


class TracedProgram(NamedTuple):
    """What :func:`traced_programs` draws: the program, the call traced, and its trace."""

    program: Program
    call: Call
    trace: object


class _DrawChoices:
    """The generator's decisions drawn from Hypothesis; each shrinks toward its first option."""

    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options, weights=None):
        # an index rather than sampled_from(options): options may be lambdas, poor in reports
        return options[self.draw(st.integers(0, len(options) - 1))]

    def chance(self, p: float) -> bool:
        # shrinks toward 0, i.e. False: the optional part left out
        return self.draw(st.integers(0, 99)) >= 100 - round(100 * p)


def _config(kind, min_statements, max_statements, max_params, max_helpers,
            num_inputs) -> ProgramConfig:
    if max_statements is None:
        max_statements = max(8, min_statements) if isinstance(min_statements, int) else 8
    try:
        return ProgramConfig(kind, min_statements, max_statements, max_params, max_helpers,
                             num_inputs).validate()
    except ValueError as err:
        raise InvalidStrategyArgument(str(err)) from None


def programs(*, kind: str = "mixed", min_statements: int = 1, max_statements: int | None = None,
             max_params: int = 3, max_helpers: int = 2,
             num_inputs: int = 3) -> st.SearchStrategy[Program]:
    """Small valid terminating Python functions (:class:`Program`, entry ``f``).

    ``kind`` is one of :data:`PROGRAM_KINDS`. ``"straight_line"``, ``"loops"`` and ``"mixed"``
    come from the program builder (see :class:`~tracegym.tracers.programs.ProgramConfig`): the
    entry body has between ``min_statements`` and ``max_statements`` statements (default
    ``max(8, min_statements)``). The other kinds (``"calls"``, ``"recursion"``,
    ``"exceptions"``, ``"generators"``, ``"comprehensions"``, ``"closures"``, ``"with"``,
    ``"try_finally"``) are an entry ``f(n)`` that runs 1 to ``min(4, max_statements)`` snippets
    of that kind, each appending to a list ``out`` that ``f`` returns (some raise out of ``f``
    on purpose: the ``exceptions`` kind); ``max_params`` and ``max_helpers`` apply to the
    builder's kinds only. Each program carries ``num_inputs`` argument tuples in
    ``program.inputs``; :func:`inputs_for` draws more.

    Examples shrink toward ``min_statements`` statements, no helpers, one ``int`` parameter and
    assignments of small constants; ``programs()`` shrinks to the first program below,
    ``programs(kind="loops")`` to the second and ``programs(kind="exceptions")`` to the third::

        def f(n):
            x = 0
            return x

        def f(n):
            i = 0
            while i < 1:
                x = 0
                i += 1
            return n

        def f(n):
            out = []
            try:
                out.append(10 // (n - 0))
            except ZeroDivisionError:
                out.append(-1)
            return out
    """
    if kind not in PROGRAM_KINDS:
        raise InvalidStrategyArgument(f"kind must be one of {PROGRAM_KINDS}, got {kind!r}")
    if kind in _TEMPLATES:
        bounds = _config("straight_line", min_statements, max_statements, max_params,
                         max_helpers, num_inputs)
        return _template_programs(kind, min(4, bounds.max_statements), num_inputs)
    if kind == "generators":
        _config("straight_line", min_statements, max_statements, max_params, max_helpers,
                num_inputs)
        return generator_programs()
    config = _config(kind, min_statements, max_statements, max_params, max_helpers, num_inputs)

    @st.composite
    def _programs(draw):
        return build_program(_DrawChoices(draw), config, f"hypothesis_{config.kind}",
                             location="hypothesis")

    return _programs()


def program_calls(kinds=None, *, max_statements: int = 8) -> st.SearchStrategy[tuple]:
    """``(program, call)``: a program of one of ``kinds`` (default :data:`PROGRAM_KINDS`) and a
    call from :func:`inputs_for`. Shrinks toward the first kind listed, then as that kind's
    :func:`programs` does, so a failure that any straight-line program shows is reported on
    one of those."""
    kinds = PROGRAM_KINDS if kinds is None else tuple(kinds)
    if not kinds:
        raise InvalidStrategyArgument("kinds must name at least one kind, got none")
    bad = [k for k in kinds if k not in PROGRAM_KINDS]
    if bad:
        raise InvalidStrategyArgument(f"kinds must be among {PROGRAM_KINDS}, got {bad[0]!r}")
    if "loops" in kinds and max_statements < 2:
        raise InvalidStrategyArgument("kind 'loops' needs max_statements >= 2, got "
                                      f"max_statements={max_statements}")
    strategies = [programs(kind=k, max_statements=max_statements, num_inputs=1) for k in kinds]

    @st.composite
    def _calls(draw):
        program = draw(st.one_of(strategies))
        return program, draw(inputs_for(program))

    return _calls()


_VALUES = {
    "int": st.integers(-3, 9),
    "list": st.lists(st.integers(-3, 9), max_size=5),
    "str": st.text(alphabet="abcde", max_size=5),
    "dict": st.dictionaries(st.sampled_from("abcde"), st.integers(0, 9), max_size=3),
}


def values_of_type(typ: str) -> st.SearchStrategy:
    """Argument values of a generated program's parameter type ("int", "list", "str", "dict").

    Shrinks toward ``0``, ``[]``, ``""`` and ``{}``; e.g. ``values_of_type("list")`` draws
    ``[3, -1, 0]``.
    """
    if typ not in _VALUES:
        raise InvalidStrategyArgument(f"typ must be one of {sorted(_VALUES)}, got {typ!r}")
    return _VALUES[typ]


def inputs_for(program: Program) -> st.SearchStrategy[Call]:
    """Calls (:class:`Call`: ``args`` tuple and ``kwargs``) suitable for ``program``.

    For a generated program each argument is drawn from its parameter's type
    (``program.meta["params"]``); this shrinks toward zeros and empty lists and strings, e.g.
    ``Call(args=(0, [], ''))``. For other programs (directory, module, CRUXEval) it samples
    ``program.inputs`` and shrinks toward the first one.
    """
    if not isinstance(program, Program):
        raise InvalidStrategyArgument(f"program must be a Program, got {program!r}")
    params = program.meta.get("params")
    if params:
        return st.builds(Call, st.tuples(*(values_of_type(t) for _, t in params)))
    if not program.inputs:
        raise InvalidStrategyArgument(
            f"program {program.name!r} has no parameter types and no inputs to sample from")
    return st.sampled_from(program.inputs)


def traced_programs(*, kind: str = "mixed", min_statements: int = 1,
                    max_statements: int | None = None) -> st.SearchStrategy[TracedProgram]:
    """A generated program, a call from :func:`inputs_for`, and ``trace(fn, *args, **kwargs)``.

    ``tracegym.tracers.trace`` is imported when the first example is drawn; the traced call
    runs on a copy of ``call``. Shrinks as :func:`programs` and :func:`inputs_for` do, toward
    short programs called with zeros and empty values, e.g. the trace of ``f([])`` for::

        def f(nums):
            if nums:
                nums.pop()
            return nums
    """
    config = _config(kind, min_statements, max_statements, 3, 2, 0)

    @st.composite
    def _traced(draw):
        from tracegym.tracers import trace  # lazily: the tracer is optional for programs()

        program = draw(programs(kind=config.kind, min_statements=config.min_statements,
                                max_statements=config.max_statements, num_inputs=1))
        call = draw(inputs_for(program))
        run = call.copy()  # the function may mutate its arguments; keep the drawn call intact
        return TracedProgram(program, call, trace(program.load(), *run.args, **run.kwargs))

    return _traced()



# generator_programs(): the generator functions a program may define, as (name, body lines);
# "{k}" is a drawn small constant. Each takes n and yields ints.
_GENERATORS = {
    "plain": ["for i in range(n):", "    yield i + {k}"],
    "finally": ["try:", "    for i in range(n):", "        yield i", "finally:",
                "    log.append({k})"],
    "raises": ["for i in range(n):", "    if i == {k}:", "        raise ValueError(i)",
               "    yield i"],
    "delegates": ["got = yield from inner(n)", "log.append(got)", "yield {k}"],
}
# How the entry uses a generator g (``{g}``); each appends to ``out``. Simplest first.
_USES = (
    ["out.append(sum({g}(n)))"],                                    # consumed
    ["out.append(list(x * 2 for x in {g}(n)))"],                    # a generator expression
    ["out.append(next({g}(n), -1))"],                               # abandoned at once
    ["out.append(take({g}(n)))"],                                   # abandoned in a callee
    ["it{i} = {g}(n)", "out.append(next(it{i}, -1))"],              # open until f returns
    ["it{i} = {g}(n)", "out.append(next(it{i}, -1))", "it{i}.close()"],  # closed
    ["for x in {g}(n):", "    if x > {k}:", "        break", "    out.append(x)"],  # break
    ["out.append(next((x for x in {g}(n) if x > {k}), -1))"],       # abandoned genexpr
)


def generator_programs() -> st.SearchStrategy[Program]:
    """Programs built around generators, each with one input (``Call``): entry ``f(n)``.

    They define up to three generator functions (a plain loop, one with a ``finally`` that
    logs, one that raises ``ValueError`` inside, one that delegates with ``yield from``) and
    use each in drawn ways: consumed, through a generator expression, abandoned at once, in a
    callee or until ``f`` returns, closed, left by ``break``; a use may sit in a
    ``try``/``except ValueError``. ``f`` returns what it collected and the log, so a tracer that
    moves the moment a generator is closed changes the result. Shrinks toward one plain
    generator summed in ``f(0)``::

        log = []
        ...
        def f(n):
            out = []
            out.append(sum(g0(n)))
            return out, log[:]
    """

    @st.composite
    def _programs(draw):
        kinds = list(_GENERATORS)
        chosen = draw(st.lists(st.integers(0, len(kinds) - 1), min_size=1, max_size=3))
        lines = ["log = []", "", "", "def inner(n):", "    for i in range(n):", "        yield i",
                 "    return n", "", "", "def take(gen):", "    return next(gen, -1)"]
        for j, index in enumerate(chosen):
            body = [b.format(k=draw(st.integers(0, 3))) for b in _GENERATORS[kinds[index]]]
            lines += ["", "", f"def g{j}(n):"] + ["    " + b for b in body]
        lines += ["", "", "def f(n):", "    out = []"]
        uses = draw(st.lists(st.tuples(st.integers(0, len(chosen) - 1),
                                       st.integers(0, len(_USES) - 1), st.booleans(),
                                       st.integers(0, 3)), min_size=1, max_size=4))
        for i, (g, use, guarded, k) in enumerate(uses):
            body = [u.format(g=f"g{g}", i=i, k=k) for u in _USES[use]]
            if guarded:
                body = ["try:"] + ["    " + b for b in body] + [
                    "except ValueError as e:", "    out.append(str(e))"]
            lines += ["    " + b for b in body]
        lines += ["    return out, log[:]", ""]
        n = draw(st.integers(0, 4))
        return Program("generators", "\n".join(lines), "f", inputs=((n,),),
                       location="hypothesis",
                       meta={"kind": "generators", "params": (("n", "int"),)})

    return _programs()


# ------------------------------------------------------------------- the template kinds
# Each kind: snippets the entry f(n) runs, simplest first, as (module-level definitions they
# need, lines). "{k}" is a drawn constant 0..3, "{i}" the snippet's index. Every snippet ends
# for any int n (a recursion is bounded by min(n, ...), a loop by n % 5).
_DEFS = {
    "log": ["log = []"],
    "add": ["def add(a, b):", "    return a + b"],
    "scale": ["def scale(x, by=2):", "    return x * by"],
    "neg": ["def neg(x):", "    return -x"],
    "total": ["def total(*xs, **named):", "    return sum(xs) + len(named)"],
    "Box": ["class Box:", "    def __init__(self, v):", "        self.v = v", "",
            "    def get(self):", "        return self.v + 1", "",
            "    def __repr__(self):", "        return f'Box({self.v})'"],
    "twice": ["def twice(x):", "    return add(x, x)"],
    "fact": ["def fact(k):", "    if k <= 1:", "        return 1", "    return k * fact(k - 1)"],
    "fib": ["def fib(k):", "    return k if k < 2 else fib(k - 1) + fib(k - 2)"],
    "is_even": ["def is_even(k):", "    return True if k <= 0 else is_odd(k - 1)", "", "",
                "def is_odd(k):", "    return False if k <= 0 else is_even(k - 1)"],
    "down": ["def down(k):", "    if k <= 0:", "        raise ValueError(k)",
             "    return down(k - 1)"],
    "sum_list": ["def sum_list(xs):", "    return xs[0] + sum_list(xs[1:]) if xs else 0"],
    "check": ["def check(x):", "    if x > 2:", "        raise ValueError(x)", "    return x"],
    "square": ["def square(x):", "    return x * x"],
    "make_adder": ["def make_adder(k):", "    def adder(x):", "        return x + k",
                   "    return adder"],
    "Ctx": ["class Ctx:", "    def __init__(self, v):", "        self.v = v", "",
            "    def __enter__(self):", "        log.append('enter')", "        return self.v", "",
            "    def __exit__(self, kind, value, tb):", "        log.append('exit')",
            "        return kind is ZeroDivisionError", "",
            "    def __repr__(self):", "        return f'Ctx({self.v})'"],
    "managed": ["from contextlib import contextmanager", "", "",
                "@contextmanager", "def managed(v):", "    log.append('open')", "    try:",
                "        yield v * 2", "    finally:", "        log.append('close')"],
    "bare": ["@contextmanager", "def bare():", "    log.append('in')", "    yield",
             "    log.append('out')"],
    "guarded": ["def guarded(x):", "    try:", "        return x * 2", "    finally:",
                "        log.append(x)"],
}
_TEMPLATES = {
    "calls": [
        (("add",), ["out.append(add(n, {k}))"]),
        (("scale",), ["out.append(scale(n) + scale(n, by={k}))"]),
        (("neg",), ["out.append(sorted([3, n, {k}], key=neg))"]),  # Python called from C
        (("add", "twice"), ["out.append(twice(n))"]),
        (("total",), ["out.append(total(n, {k}, z=1))"]),
        (("Box",), ["b{i} = Box(n)", "out.append(b{i}.get())"]),
        (("neg",), ["out.append(list(map(neg, range(n % 4))))"]),
    ],
    "recursion": [
        (("fact",), ["out.append(fact(min(n, {k} + 2)))"]),
        (("fib",), ["out.append(fib(min(n, 5)))"]),
        (("is_even",), ["out.append(is_even(min(n, 6)))"]),
        (("sum_list",), ["out.append(sum_list(list(range(n % 5))))"]),
        (("down",), ["try:", "    out.append(down(min(n, 4)))", "except ValueError as e:",
                     "    out.append(str(e))"]),
    ],
    "exceptions": [
        ((), ["try:", "    out.append(10 // (n - {k}))", "except ZeroDivisionError:",
              "    out.append(-1)"]),
        ((), ["out.append(10 // (n - {k}))"]),  # raises out of f when n == k
        ((), ["try:", "    out.append([1, 2, 3][n])", "except IndexError as e:",
              "    out.append(str(e))"]),
        (("check",), ["try:", "    out.append(check(n))", "except ValueError:",
                      "    out.append('caught')", "else:", "    out.append('fine')"]),
        ((), ["try:", "    try:", "        raise KeyError(n)", "    except KeyError as e:",
              "        raise ValueError('again') from e", "except ValueError as e:",
              "    out.append(repr(e))"]),
        ((), ["for i{i} in range(n % 4):", "    try:",
              "        out.append(12 // (i{i} - {k}))", "    except ZeroDivisionError:",
              "        continue"]),
        ((), ["assert n != {k}, n"]),
    ],
    "comprehensions": [
        ((), ["out.append([i * 2 for i in range(n % 5)])"]),
        ((), ["out.append({i % 3 for i in range(n % 5)})"]),
        ((), ["out.append({i: i * {k} for i in range(n % 4)})"]),
        ((), ["out.append(sum(i for i in range(n % 5)))"]),
        ((), ["out.append([[j for j in range(i)] for i in range(n % 4)])"]),
        ((), ["out.append([i for i in range(n % 6) if i % 2])"]),
        (("square",), ["out.append([square(i) for i in range(n % 4)])"]),
        ((), ["k{i} = {k}", "out.append([i + k{i} for i in range(n % 4)])"]),
    ],
    "closures": [
        ((), ["k{i} = {k}", "def add{i}(x):", "    return x + k{i}", "out.append(add{i}(n))"]),
        ((), ["inc{i} = lambda x: x + {k}", "out.append(inc{i}(n))"]),
        ((), ["count{i} = 0", "def bump{i}():", "    nonlocal count{i}", "    count{i} += 1",
              "    return count{i}", "bump{i}()", "out.append(bump{i}())"]),
        (("make_adder",), ["out.append(make_adder({k})(n))"]),
        ((), ["out.append([g() for g in [lambda i=i: i * n for i in range(3)]])"]),
    ],
    "with": [
        (("log", "Ctx"), ["with Ctx({k}) as v{i}:", "    out.append(v{i} + n)"]),
        (("log", "Ctx"), ["with Ctx(n) as v{i}:", "    out.append(10 // (v{i} - {k}))"]),
        (("log", "managed"), ["with managed(n) as v{i}:", "    out.append(v{i})"]),
        (("log", "managed", "bare"), ["with bare():", "    out.append(n)"]),  # yields None
        (("log", "Ctx"), ["with Ctx(1) as a{i}, Ctx(n) as b{i}:", "    out.append(a{i} + b{i})"]),
        (("log", "Ctx"), ["for i{i} in range(n % 4):", "    with Ctx(i{i}) as v{i}:",
                          "        if v{i} == {k}:", "            break",
                          "        out.append(v{i})"]),
    ],
    "try_finally": [
        ((), ["try:", "    out.append(n)", "finally:", "    out.append(-1)"]),
        ((), ["for i{i} in range(n % 4):", "    try:", "        if i{i} == {k}:",
              "            break", "        out.append(i{i})", "    finally:",
              "        out.append(-i{i})"]),
        ((), ["for i{i} in range(n % 4):", "    try:", "        if i{i} == {k}:",
              "            continue", "        out.append(i{i})", "    finally:",
              "        out.append(-i{i})"]),
        (("log", "guarded"), ["out.append(guarded(n))"]),
        ((), ["try:", "    try:", "        out.append(10 // (n - {k}))", "    finally:",
              "        out.append('finally')", "except ZeroDivisionError:",
              "    out.append('caught')"]),
    ],
}
PROGRAM_KINDS = ("straight_line", "loops", "mixed", "calls", "recursion", "exceptions",
                 "generators", "comprehensions", "closures", "with", "try_finally")
"""Every ``kind`` :func:`programs` takes, simplest first (:func:`program_calls` shrinks toward
the first)."""


def _template_programs(kind: str, max_snippets: int, num_inputs: int) -> st.SearchStrategy:
    snippets = _TEMPLATES[kind]

    @st.composite
    def _programs(draw):
        chosen = draw(st.lists(st.tuples(st.integers(0, len(snippets) - 1), st.integers(0, 3)),
                               min_size=1, max_size=max_snippets))
        needed = {name for index, _ in chosen for name in snippets[index][0]}
        lines: list[str] = []
        for name in _DEFS:  # in _DEFS order: a definition comes before its users
            if name in needed:
                lines += _DEFS[name] + ["", ""]
        lines += ["def f(n):", "    out = []"]
        for i, (index, k) in enumerate(chosen):
            lines += ["    " + line.replace("{k}", str(k)).replace("{i}", str(i))
                      for line in snippets[index][1]]
        lines += ["    return out, log[:]" if "log" in needed else "    return out", ""]
        inputs = tuple((draw(st.integers(-3, 9)),) for _ in range(num_inputs))
        return Program(f"hypothesis_{kind}", "\n".join(lines), "f", inputs=inputs,
                       location="hypothesis",
                       meta={"kind": kind, "params": (("n", "int"),),
                             "statements": sum(len(snippets[i][1]) for i, _ in chosen) + 2})

    return _programs()
