"""Exceptions raised for bad input anywhere in tracegym.

All of them subclass :class:`ValueError`, so ``except ValueError`` catches bad input; the CLI turns
any of them into one line on stderr and exit code 2.
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


class SandboxError(TracegymError):
    """A sandboxed program did not produce a trace; ``result`` holds the full outcome record."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class SandboxTimeout(SandboxError):
    """The program ran past its wall-clock or CPU-time limit and was killed."""


class SandboxMemoryError(SandboxError):
    """The program ran out of its address-space limit."""


class SandboxOutputLimit(SandboxError):
    """The program wrote more to stdout/stderr than its output limit allows."""


class SandboxViolation(SandboxError):
    """The program broke the sandbox protocol (e.g. corrupted the result channel)."""


class SandboxCrash(SandboxError):
    """The program ended without a trace: exit, ``os._exit``, a signal, a module-level error."""


class TraceFormatError(TracegymError):
    """CWM trace text (or trace JSON) that does not follow the grammar; names the offset."""
