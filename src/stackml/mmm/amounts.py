"""Amounts of spend, budget and response: compared with a tolerance, and shown at the data's own scale.

Spends and lift tests come from files written with a few decimals, so two amounts that agree to
:data:`REL_TOL` (relative) are the same amount; near 0, where a relative tolerance vanishes, :data:`ABS_TOL`
takes over. Error messages show amounts with :func:`precise` (enough digits to see any difference beyond the
tolerance) and say by how much with :func:`gap`. Tables and lines for people use :func:`format_amount`, which
keeps significant digits whatever the spend unit (0.0421, 12.5, 1,234,567).

Example:
    >>> bool(is_below(-41.9831, -41.98310004)), bool(is_below(-42.0, -41.9831))
    (False, True)
    >>> [format_amount(v) for v in (0.0421, 12.5, 1234567.0, 5030.0)]
    ['0.0421', '12.5', '1,234,567', '5,030']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ABS_TOL", "REL_TOL", "format_amount", "gap", "is_above", "is_below", "precise", "tolerance"]

REL_TOL = 1e-6
ABS_TOL = 1e-9
_FIXED_RANGE = (1e-6, 1e15)  # magnitudes shown without scientific notation


# -- comparing -----------------------------------------------------------------------------------------------
def tolerance(value: Any, limit: Any) -> Any:
    """How far apart ``value`` and ``limit`` may be and still count as equal (scalars or arrays)."""
    return np.maximum(REL_TOL * np.maximum(np.abs(value), np.abs(limit)), ABS_TOL)


def is_below(value: Any, limit: Any) -> Any:
    """``value < limit`` by more than rounding (see :data:`REL_TOL`); elementwise on arrays."""
    return value < limit - tolerance(value, limit)


def is_above(value: Any, limit: Any) -> Any:
    """``value > limit`` by more than rounding (see :data:`REL_TOL`); elementwise on arrays."""
    return value > limit + tolerance(value, limit)


# -- error messages ------------------------------------------------------------------------------------------
def precise(value: float) -> str:
    """An amount for an error message, with enough digits to tell apart two amounts that differ beyond
    :data:`REL_TOL` (``-41.9831`` stays ``-41.9831``, ``-41.98314`` is not cut to ``-41.9831``)."""
    return f"{float(value):.10g}"


def gap(value: float, limit: float) -> str:
    """By how much ``value`` misses ``limit``, for an error message; near misses also name the tolerance.

    Example:
        >>> gap(-42.0, -41.9831)
        'by 0.0169 (relative 4.0e-04; amounts that agree within a relative 1e-06 count as equal)'
        >>> gap(1000.0, 300.0)
        'by 700'
    """
    difference = abs(float(value) - float(limit))
    scale = max(abs(float(value)), abs(float(limit)))
    if not scale or difference / scale >= 0.01:
        return f"by {difference:.3g}"
    return (
        f"by {difference:.3g} (relative {difference / scale:.1e}; "
        f"amounts that agree within a relative {REL_TOL:g} count as equal)"
    )


# -- showing -------------------------------------------------------------------------------------------------
def format_amount(value: float | None, *, sign: bool = False, digits: int = 4) -> str:
    """An amount or a ratio (spend, budget, response, ROAS) for a table or a line of text.

    ``digits`` significant digits, never fewer than the integer part has, thousands separators, no trailing
    zeros, and no scientific notation for magnitudes from 1e-6 to 1e15. ``sign=True`` writes ``+`` before
    positive amounts (uplifts); 0 is written ``0``; a missing value is ``n/a``.

    Example:
        >>> [format_amount(v) for v in (0.0, -0.0421, 0.0123, 3.14159, 999.96)]
        ['0', '-0.0421', '0.0123', '3.142', '1,000']
        >>> format_amount(2500.4, sign=True), format_amount(-0.00042, sign=True)
        ('+2,500', '-0.00042')
    """
    if value is None or math.isnan(value):
        return "n/a"
    x = float(value)
    plus = "+" if sign else ""
    if x == 0:
        return "0"  # also -0.0
    if math.isinf(x):
        return f"{x:{plus}}"
    magnitude = abs(x)
    if not _FIXED_RANGE[0] <= magnitude < _FIXED_RANGE[1]:
        return f"{x:{plus}.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{x:{plus},.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
