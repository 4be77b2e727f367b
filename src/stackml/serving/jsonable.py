"""Turn whatever a pyfunc model returns into plain JSON values, one item per input record."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(output: Any) -> Any:
    """Convert a model's output to JSON-ready Python values.

    A DataFrame becomes a list of row objects, a Series or 1-D array a list of values, a 2-D array a
    list of lists. NaN and infinities become ``null`` (JSON has no such numbers), timestamps ISO 8601
    strings, bytes text.

    Example:
        >>> import pandas as pd
        >>> to_jsonable(pd.DataFrame({"y": [1.5, float("nan")]}))
        [{'y': 1.5}, {'y': None}]
    """
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        names = [str(c) for c in output.columns]
        if output.columns.is_unique:
            columns = [_column(output[c]) for c in output.columns]  # several times faster than iloc
        else:
            columns = [_column(output.iloc[:, j]) for j in range(output.shape[1])]
        return (
            [dict(zip(names, row)) for row in zip(*columns)] if columns else [{} for _ in range(len(output))]
        )
    if isinstance(output, pd.Series):
        return _column(output)
    if isinstance(output, np.ndarray):
        return _array(output)
    return _value(output)


def _column(series: Any) -> list[Any]:
    values = series.to_numpy()
    if values.dtype.kind in "iub":
        return values.tolist()  # C-speed, and these kinds hold no NaN
    if values.dtype.kind == "f":
        return _array(values)
    return [_value(v) for v in series.tolist()]


def _array(values: Any) -> list[Any]:
    import numpy as np

    if values.dtype.kind == "f":
        if np.isfinite(values).all():
            return values.tolist()
        return _value(values.astype(object).tolist())
    if values.dtype.kind in "iub":
        return values.tolist()
    return _value(values.tolist())


def _value(value: Any) -> Any:
    """Recursive conversion of one value of an object column, a list or a dict."""
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give nanoseconds as a bare int
    elif isinstance(value, np.generic):
        return _value(value.item())
    if hasattr(value, "isoformat"):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)
