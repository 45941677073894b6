"""Argument lists as text: ``parse_arguments("[1, 2], k=3")`` is the :class:`Call` that
``f([1, 2], k=3)`` would make. User spec files, CRUXEval inputs and the CLI write calls this way.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from tracegym.tracers.programs.records import Call


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

