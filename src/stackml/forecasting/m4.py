"""The M4 competition's wide CSV format and constants.

An M4 file has one quoted row per series: the id in column ``V1`` and the values in ``V2, V3, ...``,
left-aligned and padded with empty cells up to the longest series. There are no timestamps, so the long frames
use integer steps ``ds = 1..n`` for training and ``n+1..n+h`` for the test values that follow.

Example:
    >>> M4_SPECS["Hourly"].horizon, M4_SPECS["Hourly"].season_length
    (48, 24)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stackml.errors import InputError

__all__ = ["M4_SPECS", "M4Spec", "get_m4_spec", "load_m4_wide"]

_MAX_LISTED = 5  # how many offending ids or columns an error message names


@dataclass(frozen=True)
class M4Spec:
    """The official constants of one M4 subset.

    Attributes:
        frequency: the subset name (``"Hourly"``, ...).
        horizon: the forecast horizon ``h``.
        season_length: the period ``m`` used by Naive2, sNaive and the MASE scale.
        n_series: how many series the subset has.
        id_prefix: the first letter of its series ids (``H1``, ``H2``, ...).
    """

    frequency: str
    horizon: int
    season_length: int
    n_series: int
    id_prefix: str


#: The constants of the official evaluation (Makridakis, Spiliotis & Assimakopoulos, 2020). Weekly, Daily and
#: Yearly use ``m = 1``: no seasonal adjustment and a lag-1 MASE scale.
M4_SPECS: dict[str, M4Spec] = {
    s.frequency: s
    for s in (
        M4Spec("Yearly", 6, 1, 23_000, "Y"),
        M4Spec("Quarterly", 8, 4, 24_000, "Q"),
        M4Spec("Monthly", 18, 12, 48_000, "M"),
        M4Spec("Weekly", 13, 1, 359, "W"),
        M4Spec("Daily", 14, 1, 4_227, "D"),
        M4Spec("Hourly", 48, 24, 414, "H"),
    )
}


def get_m4_spec(frequency: str) -> M4Spec:
    """The :class:`M4Spec` of a subset, by name (case-insensitive) or id prefix (``"H"``)."""
    key = str(frequency).strip().lower()
    for spec in M4_SPECS.values():
        if key in (spec.frequency.lower(), spec.id_prefix.lower()):
            return spec
    raise InputError(
        f"Unknown M4 frequency {frequency!r}.",
        hint=f"Use one of {list(M4_SPECS)}.",
    )


def load_m4_wide(
    train_path: str | Path, test_path: str | Path | None = None, *, frequency: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read an M4 training file (and optionally its test file) into long frames ``unique_id, ds, y``.

    Args:
        train_path: the wide training CSV (e.g. ``Hourly-train.csv``).
        test_path: the wide test CSV whose rows continue the training rows of the same ids.
        frequency: the M4 subset (``"Hourly"``, ...). When given, every test row must hold exactly its horizon
            of values. When omitted it is inferred from the id prefix if all ids share a known one.

    Returns:
        ``(train, test)``: long frames sorted by series then step, ``unique_id`` as strings and integer ``ds``
        (``1..n`` in training, ``n+1..n+h`` in test); ``test`` is ``None`` without ``test_path``. Both carry
        ``attrs["m4_frequency"]`` (the subset name, or ``None`` when unknown).

    Raises:
        InputError: a file is missing or not in the M4 wide layout (no ``V1`` id column, non-numeric values,
            gaps inside a series, duplicate ids), or the test file does not match the training file.

    Example:
        >>> train, test = load_m4_wide("Hourly-train.csv", "Hourly-test.csv")  # doctest: +SKIP
        >>> train.groupby("unique_id").size().max(), test.groupby("unique_id").size().max()  # doctest: +SKIP
        (960, 48)
    """
    spec = get_m4_spec(frequency) if frequency is not None else None
    train_ids, train_values = _read_wide(train_path)
    if spec is None:
        spec = _infer_spec(train_ids)
    train, lengths = _to_long(train_ids, train_values, offsets=np.zeros(len(train_ids), dtype=np.int64))
    test = None
    if test_path is not None:
        test_ids, test_values = _read_wide(test_path)
        test_values = _align_test(train_path, train_ids, test_path, test_ids, test_values)
        test_lengths = _row_lengths(test_values)
        problems = []
        if len(set(test_lengths.tolist())) > 1:
            problems.append(
                f"rows hold different numbers of values ({test_lengths.min()} to {test_lengths.max()}); "
                "an M4 test file has the same horizon for every series"
            )
        if (
            frequency is not None
            and spec is not None
            and test_lengths.size
            and test_lengths.max() != spec.horizon
        ):
            problems.append(
                f"rows hold {test_lengths.max()} values but the {spec.frequency} horizon is {spec.horizon}"
            )
        if problems:
            raise InputError(
                f"The M4 test file '{test_path}' does not fit: " + "; ".join(problems) + ".",
                hint="Pass the test file of the same subset as the training file.",
            )
        test, _ = _to_long(train_ids, test_values, offsets=lengths)
    for frame in (train, test):
        if frame is not None:
            frame.attrs["m4_frequency"] = spec.frequency if spec is not None else None
    return train, test


