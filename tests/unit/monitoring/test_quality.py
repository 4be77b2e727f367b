"""Data quality checks: each finding with an actionable message; bad data is a broken check, not a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.monitoring.quality import QualityCheck, QualityReport, quality_checks


def _frame(rng: np.random.Generator, n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(start, start + n),
            "age": rng.normal(40, 10, n),
            "visits": rng.poisson(20, n),
            "plan": rng.choice(["free", "basic", "pro"], n),
            "member": rng.random(n) < 0.3,
            "rating": rng.integers(1, 6, n),
        }
    )


def _only(report: QualityReport, check: str, column: object = None) -> QualityCheck:
    found = [c for c in report.checks if c.check == check and (column is None or c.column == column)]
    assert len(found) == 1, found
    return found[0]


def test_clean_data_breaks_nothing() -> None:
    rng = np.random.default_rng(0)
    reference, current = _frame(rng, 20_000), _frame(rng, 5_000, start=20_000)
    report = quality_checks(reference, current, keys=["id"])
    assert report.ok, [c.message for c in report.broken]
    assert (report.n_reference, report.n_current) == (20_000, 5_000)
    assert _only(report, "schema").message.startswith("The schema matches: the 6 reference columns")
    assert {c.check for c in report.checks} == {
        "schema",
        "nulls",
        "range",
        "new_categories",
        "duplicate_keys",
    }
    assert not [c for c in report.checks if c.column == "id" and c.check in ("range", "new_categories")]


# -- schema --------------------------------------------------------------------------------------------------
def test_schema_changes() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [1, 2], "d": [True, False], "e": [1, 2]})
    current = pd.DataFrame(
        {
            "a": ["1.0", "2.0"],  # numeric -> text
            "c": [1.5, np.nan],  # int -> float is the same family
            "d": [True, None],  # bool with a missing value is object in pandas, still bool
            "e": [np.nan, np.nan],  # all missing: no type to compare (the null check reports it)
            "new": [0, 1],
        }
    )
    report = quality_checks(reference, current)
    schema = [c for c in report.checks if c.check == "schema"]
    assert [(c.column, c.broken) for c in schema] == [("b", True), ("new", False), ("a", True)]
    assert schema[0].message == (
        "Column 'b' is in the reference but missing from the current data (received columns: ['a', 'c', 'd', "
        "'e', 'new']). Restore it in the feed, or retrain the model without it."
    )
    assert "Column 'new' is new" in schema[1].message
    assert schema[2].message == (
        "Column 'a' changed type: numeric in the reference (float64), text in the current data (object). "
        "Cast it back to numeric in the feed, or retrain on the new type."
    )


def test_datetime_and_duplicate_columns() -> None:
    reference = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3), "x": [1.0, 2.0, 3.0]})
    current = pd.DataFrame([[1.0, 2.0, 3.0]] * 3, columns=["t", "x", "x"])
    report = quality_checks(reference, current)
    broken = [(c.check, c.column) for c in report.broken]
    assert ("schema", "x") in broken and ("schema", "t") in broken
    assert "appears more than once" in _only(report, "schema", "x").message
    assert "datetime in the reference" in _only(report, "schema", "t").message


# -- nulls ---------------------------------------------------------------------------------------------------
def test_null_rate_rise() -> None:
    rng = np.random.default_rng(1)
    reference, current = _frame(rng, 2000), _frame(rng, 1000, start=2000)
    reference.loc[:99, "age"] = np.nan  # 5% in the reference
    current.loc[:149, "age"] = np.nan  # 15% now: +10 points
    current.loc[:39, "visits"] = np.nan  # 4%: within the +5 points a column may rise
    report = quality_checks(reference, current, keys=["id"])
    age, visits = _only(report, "nulls", "age"), _only(report, "nulls", "visits")
    assert (age.value, age.limit, age.broken) == (0.15, pytest.approx(0.10), True)
    assert age.message == (
        "Column 'age' is missing in 15.0% of current rows (150 of 1,000) against 5.0% in the reference "
        "(limit 10.0%). Check the upstream source for failed lookups or a changed default; raise "
        "max_null_increase if this is expected."
    )
    assert not visits.broken
    assert quality_checks(reference, current, keys=["id"], max_null_increase=0.2).ok


def test_all_missing_columns() -> None:
    reference = pd.DataFrame({"dark": [1.0, 2.0, 3.0], "never": [np.nan] * 3, "x": [1.0, 2.0, 3.0]})
    current = pd.DataFrame({"dark": [np.nan] * 2, "never": [np.nan] * 2, "x": [2.0, 3.0]})
    report = quality_checks(reference, current)
    dark, never = _only(report, "nulls", "dark"), _only(report, "nulls", "never")
    assert (
        dark.broken and "missing in all 2 current rows" in dark.message and "stopped filling" in dark.message
    )
    assert not never.broken and "missing in every reference row" in never.message
    assert [c.check for c in report.checks if c.column == "dark"] == ["nulls"]  # nothing else to check
    assert not _only(report, "range", "x").broken


def test_a_column_that_went_dark_breaks_even_within_the_rise_limit() -> None:
    reference = pd.DataFrame({"sparse": [np.nan] * 97 + [1.0, 2.0, 3.0]})
    current = pd.DataFrame({"sparse": [np.nan] * 50})
    assert _only(quality_checks(reference, current), "nulls", "sparse").broken


# -- ranges --------------------------------------------------------------------------------------------------
def test_values_outside_the_reference_range() -> None:
    reference = pd.DataFrame({"age": np.linspace(18, 90, 500)})
    current = pd.DataFrame({"age": np.r_[np.linspace(20, 80, 95), [150.0, 151.0, -1.0, np.inf, np.nan]]})
    check = _only(quality_checks(reference, current), "range", "age")
    assert (check.value, check.limit, check.broken) == (pytest.approx(4 / 99), 0.01, True)
    assert check.message == (
        "Column 'age': 4.0% of current values (4 of 99) fall outside [18, 90] (the reference's range; pass "
        "ranges={'age': (low, high)} to set it); the values outside run from -1 to inf (limit 1.0%). Check "
        "units, scaling and the feed; widen the range or raise max_out_of_range if the new values are valid."
    )
    assert not _only(quality_checks(reference, current, max_out_of_range=0.05), "range", "age").broken


def test_given_ranges() -> None:
    reference = pd.DataFrame({"age": np.linspace(18, 90, 500), "score": np.linspace(0, 1, 500)})
    current = pd.DataFrame({"age": [17.0, 30.0, 200.0, 40.0], "score": [-0.5, 0.5, 0.7, 1.5]})
    report = quality_checks(reference, current, ranges={"age": (0, None), "score": (None, 1.0)})
    age, score = _only(report, "range", "age"), _only(report, "range", "score")
    assert (age.value, age.broken) == (0.0, False)
    assert (score.value, score.broken) == (0.25, True)
    assert "outside [-inf, 1] (the given range)" in score.message
    unbounded = quality_checks(reference, current, ranges={"age": (None, None)})
    assert not [c for c in unbounded.checks if c.check == "range" and c.column == "age"]


# -- new categories ------------------------------------------------------------------------------------------
def test_new_categories_with_examples() -> None:
    reference = pd.DataFrame({"plan": ["free", "pro"] * 50, "rating": [1, 2, 3, 4, 5] * 20})
    unseen = ["team", "team", "edu", "gov", "ngo", "trial", "beta"]
    current = pd.DataFrame({"plan": ["free"] * 93 + unseen, "rating": [1, 2, 3, 4, 6] * 20})
    report = quality_checks(reference, current)
    plan = _only(report, "new_categories", "plan")
    assert (plan.value, plan.limit, plan.broken) == (0.07, 0.0, True)
    assert plan.message.startswith(
        "Column 'plan': 6 value(s) the reference never had, in 7.0% of current rows (7 of 100): 'team', "
    )
    assert "and 1 more. The model has not seen them" in plan.message
    rating = _only(report, "new_categories", "rating")  # integers with few values are categories
    assert rating.broken and "6" in rating.message
    tolerant = quality_checks(reference, current, max_new_category_share=0.1)
    assert not _only(tolerant, "new_categories", "plan").broken
    assert "Within the limit (10.0%)" in _only(tolerant, "new_categories", "plan").message


def test_free_text_is_not_checked_for_new_categories() -> None:
    reference = pd.DataFrame({"comment": [f"note {i}" for i in range(200)]})
    current = pd.DataFrame({"comment": [f"other {i}" for i in range(50)]})
    assert not [c for c in quality_checks(reference, current).checks if c.check == "new_categories"]


# -- duplicate keys ------------------------------------------------------------------------------------------
def test_duplicate_keys() -> None:
    reference = pd.DataFrame({"shop": ["a", "b"], "day": [1, 1], "sales": [1.0, 2.0]})
    current = pd.DataFrame({"shop": ["a", "a", "b", "a"], "day": [1, 1, 1, 2], "sales": [1.0, 1.5, 2.0, 3.0]})
    check = _only(quality_checks(reference, current, keys=["shop", "day"]), "duplicate_keys")
    assert (check.column, check.value, check.broken) == ("shop, day", 0.25, True)
    assert check.message == (
        "1 current rows (25.0%) repeat the key (shop, day) of an earlier row, e.g. shop='a', day=1. Look for "
        "a replayed batch or a join that fans out, and deduplicate upstream."
    )
    assert not _only(
        quality_checks(reference, current, keys=["shop", "day", "sales"]), "duplicate_keys"
    ).broken


def test_missing_key_column_is_a_broken_check() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    check = _only(quality_checks(frame, frame, keys=["id"]), "duplicate_keys")
    assert check.broken and "Key column(s) ['id'] are missing from the current data" in check.message


# -- empty frames --------------------------------------------------------------------------------------------
def test_empty_current_is_one_broken_check() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    report = quality_checks(reference, reference.iloc[:0], keys=["a"])
    assert [(c.check, c.broken) for c in report.checks] == [("schema", False), ("empty", True)]
    assert report.broken[0].message.startswith(
        "The current data has no rows (2 columns), so no row-level check"
    )
    both = quality_checks(pd.DataFrame(), pd.DataFrame())
    assert [c.check for c in both.broken] == ["empty", "empty"]
    assert "Log reference data with the model" in both.broken[1].message


# -- argument validation -------------------------------------------------------------------------------------
def test_arguments_are_validated_all_at_once() -> None:
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(InputError) as caught:
        quality_checks(
            frame,
            [1, 2],
            keys="a",
            ranges={"a": (5, 1), "b": (0, "x")},
            max_null_increase=2,
            max_out_of_range=-0.1,
            categorical_max_unique=-1,
        )
    message = str(caught.value)
    assert message.startswith("7 problem(s) with the quality-check arguments")
    for expected in [
        "'current' must be a pandas DataFrame, got list",
        "'keys' must be a non-empty list of column names or None, got 'a' (e.g. ['id'])",
        "'ranges['a']' has low > high: (5, 1); swap them",
        "'ranges['b']' must be (low, high) with numbers or None, got (0, 'x')",
        "'max_null_increase' must be a number in [0, 1], got 2",
        "'max_out_of_range' must be a number in [0, 1], got -0.1",
        "'categorical_max_unique' must be an int >= 0, got -1",
    ]:
        assert expected in message


def test_ranges_must_name_known_columns() -> None:
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(InputError, match=r"'ranges' names column 'z', which is in neither frame"):
        quality_checks(frame, frame, ranges={"z": (0, 1)})
