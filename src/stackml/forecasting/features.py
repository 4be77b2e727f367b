"""Vectorised features and invertible target transforms for global forecasting models.

Everything here works on the packed layout of :class:`~stackml.forecasting.panel.Panel`: one flat float array
``y`` with offsets ``indptr``. Training features are computed for every observation at once with NumPy index
arithmetic (no Python loop over rows), and :meth:`FeatureSpec.next_row` computes the same features for the
step after the end of every series from a small 2-D tail buffer, which is what recursive multi-step prediction
needs. A value that would reach before the start of its series (or into a value a transform left undefined) is
``NaN``, on both paths.

Example:
    >>> import numpy as np
    >>> y = np.arange(6, dtype=float); indptr = np.array([0, 3, 6])
    >>> lag_features(y, indptr, [1])[:, 0]
    array([nan,  0.,  1., nan,  3.,  4.])
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stackml.errors import InputError, NotFittedError

if TYPE_CHECKING:
    from stackml.forecasting.panel import Panel

__all__ = [
    "Differences",
    "FeatureSpec",
    "LocalScaler",
    "RollingSpec",
    "TargetTransform",
    "TransformChain",
    "default_lags",
    "lag_features",
    "positions",
    "rolling_features",
    "series_codes",
    "start_steps",
]

_STATS = ("mean", "std", "min", "max")
_CHUNK_VALUES = 1 << 22  # window values copied at a time by the non-mean rolling statistics


# --------------------------------------------------------------------------------------------------- indexing
def series_codes(indptr: np.ndarray) -> np.ndarray:
    """The series number of every observation (shape ``(n_obs,)``)."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def positions(indptr: np.ndarray) -> np.ndarray:
    """The 0-based position of every observation inside its own series (shape ``(n_obs,)``)."""
    n_obs = int(indptr[-1])
    return np.arange(n_obs) - np.repeat(np.asarray(indptr[:-1]), np.diff(indptr))


def start_steps(panel: Panel) -> np.ndarray:
    """The integer time step of each series' first value, when the panel's ``ds`` holds integers, else zeros.

    ``(start + position) mod m`` is then the absolute phase in the season, the same for every series at the
    same time (``Panel.extra["ds"]`` and ``["freq"]`` are set by the front door; a bare panel counts from each
    start).
    """
    ds = panel.extra.get("ds")
    n = panel.n_series
    if ds is None or len(ds) != len(panel.y) or not np.issubdtype(np.asarray(ds).dtype, np.integer):
        return np.zeros(n, dtype=np.int64)
    step = panel.extra.get("freq", 1)
    step = int(step) if isinstance(step, (int, np.integer)) and step > 0 else 1
    return np.asarray(ds, dtype=np.int64)[panel.indptr[:-1]] // step


