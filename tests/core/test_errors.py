"""The exception hierarchy: bad input is a ValueError; a failed sandboxed run is not."""

import pickle

import pytest

from tracegym import errors
from tracegym.errors import (
    SandboxCrash,
    SandboxError,
    SandboxMemoryError,
    SandboxOutputLimit,
    SandboxTimeout,
    SandboxViolation,
    TracegymError,
)

SANDBOX = (SandboxError, SandboxTimeout, SandboxMemoryError, SandboxOutputLimit,
           SandboxViolation, SandboxCrash)


def test_bad_input_classes_stay_value_errors():
    bad_input = [cls for cls in vars(errors).values()
                 if isinstance(cls, type) and issubclass(cls, Exception) and cls not in SANDBOX]
    assert len(bad_input) >= 10
    for cls in bad_input:
        assert issubclass(cls, TracegymError) and issubclass(cls, ValueError), cls


@pytest.mark.parametrize("cls", SANDBOX)
def test_sandbox_outcomes_are_not_bad_input(cls):
    # a program that times out or crashes is an outcome of running it, not a bad argument
    assert issubclass(cls, SandboxError)
    assert not issubclass(cls, ValueError) and not issubclass(cls, TracegymError)
    err = cls("timeout: wall time 1s exceeded", result={"outcome": "timeout"})
    assert str(err) == "timeout: wall time 1s exceeded" and err.result == {"outcome": "timeout"}
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_sandbox_timeout_is_a_timeout_error():
    with pytest.raises(TimeoutError):
        raise SandboxTimeout("timeout: CPU time 1s exceeded")
    assert not issubclass(SandboxMemoryError, MemoryError)  # the child's limit, not ours
