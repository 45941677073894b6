"""The program builder: statements and functions, written line by line.

:class:`_Builder` writes a program's helpers and its entry ``f``: assignments, updates, bounded
``for``/``while`` loops with accumulators, ``if``/``elif``/``else``, ``break``, and the final
``return``, within a statement budget. It tracks in a :class:`~.expressions._Scope` which names
are bound on every path and which a loop body may not touch, so that every program runs and ends
(the guarantees are listed in ``generator.py``). The expressions on each line come from its base
class, :class:`~.expressions._Expressions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracegym.tracers.programs.expressions import (
    _LOCAL_NAMES,
    _LOOP_NAMES,
    _PARAM_NAMES,
    MAX_DEPTH,
    TYPES,
    _Expressions,
    _Helper,
    _Scope,
)

if TYPE_CHECKING:  # generator.py imports this module
    from tracegym.tracers.programs.generator import ProgramConfig


class _Builder(_Expressions):
    """Builds one program from a choices object (random or Hypothesis-driven)."""

    def __init__(self, choices, config: ProgramConfig) -> None:
        super().__init__(choices, config)
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

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
