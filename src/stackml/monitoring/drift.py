"""Drift per column and for a whole dataset, with Evidently's default choice of test, in NumPy and pandas.

The choice follows Evidently (0.7, ``DataDriftPreset`` with default settings), read from its source:

======================  ===============================================  =====================================
reference rows          numeric column                                   categorical column
======================  ===============================================  =====================================
<= 1,000 (non-missing)  Kolmogorov-Smirnov (p <= 0.05); with <= 5         chi-squared (p < 0.05); Z-test for
                        distinct values: chi-squared or Z-test            two values or fewer (p < 0.05)
> 1,000                 Wasserstein distance / reference std (>= 0.1);    Jensen-Shannon distance (>= 0.1)
                        with <= 5 distinct values: Jensen-Shannon
======================  ===============================================  =====================================

"Distinct values" count both samples together. Missing and infinite values are dropped per column before
testing. A column is categorical when its dtype is text, category or bool, or when it holds integers with at
most ``categorical_max_unique`` (10) distinct reference values; floats are numeric. (Evidently types each
column from the current data; we type it from the reference, the contract the model was trained on.) The
dataset drifts when at least ``dataset_share`` (half) of the tested columns drift. PSI (Evidently's binning,
threshold 0.1) is computed for every column as well, for reports and alert rules.

Sorting each numeric column once serves every test, so a million rows by twenty columns take seconds; the
columns run in threads (NumPy releases the GIL while it sorts).

Example:
    >>> import numpy as np
    >>> import pandas as pd
    >>> from stackml.monitoring.drift import dataset_drift
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b", "c"], 5000)})
    >>> current = pd.DataFrame({"x": rng.normal(1.0, 1.0, 5000), "c": rng.choice(["a", "b", "c"], 5000)})
    >>> result = dataset_drift(reference, current)
    >>> result.columns["x"].test, result.columns["x"].drifted, result.columns["c"].drifted
    ('wasserstein', True, False)
    >>> result.share, result.drifted
    (0.5, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.checks import int_problem, number_problem
from stackml.errors import raise_if_problems

__all__ = [
    "STATTESTS",
    "DriftOptions",
    "ColumnDrift",
    "DatasetDrift",
    "column_drift",
    "dataset_drift",
    "column_kind",
]


@dataclass(frozen=True)
class _Test:
    kinds: tuple[str, ...]  # the column kinds Evidently registers the test for
    threshold: float  # Evidently's default threshold
    p_value: bool  # a p-value (drift below the threshold) or a distance (drift at or above it)


#: The tests, as Evidently names them, with the column kinds they apply to and their default thresholds.
STATTESTS: dict[str, _Test] = {
    "ks": _Test(("numeric",), 0.05, True),
    "chisquare": _Test(("categorical",), 0.05, True),
    "z": _Test(("categorical",), 0.05, True),
    "wasserstein": _Test(("numeric",), 0.1, False),
    "jensenshannon": _Test(("numeric", "categorical"), 0.1, False),
    "psi": _Test(("numeric", "categorical"), 0.1, False),
}
_KINDS = ("numeric", "categorical")
_FEW_VALUES = 5  # Evidently: a column with at most 5 distinct values (both samples) is tested as discrete
_BINNED_ABOVE = 20  # Evidently: numeric columns with more distinct reference values are binned for JS/PSI
_MIN_STD = 0.001  # Evidently: the Wasserstein distance is divided by max(reference std, 0.001)


@dataclass(frozen=True)
class DriftOptions:
    """How drift is tested; the defaults are Evidently's.

    Attributes:
        stattest: None (Evidently's choice per column and sample size), or one test for every column:
            ``"ks"``, ``"wasserstein"`` (numeric columns), ``"chisquare"``, ``"z"`` (categorical columns),
            ``"jensenshannon"``, ``"psi"`` (both). A column of the other kind is reported untested.
        threshold: None (the test's default: p-value 0.05 for ks, chisquare and z; 0.1 for the
            Wasserstein distance normed by the reference std, the Jensen-Shannon distance and PSI), or one
            threshold for every column.
        small_sample_rows: at or below this many non-missing reference values the statistical tests
            (KS, chi-squared, Z) are used, above it the distances.
        categorical_max_unique: integer columns with at most this many distinct reference values are
            categorical (Evidently 0.7's limit is 10; its legacy API used 5).
        dataset_share: the dataset drifts when at least this share of the tested columns drift.
        psi_bins: None (Evidently's bins: Sturges' rule over both samples for numeric columns with more
            than 20 distinct reference values, one bin per value otherwise), or this many equal-width bins
            for those numeric columns (categorical columns always have one bin per value).
    """

    stattest: str | None = None
    threshold: float | None = None
    small_sample_rows: int = 1000
    categorical_max_unique: int = 10
    dataset_share: float = 0.5
    psi_bins: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.stattest is not None and self.stattest not in STATTESTS:
            problems.append(f"'stattest' must be None or one of {sorted(STATTESTS)}, got {self.stattest!r}")
        if self.threshold is not None:
            p_value = self.stattest in STATTESTS and STATTESTS[self.stattest].p_value
            problems.append(
                number_problem("threshold", self.threshold, low=0, high=1, low_open=True, high_open=True)
                if p_value
                else number_problem("threshold", self.threshold, low=0, low_open=True)
            )
        problems.append(int_problem("small_sample_rows", self.small_sample_rows, low=0))
        problems.append(int_problem("categorical_max_unique", self.categorical_max_unique, low=0))
        problems.append(number_problem("dataset_share", self.dataset_share, low=0, high=1, low_open=True))
        if self.psi_bins is not None:
            problems.append(int_problem("psi_bins", self.psi_bins, low=1, extra=" or None"))
        raise_if_problems(
            [p for p in problems if p],
            what="the drift options",
            hint="See help(stackml.monitoring.drift.DriftOptions) for every option and its default.",
        )

    def threshold_for(self, test: str) -> float:
        """The threshold ``test`` uses under these options."""
        return float(self.threshold) if self.threshold is not None else STATTESTS[test].threshold


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column.

    Attributes:
        column: the column's name.
        kind: ``"numeric"`` or ``"categorical"`` (None when the column's type is not tested, e.g. datetime).
        test: the test used (a key of :data:`STATTESTS`), None when untested.
        score: the p-value or distance; NaN when untested.
        threshold: the threshold the score was held against; None when untested.
        drifted: the test's decision (p-values: below the threshold, KS at or below; distances: at or above).
        n_reference, n_current: the non-missing values compared.
        psi: the population stability index (Evidently's binning unless ``psi_bins``); NaN when untested.
        reason: None, or why the column could not be tested (then ``drifted`` is False).
    """

    column: Hashable
    kind: str | None
    test: str | None
    score: float
    threshold: float | None
    drifted: bool
    n_reference: int
    n_current: int
    psi: float
    reason: str | None = None


@dataclass(frozen=True)
class DatasetDrift:
    """The drift of every column and the dataset rule.

    Attributes:
        columns: column name -> :class:`ColumnDrift`, untested columns included (with their reason).
        n_tested: the columns that could be tested.
        n_drifted: the tested columns that drifted.
        share: ``n_drifted / n_tested`` (0.0 when nothing could be tested).
        drifted: ``share >= dataset_share`` with at least one column tested.
        problems: one sentence per column that could not be tested, and other input problems.

    ``drifted_columns`` lists the names of the drifted columns.
    """

    columns: dict[Hashable, ColumnDrift]
    n_tested: int
    n_drifted: int
    share: float
    drifted: bool
    problems: list[str] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[Hashable]:
        """The names of the columns that drifted, in column order."""
        return [name for name, c in self.columns.items() if c.drifted]


def column_kind(values: pd.Series, *, categorical_max_unique: int = 10) -> str | None:
    """``"numeric"``, ``"categorical"``, or None for the types drift is not tested on (datetime, timedelta).

    Text, category and bool columns are categorical; integer columns are categorical when they hold at most
    ``categorical_max_unique`` distinct values (missing values not counted); floats are numeric.

    Example:
        >>> column_kind(pd.Series([1, 2, 2, 3])), column_kind(pd.Series([0.5, 1.5]))
        ('categorical', 'numeric')
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)) or pd.api.types.is_object_dtype(dtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(dtype):
        return "categorical" if values.nunique(dropna=True) <= categorical_max_unique else "numeric"
    if pd.api.types.is_float_dtype(dtype):
        return "numeric"
    return None


def column_drift(
    reference: Any,
    current: Any,
    *,
    column: Hashable = "x",
    options: DriftOptions = DriftOptions(),
    kind: str | None = None,
) -> ColumnDrift:
    """The drift of one column from ``reference`` to ``current`` (Series, arrays or lists).

    Args:
        reference, current: the values; missing and infinite values are dropped before testing.
        column: the name reported.
        options: the test, threshold and sample-size rule (:class:`DriftOptions`).
        kind: ``"numeric"`` or ``"categorical"``; None decides from the reference (:func:`column_kind`).

    Returns:
        A :class:`ColumnDrift`; a column that cannot be tested (no values on one side, a type drift is not
        tested on, a forced test of the wrong kind) comes back with its ``reason`` instead of an error.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> result = column_drift(rng.normal(size=300), rng.normal(size=300))
        >>> result.test, result.drifted
        ('ks', False)
    """
    problems = []
    if not isinstance(options, DriftOptions):
        problems.append(f"'options' must be a DriftOptions, got {type(options).__name__}")
    if kind is not None and kind not in _KINDS:
        problems.append(f"'kind' must be None, 'numeric' or 'categorical', got {kind!r}")
    ref, ref_problem = _as_series(reference, "reference")
    cur, cur_problem = _as_series(current, "current")
    raise_if_problems([p for p in (*problems, ref_problem, cur_problem) if p], what="the drift arguments")
    return _column_drift(column, ref, cur, options, kind)


def dataset_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[Hashable] | None = None,
    options: DriftOptions = DriftOptions(),
    n_jobs: int | None = None,
) -> DatasetDrift:
    """The drift of each column of ``current`` against ``reference``, and whether the dataset drifted.

    Args:
        reference: the data the model was trained on (the reference logged at training time).
        current: the data to check.
        columns: the columns to test; None tests every column of either frame (a column on one side only is
            reported untested, with its reason).
        options: the tests, thresholds and the dataset rule (:class:`DriftOptions`).
        n_jobs: threads testing columns at once; None uses every core.

    Returns:
        A :class:`DatasetDrift`. Bad data in a column (missing on one side, all missing) is that column's
        ``reason`` and a line of ``problems``; the other columns still run.

    Raises:
        InputError: the arguments themselves are wrong (not DataFrames, bad options), all listed at once.
    """
    problems = []
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"'{name}' must be a pandas DataFrame, got {type(frame).__name__}")
    if not isinstance(options, DriftOptions):
        problems.append(f"'options' must be a DriftOptions, got {type(options).__name__}")
    if n_jobs is not None:
        problems.append(int_problem("n_jobs", n_jobs, low=1, extra=" or None"))
    if columns is not None and (isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence)):
        problems.append(f"'columns' must be a list of column names or None, got {columns!r}")
    raise_if_problems([p for p in problems if p], what="the drift arguments")

    notes: list[str] = []
    duplicated = sorted(
        {str(c) for frame in (reference, current) for c in frame.columns[frame.columns.duplicated()]}
    )
    if duplicated:
        notes.append(f"columns {duplicated} appear more than once in a frame and are not tested; rename them")
    if columns is None:
        names = list(dict.fromkeys([*reference.columns, *current.columns]))
    else:
        names = list(dict.fromkeys(columns))
    names = [n for n in names if str(n) not in duplicated]

    # The threads get the columns, not the frames, so they share no pandas object.
    pairs = [
        (
            name,
            reference[name] if name in reference.columns else None,
            current[name] if name in current.columns else None,
            len(reference),
            len(current),
        )
        for name in names
    ]

    def one(pair: tuple) -> ColumnDrift:
        return _pair_drift(*pair, options)

    workers = min(n_jobs or os.cpu_count() or 1, max(len(pairs), 1))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, pairs))
    else:
        results = [one(p) for p in pairs]

    by_name = {r.column: r for r in results}
    tested = [r for r in results if r.reason is None]
    n_drifted = sum(r.drifted for r in tested)
    share = n_drifted / len(tested) if tested else 0.0
    notes += [f"column {r.column!r} not tested: {r.reason}" for r in results if r.reason is not None]
    if not tested:
        notes.append("no column could be tested, so dataset drift is not decided (reported as False)")
    return DatasetDrift(
        columns=by_name,
        n_tested=len(tested),
        n_drifted=n_drifted,
        share=share,
        drifted=bool(tested) and share >= options.dataset_share,
        problems=notes,
    )


# -- one column ----------------------------------------------------------------------------------------------
def _pair_drift(
    name: Hashable,
    reference: pd.Series | None,
    current: pd.Series | None,
    ref_rows: int,
    cur_rows: int,
    options: DriftOptions,
) -> ColumnDrift:
    if reference is not None and current is not None:
        return _column_drift(name, reference, current, options, None)
    if reference is None and current is None:
        where, fix = "either frame", "check the column name"
    elif current is None:
        where, fix = "the current data", "restore it in the feed, or drop it from the reference"
    else:
        where, fix = "the reference", "log a reference that has it, or leave it out of the check"
    present = reference if reference is not None else current
    limit = options.categorical_max_unique
    kind = None if present is None else column_kind(present, categorical_max_unique=limit)
    n_ref = ref_rows if reference is not None else 0
    n_cur = cur_rows if current is not None else 0
    return _untested(name, kind, n_ref, n_cur, f"missing from {where}: {fix}")


def _column_drift(
    name: Hashable, reference: pd.Series, current: pd.Series, options: DriftOptions, kind: str | None
) -> ColumnDrift:
    if kind is None:
        kind = column_kind(reference, categorical_max_unique=options.categorical_max_unique)
    if kind is None:
        return _untested(
            name,
            None,
            int(reference.notna().sum()),
            int(current.notna().sum()),
            f"its type ({reference.dtype}) is not tested for drift; only numbers and categories are",
        )
    sample: _CategoricalSample | _NumericSample
    if kind == "numeric":
        ref, ref_problem = _numbers(reference, "reference")
        cur, cur_problem = _numbers(current, "current")
        if ref is None or cur is None:
            n_ref = 0 if ref is None else len(ref)
            n_cur = 0 if cur is None else len(cur)
            return _untested(name, kind, n_ref, n_cur, str(ref_problem or cur_problem))
        sample = _NumericSample(ref, cur)
    else:
        sample = _CategoricalSample(_category_counts(reference), _category_counts(current))
    n_ref, n_cur = sample.n_ref, sample.n_cur
    problem = _empty_problem("reference", len(reference), n_ref) or _empty_problem(
        "current", len(current), n_cur
    )
    if problem is not None:
        return _untested(name, kind, n_ref, n_cur, problem)

    test = options.stattest or _default_test(kind, n_ref, sample.n_values_capped(), options.small_sample_rows)
    if options.stattest is not None and kind not in STATTESTS[test].kinds:  # the default may cross kinds
        other = "categorical" if kind == "numeric" else "numeric"
        return _untested(
            name,
            kind,
            n_ref,
            n_cur,
            f"the forced test '{test}' applies to {other} columns and this column is {kind}; use "
            "stattest=None (the default choice per column) or a test for both kinds (jensenshannon, psi)",
        )
    threshold = options.threshold_for(test)
    psi = sample.psi(options.psi_bins)
    score = psi if test == "psi" else sample.score(test)
    if STATTESTS[test].p_value:
        drifted = score <= threshold if test == "ks" else score < threshold
    else:
        drifted = score >= threshold
    return ColumnDrift(name, kind, test, float(score), threshold, bool(drifted), n_ref, n_cur, float(psi))


def _default_test(kind: str, n_reference: int, n_values: int, small_sample_rows: int) -> str:
    """Evidently's ``_get_default_stattest``: the sample size picks tests or distances, the number of
    distinct values (both samples) picks a discrete or a continuous one."""
    continuous = kind == "numeric" and n_values > _FEW_VALUES
    if n_reference <= small_sample_rows:
        return "ks" if continuous else ("chisquare" if n_values > 2 else "z")
    return "wasserstein" if continuous else "jensenshannon"


def _untested(name: Hashable, kind: str | None, n_ref: int, n_cur: int, reason: str) -> ColumnDrift:
    return ColumnDrift(name, kind, None, math.nan, None, False, n_ref, n_cur, math.nan, reason)


def _empty_problem(side: str, rows: int, values: int) -> str | None:
    if values:
        return None
    if rows == 0:
        return f"the {side} has no rows; check the {side} window or table"
    return (
        f"all {rows:,} {side} values are missing (NaN, None or infinite), so there is nothing to compare; "
        "check the feed that fills this column"
    )


def _as_series(values: Any, name: str) -> tuple[pd.Series | None, str | None]:
    if isinstance(values, pd.Series):
        return values, None
    if isinstance(values, pd.DataFrame):
        return None, f"'{name}' must be one column (a Series, array or list), got a DataFrame; pick a column"
    try:
        array = np.asarray(values) if not isinstance(values, (list, tuple)) else None
    except Exception:  # noqa: BLE001 - whatever NumPy cannot read is reported as a bad argument below
        return None, f"'{name}' must be a Series, array or list, got {type(values).__name__}"
    if array is not None and array.ndim != 1:
        return None, f"'{name}' must be one-dimensional, got shape {array.shape}"
    return pd.Series(values if array is None else array), None


def _numbers(values: pd.Series, side: str) -> tuple[np.ndarray | None, str | None]:
    """The finite values as sorted float64, or why they are not numbers."""
    problem = (
        f"the {side} values are not numbers (dtype {values.dtype}) while the column is numeric; fix the "
        "feed, or test the column with kind='categorical'"
    )
    if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_object_dtype(values.dtype)):
        return None, problem
    try:
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return None, problem
    array = array[np.isfinite(array)]
    array.sort()
    return array, None


def _category_counts(values: pd.Series) -> pd.Series:
    """Non-missing value -> count (infinite numbers count as missing, as Evidently drops them)."""
    if pd.api.types.is_float_dtype(values.dtype):
        values = values[np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))]
    counts = values.value_counts(dropna=True, sort=False)
    if isinstance(counts.index, pd.CategoricalIndex):
        counts = counts[counts > 0]
        counts.index = pd.Index(counts.index.tolist())
    return counts


# -- the two kinds of sample ---------------------------------------------------------------------------------
class _CategoricalSample:
    """Value counts of both sides, aligned on every value either side has."""

    def __init__(self, ref_counts: pd.Series, cur_counts: pd.Series) -> None:
        self.n_ref, self.n_cur = int(ref_counts.sum()), int(cur_counts.sum())
        keys = ref_counts.index.union(cur_counts.index, sort=False)
        self.keys = keys
        self.ref = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
        self.cur = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)

    def n_values_capped(self) -> int:
        return len(self.keys)

    def score(self, test: str) -> float:
        if test == "chisquare":
            return _chisquare(self.ref, self.cur)
        if test == "z":
            return _z_test(self.keys, self.ref, self.cur)
        return _jensenshannon(self.ref / self.n_ref, self.cur / self.n_cur)

    def psi(self, bins: int | None) -> float:
        return _psi(self.ref / self.n_ref, self.cur / self.n_cur)


class _NumericSample:
    """Both sides sorted once; every test reads them."""

    def __init__(self, ref: np.ndarray, cur: np.ndarray) -> None:
        self.ref, self.cur = ref, cur
        self._discrete: _CategoricalSample | None = None

    @property
    def n_ref(self) -> int:
        return len(self.ref)

    @property
    def n_cur(self) -> int:
        return len(self.cur)

    def n_values_capped(self) -> int:
        """The distinct values of both samples when there are at most five; six means 'more'."""
        if _n_unique_sorted(self.ref) > _FEW_VALUES or _n_unique_sorted(self.cur) > _FEW_VALUES:
            return _FEW_VALUES + 1
        return len(np.union1d(self.ref, self.cur))

    def discrete(self) -> _CategoricalSample:
        if self._discrete is None:
            self._discrete = _CategoricalSample(_runs(self.ref), _runs(self.cur))
        return self._discrete

    def score(self, test: str) -> float:
        if test == "ks":
            stats = require("scipy.stats")
            return float(stats.ks_2samp(self.ref, self.cur).pvalue)
        if test == "wasserstein":
            return _wasserstein_sorted(self.ref, self.cur) / max(float(np.std(self.ref)), _MIN_STD)
        if test == "jensenshannon":
            ref, cur = self._binned(None)
            return _jensenshannon(ref, cur)
        return self.discrete().score(test)  # chisquare, z: the default choice with few distinct values

    def psi(self, bins: int | None) -> float:
        ref, cur = self._binned(bins)
        return _psi(ref, cur)

    def _binned(self, bins: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Evidently's ``get_binned_data``: shares per histogram bin over both samples when the reference has
        more than 20 distinct values (Sturges' rule unless ``bins``), else shares per value."""
        if _n_unique_sorted(self.ref) <= _BINNED_ABOVE:
            d = self.discrete()
            return d.ref / d.n_ref, d.cur / d.n_cur
        first, last = min(self.ref[0], self.cur[0]), max(self.ref[-1], self.cur[-1])
        edges = (
            _sturges_edges(first, last, self.n_ref + self.n_cur)
            if bins is None
            else _edges(first, last, bins)
        )
        return _histogram_sorted(self.ref, edges) / self.n_ref, _histogram_sorted(
            self.cur, edges
        ) / self.n_cur


# -- the arithmetic ------------------------------------------------------------------------------------------
def _n_unique_sorted(values: np.ndarray) -> int:
    return int(values.size > 0) + int(np.count_nonzero(values[1:] != values[:-1]))


def _runs(values: np.ndarray) -> pd.Series:
    """Value -> count of a sorted array."""
    if values.size == 0:
        return pd.Series([], dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return pd.Series(np.diff(np.append(starts, values.size)), index=values[starts])


def _wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """The first Wasserstein distance of two sorted samples, as ``scipy.stats.wasserstein_distance``.

    It is the area between the two quantile functions. ``u``'s quantile steps at multiples of ``1/n_u`` and
    ``v``'s at multiples of ``1/n_v``; in units of ``1/(n_u n_v)`` both step grids are integer progressions
    whose merged order is known in closed form, so no search or sort of the pooled values is needed.
    """
    n_u, n_v = u.size, v.size
    if n_u * n_v >= 2**62:  # the integer grid would overflow; scipy's pooled-CDF integral does not
        return float(require("scipy.stats").wasserstein_distance(u, v))
    i = np.arange(n_u, dtype=np.int64)
    steps_u = i * n_v
    slots_u = i + np.minimum(-(-steps_u // n_u), n_v)  # i + the v steps strictly before it
    grid = np.empty(n_u + n_v, dtype=np.int64)
    grid[slots_u] = steps_u
    rest = np.ones(n_u + n_v, dtype=bool)
    rest[slots_u] = False
    grid[rest] = np.arange(n_v, dtype=np.int64) * n_u
    widths = np.diff(grid, append=n_u * n_v)
    gaps = np.abs(u[grid // n_v] - v[grid // n_u])
    return float(np.dot(gaps, widths)) / (n_u * n_v)


def _sturges_edges(first: float, last: float, size: int) -> np.ndarray:
    """``np.histogram_bin_edges(both, bins="sturges")`` from the pooled extremes and size."""
    spread = last - first
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = spread / (np.log2(size) + 1.0)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def _edges(first: float, last: float, bins: int) -> np.ndarray:
    if first == last:
        first, last = first - 0.5, last + 0.5
    return np.linspace(first, last, bins + 1, endpoint=True)


def _histogram_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values: bins are [left, right), the last one closed."""
    cut = np.concatenate(
        (np.searchsorted(values, edges[:-1], side="left"), np.searchsorted(values, edges[-1:], side="right"))
    )
    return np.diff(cut).astype(np.float64)


def _jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q)`` (natural log): both normalised, then the square root
    of the mean relative entropy to their midpoint."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(np.sqrt(max((left.sum() + right.sum()) / 2.0, 0.0)))


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """PSI over shares per bin, empty bins filled as Evidently does (1e-4, or a millionth of the smallest
    share when that is smaller) so the logarithm stays finite."""
    ref, cur = _fill_zeros(ref), _fill_zeros(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _fill_zeros(shares: np.ndarray) -> np.ndarray:
    shares = shares.astype(np.float64, copy=True)
    nonzero = shares[shares != 0]
    if nonzero.size:
        smallest = nonzero.min()
        shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return shares


def _chisquare(ref: np.ndarray, cur: np.ndarray) -> float:
    """Evidently's chi-squared: current counts against reference counts scaled to the current size; a value
    the reference never had gives p = 0."""
    stats = require("scipy.stats")
    expected = ref * (cur.sum() / ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur, expected).pvalue)


def _z_test(keys: pd.Index, ref: np.ndarray, cur: np.ndarray) -> float:
    """Evidently's two-proportion Z-test of "not the smallest value", two-sided."""
    if np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1 and np.argmax(ref) == np.argmax(cur):
        return 1.0
    try:
        first = keys.get_loc(min(keys))
    except TypeError:  # values of mixed types do not order; with two values either one gives the same p
        first = 0
    n1, n2 = ref.sum(), cur.sum()
    p1, p2 = 1.0 - ref[first] / n1, 1.0 - cur[first] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return 2.0 * (1.0 - 0.5 * math.erfc(-abs(z) / math.sqrt(2.0)))  # 2 * (1 - Phi(|z|)), as Evidently
