"""The tracer conformance kit: point Hypothesis at any Python tracer and get minimal programs
where it goes wrong.

Write an adapter (see :mod:`.protocol`): a ``records`` declaration (:class:`Records`: which
events and fields the tracer records, how it renders values, what it does differently on
purpose) and ``run(fn, args, kwargs) -> Run`` (the call run under the tracer, its events as
tracegym :class:`~tracegym.tracers.Frame` records or CWM text, and the call's outcome). Then::

    tracegym check-tracer mypkg.adapters:MyTracer            # a table, exit 1 on a failure
    pytest --tracer-conformance=mypkg.adapters:MyTracer      # one test per property
    results = check(MyTracer())                              # from Python

Each property (:data:`PROPERTIES`) is a Hypothesis search over every program kind of
:func:`tracegym.tracers.strategies.program_calls` (straight-line, loops, branches, calls,
recursion, exceptions, generators, comprehensions, closures, ``with``, ``try``/``finally``),
shrunk to a minimal program on failure. Adapters for tracegym's recorders, PySnooper and hunter
are in :mod:`.adapters`.
"""

import importlib

# public name -> the submodule defining it, loaded on first use: the pytest plugin (.plugin) is
# imported into every pytest session of an environment with tracegym, and must stay light
_EXPORTS = {
    "PROPERTIES": "properties",
    "PROPERTY_NAMES": "properties",
    "Property": "properties",
    "Result": "properties",
    "Violation": "properties",
    "check": "properties",
    "check_property": "properties",
    "format_results": "properties",
    "Adapter": "protocol",
    "AdapterUnavailable": "protocol",
    "BadAdapterError": "protocol",
    "Records": "protocol",
    "Run": "protocol",
    "call": "protocol",
    "cut_repr": "protocol",
    "exact_repr": "protocol",
    "frames_of": "protocol",
    "load_adapter": "protocol",
    "renumber_depths": "protocol",
    "reference_frames": "reference",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
