"""Model outputs become plain JSON values, one item per record."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from stackml.serving.jsonable import to_jsonable


def test_dataframe_rows_with_nan_timestamps_and_numpy_scalars():
    frame = pd.DataFrame(
        {
            "y": [1.5, np.nan],
            "n": np.array([1, 2], dtype="int32"),
            "ok": [True, False],
            "t": pd.to_datetime(["2024-01-01", None]),
            "label": ["a", None],
        }
    )
    out = to_jsonable(frame)
    assert out == [
        {"y": 1.5, "n": 1, "ok": True, "t": "2024-01-01T00:00:00", "label": "a"},
        {"y": None, "n": 2, "ok": False, "t": None, "label": None},
    ]
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN slipped through


def test_series_arrays_lists_and_scalars():
    assert to_jsonable(pd.Series([1.0, np.inf])) == [1.0, None]
    assert to_jsonable(np.array([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert to_jsonable(np.array([0.5, np.nan])) == [0.5, None]
    assert to_jsonable([np.float32(0.5), np.int64(3), {"k": np.datetime64("2024-01-02")}]) == [
        0.5,
        3,
        {"k": "2024-01-02T00:00:00"},
    ]
    assert to_jsonable(np.float64(2.0)) == 2.0
    assert to_jsonable(b"abc") == "abc"
