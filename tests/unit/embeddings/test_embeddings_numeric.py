"""Standardised numeric rows and the scaler that repeats the scaling on new rows."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from stackml.embeddings import NumericScaler, numeric_matrix
from stackml.errors import InputError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "spend": [10.0, 20.0, 30.0, 40.0],
            "visits": pd.array([1, 2, 2, 7], dtype="Int64"),
            "churned": [True, False, False, True],
        }
    )


def test_default_is_every_numeric_column_standardised(frame: pd.DataFrame) -> None:
    x, scaler = numeric_matrix(frame)
    assert isinstance(scaler, NumericScaler)
    assert scaler.columns == ("spend", "visits")  # text and booleans are left out
    assert x.shape == (4, 2) and x.dtype == np.float64
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x.std(0), 1.0)
    np.testing.assert_allclose(scaler.means, [25.0, 3.0])
    np.testing.assert_allclose(x[:, 0], (frame.spend - 25.0) / np.std(frame.spend))


def test_chosen_columns_in_their_order(frame: pd.DataFrame) -> None:
    x, scaler = numeric_matrix(frame, ["visits", "spend"])
    assert scaler.columns == ("visits", "spend")
    np.testing.assert_allclose(x, numeric_matrix(frame)[0][:, ::-1])


def test_transform_scales_new_rows_like_the_training_rows(frame: pd.DataFrame) -> None:
    x, scaler = numeric_matrix(frame)
    np.testing.assert_allclose(scaler.transform(frame), x)
    new = pd.DataFrame({"visits": [3], "spend": [25.0], "extra": ["ignored"]})
    np.testing.assert_allclose(scaler.transform(new), [[0.0, 0.0]])
    # a pyfunc model pickles its scaler
    np.testing.assert_allclose(pickle.loads(pickle.dumps(scaler)).transform(new), [[0.0, 0.0]])


def test_every_problem_is_named_at_once() -> None:
    bad = pd.DataFrame(
        {
            "a": [1.0, np.nan, np.inf, np.nan],
            "b": [5, 5, 5, 5],
            "c": ["x", "y", "z", "w"],
            "d": [1.0, 2.0, 3.0, -np.inf],
        }
    )
    with pytest.raises(InputError) as caught:
        numeric_matrix(bad, ["a", "b", "c", "d", "nope"])
    message = str(caught.value)
    assert message.startswith("5 problem(s) with the numeric input")
    assert "missing columns ['nope']" in message
    assert "non-numeric columns: 'c' (object)" in message
    assert "column 'a' holds 2 NaN and 1 inf value(s)" in message
    assert "column 'd' holds 1 inf value(s)" in message
    assert "constant columns ['b']" in message
    assert "Pass numeric columns without missing or infinite values" in message  # the hint


@pytest.mark.parametrize(
    ("frame", "columns", "match"),
    [
        (pd.DataFrame({"a": [1.0]}), None, r"at least 2 rows to standardise, got 1"),
        (pd.DataFrame({"a": ["x", "y"]}), None, r"has no numeric columns \(it has \['a'\]\)"),
        (pd.DataFrame({"a": [1, 2]}), "a", r"'columns' must be a list of column names, got 'a'"),
        (pd.DataFrame({"a": [1, 2]}), [], r"'columns' is empty"),
        (pd.DataFrame({"a": [1, 2]}), ["a", "a"], r"'columns' names \['a'\] more than once"),
        ({"a": [1, 2]}, None, r"'frame' must be a pandas DataFrame, got dict"),
        (pd.DataFrame({"a": [1, 2], "f": [True, False]}), ["a", "f"], r"non-numeric columns: 'f' \(bool\)"),
    ],
)
def test_bad_input(frame: object, columns: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        numeric_matrix(frame, columns)  # type: ignore[arg-type]


def test_transform_names_the_problems_of_new_rows(frame: pd.DataFrame) -> None:
    _, scaler = numeric_matrix(frame)
    with pytest.raises(InputError, match=r"2 problem\(s\) with the rows to scale") as caught:
        scaler.transform(pd.DataFrame({"spend": ["10"], "other": [1]}))
    assert "missing columns ['visits']" in str(caught.value)
    assert "non-numeric columns: 'spend' (object)" in str(caught.value)
    with pytest.raises(InputError, match=r"'frame' must be a pandas DataFrame, got list"):
        scaler.transform([[1.0, 2.0]])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"column 'visits' holds 1 NaN value\(s\)"):
        scaler.transform(pd.DataFrame({"spend": [1.0], "visits": pd.array([None], dtype="Int64")}))