def _read_wide(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one wide file; return the ids and a float matrix padded with NaN."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(
            f"The M4 file '{path}' {what}.", hint="Pass the path to an M4 *-train.csv or *-test.csv file."
        )
    try:
        header = pd.read_csv(path, nrows=0)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read '{path}' as CSV: {exc}", hint="Pass an M4 wide CSV file.") from exc
    columns = [str(c) for c in header.columns]
    problems = []
    if not columns or columns[0] != "V1":
        problems.append(f"the first column must be the id column 'V1', got {columns[:1] or 'no columns'}")
    expected = [f"V{i}" for i in range(2, len(columns) + 1)]
    if columns[1:] != expected:
        bad = [c for c, e in zip(columns[1:], expected, strict=False) if c != e][:_MAX_LISTED]
        problems.append(
            f"value columns must be V2, V3, ... in order; unexpected {bad or columns[1:_MAX_LISTED]}"
        )
    if len(columns) < 2:
        problems.append("there are no value columns")
    if problems:
        raise InputError(
            f"'{path}' is not an M4 wide file: " + "; ".join(problems) + ".",
            hint="Use --format long for a long frame (unique_id, ds, y), or pass the competition's wide CSV.",
        )
    frame = pd.read_csv(path, dtype={"V1": str}, engine="c", low_memory=False)
    values_frame = frame.iloc[:, 1:]
    non_numeric = [c for c in values_frame.columns if not pd.api.types.is_numeric_dtype(values_frame[c])]
    if non_numeric:
        column = non_numeric[0]
        coerced = pd.to_numeric(values_frame[column], errors="coerce")
        bad_row = values_frame[column][coerced.isna() & values_frame[column].notna()].index[0]
        raise InputError(
            f"'{path}' has non-numeric values in columns {non_numeric[:_MAX_LISTED]} "
            f"(e.g. {values_frame[column][bad_row]!r} in series {frame.iloc[bad_row, 0]!r}).",
            hint="Every cell after V1 must be a number or empty (padding at the end of a row).",
        )
    ids = frame["V1"].to_numpy(dtype=object)
    values = values_frame.to_numpy(dtype=np.float64)
    _check_rows(path, ids, values)
    return ids, values


def _check_rows(path: Path, ids: np.ndarray, values: np.ndarray) -> None:
    """Collect every row-level problem: missing or duplicate ids, empty rows, gaps inside a series."""
    problems = []
    missing_ids = pd.isna(ids)
    if missing_ids.any():
        problems.append(f"{int(missing_ids.sum())} rows have no id in V1")
    dup = pd.Series(ids[~missing_ids]).duplicated(keep="first")
    if dup.any():
        problems.append(f"duplicate ids {pd.Series(ids[~missing_ids])[dup].unique()[:_MAX_LISTED].tolist()}")
    lengths = _row_lengths(values)
    empty = ids[lengths == 0]
    if len(empty):
        problems.append(f"series without values {empty[:_MAX_LISTED].tolist()}")
    # Left-aligned rows: the non-empty cells of a row must be exactly its first `length` cells.
    prefix = np.arange(values.shape[1])[None, :] < lengths[:, None]
    gaps = ids[(prefix != ~np.isnan(values)).any(axis=1)]
    if len(gaps):
        problems.append(f"empty cells inside series {gaps[:_MAX_LISTED].tolist()} ({len(gaps)} in all)")
    if problems:
        raise InputError(
            f"'{path}' is not a valid M4 wide file: " + "; ".join(problems) + ".",
            hint="Each row is an id in V1 followed by its values from V2 on, padded only at the end.",
        )


def _row_lengths(values: np.ndarray) -> np.ndarray:
    return (~np.isnan(values)).sum(axis=1).astype(np.int64)


def _align_test(
    train_path: str | Path,
    train_ids: np.ndarray,
    test_path: str | Path,
    test_ids: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """Order the test rows like the training rows; every id must be in both files."""
    if len(test_ids) == len(train_ids) and np.array_equal(test_ids, train_ids):
        return values
    missing = sorted(set(train_ids) - set(test_ids))
    extra = sorted(set(test_ids) - set(train_ids))
    if missing or extra:
        raise InputError(
            f"The ids of '{test_path}' do not match '{train_path}': "
            f"{len(missing)} missing from the test file {missing[:_MAX_LISTED]}, "
            f"{len(extra)} not in the training file {extra[:_MAX_LISTED]}.",
            hint="Pass the test file of the same subset as the training file.",
        )
    position = pd.Index(test_ids).get_indexer(train_ids)
    return values[position]


def _to_long(ids: np.ndarray, values: np.ndarray, offsets: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Melt a left-aligned matrix into ``unique_id, ds, y`` with ``ds`` starting at ``offset + 1`` per row."""
    lengths = _row_lengths(values)
    mask = ~np.isnan(values)
    steps = np.arange(1, values.shape[1] + 1, dtype=np.int64)[None, :] + offsets[:, None]
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(ids.astype(str), lengths),
            "ds": steps[mask],  # boolean indexing walks row by row, so each series stays in time order
            "y": values[mask],
        }
    )
    return frame, lengths


def _infer_spec(ids: np.ndarray) -> M4Spec | None:
    prefixes = {str(i)[:1].upper() for i in ids}
    if len(prefixes) != 1:
        return None
    (prefix,) = prefixes
    return next((s for s in M4_SPECS.values() if s.id_prefix == prefix), None)
