"""Where traced programs come from: a seeded generator, user files, installed modules, CRUXEval.

Every source yields :class:`Program` records: the source text, the entry function's name, a few
calls (:class:`Call`) to run it with, and where it came from. The tracer and its sandbox take
``(program.source, program.entry, call.args)``; ``program.load()`` gives the function in-process.

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
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import importlib
import inspect
import json
import linecache
import random
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CURATED_FUNCTIONS",
    "KINDS",
    "Call",
    "Program",
    "ProgramConfig",
    "RandomChoices",
    "build_program",
    "cruxeval_programs",
    "curated_modules",
    "generate_program",
    "generate_programs",
    "item_rng",
    "parse_arguments",
    "programs_from_directory",
    "programs_from_module",
    "random_value",
]

KINDS = ("straight_line", "loops", "mixed")
DATA_DIR = Path(__file__).resolve().parent / "data"
CRUXEVAL_PATH = DATA_DIR / "cruxeval" / "cruxeval.jsonl"


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Call:
    """One call of a program's entry: positional ``args`` and keyword ``kwargs``."""

    args: tuple = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)

    def copy(self) -> Call:
        """A deep copy, so a function that mutates its arguments leaves this call intact."""
        return Call(copy.deepcopy(tuple(self.args)), copy.deepcopy(dict(self.kwargs)))


@dataclass(frozen=True)
class Program:
    """A function to trace: ``source`` defines ``entry``; ``inputs`` are the calls to run it with.

    ``inputs`` may be given as argument tuples or :class:`Call` objects; it is stored as a tuple of
    ``Call``. ``origin`` is the source kind ("generated", "directory", "module", "cruxeval") and
    ``location`` says where inside it (seed and index, file path, module.function, sample id).
    ``outputs`` holds ``repr`` of each call's expected result where the source records one
    (CRUXEval). ``meta`` holds source-specific facts (for generated programs: the kind, the
    parameter types and the statement count reached). ``module`` names the importable module
    for programs from :func:`programs_from_module`, whose source needs that module's globals.
    """

    name: str
    source: str
    entry: str
    inputs: tuple = ()
    origin: str = "generated"
    location: str = ""
    outputs: tuple[str, ...] | None = None
    meta: Mapping[str, object] = field(default_factory=dict)
    module: str | None = None

    def __post_init__(self):
        calls = tuple(c if isinstance(c, Call) else Call(tuple(c)) for c in self.inputs)
        object.__setattr__(self, "inputs", calls)

    @property
    def filename(self) -> str:
        """The pseudo file name the source is compiled under (registered with ``linecache``)."""
        return f"<tracegym {self.origin} {self.name}>"

    def load(self) -> Callable:
        """The entry function, defined in a fresh namespace (or imported, for module programs).

        The source is registered with ``linecache`` under :attr:`filename`, so tracers and
        tracebacks can show its lines.
        """
        if self.module is not None:
            return getattr(importlib.import_module(self.module), self.entry)
        return self.namespace()[self.entry]

    def namespace(self) -> dict:
        """The globals after executing the source in a fresh module-like namespace."""
        linecache.cache[self.filename] = (
            len(self.source), None, self.source.splitlines(True), self.filename)
        ns: dict = {"__name__": f"tracegym_program_{self.name}"}
        exec(compile(self.source, self.filename, "exec"), ns)
        return ns

    def run(self, call: Call | int = 0):
        """Call the entry on a deep copy of ``call`` (or of ``inputs[call]``); return the result."""
        if isinstance(call, int):
            call = self.inputs[call]
        call = call.copy()
        return self.load()(*call.args, **call.kwargs)


# ----------------------------------------------------------------------------- generator


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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not 1 <= self.min_statements <= self.max_statements <= 100:
            raise ValueError("need 1 <= min_statements <= max_statements <= 100, got "
                             f"min_statements={self.min_statements}, "
                             f"max_statements={self.max_statements}")
        if self.kind == "loops" and self.max_statements < 2:
            raise ValueError("kind='loops' needs max_statements >= 2 (a loop and its body), "
                             f"got max_statements={self.max_statements}")
        if not 1 <= self.max_params <= 4:
            raise ValueError(f"max_params must be in 1..4, got {self.max_params}")
        if not 0 <= self.max_helpers <= 3:
            raise ValueError(f"max_helpers must be in 0..3, got {self.max_helpers}")
        if not 0 <= self.num_inputs <= 100:
            raise ValueError(f"num_inputs must be in 0..100, got {self.num_inputs}")
        return self


TYPES = ("int", "list", "str", "dict")
_LOCAL_NAMES = {"int": ("x", "y", "z", "total", "count", "acc", "w"),
                "list": ("xs", "ys", "out", "zs"), "str": ("s", "t", "res", "u"),
                "dict": ("d", "counts", "seen")}
