"""The records every program source yields: :class:`Program` (a function to trace, as source)
and :class:`Call` (one call of its entry).

The tracer and its sandbox take ``(program.source, program.entry, call.args)``;
``program.load()`` gives the function in-process.
"""

from __future__ import annotations

import copy
import importlib
import linecache
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


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

