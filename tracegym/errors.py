"""Exceptions of tracegym: bad input, and sandboxed runs that ended without a trace.

Bad input (a malformed puzzle, an impossible option, a program that does not parse) raises a
:class:`TracegymError`, a :class:`ValueError`, so ``except ValueError`` catches it; the CLI prints
it as one line on stderr and exits with status 2.

A sandboxed program that times out, runs out of memory or crashes is an outcome of running it,
not bad input: :class:`SandboxError` and its subclasses are a separate root (not ValueErrors), the
CLI prints them as one line and exits with status 1. :class:`SandboxTimeout` is also a
:class:`TimeoutError`, so ``except TimeoutError`` sees it; as TimeoutError is an OSError, code that
treats OSError as bad input must catch SandboxError first.
"""

from __future__ import annotations


class TracegymError(ValueError):
    """Bad input: a malformed puzzle, an illegal action, an impossible option."""


class PuzzleFormatError(TracegymError):
    """A puzzle string or grid has the wrong length, shape or a character outside the alphabet."""


class ConflictError(TracegymError):
    """The givens of a puzzle break a rule (e.g. the same digit twice in one row)."""


class UnsolvableError(TracegymError):
    """The puzzle has no solution."""


class MultipleSolutionsError(TracegymError):
    """The puzzle has more than one solution where exactly one is required."""


class ActionError(TracegymError):
    """An action outside the action space, or an answer of the wrong shape."""


class ProgramSyntaxError(TracegymError):
    """A program given as source does not parse; ``lineno``/``offset``/``text`` say where."""

    def __init__(self, message: str, *, lineno: int | None = None, offset: int | None = None,
                 text: str | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno
        self.offset = offset
        self.text = text


class EntryPointError(TracegymError):
    """The entry function named for a program is missing from it or is not callable."""


class ArgumentSerialisationError(TracegymError):
    """Arguments for a sandboxed call cannot be sent to the child (no literal round trip)."""


class SandboxError(Exception):
    """A sandboxed program did not produce a trace; ``result`` holds the full outcome record.

    Not a TracegymError: the input was fine, running it went wrong (see the module docstring).
    """

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)  # one argument: OSError would read two as (errno, strerror)
        self.result = result


class SandboxTimeout(SandboxError, TimeoutError):
    """The program ran past its wall-clock or CPU-time limit and was killed."""


class SandboxMemoryError(SandboxError):
    """The program ran out of its address-space limit.

    Not a :class:`MemoryError`: that means *this* process is out of memory, and code that catches
    it (to shrink a batch, say) would misread a child's limit as its own.
    """


class SandboxOutputLimit(SandboxError):
    """The program wrote more to stdout/stderr than its output limit allows."""


class SandboxViolation(SandboxError):
    """The program broke the sandbox protocol (e.g. corrupted the result channel)."""


class SandboxCrash(SandboxError):
    """The program ended without a trace: exit, ``os._exit``, a signal, a module-level error."""


class TraceFormatError(TracegymError):
    """CWM trace text (or trace JSON) that does not follow the grammar; names the offset."""
