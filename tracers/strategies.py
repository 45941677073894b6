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

