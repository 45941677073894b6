"""The generator's vocabulary and its expressions: what a value of each type can be built from.

The program builder (``builder.py``) writes statements and functions; each right-hand side,
condition and argument comes from :class:`_Expressions`, its base class here. An expression reads
only names of the right type that the :class:`_Scope` says are bound on every path to the line
(see the guarantees in ``generator.py``), and never builds a value that could grow without bound
inside a loop. Every decision goes through the choices object ``self.c``; options are listed
simplest first because Hypothesis shrinks ``sampled_from`` toward the first element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # generator.py imports the builder, which imports this module
    from tracegym.tracers.programs.generator import ProgramConfig


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


class _Expressions:
    """The expression half of the program builder: names, constants, typed expressions,
    conditions and helper calls (``builder._Builder`` adds statements and functions)."""

    def __init__(self, choices, config: ProgramConfig):
        self.c, self.cfg = choices, config
        self.kind = config.kind
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

    # -- small ints for updates (a constant or a name)
    def simple_int(self, scope: _Scope) -> str:
        ints = scope.of("int")
        opts = [lambda: str(self.c.integer(1, 9))]
        if ints:
            opts.append(lambda: self.c.choice(ints))
        return self.c.choice(opts)()
