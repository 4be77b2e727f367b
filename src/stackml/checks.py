"""Small value checks shared by every layer: one "is a number, not a bool", one "missing columns" message.

Each check returns a problem (a short sentence naming the parameter, what was expected and what was received)
or ``None``, so callers collect every problem and raise once with :func:`stackml.errors.raise_if_problems`.

Example:
    >>> from stackml.checks import int_problem, is_number
    >>> is_number(True), is_number(2.5)
    (False, True)
    >>> int_problem("horizon", 0, low=1)
    "'horizon' must be an int >= 1, got 0"
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "is_int",
    "is_number",
    "int_problem",
    "number_problem",
    "missing_columns",
    "missing_columns_problem",
]


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy), and not a bool, which Python counts as an int."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_problem(name: str, value: Any, *, low: int | None = None, extra: str = "") -> str | None:
    """``None`` when ``value`` is an int ``>= low``; else the sentence that says so. ``extra`` explains the
    value."""
    if is_int(value) and (low is None or value >= low):
        return None
    bound = f" >= {low}" if low is not None else ""
    return f"'{name}' must be an int{bound}{extra}, got {value!r}"


def number_problem(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> str | None:
    """``None`` when ``value`` is a finite number within the bounds; else the sentence that says so."""
    ok = is_number(value) and value == value and abs(float(value)) != float("inf")
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return None
    if low is not None and high is not None:
        where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        where = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        where = f" {'<' if high_open else '<='} {high:g}"
    else:
        where = ""
    return f"'{name}' must be a number{where}, got {value!r}"


def missing_columns(columns: Iterable[Any], wanted: Sequence[Any]) -> list[Any]:
    """The names of ``wanted`` (in order, without repeats) that are not among ``columns``."""
    have = set(columns)
    return [c for c in dict.fromkeys(wanted) if c not in have]


def missing_columns_problem(columns: Iterable[Any], wanted: Sequence[Any]) -> str | None:
    """``"missing columns ['y'] (it has [...])"``, or ``None`` when every wanted column is there."""
    columns = list(columns)
    missing = missing_columns(columns, wanted)
    return f"missing columns {missing} (it has {columns})" if missing else None
