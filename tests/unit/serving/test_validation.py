"""Records checked against a model signature: every problem listed, frames typed like the signature."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from stackml.serving.validation import Column, validate_records

COLUMNS = [
    Column("x", "double"),
    Column("n", "long"),
    Column("small", "integer"),
    Column("flag", "boolean"),
    Column("g", "string"),
    Column("when", "datetime"),
    Column("note", "string", required=False),
]
GOOD = {"x": 1.5, "n": 3, "small": -2, "flag": True, "g": "a", "when": "2024-03-01T12:00:00"}


def test_valid_records_become_a_frame_with_the_signature_dtypes():
    frame, problems, exact = validate_records([GOOD, {**GOOD, "x": 2, "note": "hi"}], COLUMNS)

    assert problems == []
    assert list(frame.columns) == [c.name for c in COLUMNS]
    assert [str(t) for t in frame.dtypes] == [
        "float64",
        "int64",
        "int32",
        "bool",
        "object",
        "datetime64[ns]",
        "object",
    ]
    assert frame["x"].tolist() == [1.5, 2.0]  # an integer is a fine double
    assert frame["when"].iloc[0] == pd.Timestamp("2024-03-01 12:00")
    assert frame["note"].tolist() == [None, "hi"]
    assert not exact  # the optional column holds a null, so MLflow's enforcement has work left


def test_exact_when_no_nulls_and_only_scalar_types():
    _, _, exact = validate_records([{**GOOD, "note": "x"}], COLUMNS)
    assert exact


def test_every_problem_is_listed_with_record_and_column():
    records = [
        {"x": "1.5", "n": 3.0, "small": 2**31, "flag": 1, "g": 7, "when": "yesterday", "extra": 1},
        {"x": None, "note": 5},
        {"x": True, **{k: v for k, v in GOOD.items() if k != "x"}},
    ]
    frame, problems, _ = validate_records(records, COLUMNS)

    assert frame is None
    found = {(p.record, p.column, p.kind) for p in problems}
    assert found == {
        (0, "x", "wrong_type"),
        (0, "n", "wrong_type"),
        (0, "small", "wrong_type"),
        (0, "flag", "wrong_type"),
        (0, "g", "wrong_type"),
        (0, "when", "wrong_type"),
        (0, "extra", "unknown_column"),
        (1, "x", "null_value"),
        (1, "n", "missing_column"),
        (1, "small", "missing_column"),
        (1, "flag", "missing_column"),
        (1, "g", "missing_column"),
        (1, "when", "missing_column"),
        (1, "note", "wrong_type"),
        (2, "x", "wrong_type"),  # a boolean is not a number, though Python says True == 1
    }
    assert len(problems) == len(found)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            Column("x", "double"),
            "a",
            "record 0: column 'x' must be a finite JSON number (double); got string 'a'.",
        ),
        (
            Column("n", "long"),
            1.5,
            "record 0: column 'n' must be a JSON integer within 64 bits (long); got number 1.5.",
        ),
        (
            Column("n", "integer"),
            2**40,
            "must be a JSON integer within 32 bits (integer); got integer 1099511627776.",
        ),
        (Column("t", "datetime"), "0001-01-01", "must be an ISO 8601 date-time string (datetime)"),
        (Column("b", "binary"), "not base64!", "must be a base64-encoded JSON string (binary)"),
        (Column("x", "double"), "x" * 100, "got string '" + "x" * 36 + "...."),
    ],
)
def test_wrong_type_messages_say_what_was_expected_and_received(column, value, message):
    _, problems, _ = validate_records([{column.name: value}], [column])
    assert len(problems) == 1
    assert message in problems[0].message


def test_missing_and_unknown_columns_are_named():
    _, problems, _ = validate_records([{"y": 1}], [Column("x", "double")])
    assert [p.message for p in problems] == [
        "record 0: required column 'x' (double) is missing.",
        "record 0: unknown column 'y'; the model takes: x.",
    ]


def test_a_record_that_is_not_an_object():
    _, problems, _ = validate_records([{"x": 1.0}, [1.0]], [Column("x", "double")])
    assert [(p.record, p.kind) for p in problems] == [(1, "invalid_body")]


def test_no_signature_passes_records_through():
    frame, problems, exact = validate_records([{"a": 1, "b": "x"}], None)
    assert problems == [] and not exact
    assert frame.to_dict("records") == [{"a": 1, "b": "x"}]


def test_optional_numbers_with_nulls_and_nested_values():
    columns = [
        Column("x", "double", required=False),
        Column("n", "long", required=False),
        Column("v", "array"),
    ]
    frame, problems, exact = validate_records(
        [{"x": None, "n": None, "v": [1, 2]}, {"x": 2.0, "n": 4, "v": [3, 4]}], columns
    )
    assert problems == [] and not exact
    assert np.isnan(frame["x"].iloc[0]) and frame["x"].iloc[1] == 2.0
    assert frame["n"].tolist() == [None, 4]
    assert frame["v"].tolist() == [[1, 2], [3, 4]]  # not a 2-D array


def test_datetimes_with_offsets_become_utc_and_binary_is_decoded():
    columns = [Column("t", "datetime"), Column("b", "binary")]
    payload = base64.b64encode(b"\x00\x01").decode()
    frame, problems, exact = validate_records(
        [{"t": "2024-01-01T00:00:00+02:00", "b": payload}, {"t": "2024-01-01T00:00:00Z", "b": payload}],
        columns,
    )
    assert problems == [] and not exact  # tz-aware: left to MLflow's enforcement
    assert str(frame["t"].dt.tz) == "UTC"
    assert frame["t"].iloc[0] == pd.Timestamp("2023-12-31 22:00", tz="UTC")
    assert frame["b"].iloc[0] == b"\x00\x01"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (10**400, "1000000000000000000000000000000000000..."),
    ],
)
def test_non_finite_numbers_are_named_for_double_and_float_columns(value, shown):
    for column in (Column("x", "double"), Column("x", "float")):
        frame, problems, _ = validate_records([{"x": value}], [column])
        assert frame is None
        assert [(p.record, p.column, p.kind) for p in problems] == [(0, "x", "wrong_type")]
        expected = "a finite JSON number" + (" within the float32 range" if column.type == "float" else "")
        kind = "number" if isinstance(value, float) else "integer"
        assert problems[0].message == (
            f"record 0: column 'x' must be {expected} ({column.type}); got {kind} {shown}."
        )


def test_a_double_beyond_float32_is_refused_for_a_float_column_only():
    _, float_problems, _ = validate_records([{"x": 1e39}], [Column("x", "float")])
    _, double_problems, _ = validate_records([{"x": 1e39}], [Column("x", "double")])
    assert [p.column for p in float_problems] == ["x"] and double_problems == []


def test_non_finite_numbers_inside_nested_values_and_without_a_signature():
    _, nested, _ = validate_records([{"v": [1.0, float("nan")]}], [Column("v", "array")])
    assert [(p.column, p.kind) for p in nested] == [("v", "wrong_type")]
    frame, free, _ = validate_records([{"a": 1.0, "b": {"c": float("inf")}}], None)
    assert frame is None and [(p.record, p.column) for p in free] == [(0, "b")]


def test_a_huge_unknown_key_is_shown_shortened():
    _, problems, _ = validate_records([{"x": 1.0, "k" * 10_000: 1}], [Column("x", "double")])
    assert problems[0].column == "k" * 37 + "..." and len(problems[0].message) < 200