_PARAM_NAMES = {"int": ("n", "m", "k", "p"), "list": ("nums", "vals", "arr", "items"),
                "str": ("text", "word", "name", "key"), "dict": ("table", "mapping")}
_LOOP_NAMES = {"int": ("i", "j", "q"), "list_item": ("v", "e", "r"), "str": ("ch", "c", "b")}
_LETTERS = "abcde"
MAX_DEPTH = 2  # loop and branch nesting inside one function


@dataclass
class _Helper:
    name: str
    params: tuple[tuple[str, str], ...]
    returns: str


class _Scope:
    """The names bound on every path to the current line, their types, and which are frozen."""

    def __init__(self, names=None, frozen=()):
        self.names: dict[str, str] = dict(names or {})
        self.frozen: set[str] = set(frozen)

    def child(self) -> _Scope:
        return _Scope(self.names, self.frozen)

    def of(self, typ: str, *, writable: bool = False) -> list[str]:
        return [n for n, t in self.names.items()
                if t == typ and not (writable and n in self.frozen)]


class _Builder:
    """Builds one program from a choices object (random or Hypothesis-driven)."""

    def __init__(self, choices, config: ProgramConfig):
        self.c, self.cfg = choices, config
        self.kind = config.kind
        self.lines: list[str] = []
        self.helpers: list[_Helper] = []
        self.used: set[str] = set()
        self.in_helper = False
        self.called: set[str] = set()  # helpers called from the entry
        self.loop_depth = 0  # loops around the line being built (helper calls count one)

    # -- names
    def fresh(self, pool: Sequence[str]) -> str:
        for name in pool:
            if name not in self.used:
                self.used.add(name)
                return name
        i = 1
        while f"{pool[0]}{i}" in self.used:
            i += 1
        self.used.add(f"{pool[0]}{i}")
        return f"{pool[0]}{i}"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    # -- constants and simple values
    def const(self, typ: str) -> str:
        c = self.c
        if typ == "int":
            return str(c.integer(0, 9))
        if typ == "str":
            return repr("".join(c.choice(_LETTERS) for _ in range(c.integer(0, 3))))
        if typ == "list":
            return "[" + ", ".join(str(c.integer(0, 9)) for _ in range(c.integer(0, 3))) + "]"
        return "{" + ", ".join(f"{k!r}: {c.integer(0, 9)}"
                               for k in _LETTERS[:c.integer(0, 2)]) + "}"

    def char(self, scope: _Scope) -> str:
        """A one-character (or short) string expression: a constant or a str loop variable."""
        chars = [n for n in scope.of("str") if n in scope.frozen and n in _LOOP_NAMES["str"]]
        if chars and self.c.chance(0.5):
            return self.c.choice(chars)
        return repr(self.c.choice(_LETTERS))

    def atom(self, scope: _Scope, typ: str) -> str:
        names = scope.of(typ)
        if names and self.c.chance(0.7):
            return self.c.choice(names)
        return self.const(typ)

    # -- expressions of each type; ``loop`` means inside a loop body (no self-doubling)
    def expr(self, scope: _Scope, typ: str, loop: bool) -> str:
        return getattr(self, f"expr_{typ}")(scope, loop)

    def expr_int(self, scope: _Scope, loop: bool) -> str:
        c, ints = self.c, scope.of("int")
        lists, strs, dicts = scope.of("list"), scope.of("str"), scope.of("dict")
        opts: list[Callable[[], str]] = [lambda: self.const("int")]
        if ints:
            v = lambda: c.choice(ints)  # noqa: E731
            opts += [v, lambda: f"{v()} {c.choice('+-')} {c.integer(1, 9)}",
                     lambda: f"{v()} {c.choice('+-')} {v()}",
                     lambda: f"{v()} {c.choice(['%', '//'])} {c.integer(2, 5)}",
                     lambda: f"abs({v()})", lambda: f"max({v()}, {self.atom(scope, 'int')})"]
            if not loop:  # repeated products grow fast
                opts.append(lambda: f"{v()} * {c.integer(2, 3)}")
        if lists:
            xs = lambda: c.choice(lists)  # noqa: E731
            opts += [lambda: f"len({xs()})", lambda: f"sum({xs()})",
                     lambda: f"{c.choice(['max', 'min'])}({xs()}, default=0)"]
            if self.kind == "mixed" and ints:
                opts.append(lambda: (lambda a: f"{a}[{c.choice(ints)} % len({a})] if {a} "
                                               f"else {c.integer(0, 9)}")(xs()))
        if strs:
            s = lambda: c.choice(strs)  # noqa: E731
            opts += [lambda: f"len({s()})",
                     lambda: f"{s()}.{c.choice(['count', 'find'])}({c.choice(_LETTERS)!r})"]
        if dicts:
            opts += [lambda: f"{c.choice(dicts)}.get({self.char(scope)}, 0)",
                     lambda: f"len({c.choice(dicts)})"]
        opts += self.helper_calls(scope, "int")
        return c.choice(opts)()

    def expr_list(self, scope: _Scope, loop: bool) -> str:
        c, lists, ints = self.c, scope.of("list"), scope.of("int")
        strs, dicts = scope.of("str"), scope.of("dict")
        opts: list[Callable[[], str]] = [lambda: self.const("list"),
                                         lambda: f"list(range({c.integer(0, 5)}))"]
        if ints:
            opts.append(lambda: f"[{self.atom(scope, 'int')}, {self.atom(scope, 'int')}]")
        if lists:
            xs = lambda: c.choice(lists)  # noqa: E731
            opts += [lambda: f"sorted({xs()})", lambda: f"{xs()}[::-1]",
                     lambda: f"{xs()}[{c.integer(0, 2)}:]", lambda: f"{xs()}[:{c.integer(1, 3)}]",
                     lambda: f"list({xs()})"]
            # slices keep concatenation bounded however often it repeats
            opts.append(lambda: f"{xs()}[:3] + {xs()}[:3]")
            if self.kind != "straight_line":
                v = self.loop_var_name(scope, "list_item")
                opts += [lambda: f"[{v} {c.choice('+-')} {c.integer(1, 5)} for {v} in {xs()}]",
                         lambda: f"[{v} for {v} in {xs()} if {v} "
                                 f"{c.choice(['>', '<', '!='])} {c.integer(0, 5)}]",
                         lambda: f"[{v} % {c.integer(2, 5)} for {v} in {xs()}]"]
        if strs and self.kind != "straight_line":
            ch = self.loop_var_name(scope, "str")
            opts.append(lambda: f"[ord({ch}) % 10 for {ch} in {c.choice(strs)}]")
        if dicts:
            opts.append(lambda: f"list({c.choice(dicts)}.values())")
        opts += self.helper_calls(scope, "list")
        return c.choice(opts)()

    def expr_str(self, scope: _Scope, loop: bool) -> str:
        c, strs, ints = self.c, scope.of("str"), scope.of("int")
        opts: list[Callable[[], str]] = [lambda: self.const("str")]
        if strs:
            s = lambda: c.choice(strs)  # noqa: E731
            opts += [s, lambda: f"{s()}.upper()", lambda: f"{s()}[::-1]",
                     lambda: f"{s()}.replace({c.choice(_LETTERS)!r}, {c.choice(_LETTERS)!r})",
                     lambda: f"{s()}.strip({c.choice(_LETTERS)!r})",
                     lambda: f"{s()}[:{c.integer(1, 3)}]",
                     lambda: f"{s()} + {self.char(scope)}", lambda: f"''.join(sorted({s()}))"]
            opts.append(lambda: f"{s()}[:3] + {s()}[:3]")
        if ints:
            opts += [lambda: f"str({c.choice(ints)})",
                     lambda: f"chr(97 + {c.choice(ints)} % 26)"]
        opts += self.helper_calls(scope, "str")
        return c.choice(opts)()

    def expr_dict(self, scope: _Scope, loop: bool) -> str:
        c, strs, lists, dicts = self.c, scope.of("str"), scope.of("list"), scope.of("dict")
        opts: list[Callable[[], str]] = [
            lambda: self.const("dict"),
            lambda: f"{{{c.choice(_LETTERS)!r}: {self.atom(scope, 'int')}}}"]
        if strs and lists:
            opts.append(lambda: f"dict(zip({c.choice(strs)}, {c.choice(lists)}))")
        if strs and self.kind != "straight_line":
            ch = self.loop_var_name(scope, "str")
            opts.append(lambda: (lambda s: f"{{{ch}: {s}.count({ch}) for {ch} in {s}}}")(
                c.choice(strs)))
        if dicts:
            opts.append(lambda: f"dict({c.choice(dicts)})")
        opts += self.helper_calls(scope, "dict")
        return c.choice(opts)()

    def cond(self, scope: _Scope) -> str:
        c, ints, lists = self.c, scope.of("int"), scope.of("list")
        strs, dicts = scope.of("str"), scope.of("dict")
        opts: list[Callable[[], str]] = []
        if ints:
            v = lambda: c.choice(ints)  # noqa: E731
            opts += [lambda: f"{v()} {c.choice(['>', '<', '==', '!=', '>=', '<='])} "
                             f"{c.integer(0, 9)}",
                     lambda: f"{v()} % 2 == {c.integer(0, 1)}",
                     lambda: f"{v()} {c.choice(['>', '<', '=='])} {v()}"]
        if lists:
            opts += [lambda: f"len({c.choice(lists)}) > {c.integer(0, 3)}",
                     lambda: f"{self.atom(scope, 'int')} in {c.choice(lists)}",
                     lambda: f"not {c.choice(lists)}"]
        if strs:
            opts.append(lambda: f"{self.char(scope)} in {c.choice(strs)}")
        if dicts:
            opts.append(lambda: f"{self.char(scope)} in {c.choice(dicts)}")
        if not opts:
            return "True"
        return c.choice(opts)()

    def loop_var_name(self, scope: _Scope, role: str) -> str:
        # comprehension variables live in their own scope: any name not bound here will do
        for name in _LOOP_NAMES[role]:
            if name not in scope.names:
                return name
        return self.fresh(_LOOP_NAMES[role])

    def helper_calls(self, scope: _Scope, typ: str) -> list[Callable[[], str]]:
        if self.kind != "mixed" or self.loop_depth >= 2:  # no helper calls in nested loops
            return []
        return [lambda h=h: self.call(h, scope) for h in self.helpers if h.returns == typ]

    def call(self, helper: _Helper, scope: _Scope) -> str:
        if not self.in_helper:
            self.called.add(helper.name)
        return f"{helper.name}(" + ", ".join(self.atom(scope, t) for _, t in helper.params) + ")"

    def uncalled(self) -> list[_Helper]:
        return [h for h in self.helpers if h.name not in self.called]

    # -- statements
    def statement(self, scope: _Scope, depth: int, budget: int, loop: bool,
                  force_loop: bool = False) -> int:
        """Emit one statement (compound ones with their bodies); return statements used."""
        c = self.c
        compound = []
        max_depth = 1 if self.in_helper else MAX_DEPTH
        if self.kind != "straight_line" and budget >= 2 and depth <= max_depth:
            compound = ["for", "while"]
            if self.kind == "mixed":
                compound += ["if"] + (["break"] if loop else [])
        if force_loop:
            choice = c.choice(["for", "while"])
        else:
            simple = ["assign", "update"]
            # loop bodies mostly update names that outlive the loop: new ones are forgotten
            simple_weights = [1, 4] if loop else [3, 3]
            choice = c.choice(simple + compound, simple_weights
                              + [2 if k in ("for", "if") else 1 for k in compound])
        if choice == "assign" or (choice == "update" and not self.updatable(scope)):
            typ = c.choice(TYPES)
            text = self.expr(scope, typ, loop)
            name = self.fresh(_LOCAL_NAMES[typ])
            self.emit(depth, f"{name} = {text}")
            scope.names[name] = typ
            self.last = name
            return 1
        if choice == "update":
            return self.update(scope, depth, loop)
        if choice == "if":
            return self.if_stmt(scope, depth, budget, loop)
        if choice == "break":
            self.emit(depth, f"if {self.cond(scope)}:")
            self.emit(depth + 1, "break")
            return 2
        return self.loop_stmt(scope, depth, budget, choice)

    def updatable(self, scope: _Scope) -> list[str]:
        return [n for n in scope.names if n not in scope.frozen]

    def update(self, scope: _Scope, depth: int, loop: bool) -> int:
        c = self.c
        name = c.choice(self.updatable(scope))
        typ = scope.names[name]
        opts: list[Callable[[], str]] = [lambda: f"{name} = {self.expr(scope, typ, loop)}"]
        if typ == "int":
            opts += [lambda: f"{name} {c.choice(['+=', '-='])} {self.simple_int(scope)}"]
            if loop:  # keep accumulators small across iterations
                opts.append(lambda: f"{name} = ({name} * {c.integer(2, 3)} + "
                                    f"{self.simple_int(scope)}) % {c.choice([10, 100])}")
        elif typ == "list":
            opts += [lambda: f"{name}.append({self.expr_int(scope, loop)})",
                     lambda: f"{name}.{c.choice(['sort', 'reverse'])}()",
                     lambda: f"{name}.insert(0, {self.simple_int(scope)})",
                     lambda: f"{name}.extend({self.const('list')})"]
            if self.kind == "mixed":
                opts.append(lambda: f"if {name}:\n" + "    " * (depth + 1) + f"{name}.pop()")
        elif typ == "str":
            opts.append(lambda: f"{name} += {self.char(scope)}")
        else:
            opts += [lambda: f"{name}[{self.char(scope)}] = {self.simple_int(scope)}",
                     lambda: (lambda k: f"{name}[{k}] = {name}.get({k}, 0) + 1")(
                         self.char(scope))]
        text = c.choice(opts)()
        self.emit(depth, text)
        self.last = name
        return 1

    def simple_int(self, scope: _Scope) -> str:
        ints = scope.of("int")
        opts = [lambda: str(self.c.integer(1, 9))]
        if ints:
            opts.append(lambda: self.c.choice(ints))
        return self.c.choice(opts)()

    def if_stmt(self, scope: _Scope, depth: int, budget: int, loop: bool) -> int:
        c = self.c
        used = 1
        self.emit(depth, f"if {self.cond(scope)}:")
        used += self.body(scope, depth + 1, budget - used, loop)
        while budget - used >= 2 and c.chance(0.3):
            self.emit(depth, f"elif {self.cond(scope)}:")
            used += 1 + self.body(scope, depth + 1, budget - used - 1, loop)
        if budget - used >= 1 and c.chance(0.5):
            self.emit(depth, "else:")
            used += self.body(scope, depth + 1, budget - used, loop)
        return used

    def body(self, scope: _Scope, depth: int, budget: int, loop: bool) -> int:
        """A nested block of 1..3 statements; names it binds are forgotten afterwards."""
        inner = scope.child()
        size = self.c.integer(1, max(1, min(3, budget)))
        used = 0
        while used < size:
            used += self.statement(inner, depth, min(size - used, budget - used), loop)
        # keep the "last assigned" pointer on a name that is still bound
        if self.last not in scope.names:
            self.last = None
        return used

    def loop_stmt(self, scope: _Scope, depth: int, budget: int, form: str) -> int:
        c = self.c
        self.has_loop = True
        lists = scope.of("list")
        strs = scope.of("str")
        dicts = scope.of("dict")
        ints = scope.of("int")
        # often an accumulator made before the loop and fed by the loop variable: the shape of
        # most real loops (chosen after the heads above, so a loop never walks its accumulator)
        acc = None
        if budget >= 3 and c.chance(0.5):
            typ = c.choice(("int", "list", "str"))
            acc = self.fresh(_LOCAL_NAMES[typ])
            self.emit(depth, f"{acc} = {({'int': '0', 'list': '[]', 'str': repr('')})[typ]}")
            scope.names[acc] = typ
            budget -= 1
        inner = scope.child()
        if form == "while":
            counter = self.fresh(_LOOP_NAMES["int"])
            bounds = [str(c.integer(1, 5))]
            if lists and depth == 1:
                bounds.append(f"len({c.choice(lists)})")
            bound = c.choice(bounds)
            if bound.startswith("len("):
                inner.frozen.add(bound[4:-1])
            self.emit(depth, f"{counter} = 0")
            self.emit(depth, f"while {counter} < {bound}:")
            inner.names[counter] = "int"
            inner.frozen.add(counter)
            used = 1 + self.loop_body(inner, depth + 1, budget - 1, acc, counter)
            self.emit(depth + 1, f"{counter} += 1")
            return used + (acc is not None)
        heads = [("range", None)]
        if lists:
            heads.append(("list", c.choice(lists)))
        if strs:
            heads.append(("str", c.choice(strs)))
        if dicts:
            heads.append(("dict", c.choice(dicts)))
        head, over = c.choice(heads)
        if head == "range":
            var = self.fresh(_LOOP_NAMES["int"])
            bounds = [str(c.integer(1, 5))]
            if depth == 1 and lists:
                bounds.append(f"len({c.choice(lists)})")
            if depth == 1 and ints:
                bounds.append(f"min({c.choice(ints)}, {c.integer(1, 5)})")
            bound = c.choice(bounds)
            if bound.startswith("len("):
                inner.frozen.add(bound[4:-1])
            self.emit(depth, f"for {var} in range({bound}):")
            inner.names[var] = "int"
        elif head == "list":
            var = self.fresh(_LOOP_NAMES["list_item"])
            self.emit(depth, f"for {var} in {over}:")
            inner.names[var] = "int"
            inner.frozen.add(over)  # the body may not grow the list it walks
        elif head == "str":
            var = self.fresh(_LOOP_NAMES["str"])
            self.emit(depth, f"for {var} in {over}:")
            inner.names[var] = "str"
        else:
            var = self.fresh(_LOOP_NAMES["str"])
            self.emit(depth, f"for {var} in sorted({over}):")  # a copy: the body may add keys
            inner.names[var] = "str"
        inner.frozen.add(var)
        return 1 + self.loop_body(inner, depth + 1, budget - 1, acc, var) + (acc is not None)

    def loop_body(self, scope: _Scope, depth: int, budget: int, acc: str | None,
                  var: str) -> int:
        self.loop_depth += 1
        used = 0
        if acc is not None:
            self.emit(depth, self.feed(acc, scope.names[acc], var, scope.names[var]))
            self.last = acc
            used = 1
        if acc is None or (budget > used and self.c.chance(0.5)):
            used += self.body(scope, depth, budget - used, True)
        self.loop_depth -= 1
        if acc is not None:
            self.last = acc
        return used

    @staticmethod
    def feed(acc: str, typ: str, var: str, var_typ: str) -> str:
        """The accumulator update from the loop variable (lists hold ints, so chars -> ints)."""
        as_int = var if var_typ == "int" else f"ord({var}) % 10"
        if typ == "int":
            return f"{acc} += {as_int}"
        if typ == "list":
            return f"{acc}.append({as_int})"
        return f"{acc} += {var if var_typ == 'str' else f'str({var})'}"

    # -- functions
    def params(self, count: int) -> tuple[tuple[str, str], ...]:
        out = []
        for _ in range(count):
            typ = self.c.choice(TYPES[:3])
            out.append((self.fresh(_PARAM_NAMES[typ]), typ))
        return tuple(out)

    def helper(self, index: int) -> None:
        c = self.c
        name = ("g", "h", "helper")[index]
        self.used = {h.name for h in self.helpers} | {"f", name}
        params = self.params(c.integer(1, 2))
        self.emit(0, f"def {name}({', '.join(p for p, _ in params)}):")
        # helpers never mutate their parameters: a caller may be walking the same list
        scope = _Scope(dict(params), frozen=[p for p, _ in params])
        self.in_helper = True
        self.last = None
        n = c.integer(1, 3)
        used = 0
        while used < n:
            used += self.statement(scope, 1, n - used, False)
        returns = c.choice(TYPES)
        self.emit(1, f"return {self.expr(scope, returns, False)}")
        self.in_helper = False
        self.helpers.append(_Helper(name, params, returns))
        self.emit(0, "")
        self.emit(0, "")

    def build(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        c, cfg = self.c, self.cfg
        target = c.integer(cfg.min_statements, cfg.max_statements)
        if self.kind == "loops":
            target = max(target, 2)  # a loop and its body
        if self.kind == "mixed":
            for i in range(c.integer(0, min(cfg.max_helpers, target))):
                self.helper(i)
        self.used = {h.name for h in self.helpers} | {"f"}
        params = self.params(c.integer(1, cfg.max_params))
        self.emit(0, f"def f({', '.join(p for p, _ in params)}):")
        scope = _Scope(dict(params))
        self.has_loop = False
        self.last = None
        self.called.clear()
        used = 0
        # leave one statement per helper not called yet, so that every helper is called
        while used < target - len(self.uncalled()):
            left = target - len(self.uncalled()) - used
            force = self.kind == "loops" and not self.has_loop and left <= 3 and left >= 2
            used += self.statement(scope, 1, left, False, force_loop=force)
        for h in self.uncalled():
            name = self.fresh(_LOCAL_NAMES[h.returns])
            self.emit(1, f"{name} = {self.call(h, scope)}")
            scope.names[name] = h.returns
            self.last = name
            used += 1
        last = self.last if self.last in scope.names else None
        locals_ = [n for n in scope.names if n not in dict(params)]
        ret = last or (locals_[-1] if locals_ else params[-1][0])
        others = [n for n in scope.names if n != ret]
        if others and c.chance(0.25):
            ret = f"{ret}, {c.choice(others)}"
        self.emit(1, f"return {ret}")
        return "\n".join(self.lines) + "\n", params, used

    last: str | None = None
    has_loop = False


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
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be an int >= 0, got {index!r}")
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


# ----------------------------------------------------------------------------- argument lists


def parse_arguments(text: str, namespace: Mapping | None = None, *, field_name: str = "input",
                    literal: bool = True) -> Call:
    """The call that ``f(<text>)`` would make: ``"[1, 2], k=3"`` -> ``Call(([1, 2],), {'k': 3})``.

    With ``literal=True`` each argument must be a Python literal (``ast.literal_eval``); otherwise
    it is evaluated in ``namespace`` (CRUXEval inputs may name the program's globals).
    """
    try:
        node = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"{field_name}: not an argument list: {text!r} ({err.msg})") from None
    assert isinstance(node, ast.Call)
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords):
        raise ValueError(f"{field_name}: *args/**kwargs are not supported: {text!r}")

    def value(expr: ast.expr):
        if literal:
            try:
                return ast.literal_eval(expr)
            except ValueError:
                raise ValueError(f"{field_name}: argument {ast.unparse(expr)!r} in {text!r} "
                                 "is not a Python literal") from None
        code = compile(ast.Expression(expr), f"<{field_name}>", "eval")
        return eval(code, dict(namespace or {}))  # noqa: S307 - trusted data set inputs

    return Call(tuple(value(a) for a in node.args),
                {k.arg: value(k.value) for k in node.keywords})


