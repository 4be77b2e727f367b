"""Numeric rows as a standardised matrix, with the scaler that gives new rows the same scaling.

Distance-based clustering weighs each column by its spread, so a column in cents would drown one in years;
standardising (mean 0, standard deviation 1) gives every column the same say. The scaler is kept so that
``predict`` scales new rows with the training means and deviations, not with their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stackml.checks import missing_columns_problem
from stackml.errors import raise_if_problems

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NumericScaler", "fit_numeric", "numeric_columns"]

_NUMERIC_HINT = (
    "Pass numeric columns without missing or infinite values (fill or drop those rows first); "
    "cast true/false columns to int if they should count."
)


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays element-wise has no single truth value
class NumericScaler:
    """The standardisation learnt by :func:`stackml.embeddings.numeric_matrix`.

    Attributes:
        columns: the columns, in matrix order.
        means: the mean of each column (training rows).
        scales: the standard deviation of each column (population, ``ddof=0``; never 0).

    Example:
        >>> import pandas as pd
        >>> x, scaler = fit_numeric(pd.DataFrame({"a": [1.0, 3.0], "b": [10, 30]}))
        >>> scaler.transform(pd.DataFrame({"a": [2.0], "b": [50]})).tolist()
        [[0.0, 3.0]]
    """

    columns: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame``'s columns scaled as the training rows were, ``(len(frame), len(columns))`` float64.

        Raises:
            InputError: naming every missing or non-numeric column and every column with NaN or inf.
        """
        problems = _frame_problems(frame, None)
        if not problems:
            _, values, problems = _numeric_values(frame, list(self.columns))
        raise_if_problems(problems, what="the rows to scale", hint=_NUMERIC_HINT)
        return (values - self.means) / self.scales


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric columns of ``frame``, in order; booleans are flags, not measurements, and are left out."""
    return [c for c in frame.columns if _is_numeric(frame[c])]


def fit_numeric(
    frame: pd.DataFrame, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, NumericScaler]:
    """Standardise ``columns`` of ``frame`` (default: every numeric column); see
    :func:`stackml.embeddings.numeric_matrix`."""
    problems = _frame_problems(frame, columns)
    if problems:  # not a frame, or no usable column list: nothing more can be checked
        raise_if_problems(problems, what="the numeric input", hint=_NUMERIC_HINT)
    chosen = numeric_columns(frame) if columns is None else list(columns)
    if len(frame) < 2:
        problems.append(f"'frame' must have at least 2 rows to standardise, got {len(frame)}")
    if not chosen:
        problems.append(f"'frame' has no numeric columns (it has {list(frame.columns)})")
        raise_if_problems(problems, what="the numeric input", hint=_NUMERIC_HINT)
    numeric, values, value_problems = _numeric_values(frame, chosen)
    problems += value_problems
    constant = _constant_columns(numeric, values) if len(frame) >= 2 else []
    if constant:
        problems.append(f"constant columns {constant} (every row holds one value; drop them)")
    raise_if_problems(problems, what="the numeric input", hint=_NUMERIC_HINT)
    means, scales = values.mean(axis=0), values.std(axis=0)
    scaler = NumericScaler(columns=tuple(chosen), means=means, scales=scales)
    return (values - means) / scales, scaler


def _frame_problems(frame: Any, columns: Any) -> list[str]:
    """Problems with the arguments themselves (not their values)."""
    import pandas as pd

    problems = []
    if not isinstance(frame, pd.DataFrame):
        problems.append(f"'frame' must be a pandas DataFrame, got {type(frame).__name__}")
    if columns is not None:
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            problems.append(f"'columns' must be a list of column names, got {columns!r}")
        elif not columns:
            problems.append(
                "'columns' is empty; name at least one column, or pass None for every numeric one"
            )
        elif len(set(columns)) < len(columns):
            repeated = sorted({c for c in columns if list(columns).count(c) > 1}, key=str)
            problems.append(f"'columns' names {repeated} more than once")
    return problems


def _numeric_values(frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """The columns of ``columns`` that are numeric, their float64 values, and every problem that stops
    ``columns`` from being scaled (the values of the usable columns are checked even when others are
    missing, so that one message names every problem)."""
    problems = []
    missing = missing_columns_problem(frame.columns, columns)
    if missing:
        problems.append(f"'frame' has {missing}")
    present = [c for c in columns if c in frame.columns]
    repeated = [c for c in present if isinstance(frame[c], type(frame))]
    if repeated:
        problems.append(f"'frame' has more than one column named {repeated}")
    usable = [c for c in present if c not in repeated]
    non_numeric = [f"{c!r} ({frame[c].dtype})" for c in usable if not _is_numeric(frame[c])]
    if non_numeric:
        problems.append(f"non-numeric columns: {', '.join(non_numeric)}")
    numeric = [c for c in usable if _is_numeric(frame[c])]
    values = np.empty((len(frame), len(numeric)))
    for j, c in enumerate(numeric):
        values[:, j] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
        n_nan, n_inf = int(np.isnan(values[:, j]).sum()), int(np.isinf(values[:, j]).sum())
        if n_nan or n_inf:
            counts = " and ".join(f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf")) if n)
            problems.append(f"column {c!r} holds {counts} value(s)")
    return numeric, values, problems


def _constant_columns(columns: list[str], values: np.ndarray) -> list[str]:
    """Columns with at least 2 finite values, all equal (a column with NaN is still checked, so that one
    message names every problem; one with fewer finite values is reported by its NaN count alone)."""
    ok = np.isfinite(values)
    finite = np.where(ok, values, np.nan)
    with warnings.catch_warnings():  # an all-NaN column warns; it is reported by its NaN count already
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(finite, axis=0) - np.nanmin(finite, axis=0)
    return [c for c, s, n in zip(columns, spread, ok.sum(axis=0)) if n >= 2 and s == 0]


def _is_numeric(column: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype)
