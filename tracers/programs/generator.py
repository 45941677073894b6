"""The seeded generator of small terminating functions: ``generate_program(seed, index)``.

The generator builds small functions line by line while tracking which names are defined and with
what type (int, list of ints, str, dict of str to int), so every program is valid by construction:

- a name is read only after an assignment that happens on every path (names first bound inside a
  loop or a branch are forgotten after it);
- loops are bounded: ``for`` over ``range`` of at most 5, over a list that the body may not grow,
  over a string, or ``while`` with an explicit counter the body may not touch;
- lists are never aliased (every list expression builds a new list), so growing one list cannot
  grow the list a loop walks; helpers never mutate their parameters;
- no division by a variable (only ``//`` and ``%`` by constants 2..5), no concatenation of a value
  with itself inside a loop, so values stay small and every call ends in far less than 10 ms.

All random decisions go through a small "choices" object; :func:`generate_program` feeds it from a
``random.Random`` seeded by ``(seed, index)`` and ``tracegym.tracers.strategies.programs`` feeds it
from Hypothesis, so the same code shrinks toward short programs. Options are listed simplest first
because Hypothesis shrinks ``sampled_from`` toward the first element.

Here: the options (:class:`ProgramConfig`), the random choices, argument values and the public
functions. The builder itself is ``builder.py`` (statements and functions) on top of
``expressions.py`` (the names and the expressions of each type).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tracegym.checks import check_int, check_seed
from tracegym.tracers.programs.builder import _Builder
from tracegym.tracers.programs.expressions import _LETTERS
from tracegym.tracers.programs.records import Program

KINDS = ("straight_line", "loops", "mixed")


class RandomChoices:
    """The generator's decisions drawn from a ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence, weights: Sequence[float] | None = None):
        return self.rng.choices(options, weights)[0] if weights else self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


@dataclass(frozen=True)
class ProgramConfig:
    """What :func:`generate_program` builds.

    Args:
        kind: ``"straight_line"`` (assignments and method calls only: no loop, branch,
            comprehension, conditional expression or helper), ``"loops"`` (adds bounded
            ``for``/``while`` loops and comprehensions, at least one loop statement, no branches
            or helpers) or ``"mixed"`` (adds ``if``/``elif``/``else``, ``break``, conditional
            expressions and up to ``max_helpers`` helper functions called from the entry).
        min_statements, max_statements: bounds on the statements in the entry's body, nested
            ones included, the final ``return`` and loop-counter bookkeeping excluded.
        max_params: the entry takes 1..max_params parameters.
        max_helpers: helper functions defined before the entry ("mixed" only).
        num_inputs: argument tuples generated per program.
    """

    kind: str = "mixed"
    min_statements: int = 2
    max_statements: int = 8
    max_params: int = 3
    max_helpers: int = 2
    num_inputs: int = 3

    def validate(self) -> ProgramConfig:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("min_statements", "max_statements", "max_params", "max_helpers",
                     "num_inputs"):
            check_int(name, getattr(self, name))
        if not 1 <= self.min_statements <= self.max_statements <= 100:
            raise ValueError("need 1 <= min_statements <= max_statements <= 100, got "
                             f"min_statements={self.min_statements}, "
                             f"max_statements={self.max_statements}")
        if self.kind == "loops" and self.max_statements < 2:
            raise ValueError("kind='loops' needs max_statements >= 2 (a loop and its body), "
                             f"got max_statements={self.max_statements}")
        check_int("max_params", self.max_params, 1, 4)
        check_int("max_helpers", self.max_helpers, 0, 3)
        check_int("num_inputs", self.num_inputs, 0, 100)
        return self


def random_value(choices, typ: str):
    """A small argument value of type ``typ`` ("int", "list", "str", "dict")."""
    c = choices
    if typ == "int":
        return c.integer(-3, 9)
    if typ == "list":
        return [c.integer(-3, 9) for _ in range(c.integer(0, 5))]
    if typ == "str":
        return "".join(c.choice(_LETTERS) for _ in range(c.integer(0, 5)))
    return {k: c.integer(0, 9) for k in _LETTERS[:c.integer(0, 3)]}


def build_program(choices, config: ProgramConfig, name: str, location: str = "",
                  meta: Mapping | None = None) -> Program:
    """One program (and its inputs) from any choices object; shared by the seed and Hypothesis."""
    source, params, count = _Builder(choices, config).build()
    inputs = tuple(tuple(random_value(choices, t) for _, t in params)
                   for _ in range(config.num_inputs))
    info = {"kind": config.kind, "params": params, "statements": count, **(meta or {})}
    return Program(name=name, source=source, entry="f", inputs=inputs, origin="generated",
                   location=location, meta=info)


def item_rng(seed: int, index: int) -> random.Random:
    """The RNG of item ``index`` under ``seed``: the same bytes on every platform and run."""
    digest = hashlib.sha256(f"tracegym.programs/{seed}/{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def generate_program(seed: int | random.Random = 0, index: int = 0, *, kind: str = "mixed",
                     min_statements: int = 2, max_statements: int = 8, max_params: int = 3,
                     max_helpers: int = 2, num_inputs: int = 3) -> Program:
    """Program ``index`` of the stream ``seed`` (or one program drawn from a ``random.Random``).

    Item ``index`` uses its own RNG seeded by ``(seed, index)``, so it can be rebuilt alone.
    The program defines ``f`` (and, for ``kind="mixed"``, up to ``max_helpers`` helpers
    ``g``/``h``/``helper`` that ``f`` may call); ``inputs`` holds ``num_inputs`` argument tuples.
    See :class:`ProgramConfig` for the arguments.

    >>> program = generate_program(0, 1, kind="loops")
    >>> print(program.source, end="")
    def f(nums, vals):
        x = 0
        for i in range(2):
            x += i
        s = str(x)
        y = len(s)
        return y
    >>> program.inputs[1], program.run(1)
    (Call(args=([], [-2, 2, 6, 2]), kwargs={}), 1)
    """
    config = ProgramConfig(kind, min_statements, max_statements, max_params, max_helpers,
                           num_inputs).validate()
    index = check_int("index", index, 0)
    if isinstance(seed, random.Random):
        rng, where, meta = seed, f"rng index={index}", {"index": index}
    else:
        seed = check_seed(seed)
        rng, where = item_rng(seed, index), f"seed={seed} index={index} kind={kind}"
        meta = {"seed": seed, "index": index}
    return build_program(RandomChoices(rng), config, f"gen_{kind}_{index}", where, meta)


def generate_programs(seed: int = 0, count: int = 10, *, start: int = 0,
                      **options) -> Iterator[Program]:
    """Programs ``start .. start+count-1`` of the stream ``seed`` (options as generate_program)."""
    for index in range(start, start + count):
        yield generate_program(seed, index, **options)

