"""Field docs of a dataclass, read from its source, and a help text listing fields.

A field's doc is the string literal under it (an "attribute docstring", as Sphinx and tyro read
them)::

    @dataclass
    class Config:
        lr: float = 1e-3
        \"\"\"peak learning rate\"\"\"

Python keeps no such string at runtime, so :func:`attribute_docs` parses the source file of
the class's module with :mod:`ast` (nothing is run). Used for ``--help`` texts; stdlib only and
no :mod:`inspect`, so a command's help stays fast.

>>> print(describe_fields([("lr", 0.001, "peak learning rate"), ("task", "sudoku", "")]))
  lr=0.001
      peak learning rate
  task=sudoku
"""

from __future__ import annotations

import ast
import functools
import sys
import textwrap
from collections.abc import Iterable


@functools.cache
def _module_tree(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as f:
            return ast.parse(f.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _class_node(cls: type) -> ast.ClassDef | None:
    """The ``class`` statement of ``cls`` in its module's source file, found by qualified name."""
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not path or not path.endswith(".py"):
        return None
    node: ast.AST | None = _module_tree(path)
    for part in cls.__qualname__.split("."):
        node = next((n for n in getattr(node, "body", ())
                     if isinstance(n, ast.ClassDef) and n.name == part), None)
    return node


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field name: doc}`` for each annotated class attribute of ``cls`` and its bases that is
    followed by a string literal; a subclass's doc wins. Whitespace runs become one space.
    Classes without source (built at runtime, or shipped without .py files) add nothing."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        node = _class_node(klass)
        if node is None:  # object, a class made at runtime, no source file
            continue
        body = node.body
        for stmt, after in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def describe_fields(rows: Iterable[tuple[str, object, str]], *, width: int = 79,
                    indent: int = 2) -> str:
    """One entry per ``(name, default, doc)``: ``name=default`` on its line, as a ``key=value``
    argument would say it (a non-empty string bare, anything else its repr), and the doc wrapped
    below it, indented four more columns."""
    lines = []
    for name, default, doc in rows:
        text = default if isinstance(default, str) and default else repr(default)
        lines.append(" " * indent + f"{name}={text}")
        if doc:
            lines += textwrap.wrap(doc, width, initial_indent=" " * (indent + 4),
                                   subsequent_indent=" " * (indent + 4))
    return "\n".join(lines)
