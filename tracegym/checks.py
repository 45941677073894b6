"""Argument checks shared by every layer: an int within bounds, a seed, and the message for
names that are not among the valid ones (:func:`unknown_names_message`).

Each check returns the value as a plain ``int`` (numpy integers are accepted, ``bool`` is not,
though it is an int subclass) and raises :class:`~tracegym.errors.TracegymError` naming the field
and the value, in one of two messages: ``"<name> must be an int, got <value>"`` for a value of
another type, and ``"<name> must be >= <low>, got <value>"`` (or ``in <low>..<high>``, ``<=
<high>``) for one out of range.

>>> check_int("train", 3, 1)
3
>>> check_int("train", 0, 1)
Traceback (most recent call last):
    ...
tracegym.errors.TracegymError: train must be >= 1, got 0
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

from tracegym.errors import TracegymError

SEED_MAX = 2**63 - 1  # seeds fit an int64 (numba loops and numpy SeedSequence both take them)
_NAMED_BOUNDS = {SEED_MAX: "2**63-1"}


def _bound(value: int) -> str:
    return _NAMED_BOUNDS.get(value, str(value))


def check_int(name: str, value, low: int | None = None, high: int | None = None, *,
              optional: bool = False, error: type[ValueError] = TracegymError) -> int | None:
    """``value`` as an int in ``low..high`` (either bound may be None: unbounded).

    ``optional`` lets ``None`` through (returned as is); ``error`` is the exception class raised
    (a TracegymError subclass for a layer's own kind of bad input).
    """
    if value is None and optional:
        return None
    # numpy's integers register as Integral, so the tracer layer need not import numpy for
    # this; bool is Integral too but True is no count (numpy.bool_ is not Integral)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be an int{' or None' if optional else ''}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            expected = f">= {_bound(low)}"
        elif low is None:
            expected = f"<= {_bound(high)}"
        else:
            expected = f"in {_bound(low)}..{_bound(high)}"
        raise error(f"{name} must be {expected}, got {value}")
    return int(value)


def check_positive_int(name: str, value, *, optional: bool = False,
                       error: type[ValueError] = TracegymError) -> int | None:
    """``value`` as an int ``>= 1`` (a count, a size, a limit)."""
    return check_int(name, value, 1, optional=optional, error=error)


def check_seed(seed, name: str = "seed") -> int:
    """A seed (or a seeded item's index) as an int in ``0..2**63-1``."""
    return check_int(name, seed, 0, SEED_MAX)


def unknown_names_message(unknown: Iterable[str], valid: Sequence[str], noun: str, *,
                          kind: str = "", context: str = "") -> str:
    """The message for names given that are not among ``valid`` (options, config keys): the
    sorted unknown names, the closest valid name of each where one is close (difflib), and the
    valid names in their order.

    >>> unknown_names_message(["dimm", "zzz"], ["dim", "depth"], "key")
    "unknown key(s) ['dimm', 'zzz'] ('dimm': did you mean 'dim'?); valid keys: dim, depth"

    ``kind`` qualifies the noun ("config" key) and ``context`` follows the names (" for
    reasoner 'trm'").
    """
    import difflib  # only on an error: the tracer (and its sandbox child) import this module

    unknown, valid = sorted(unknown), list(valid)
    hints = [f"{name!r}: did you mean {close[0]!r}?" for name in unknown
             if (close := difflib.get_close_matches(name, valid, n=1))]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return (f"unknown {kind + ' ' if kind else ''}{noun}(s) {unknown}{context}{hint}; "
            f"valid {noun}s: {', '.join(valid)}")
