"""Amounts: tolerant comparisons of spends read from files, and number formats that fit the data's scale."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.mmm.amounts import format_amount, gap, is_above, is_below, precise


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (0.0421, "0.0421"),
        (0.04213579, "0.04214"),
        (0.0123, "0.0123"),
        (0.00042, "0.00042"),
        (3.14159, "3.142"),
        (12.5, "12.5"),
        (12.0, "12"),
        (999.96, "1,000"),  # rounding up adds a digit, never a trailing ".0"
        (0.099996, "0.1"),
        (5030.0, "5,030"),  # was "5.03e+03" in the ROAS table
        (1234567.0, "1,234,567"),
        (1234567.89, "1,234,568"),
        (-0.0421, "-0.0421"),
        (-12.5, "-12.5"),
        (-1234567.4, "-1,234,567"),
        (2.5e-7, "2.500e-07"),  # beyond ordinary magnitudes: scientific
        (3e15, "3.000e+15"),
        (float("nan"), "n/a"),
        (None, "n/a"),
        (float("inf"), "inf"),
    ],
)
def test_amounts_keep_their_significant_digits_at_every_scale(value, expected) -> None:
    assert format_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2500.4, "+2,500"),
        (0.0421, "+0.0421"),
        (-0.00042, "-0.00042"),
        (-1234567.0, "-1,234,567"),
        (0.0, "0"),
        (float("-inf"), "-inf"),
    ],
)
def test_signed_amounts_for_uplifts(value, expected) -> None:
    assert format_amount(value, sign=True) == expected


def test_small_spend_units_are_not_all_printed_as_zero() -> None:
    """Issue 17: with ',.0f' every spend of a plan in small units printed as 0."""
    spends = [0.0421, 0.0135, 0.0009]
    shown = [format_amount(v) for v in spends]
    assert shown == ["0.0421", "0.0135", "0.0009"]
    assert [float(s) for s in shown] == pytest.approx(spends, rel=1e-3)


def test_comparisons_tolerate_rounding_relative_and_near_zero() -> None:
    # Relative: 6 decimals of -41.98310451 lie 1.2e-8 below it, well within 1e-6.
    assert not is_below(-41.983105, -41.98310451) and is_below(-41.99, -41.98310451)
    assert not is_above(1_000_000.5, 1_000_000.0) and is_above(1_000_002.0, 1_000_000.0)
    # Near 0 a relative tolerance vanishes; the absolute floor (1e-9) takes over.
    assert not is_below(-1e-10, 0.0) and is_below(-1e-8, 0.0)
    assert not is_above(1e-10, 0.0) and is_above(1e-8, 0.0)
    # Elementwise on arrays.
    np.testing.assert_array_equal(is_below(np.array([1.0, 0.99]), np.array([1.0000001, 1.0])), [False, True])


def test_messages_show_the_difference() -> None:
    assert precise(-41.98310451) == "-41.98310451" and precise(-41.983105) == "-41.983105"
    assert precise(1234567.891) == "1234567.891"
    assert gap(-42.0, -41.9831) == (
        "by 0.0169 (relative 4.0e-04; amounts that agree within a relative 1e-06 count as equal)"
    )
    assert gap(1000.0, 300.0) == "by 700"  # a clear miss needs no word on the tolerance