# ----------------------------------------------------------------------------- user directory


def _load_spec(spec) -> tuple[dict, str]:
    if isinstance(spec, Mapping):
        return dict(spec), "spec"
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"spec: file not found: {str(path)!r}")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as err:  # JSONDecodeError / TOMLDecodeError
        raise ValueError(f"spec {str(path)!r}: cannot parse: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"spec {str(path)!r}: top level must be a table of files, "
                         f"got {type(data).__name__}")
    return data, f"spec {str(path)!r}"


def programs_from_directory(path, spec) -> list[Program]:
    """Programs from user ``.py`` files in ``path``, as listed by ``spec``.

    ``spec`` is a dict, or a ``.json``/``.toml`` file holding one, mapping each file name
    (relative to ``path``) to its entry functions and their inputs::

        # spec.toml
        ["sorting.py"]
        bubble = ["[3, 1, 2]", "[]"]       # each string: an argument list of Python literals
        ["maths.py"]
        gcd = ["12, 18", "a=7, b=0"]

    An input may also be a JSON/TOML array, taken as the positional arguments. Errors name the
    file and the field: a missing file, a file that does not parse, an entry that is not a
    top-level function of the file, inputs that are not a list or not literals.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path: not a directory: {str(root)!r}")
    data, where = _load_spec(spec)
    programs = []
    for file_name, entries in data.items():
        field_name = f"{where}[{file_name!r}]"
        file = root / file_name
        if not file.is_file():
            raise ValueError(f"{field_name}: file not found: {str(file)!r}")
        if not isinstance(entries, Mapping) or not entries:
            raise ValueError(f"{field_name}: must be a non-empty table of entry -> inputs, "
                             f"got {entries!r}")
        source = file.read_text()
        try:
            tree = ast.parse(source, str(file))
        except SyntaxError as err:
            raise ValueError(f"{str(file)!r}: does not parse: line {err.lineno}: "
                             f"{err.msg}") from None
        defined = {n.name for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for entry, inputs in entries.items():
            entry_field = f"{field_name}[{entry!r}]"
            if entry not in defined:
                raise ValueError(f"{entry_field}: no top-level function {entry!r} in "
                                 f"{str(file)!r} (found {sorted(defined)})")
            if not isinstance(inputs, list):
                raise ValueError(f"{entry_field}: inputs must be a list, got {inputs!r}")
            calls = []
            for i, item in enumerate(inputs):
                if isinstance(item, str):
                    calls.append(parse_arguments(item, field_name=f"{entry_field}[{i}]"))
                elif isinstance(item, list):
                    calls.append(Call(tuple(item)))
                else:
                    raise ValueError(f"{entry_field}[{i}]: an input is an argument-list string "
                                     f"or a list of arguments, got {item!r}")
            programs.append(Program(
                name=f"{Path(file_name).stem}.{entry}", source=source, entry=entry,
                inputs=tuple(calls), origin="directory", location=str(file)))
    return programs


# ----------------------------------------------------------------------------- installed modules


def _short_text(c):
    words = ["alpha", "beta", "gamma", "delta", "  lead", "x", "tail  "]
    return " ".join(c.choice(words) for _ in range(c.integer(1, 6)))


def _indented_text(c):
    pad = " " * c.integer(0, 4)
    return "\n".join(pad + c.choice(["ab", "cd ef", "", "  g"]) for _ in range(c.integer(1, 4)))


def _unit(c):
    return c.integer(0, 10) / 10


def _path(c):
    return c.choice(["", "/"]) + "/".join(c.choice(["a", "b", ".", "..", "c.txt"])
                                           for _ in range(c.integer(1, 4)))


# (module, function) -> a function of a choices object returning one Call
CURATED_FUNCTIONS: dict[tuple[str, str], Callable[[object], Call]] = {
    ("textwrap", "dedent"): lambda c: Call((_indented_text(c),)),
    ("textwrap", "indent"): lambda c: Call((_indented_text(c), c.choice(["> ", "# ", "  "]))),
    ("textwrap", "wrap"): lambda c: Call((_short_text(c), c.integer(5, 20))),
    ("textwrap", "shorten"): lambda c: Call((_short_text(c), c.integer(8, 30))),
    ("colorsys", "rgb_to_hsv"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "hsv_to_rgb"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "rgb_to_hls"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "hls_to_rgb"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "rgb_to_yiq"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("string", "capwords"): lambda c: Call((_short_text(c),)),
    ("heapq", "nlargest"): lambda c: Call((c.integer(0, 4), random_value(c, "list"))),
    ("heapq", "nsmallest"): lambda c: Call((c.integer(0, 4), random_value(c, "list"))),
    # (posixpath is frozen in 3.11: no source lines, so it is not curated)
    ("shlex", "split"): lambda c: Call((c.choice(["a b", "'a b' c", 'x "y z"', ""]),)),
    ("fnmatch", "translate"): lambda c: Call((c.choice(["a*", "*.py", "[ab]?", "x"]),)),
    ("difflib", "get_close_matches"): lambda c: Call((
        random_value(c, "str"), [random_value(c, "str") for _ in range(c.integer(0, 4))])),
    ("urllib.parse", "quote"): lambda c: Call((_path(c) + c.choice(["", " x", "?a=1&b"]),)),
    ("calendar", "isleap"): lambda c: Call((c.integer(1890, 2030),)),
    ("calendar", "leapdays"): lambda c: Call((c.integer(1890, 1990), c.integer(1990, 2100))),
    ("calendar", "weekday"): lambda c: Call((c.integer(1970, 2030), c.integer(1, 12),
                                             c.integer(1, 28))),
    ("statistics", "median"): lambda c: Call(([c.integer(0, 9)
                                               for _ in range(c.integer(1, 5))],)),
    ("statistics", "mode"): lambda c: Call(([c.integer(0, 3) for _ in range(c.integer(1, 5))],)),
    ("fnmatch", "fnmatchcase"): lambda c: Call((random_value(c, "str"),
                                                c.choice(["a*", "*b?", "[abc]*", "*"]))),
    ("html", "escape"): lambda c: Call((c.choice(["<a>", "x & y", "'q'", "plain"]),)),
    ("shlex", "quote"): lambda c: Call((c.choice(["", "abc", "a b", "it's"]),)),
}


def curated_modules() -> list[str]:
    """Module names with curated functions for :func:`programs_from_module`."""
    return sorted({m for m, _ in CURATED_FUNCTIONS})


def programs_from_module(module_name: str, functions: Sequence[str] | None = None, *,
                         seed: int = 0, num_inputs: int = 3) -> list[Program]:
    """Pure-Python functions of an installed module as programs ("real code").

    ``functions`` defaults to every curated function of the module (see ``CURATED_FUNCTIONS``;
    each has an input generator). Inputs are drawn from an RNG seeded by ``(seed, function)``.
    ``source`` is the function's own source text; it reads the module's globals, so
    ``Program.load()`` imports the real function (``Program.module`` names the module).
    A function without ``__code__`` (a C builtin) or without source raises ValueError.
    """
    seed = check_seed(seed)
    known = {f for m, f in CURATED_FUNCTIONS if m == module_name}
    if not known:
        raise ValueError(f"module_name: no curated functions for {module_name!r}; "
                         f"known modules: {curated_modules()}")
    names = sorted(known) if functions is None else list(functions)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"module_name: cannot import {module_name!r}: {err}") from None
    programs = []
    for name in names:
        if name not in known:
            raise ValueError(f"functions: {module_name}.{name} is not curated; "
                             f"known: {sorted(known)}")
        fn = getattr(module, name, None)
        if not hasattr(fn, "__code__"):
            raise ValueError(f"functions: {module_name}.{name} is not pure Python "
                             f"(no __code__): {fn!r}")
        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError) as err:
            raise ValueError(f"functions: no source for {module_name}.{name}: {err}") from None
        digest = hashlib.sha256(f"{seed}/{module_name}.{name}".encode()).digest()
        choices = RandomChoices(random.Random(int.from_bytes(digest[:8], "little")))
        make = CURATED_FUNCTIONS[(module_name, name)]
        programs.append(Program(
            name=f"{module_name}.{name}", source=source, entry=name,
            inputs=tuple(make(choices) for _ in range(num_inputs)), origin="module",
            location=f"{module_name}.{name} ({inspect.getsourcefile(fn)})",
            module=module_name))
    return programs


# ----------------------------------------------------------------------------- CRUXEval


def cruxeval_programs(path=None, *, ids: Sequence[str] | None = None) -> list[Program]:
    """The 800 CRUXEval functions (Gu et al., 2024; MIT), each with its one input and output.

    ``entry`` is ``f``; ``inputs`` holds one :class:`Call`, evaluated after executing the code
    because a few inputs name the program's globals (sample_258); ``outputs[0]`` is the recorded
    ``repr`` of the result. ``meta`` keeps the raw ``input`` text. ``ids`` selects samples.
    """
    path = Path(path) if path is not None else CRUXEVAL_PATH
    wanted = set(ids) if ids is not None else None
    programs = []
    with open(path) as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if wanted is not None and row["id"] not in wanted:
                continue
            program = Program(name=row["id"], source=row["code"], entry="f", origin="cruxeval",
                              location=f"{path.name}:{line_no}", outputs=(row["output"],),
                              meta={"input": row["input"]})
            call = parse_arguments(row["input"], program.namespace(),
                                   field_name=f"{row['id']} input", literal=False)
            programs.append(dataclasses.replace(program, inputs=(call,)))
    if wanted is not None and len(programs) != len(wanted):
        missing = sorted(wanted - {p.name for p in programs})
        raise ValueError(f"ids: not in {str(path)!r}: {missing[:5]}")
    return programs
