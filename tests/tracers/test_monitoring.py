"""The sys.monitoring driver of the tracer (Python 3.12+): which tool id it takes and gives back.

It takes the first free id of 3, 4, 5 and never PEP 669's debugger, coverage and profiler ids
0-2; with 3, 4 and 5 taken, tracing fails before the call runs, naming the tools that hold them.
That the driver records what settrace would is tests/tracers/test_tracer.py's
``test_recorders__monitoring_equals_settrace``.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager

import pytest

from tracegym.tracers import trace

pytestmark = pytest.mark.skipif(sys.version_info < (3, 12),
                                reason="sys.monitoring is used from Python 3.12")


def tools():
    """Who holds each tool id now."""
    return [sys.monitoring.get_tool(i) for i in range(6)]


def sees_tools(n):
    return tools()  # as seen from inside the traced call


@contextmanager
def claimed(ids):
    """Hold ``ids`` as other tools would ("other 3", ...) for the block."""
    for i in ids:
        sys.monitoring.use_tool_id(i, f"other {i}")
    try:
        yield
    finally:
        for i in ids:
            sys.monitoring.free_tool_id(i)


def test_monitoring__takes_id_3_and_gives_it_back():
    before = tools()
    t = trace(sees_tools, 1)
    assert t.result[3] == "tracegym" and t.result[:3] == before[:3]
    assert tools() == before and t.frames


@pytest.mark.parametrize(("taken", "expected"), [((3,), 4), ((3, 4), 5), ((4,), 3)])
def test_monitoring__skips_ids_in_use(taken, expected):
    with claimed(taken):
        before = tools()
        t = trace(sees_tools, 1)
        assert t.result[expected] == "tracegym" and t.frames
        assert all(t.result[i] == f"other {i}" for i in taken)
        assert tools() == before  # its own id freed, the others' untouched


def test_monitoring__never_takes_the_reserved_ids_0_to_2():
    with claimed((3, 4, 5)):
        before = tools()
        assert before[:3] == [None, None, None]  # free, and still not taken
        message = ("sys.monitoring has no free tool id for the tracer: ids (3, 4, 5) are in use "
                   "(3: 'other 3', 4: 'other 4', 5: 'other 5'); the tracer leaves ids 0-2 to a "
                   "debugger, coverage and a profiler")
        calls = []
        with pytest.raises(RuntimeError, match=re.escape(message)):
            trace(calls.append, 1)
        assert calls == [] and tools() == before  # failed before the call ran


def test_monitoring__runs_beside_a_debugger_coverage_and_profiler():
    with claimed((0, 1, 2)):
        t = trace(sees_tools, 1)
        assert t.result[:4] == ["other 0", "other 1", "other 2", "tracegym"]