# --------------------------------------------------------------------------------------------------- features
def lag_features(y: np.ndarray, indptr: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """``out[t, j] = y[t - lags[j]]`` within the same series, ``NaN`` before the series starts.

    Args:
        y: packed values (shape ``(n_obs,)``).
        indptr: series offsets (shape ``(n_series + 1,)``).
        lags: positive lags.

    Returns:
        Array of shape ``(n_obs, len(lags))``.
    """
    y = np.asarray(y, dtype=np.float64)
    pos = positions(indptr)
    idx = np.arange(len(y))
    out = np.full((len(y), len(lags)), np.nan)
    for j, lag in enumerate(lags):  # a loop over lags (a handful), never over rows
        ok = pos >= lag
        out[ok, j] = y[idx[ok] - lag]
    return out


@dataclass(frozen=True)
class RollingSpec:
    """A statistic of the ``window`` values that end ``lag`` steps before the target.

    ``RollingSpec(lag=1, window=24, stat="mean")`` is the mean of the last 24 known values; ``lag=24`` shifts
    the same window one season back. A window that reaches before the series start, or over a ``NaN``, gives
    ``NaN``.
    """

    lag: int
    window: int
    stat: str = "mean"

    def __post_init__(self) -> None:
        if self.lag < 1 or self.window < 1:
            raise InputError(
                f"RollingSpec needs lag >= 1 and window >= 1, got lag={self.lag}, window={self.window}.",
                hint="Use e.g. RollingSpec(lag=1, window=24).",
            )
        if self.stat not in _STATS:
            raise InputError(
                f"RollingSpec stat must be one of {_STATS}, got {self.stat!r}.", hint="Use 'mean'."
            )
        if self.stat == "std" and self.window < 2:
            raise InputError("RollingSpec with stat='std' needs window >= 2.", hint="Use window=2 or more.")

    @property
    def name(self) -> str:
        return f"rolling_{self.stat}_lag{self.lag}_w{self.window}"

    @property
    def reach(self) -> int:
        """How far back the oldest value of the window lies."""
        return self.lag + self.window - 1


def _window_view(y: np.ndarray, spec: RollingSpec) -> np.ndarray:
    """Windows ending ``spec.lag`` before each index, as a strided view (no copy) over ``y``
    padded with NaN."""
    pad = np.concatenate([np.full(spec.reach, np.nan), y])
    # row t of the view covers y[t - reach .. t - lag]
    return np.lib.stride_tricks.sliding_window_view(pad, spec.window)[: len(y)]


def _reduce(windows: np.ndarray, stat: str) -> np.ndarray:
    if stat == "mean":
        return windows.mean(axis=-1)
    if stat == "std":
        return windows.std(axis=-1, ddof=1)
    if stat == "min":
        return windows.min(axis=-1)
    return windows.max(axis=-1)


def rolling_features(y: np.ndarray, indptr: np.ndarray, specs: Sequence[RollingSpec]) -> np.ndarray:
    """One column per :class:`RollingSpec`, computed for every observation at once.

    Means use cumulative sums (O(n) whatever the window); the other statistics reduce a strided window view,
    which is exact and, for the window lengths forecasting uses (up to a few seasons), as fast.

    Returns:
        Array of shape ``(n_obs, len(specs))``.
    """
    y = np.asarray(y, dtype=np.float64)
    pos = positions(indptr)
    out = np.empty((len(y), len(specs)))
    if len(y) == 0:
        return out
    codes = series_codes(indptr)
    # centre each series first so the cumulative sums stay small and do not lose precision across a long panel
    finite = np.isfinite(y)
    counts = np.maximum(np.bincount(codes, weights=finite, minlength=len(indptr) - 1), 1)
    centre = (np.bincount(codes, weights=np.where(finite, y, 0.0), minlength=len(indptr) - 1) / counts)[codes]
    yc = np.where(finite, y - centre, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(yc)])
    cbad = np.concatenate([[0], np.cumsum(~finite)])
    idx = np.arange(len(y))
    for j, spec in enumerate(specs):
        ok = pos >= spec.reach
        lo = np.where(ok, idx - spec.reach, 0)
        hi = np.where(ok, idx - spec.lag + 1, 0)
        ok &= (cbad[hi] - cbad[lo]) == 0
        if spec.stat == "mean":
            col = (csum[hi] - csum[lo]) / spec.window
            # the window lies inside one series, so the centre of that series is the one of the target row
            col = col + centre
        else:
            windows = _window_view(y, spec)
            col = np.full(len(y), np.nan)
            rows = np.flatnonzero(ok)
            # selecting rows copies their windows: go in chunks to bound memory
            step = max(1, _CHUNK_VALUES // spec.window)
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                col[chunk] = _reduce(windows[chunk], spec.stat)
        out[:, j] = np.where(ok, col, np.nan)
    return out


def default_lags(season_length: int, max_lag: int | None = None) -> list[int]:
    """Lags that suit any frequency: every lag of the last season plus whole seasons further back.

    With ``m = season_length``: ``1..max(m, 7)`` and ``2m, 3m, ..., 7m`` (for hourly data that reaches one
    week back, for monthly data seven years), cut at ``max_lag`` (e.g. half the typical series length) so that
    short series still give training rows.

    Example:
        >>> default_lags(4)
        [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 28]
        >>> default_lags(1, max_lag=5)
        [1, 2, 3, 4, 5]
    """
    m = max(int(season_length), 1)
    lags = set(range(1, max(m, 7) + 1))
    if m > 1:
        lags.update(k * m for k in range(2, 8))
    out = sorted(lags)
    if max_lag is not None:
        out = [lag for lag in out if lag <= max(int(max_lag), 1)] or [1]
    return out


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a global model sees, computed identically for training rows and for the next step.

    Attributes:
        lags: positive lags of the (transformed) target.
        rolling: rolling-window statistics over lagged windows.
        season_length: the seasonal period for the position-in-season feature.
        season_position: add ``(start + position) mod season_length``, where ``start`` is a per-series offset
            passed to :meth:`transform` (e.g. the integer time of each series' first value; 0 counts from the
            series start, which is consistent across series only when they start at the same phase).
        n_time_features: number of calendar columns taken from ``Panel.time_features``.
        n_exog: number of exogenous columns taken from ``Panel.X``.
    """

    lags: tuple[int, ...]
    rolling: tuple[RollingSpec, ...] = ()
    season_length: int = 1
    season_position: bool = False
    n_time_features: int = 0
    n_exog: int = 0
    time_feature_names: tuple[str, ...] = field(default=())
    exog_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.lags and not self.rolling:
            raise InputError("A FeatureSpec needs at least one lag or rolling window.", hint="Pass lags=[1].")
        if any(int(lag) < 1 for lag in self.lags):
            raise InputError(
                f"Lags must be positive integers, got {list(self.lags)}.", hint="Use e.g. lags=[1, 24]."
            )

    @property
    def names(self) -> list[str]:
        names = [f"lag{lag}" for lag in self.lags] + [r.name for r in self.rolling]
        if self.season_position:
            names.append(f"season_pos_{self.season_length}")
        names += list(self.time_feature_names or [f"time_{j}" for j in range(self.n_time_features)])
        names += list(self.exog_names or [f"exog_{j}" for j in range(self.n_exog)])
        return names

    @property
    def history(self) -> int:
        """How many past values :meth:`next_row` needs."""
        return max([*self.lags, *(r.reach for r in self.rolling)])

    @property
    def min_history(self) -> int:
        """Shortest history that gives a training row the smallest lag and every rolling window (long lags may
        be NaN, the tree learners treat NaN as missing)."""
        return max([min(self.lags, default=1), *(r.reach for r in self.rolling)])

    def transform(
        self,
        y: np.ndarray,
        indptr: np.ndarray,
        time_features: np.ndarray | None = None,
        X: np.ndarray | None = None,
        start: np.ndarray | None = None,
    ) -> np.ndarray:
        """The feature matrix of every observation (shape ``(n_obs, len(self.names))``).

        ``start`` (per series, default 0) shifts the position-in-season feature; pass the same offsets to
        :meth:`next_row` through ``next_position``.
        """
        blocks = [lag_features(y, indptr, self.lags)]
        if self.rolling:
            blocks.append(rolling_features(y, indptr, self.rolling))
        if self.season_position:
            pos = positions(indptr)
            if start is not None:
                pos = pos + np.repeat(np.asarray(start, dtype=np.int64), np.diff(indptr))
            blocks.append((pos % max(self.season_length, 1)).astype(np.float64)[:, None])
        if self.n_time_features:
            blocks.append(np.asarray(time_features, dtype=np.float64).reshape(len(y), -1))
        if self.n_exog:
            blocks.append(np.asarray(X, dtype=np.float64).reshape(len(y), -1))
        return np.hstack(blocks)

    def next_row(
        self,
        tail: np.ndarray,
        next_position: np.ndarray,
        time_features: np.ndarray | None = None,
        X: np.ndarray | None = None,
    ) -> np.ndarray:
        """Features of the step right after ``tail`` for every series at once.

        Args:
            tail: the last ``W >= self.history`` values of every series (shape ``(n_series, W)``), left-padded
                with NaN for series shorter than ``W``.
            next_position: position of the step being predicted, counted like in :meth:`transform` (series
                length plus steps ahead plus ``start``).
            time_features: calendar values of that step (shape ``(n_series, n_time_features)``).
            X: exogenous values of that step (shape ``(n_series, n_exog)``).
        """
        width = tail.shape[1]
        cols = [tail[:, width - np.asarray(self.lags)]]
        for spec in self.rolling:
            window = tail[:, width - spec.reach : width - spec.lag + 1]
            # NaN anywhere in the window gives NaN, as in training
            with np.errstate(invalid="ignore"):
                cols.append(_reduce(window, spec.stat)[:, None])
        if self.season_position:
            cols.append((np.asarray(next_position) % max(self.season_length, 1)).astype(np.float64)[:, None])
        if self.n_time_features:
            cols.append(np.asarray(time_features, dtype=np.float64).reshape(tail.shape[0], -1))
        if self.n_exog:
            cols.append(np.asarray(X, dtype=np.float64).reshape(tail.shape[0], -1))
        return np.hstack(cols)


def tails(y: np.ndarray, indptr: np.ndarray, width: int) -> np.ndarray:
    """The last ``width`` values of every series as a 2-D array, left-padded with NaN
    (shape ``(n_series, width)``)."""
    lengths = np.diff(indptr)
    n_series = len(lengths)
    out = np.full((n_series, width), np.nan)
    take = np.minimum(lengths, width)
    # column c of row i holds y[indptr[i+1] - width + c] when that index lies inside series i
    cols = np.arange(width)
    src = np.asarray(indptr[1:])[:, None] - width + cols[None, :]
    ok = cols[None, :] >= (width - take)[:, None]
    out[ok] = np.asarray(y, dtype=np.float64)[src[ok]]
    return out


# ------------------------------------------------------------------------------------------ target transforms
class TargetTransform(abc.ABC):
    """An invertible, per-series transform of the target.

    ``fit_transform`` learns what it needs from each series and returns transformed values of the same packed
    shape (values a transform cannot define, like the first differences, are NaN). ``inverse_forecast`` maps
    forecasts of the transformed series (shape ``(n_series, h)``) back; ``inverse_transform`` maps in-sample
    values back.
    """

    @abc.abstractmethod
    def fit_transform(self, y: np.ndarray, indptr: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def inverse_forecast(self, yhat: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def inverse_transform(self, z: np.ndarray) -> np.ndarray: ...

    def _check_fitted(self) -> None:
        if not hasattr(self, "indptr_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted.", hint="Call fit_transform(y, indptr) first."
            )


class LocalScaler(TargetTransform):
    """Per-series scaling, so one global model sees every series on a comparable scale.

    Args:
        method: ``"mean"`` divides by the mean absolute value; ``"standard"`` subtracts the mean and divides
            by the standard deviation; ``"robust"`` subtracts the median and divides by the mean absolute
            deviation from it; ``"mase"`` divides by the mean absolute seasonal difference (the in-sample
            seasonal-naive error that MASE divides by, so an absolute-error loss on the scaled values is a
            MASE loss).
        window: compute the statistics over the last ``window`` values of each series (the level the forecasts
            start from); ``None`` uses the whole series.
        season_length: the lag of the differences for ``"mase"`` (1 = naive).
    """

    METHODS = ("mean", "standard", "robust", "mase")

    def __init__(self, method: str = "mean", window: int | None = None, season_length: int = 1) -> None:
        if method not in self.METHODS:
            raise InputError(
                f"LocalScaler method must be one of {self.METHODS}, got {method!r}.", hint="Use 'mean'."
            )
        self.method = method
        self.window = window
        self.season_length = max(int(season_length), 1)

    def fit_transform(self, y: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        codes = series_codes(indptr)
        lengths = np.diff(indptr)
        use = np.isfinite(y)
        if self.window is not None:
            use &= positions(indptr) >= (lengths - int(self.window))[codes]
        n_series = len(lengths)
        count = np.bincount(codes, weights=use, minlength=n_series)
        safe = np.maximum(count, 1)
        vals = np.where(use, y, 0.0)
        if self.method == "mean":
            loc = np.zeros(n_series)
            scale = np.bincount(codes, weights=np.abs(vals), minlength=n_series) / safe
        elif self.method == "standard":
            loc = np.bincount(codes, weights=vals, minlength=n_series) / safe
            dev = np.where(use, y - loc[codes], 0.0)
            scale = np.sqrt(np.bincount(codes, weights=dev**2, minlength=n_series) / safe)
        elif self.method == "mase":
            loc = np.zeros(n_series)
            # series shorter than a season fall back to the naive lag 1, then to the mean absolute value
            diffs = np.abs(y - lag_features(y, indptr, [self.season_length])[:, 0])
            ok = use & np.isfinite(diffs)
            scale = np.bincount(codes, weights=np.where(ok, diffs, 0.0), minlength=n_series)
            scale /= np.maximum(np.bincount(codes, weights=ok, minlength=n_series), 1)
            naive = np.abs(y - lag_features(y, indptr, [1])[:, 0])
            ok1 = use & np.isfinite(naive)
            scale1 = np.bincount(codes, weights=np.where(ok1, naive, 0.0), minlength=n_series)
            scale1 /= np.maximum(np.bincount(codes, weights=ok1, minlength=n_series), 1)
            mean_abs = np.bincount(codes, weights=np.abs(vals), minlength=n_series) / safe
            scale = np.where(scale > 1e-12, scale, np.where(scale1 > 1e-12, scale1, mean_abs))
        else:
            loc = _grouped_median(np.where(use, y, np.nan), codes, n_series)
            dev = np.where(use, np.abs(y - loc[codes]), 0.0)
            scale = np.bincount(codes, weights=dev, minlength=n_series) / safe
        # a constant (or all-zero) series keeps scale 1 so it neither explodes nor vanishes
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        loc = np.where(np.isfinite(loc), loc, 0.0)
        self.loc_, self.scale_, self.indptr_ = loc, scale, np.asarray(indptr)
        return (y - loc[codes]) / scale[codes]

    def inverse_forecast(self, yhat: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(yhat) * self.scale_[:, None] + self.loc_[:, None]

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        self._check_fitted()
        codes = series_codes(self.indptr_)
        return np.asarray(z) * self.scale_[codes] + self.loc_[codes]


def _grouped_median(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of the finite values of each group, without a loop over rows (sort once by group then value)."""
    key = np.where(np.isfinite(values), values, np.inf)
    order = np.lexsort((key, codes))
    finite = np.bincount(codes, weights=np.isfinite(values), minlength=n_groups).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]])
    sorted_vals = values[order]
    lo = start + np.maximum(finite - 1, 0) // 2
    hi = start + finite // 2
    med = 0.5 * (sorted_vals[np.minimum(lo, len(values) - 1)] + sorted_vals[np.minimum(hi, len(values) - 1)])
    return np.where(finite > 0, med, np.nan) if len(values) else np.full(n_groups, np.nan)


