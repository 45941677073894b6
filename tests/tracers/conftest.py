"""Shared set-up for the tracer tests."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_foreign_tracer():
    """Run each test with no settrace function installed, and put back the one found.

    On Python 3.10 and 3.11 the tracer refuses to hide another trace function (coverage run by
    pytest-cov, a debugger): under one, every traced call would raise TracerConflictError. The
    tests that are about another tracer install their own.
    """
    prior = sys.gettrace()
    if prior is None or sys.version_info >= (3, 12):  # 3.12+: sys.monitoring runs beside it
        yield
        return
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(prior)
