"""The pytest plugin: ``pytest --tracer-conformance=module:adapter`` adds one test per property.

Registered through the ``pytest11`` entry point ``tracegym-conformance``; without the installed
entry point, load it with ``-p tracegym.tracers.conformance.plugin``. The option may be given
more than once (one set of tests per adapter); ``--tracer-conformance-max-examples``,
``--tracer-conformance-seed`` and ``--tracer-conformance-kinds`` set the search. A failing
property reports its minimal program; an adapter that cannot run here (its package is missing)
skips every test with the reason.
"""

from __future__ import annotations

import pytest

# The kit (Hypothesis, the strategies) loads only in a session given --tracer-conformance: the
# entry point loads this module into every pytest session of an environment with tracegym.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracer-conformance", "tracegym's tracer conformance kit")
    group.addoption("--tracer-conformance", action="append", default=[], metavar="MODULE:ADAPTER",
                    help="check this tracer adapter against the kit's properties")
    group.addoption("--tracer-conformance-max-examples", type=int, default=50, metavar="N",
                    help="programs tried per property")
    group.addoption("--tracer-conformance-seed", type=int, default=0, metavar="SEED",
                    help="the search's seed")
    group.addoption("--tracer-conformance-kinds", default=None, metavar="KIND,...",
                    help="program kinds to draw from (default: all)")


def _kinds(config: pytest.Config) -> list[str]:
    from tracegym.tracers.strategies import PROGRAM_KINDS

    given = config.getoption("tracer_conformance_kinds")
    if given is None:
        return list(PROGRAM_KINDS)
    return [k.strip() for k in given.split(",") if k.strip()]


class ConformanceFailure(AssertionError):
    """A property failed; the message holds the minimal program."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, spec: str, prop, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec, self.prop = spec, prop

    def runtest(self) -> None:
        from tracegym.tracers.conformance.properties import check_property
        from tracegym.tracers.conformance.protocol import AdapterUnavailable, load_adapter

        config = self.config
        kinds = _kinds(config)
        try:
            adapter = load_adapter(self.spec)
        except AdapterUnavailable as e:
            pytest.skip(str(e))
        result = check_property(
            adapter, self.prop, kinds=kinds,
            max_examples=config.getoption("tracer_conformance_max_examples"),
            seed=config.getoption("tracer_conformance_seed"))
        if result.status == "skipped":
            pytest.skip(result.message)
        if result.status == "failed":
            raise ConformanceFailure(f"{result.message}\nminimal program:\n"
                                     + result.counterexample())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return f"{self.spec}: {self.prop.name} ({self.prop.doc}) failed:\n{excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.spec}::{self.prop.name}"


class ConformanceCollector(pytest.Collector):
    """The properties of one adapter."""

    def __init__(self, *, spec: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def collect(self):
        from tracegym.tracers.conformance.properties import PROPERTIES

        for prop in PROPERTIES:
            yield ConformanceItem.from_parent(self, name=prop.name, spec=self.spec, prop=prop)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list) -> None:
    from tracegym.tracers.strategies import program_calls

    specs = config.getoption("tracer_conformance")
    if not specs:
        return
    kinds = _kinds(config)
    try:
        program_calls(kinds)  # bad kinds: a usage error now, not one failure per test
    except ValueError as e:
        raise pytest.UsageError(f"--tracer-conformance-kinds: {e}") from None
    for spec in specs:
        collector = ConformanceCollector.from_parent(session, name=f"tracer-conformance[{spec}]",
                                                     spec=spec)
        items.extend(collector.collect())
