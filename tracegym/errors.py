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