class Differences(TargetTransform):
    """Differencing at ``lag`` (1 = first differences, ``m`` = seasonal differences), per series.

    ``z[t] = y[t] - y[t - lag]``; the first ``lag`` values of each series become NaN. Forecasts are integrated
    back from the last ``lag`` values of each series, step by step across all series at once.
    """

    def __init__(self, lag: int = 1) -> None:
        if int(lag) < 1:
            raise InputError(
                f"Differences lag must be >= 1, got {lag!r}.", hint="Use lag=1 or the season length."
            )
        self.lag = int(lag)

    def fit_transform(self, y: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self.indptr_ = np.asarray(indptr)
        self.tail_ = tails(y, indptr, self.lag)
        # kept for inverse_transform: the first lag values of each series seed the integration
        self.y_ = y.copy()
        return y - lag_features(y, indptr, [self.lag])[:, 0]

    def inverse_forecast(self, yhat: np.ndarray) -> np.ndarray:
        self._check_fitted()
        yhat = np.asarray(yhat, dtype=np.float64)
        out = np.empty_like(yhat)
        hist = np.hstack([self.tail_, out])  # a rolling buffer: step k reads the value lag steps back
        for k in range(yhat.shape[1]):  # loop over horizon steps, each one vectorised over the series
            hist[:, self.lag + k] = yhat[:, k] + hist[:, k]
        out[:] = hist[:, self.lag :]
        return out

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        out = np.empty_like(z)
        lag = self.lag
        # per series; inside, one cumulative sum per residue class mod lag
        for i in range(len(self.indptr_) - 1):
            a, b = self.indptr_[i], self.indptr_[i + 1]
            n, rows = b - a, -(-(b - a) // lag)
            # where z is undefined (the first lag values, or a prefix another transform left NaN) the stored
            # input seeds the integration; the sum restarts at the last seed of each residue class
            seed = np.zeros(rows * lag, dtype=bool)
            seed[:n] = np.isnan(z[a:b])
            vals = np.zeros(rows * lag)
            vals[:n] = np.where(seed[:n], self.y_[a:b], z[a:b])
            seed, vals = seed.reshape(rows, lag), vals.reshape(rows, lag)
            last_seed = np.where(seed, np.arange(rows)[:, None], -1).max(axis=0)
            summed = np.where(np.arange(rows)[:, None] < last_seed[None, :], 0.0, vals)
            summed = np.cumsum(summed, axis=0)
            out[a:b] = np.where(seed, vals, summed).reshape(-1)[:n]
        return out


class TransformChain(TargetTransform):
    """Apply several transforms in order; invert them in reverse order.

    Example:
        >>> chain = TransformChain([LocalScaler("mean"), Differences(24)])
    """

    def __init__(self, steps: Sequence[TargetTransform]) -> None:
        self.steps = list(steps)

    def fit_transform(self, y: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        z = np.asarray(y, dtype=np.float64)
        for step in self.steps:
            z = step.fit_transform(z, indptr)
        self.indptr_ = np.asarray(indptr)
        return z

    def inverse_forecast(self, yhat: np.ndarray) -> np.ndarray:
        self._check_fitted()
        for step in reversed(self.steps):
            yhat = step.inverse_forecast(yhat)
        return yhat

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        self._check_fitted()
        for step in reversed(self.steps):
            z = step.inverse_transform(z)
        return z
