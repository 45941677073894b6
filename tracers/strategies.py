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
    "TracedProgram",
    "generator_programs",
    "inputs_for",
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

    ``kind`` is ``"straight_line"``, ``"loops"`` or ``"mixed"`` (see
    :class:`~tracegym.tracers.programs.ProgramConfig`); the entry body has between
    ``min_statements`` and ``max_statements`` statements (default ``max(8, min_statements)``);
    each program carries ``num_inputs`` argument tuples in ``program.inputs``.

    Examples shrink toward ``min_statements`` statements, no helpers, one ``int`` parameter and
    assignments of small constants; ``programs()`` shrinks to the first program below and
    ``programs(kind="loops")`` to the second::

        def f(n):
            x = 0
            return x

        def f(n):
            i = 0
            while i < 1:
                x = 0
                i += 1
            return n
    """
    config = _config(kind, min_statements, max_statements, max_params, max_helpers, num_inputs)

    @st.composite
    def _programs(draw):
        return build_program(_DrawChoices(draw), config, f"hypothesis_{config.kind}",
                             location="hypothesis")

    return _programs()


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
                       location="hypothesis")

    return _programs()
