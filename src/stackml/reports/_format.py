"""Turning values into short, readable text for tables and metric cards."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from stackml.errors import InputError

__all__ = [
    "FloatFormat",
    "column_formatter",
    "float_formatter",
    "format_number",
    "format_value",
    "human_time",
    "is_missing",
]

FloatFormat = str | Callable[[float], str]


def format_number(x: float) -> str:
    """Default float format: thousands separators for large values, four significant digits for small ones.

    Example:
        >>> format_number(1234567.891), format_number(0.012345), format_number(3.0)
        ('1,234,567.89', '0.01235', '3')
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    ax = abs(x)
    if ax >= 1e15 or (0 < ax < 1e-4):
        return f"{x:.3e}"
    if ax >= 100:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def column_formatter(values: Any) -> Callable[[float], str]:
    """One format for a whole float column, so its numbers line up.

    Four significant digits on the column's largest value; whole numbers lose their ``.0``.

    Example:
        >>> fmt = column_formatter([3.1234, 0.912, 4.2])
        >>> [fmt(v) for v in (3.1234, 0.912, 4.2)]
        ['3.123', '0.912', '4.200']
    """
    import numpy as np

    arr = np.asarray(values, dtype="float64")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return format_number
    biggest = float(np.abs(finite).max())
    if biggest >= 1e15 or (0 < biggest < 1e-4):
        return format_number
    if biggest == 0 or bool(np.all(finite == np.round(finite))):
        decimals = 0
    else:
        decimals = min(6, max(0, 3 - math.floor(math.log10(biggest))))

    def fmt(x: float) -> str:
        return format_number(x) if not math.isfinite(x) else f"{x:,.{decimals}f}"

    return fmt


def float_formatter(float_format: FloatFormat | None) -> Callable[[float], str]:
    """Accept a callable, a format string like ``"{:.2f}"`` or a format spec like ``".2f"``."""
    if float_format is None:
        return format_number
    if callable(float_format):
        return float_format
    if isinstance(float_format, str):
        template = float_format if "{" in float_format else "{:" + float_format + "}"
        try:
            template.format(1.5)
        except (ValueError, IndexError, KeyError) as exc:
            raise InputError(
                f"'float_format' {float_format!r} is not a valid format for a float ({exc}).",
                hint="Use e.g. '{:,.2f}', '.1%' or a function such as lambda x: f'{x:.3f}'.",
            ) from exc
        return template.format
    raise InputError(
        f"'float_format' must be a format string or a callable, got {type(float_format).__name__}.",
        hint="Use e.g. '{:,.2f}' or a function such as lambda x: f'{x:.3f}'.",
    )


def human_time(moment: datetime) -> str:
    """``2025-03-01 14:05 UTC``: unambiguous for readers in any time zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT, which all show as an empty cell."""
    if value is None:
        return True
    import pandas as pd

    # Lists or arrays in a cell are values to show, not missing markers.
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def format_value(value: Any, fmt: Callable[[float], str] = format_number) -> str:
    """Format one cell or metric; integers keep every digit, floats go through ``fmt``."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return fmt(float(value))
    if isinstance(value, datetime):
        # Daily data is the common case; "2024-03-01" reads better than "2024-03-01 00:00:00".
        if value.tzinfo is None and value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    return str(value)
