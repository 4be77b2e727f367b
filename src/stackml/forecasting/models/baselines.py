"""The benchmark models every forecast is judged against: naive, seasonal naive, Naive2 and
random walk with drift.

Naive2 follows the M4 competition's own code (``Benchmarks and Evaluation.R`` in
github.com/Mcompetitions/M4-methods) step for step, so that the official benchmark scores reproduce to three
decimals.

Example:
    >>> import numpy as np
    >>> from stackml.forecasting.panel import Panel
    >>> panel = Panel.from_arrays([np.array([1.0, 2.0, 3.0, 4.0])], season_length=2)
    >>> SeasonalNaive().fit(panel).predict(3).tolist()
    [[3.0, 4.0, 3.0]]
"""

from __future__ import annotations

import math

import numpy as np

from stackml.forecasting.models.base import ForecastModel, LocalModel

__all__ = ["Naive", "Naive2", "RandomWalkWithDrift", "SeasonalNaive", "seasonal_indices", "seasonality_test"]

# One-sided 90% normal quantile used by the M4 seasonality test.
_M4_TCRIT = 1.645


class _Baseline(LocalModel):
    """A benchmark that costs next to nothing to fit, so the time budget never needs to measure it."""

    def probe(self) -> list[tuple[ForecastModel, float]] | None:
        return None


class Naive(_Baseline):
    """Repeat the last observed value (M4's "Naive1")."""

    default_alias = "Naive"

    def fit_one(self, y: np.ndarray, season_length: int) -> float:
        return float(y[-1])

    def predict_one(self, state: float, h: int) -> np.ndarray:
        return np.full(h, state)


class SeasonalNaive(_Baseline):
    """Repeat the last observed season (M4's "sNaive").

    With ``season_length <= 1``, or a series shorter than one season, there is no full season to repeat and
    the forecast is the last value, as for :class:`Naive`.
    """

    default_alias = "SeasonalNaive"

    def fit_one(self, y: np.ndarray, season_length: int) -> np.ndarray:
        if season_length <= 1 or len(y) < season_length:
            return y[-1:].copy()
        return y[-season_length:].copy()

    def predict_one(self, state: np.ndarray, h: int) -> np.ndarray:
        return np.resize(state, h)


class Naive2(_Baseline):
    """Naive on the seasonally adjusted series, re-seasonalised (the M4 competition's "Naive2").

    When ``season_length > 1`` and :func:`seasonality_test` finds the series seasonal, the series is divided
    by the seasonal indices of a classical multiplicative decomposition (:func:`seasonal_indices`), its last
    adjusted value is repeated, and the forecast is multiplied by the indices of the forecast periods.
    Otherwise it is :class:`Naive`.

    Multiplicative indices only make sense for positive data; a series with a value ``<= 0`` (which M4 never
    has) is treated as non-seasonal instead of producing meaningless or infinite forecasts.
    """

    default_alias = "Naive2"

    def fit_one(self, y: np.ndarray, season_length: int) -> tuple[float, np.ndarray | None, int]:
        n = len(y)
        if season_length > 1 and np.all(y > 0) and seasonality_test(y, season_length):
            figure = seasonal_indices(y, season_length)
            if np.all(np.isfinite(figure)) and np.all(figure > 0):
                level = float(y[-1] / figure[(n - 1) % season_length])
                return level, figure, n
        return float(y[-1]), None, n

    def predict_one(self, state: tuple[float, np.ndarray | None, int], h: int) -> np.ndarray:
        level, figure, n = state
        if figure is None:
            return np.full(h, level)
        # Step j (1-based) falls at 0-based position n - 1 + j, whose phase is (n - 1 + j) mod m.
        phases = (n + np.arange(h)) % len(figure)
        return level * figure[phases]


class RandomWalkWithDrift(_Baseline):
    """The last value plus the average historical change per step: ``y_n + j * (y_n - y_1) / (n - 1)``."""

    default_alias = "RWD"

    def fit_one(self, y: np.ndarray, season_length: int) -> tuple[float, float]:
        slope = float((y[-1] - y[0]) / (len(y) - 1)) if len(y) > 1 else 0.0
        return float(y[-1]), slope

    def predict_one(self, state: tuple[float, float], h: int) -> np.ndarray:
        last, slope = state
        return last + slope * np.arange(1, h + 1)


def _acf(y: np.ndarray, n_lags: int) -> np.ndarray:
    """Sample autocorrelations at lags ``1..n_lags`` as R's ``acf`` computes them
    (demeaned, divided by ``n``)."""
    x = np.asarray(y, dtype=np.float64) - np.mean(y)
    denom = float(np.dot(x, x))
    if denom == 0.0:
        return np.full(n_lags, np.nan)
    return np.array([np.dot(x[: len(x) - k], x[k:]) / denom for k in range(1, n_lags + 1)])


def seasonality_test(y: np.ndarray, season_length: int) -> bool:
    """The M4 90% autocorrelation test for seasonality at lag ``season_length``.

    Seasonal when ``|acf_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} acf_k^2) / n)``. As in the M4 code, the test is
    only run when ``n >= 3m``, and R's ``acf`` is called with its default ``lag.max = floor(10 * log10(n))``:
    when ``m`` exceeds that, the autocorrelation at lag ``m`` is ``NA`` and the series counts as not seasonal
    (for ``m = 24`` this needs ``n >= 252``). A constant series is not seasonal.

    Args:
        y: the series (1-D).
        season_length: the seasonal period ``m``.

    Returns:
        True when the series is seasonal at lag ``m``.
    """
    n, m = len(y), int(season_length)
    if m <= 1 or n < 3 * m:
        return False
    max_lag = min(math.floor(10 * math.log10(n)), n - 1)
    if m > max_lag:
        return False
    r = _acf(y, m)
    if not np.all(np.isfinite(r)):
        return False
    limit = _M4_TCRIT * math.sqrt((1.0 + 2.0 * float(np.sum(r[: m - 1] ** 2))) / n)
    return bool(abs(r[m - 1]) > limit)


def seasonal_indices(y: np.ndarray, season_length: int) -> np.ndarray:
    """Seasonal indices of R's ``decompose(type="multiplicative")``,
    indexed by phase ``t mod m`` (0-based ``t``).

    The trend is the centred moving average (a ``2 x m`` average for even ``m``); each phase's index is the
    mean of ``y / trend`` over the periods where the trend exists, and the indices are scaled to average 1.

    Args:
        y: the series, at least two seasons long.
        season_length: the seasonal period ``m > 1``.

    Returns:
        Array of ``m`` indices; position ``t`` of the series has index ``result[t % m]``.
    """
    y = np.asarray(y, dtype=np.float64)
    m = int(season_length)
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.convolve(y, weights, mode="valid")  # symmetric weights: convolution equals R's filter(sides=2)
    ratio = y[half : half + len(trend)] / trend
    phase = np.arange(half, half + len(trend)) % m
    figure = np.bincount(phase, weights=ratio, minlength=m) / np.bincount(phase, minlength=m)
    return figure / figure.mean()
