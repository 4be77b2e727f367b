"""Data quality of a current window against the reference: schema, nulls, ranges, new categories, keys.

Each finding is one :class:`QualityCheck` whose message says what is wrong, what was received and what to do,
so the person on call can act on the alert text alone. Checks that pass are reported too (``broken=False``),
so a report shows what was checked, not only what failed.

Checks, per column unless noted:
    * ``schema`` (per difference): a reference column missing from the current data, a type change between
      families (numeric, bool, text, datetime, timedelta), a new column (reported, not broken);
    * ``empty`` (per frame): a frame without rows; the per-row checks then stop;
    * ``nulls``: the current null rate rose more than ``max_null_increase`` over the reference's, or the
      column went all-missing;
    * ``range`` (numbers): more than ``max_out_of_range`` of the current values fall outside the
      reference's [min, max] or the bounds given in ``ranges``;
    * ``new_categories`` (categorical columns, free text excepted): values the reference never had, with
      their share of rows and up to five examples;
    * ``duplicate_keys`` (with ``keys``): rows that share their key with an earlier row.

Example:
    >>> import pandas as pd
    >>> from stackml.monitoring.quality import quality_checks
    >>> reference = pd.DataFrame({"id": [1, 2, 3], "plan": ["free", "pro", "free"], "age": [30.0, 41, 25]})
    >>> current = pd.DataFrame({"id": [4, 4, 5], "plan": ["free", "team", "pro"], "age": [33.0, None, 150]})
    >>> report = quality_checks(reference, current, keys=["id"])
    >>> [(c.check, c.column) for c in report.broken]
    [('new_categories', 'plan'), ('nulls', 'age'), ('range', 'age'), ('duplicate_keys', 'id')]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import int_problem, is_number, number_problem
from stackml.errors import raise_if_problems
from stackml.monitoring.drift import column_kind

__all__ = ["QualityCheck", "QualityReport", "quality_checks"]

_EXAMPLES = 5
_TEXT_MIN_DISTINCT = 50  # text with more distinct values than this and than half its rows is free text


@dataclass(frozen=True)
class QualityCheck:
    """One finding.

    Attributes:
        check: ``"schema"``, ``"empty"``, ``"nulls"``, ``"range"``, ``"new_categories"`` or
            ``"duplicate_keys"``.
        column: the column (a list of key columns joined by ``", "`` for ``duplicate_keys``), or None for a
            whole-frame finding.
        value: what was measured (a share of rows, in [0, 1]); None where nothing is measured (schema, empty).
        limit: the most ``value`` may be; None where there is no number.
        broken: whether this needs action.
        message: what was found, what was received, and how to fix it.
    """

    check: str
    column: Hashable | None
    value: float | None
    limit: float | None
    broken: bool
    message: str


@dataclass(frozen=True)
class QualityReport:
    """Every check of one comparison.

    Attributes:
        checks: the findings, schema first, then per column in the current data's order.
        n_reference, n_current: the rows of each frame.
    """

    checks: list[QualityCheck]
    n_reference: int
    n_current: int

    @property
    def broken(self) -> list[QualityCheck]:
        """The checks that need action."""
        return [c for c in self.checks if c.broken]

    @property
    def ok(self) -> bool:
        """No check is broken."""
        return not self.broken


def quality_checks(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    keys: Sequence[Hashable] | None = None,
    ranges: Mapping[Hashable, tuple[float | None, float | None]] | None = None,
    max_null_increase: float = 0.05,
    max_out_of_range: float = 0.01,
    max_new_category_share: float = 0.0,
    max_duplicate_share: float = 0.0,
    categorical_max_unique: int = 10,
) -> QualityReport:
    """Check ``current`` against ``reference``: schema, nulls, ranges, new categories and duplicate keys.

    Args:
        reference: the data the model was trained on.
        current: the window to check.
        keys: columns that identify a row; rows sharing a key with an earlier row are duplicates.
        ranges: column -> (low, high) allowed values (either may be None: unbounded on that side); columns
            not named use the reference's [min, max].
        max_null_increase: how far a column's null rate may rise over the reference's (absolute: 0.05 is
            five percentage points).
        max_out_of_range: the share of a column's current values that may fall outside its range.
        max_new_category_share: the share of rows that may hold values the reference never had.
        max_duplicate_share: the share of rows that may repeat an earlier row's key.
        categorical_max_unique: integer columns with at most this many distinct reference values are
            categorical (as in :class:`stackml.monitoring.drift.DriftOptions`).

    Returns:
        A :class:`QualityReport`. Bad data (an empty frame, a missing column, all-missing values) is a broken
        check, never an exception.

    Raises:
        InputError: the arguments themselves are wrong, every problem listed at once.
    """
    _validate(
        reference,
        current,
        keys,
        ranges,
        {
            "max_null_increase": max_null_increase,
            "max_out_of_range": max_out_of_range,
            "max_new_category_share": max_new_category_share,
            "max_duplicate_share": max_duplicate_share,
        },
        categorical_max_unique,
    )
    ranges = dict(ranges or {})
    key_set = set(keys or [])
    duplicates = _duplicate_names(reference, current)
    common = [n for n in current.columns if n in reference.columns and n not in duplicates]
    # Null counts and type families once per column: isna on a text column of a million rows takes ~20 ms.
    missing = {n: (int(reference[n].isna().sum()), int(current[n].isna().sum())) for n in common}
    families = {n: (_family(reference[n], missing[n][0]), _family(current[n], missing[n][1])) for n in common}
    checks = _schema(reference, current, duplicates, families)
    empty = [
        QualityCheck(
            "empty",
            None,
            None,
            None,
            True,
            f"The {side} has no rows ({len(frame.columns)} columns), so no row-level check ran. "
            + (
                "Check that the window covers a period with traffic and that the feed or logging is running."
                if side == "current data"
                else "Log reference data with the model at training time (tracking.log_reference_data)."
            ),
        )
        for side, frame in (("current data", current), ("reference", reference))
        if len(frame) == 0
    ]
    if empty:
        return QualityReport(checks + empty, len(reference), len(current))

    for name in common:
        ref, cur = reference[name], current[name]
        (ref_missing, cur_missing), (ref_family, cur_family) = missing[name], families[name]
        checks.append(_nulls(name, ref_missing / len(ref), cur_missing, len(cur), max_null_increase))
        if cur_missing < len(cur) and name not in key_set:  # keys are new by nature: checked for duplicates
            if ref_family == "numeric" or (name in ranges and cur_family == "numeric"):
                found = _range(name, ref, cur, ranges.get(name), max_out_of_range)
                if found is not None:
                    checks.append(found)
            if column_kind(ref, categorical_max_unique=categorical_max_unique) == "categorical":
                found = _new_categories(name, ref, cur, max_new_category_share)
                if found is not None:
                    checks.append(found)
    if keys:
        checks.append(_duplicate_keys(current, list(keys), max_duplicate_share))
    return QualityReport(checks, len(reference), len(current))


# -- the checks ----------------------------------------------------------------------------------------------
def _schema(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    duplicates: list[Hashable],
    families: dict[Hashable, tuple[str | None, str | None]],
) -> list[QualityCheck]:
    found = []
    for name in duplicates:
        found.append(
            QualityCheck(
                "schema",
                name,
                None,
                None,
                True,
                f"Column {name!r} appears more than once in a frame, so it cannot be checked. Rename or drop "
                "the duplicate columns in the feed.",
            )
        )
    for name in reference.columns:
        if name not in current.columns:
            found.append(
                QualityCheck(
                    "schema",
                    name,
                    None,
                    None,
                    True,
                    f"Column {name!r} is in the reference but missing from the current data "
                    f"(received columns: {_names(current.columns)}). Restore it in the feed, or retrain the "
                    "model without it.",
                )
            )
    for name in current.columns:
        if name not in reference.columns:
            found.append(
                QualityCheck(
                    "schema",
                    name,
                    None,
                    None,
                    False,
                    f"Column {name!r} is new: it is in the current data but not in the reference. The model "
                    "does not use it; if it is a renamed column, rename it back in the feed.",
                )
            )
    for name, (before, after) in families.items():
        if before is not None and after is not None and before != after:
            found.append(
                QualityCheck(
                    "schema",
                    name,
                    None,
                    None,
                    True,
                    f"Column {name!r} changed type: {before} in the reference ({reference[name].dtype}), "
                    f"{after} in the current data ({current[name].dtype}). Cast it back to {before} in the "
                    "feed, or retrain on the new type.",
                )
            )
    if not found:
        found.append(
            QualityCheck(
                "schema",
                None,
                None,
                None,
                False,
                f"The schema matches: the {len(reference.columns)} reference columns are all present, with "
                "the same types.",
            )
        )
    return found


def _nulls(name: Hashable, ref_rate: float, missing: int, rows: int, max_increase: float) -> QualityCheck:
    cur_rate = missing / rows
    limit = min(ref_rate + max_increase, 1.0)
    went_dark = missing == rows and ref_rate < 1.0
    broken = went_dark or cur_rate > limit
    if ref_rate == 1.0:
        message = (
            f"Column {name!r} is missing in every reference row, so the reference says nothing about it "
            f"({_pct(cur_rate)} missing now). Log a reference that has values for it, or drop the column."
        )
    elif went_dark:
        message = (
            f"Column {name!r} is missing in all {rows:,} current rows (the reference had "
            f"{_pct(ref_rate)} missing). The feed stopped filling it: check the upstream source and the join "
            "that brings it."
        )
    elif broken:
        message = (
            f"Column {name!r} is missing in {_pct(cur_rate)} of current rows ({missing:,} of {rows:,}) "
            f"against {_pct(ref_rate)} in the reference (limit {_pct(limit)}). Check the upstream source "
            "for failed lookups or a changed default; raise max_null_increase if this is expected."
        )
    else:
        message = (
            f"Column {name!r}: {_pct(cur_rate)} missing, {_pct(ref_rate)} in the reference "
            f"(limit {_pct(limit)})."
        )
    return QualityCheck("nulls", name, cur_rate, limit, broken, message)


def _range(
    name: Hashable,
    ref: pd.Series,
    cur: pd.Series,
    bounds: tuple[float | None, float | None] | None,
    max_share: float,
) -> QualityCheck | None:
    values = _floats(cur)
    values = values[~np.isnan(values)]
    if bounds is not None:
        low, high = bounds
        source = "the given range"
    else:
        reference = _floats(ref)
        reference = reference[np.isfinite(reference)]
        if reference.size == 0:
            return None
        low, high = float(reference.min()), float(reference.max())
        source = f"the reference's range; pass ranges={{{name!r}: (low, high)}} to set it"
    if low is None and high is None:
        return None
    outside = np.zeros(values.size, dtype=bool)
    if low is not None:
        outside |= values < low
    if high is not None:
        outside |= values > high
    count = int(outside.sum())
    share = count / values.size if values.size else 0.0
    broken = share > max_share
    span = f"[{_num(low, '-inf')}, {_num(high, 'inf')}]"
    if count:
        seen = f"; the values outside run from {values[outside].min():g} to {values[outside].max():g}"
    else:
        seen = ""
    if broken:
        message = (
            f"Column {name!r}: {_pct(share)} of current values ({count:,} of {values.size:,}) fall outside "
            f"{span} ({source}){seen} (limit {_pct(max_share)}). Check units, scaling and the feed; widen "
            "the range or raise max_out_of_range if the new values are valid."
        )
    else:
        message = (
            f"Column {name!r}: {_pct(share)} of current values outside {span} (limit {_pct(max_share)})."
        )
    return QualityCheck("range", name, share, max_share, broken, message)


def _new_categories(name: Hashable, ref: pd.Series, cur: pd.Series, max_share: float) -> QualityCheck | None:
    known, seen = _counts(ref), _counts(cur)
    distinct, n_known = len(known), int(known.sum())
    text = pd.api.types.is_object_dtype(ref.dtype) or isinstance(ref.dtype, pd.StringDtype)
    if text and distinct > _TEXT_MIN_DISTINCT and distinct > 0.5 * n_known:
        return None  # free text or identifiers (Evidently's "text" rule): every value is new by nature
    unseen = seen[~seen.index.isin(known.index)].sort_values(ascending=False, kind="stable")
    n_unseen, n_values = int(unseen.sum()), int(seen.sum())
    share = n_unseen / n_values if n_values else 0.0
    broken = share > max_share
    if n_unseen:
        examples = ", ".join(repr(v) for v in unseen.index[:_EXAMPLES])
        more = f" and {len(unseen) - _EXAMPLES:,} more" if len(unseen) > _EXAMPLES else ""
        message = (
            f"Column {name!r}: {len(unseen):,} value(s) the reference never had, in {_pct(share)} of "
            f"current rows ({n_unseen:,} of {n_values:,}): {examples}{more}. "
            + (
                "The model has not seen them; map them to known categories in the feed, or retrain with "
                "data that has them (raise max_new_category_share to tolerate a few)."
                if broken
                else f"Within the limit ({_pct(max_share)})."
            )
        )
    else:
        message = f"Column {name!r}: every current value was seen in the reference."
    return QualityCheck("new_categories", name, share, max_share, broken, message)


def _duplicate_keys(current: pd.DataFrame, keys: list[Hashable], max_share: float) -> QualityCheck:
    label = ", ".join(str(k) for k in keys)
    missing = [k for k in keys if k not in current.columns]
    if missing:
        return QualityCheck(
            "duplicate_keys",
            label,
            None,
            max_share,
            True,
            f"Key column(s) {_names(missing)} are missing from the current data (received columns: "
            f"{_names(current.columns)}), so duplicate keys could not be checked. Restore them in the feed "
            "or fix the 'keys' setting.",
        )
    repeated = current.duplicated(subset=keys, keep="first")
    count = int(repeated.sum())
    share = count / len(current)
    broken = share > max_share
    if count:
        examples = current.loc[repeated, keys].drop_duplicates().head(_EXAMPLES)
        shown = "; ".join(
            ", ".join(f"{k}={v!r}" for k, v in zip(keys, row)) for row in examples.itertuples(index=False)
        )
        message = (
            f"{count:,} current rows ({_pct(share)}) repeat the key ({label}) of an earlier row, "
            f"e.g. {shown}. "
            + (
                "Look for a replayed batch or a join that fans out, and deduplicate upstream."
                if broken
                else f"Within the limit ({_pct(max_share)})."
            )
        )
    else:
        message = f"Every current row has its own key ({label})."
    return QualityCheck("duplicate_keys", label, share, max_share, broken, message)


# -- helpers -------------------------------------------------------------------------------------------------
_FAMILY_OF_INFERRED = {
    "string": "text",
    "unicode": "text",
    "bytes": "text",
    "mixed": "text",
    "mixed-integer": "text",
    "categorical": "text",
    "integer": "numeric",
    "floating": "numeric",
    "mixed-integer-float": "numeric",
    "decimal": "numeric",
    "complex": "numeric",
    "integer-na": "numeric",
    "boolean": "bool",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "time": "datetime",
    "timedelta": "timedelta",
    "timedelta64": "timedelta",
    "period": "datetime",
}


def _family(values: pd.Series, n_missing: int) -> str | None:
    """numeric, bool, text, datetime or timedelta; None when there is no value to judge by."""
    dtype = values.dtype
    if n_missing == len(values):
        return None
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if isinstance(dtype, pd.CategoricalDtype):
        return _family(pd.Series(dtype.categories), 0) if len(dtype.categories) else None
    return _FAMILY_OF_INFERRED.get(pd.api.types.infer_dtype(values, skipna=True), "text")


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _duplicate_names(reference: pd.DataFrame, current: pd.DataFrame) -> list[Hashable]:
    names = [
        *reference.columns[reference.columns.duplicated()],
        *current.columns[current.columns.duplicated()],
    ]
    return list(dict.fromkeys(names))


def _counts(values: pd.Series) -> pd.Series:
    """Non-missing value -> rows, without the unused categories of a categorical column."""
    counts = values.value_counts(dropna=True, sort=False)
    return counts[counts > 0] if isinstance(values.dtype, pd.CategoricalDtype) else counts


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%" if share >= 0.001 or share == 0 else f"{100 * share:.2g}%"


def _num(value: float | None, unbounded: str) -> str:
    return unbounded if value is None else f"{value:g}"


def _names(columns: Any) -> str:
    names = [str(c) for c in columns]
    return str(names) if len(names) <= 12 else str(names[:12])[:-1] + f", ... ({len(names)} in all)]"


def _validate(
    reference: Any,
    current: Any,
    keys: Any,
    ranges: Any,
    shares: dict[str, Any],
    categorical_max_unique: Any,
) -> None:
    problems = []
    frames_ok = True
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"'{name}' must be a pandas DataFrame, got {type(frame).__name__}")
            frames_ok = False
    if keys is not None and (isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or not keys):
        problems.append(
            f"'keys' must be a non-empty list of column names or None, got {keys!r} (e.g. ['id'])"
        )
    if ranges is not None:
        if not isinstance(ranges, Mapping):
            problems.append(f"'ranges' must be a dict of column -> (low, high), got {type(ranges).__name__}")
        else:
            for column, bounds in ranges.items():
                problems.append(_bounds_problem(column, bounds))
                if frames_ok and column not in reference.columns and column not in current.columns:
                    problems.append(f"'ranges' names column {column!r}, which is in neither frame")
    for name, value in shares.items():
        problems.append(number_problem(name, value, low=0, high=1))
    problems.append(int_problem("categorical_max_unique", categorical_max_unique, low=0))
    raise_if_problems([p for p in problems if p], what="the quality-check arguments")


def _bounds_problem(column: Hashable, bounds: Any) -> str | None:
    ok = isinstance(bounds, (tuple, list)) and len(bounds) == 2
    ok = ok and all(b is None or (is_number(b) and not np.isnan(b)) for b in bounds)
    if not ok:
        return f"'ranges[{column!r}]' must be (low, high) with numbers or None, got {bounds!r}"
    low, high = bounds
    if low is not None and high is not None and low > high:
        return f"'ranges[{column!r}]' has low > high: {bounds!r}; swap them"
    return None
