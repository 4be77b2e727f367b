"""Prediction intervals from backtest residuals (split conformal, per horizon step),
and backtest error scores.

The front door backtests every model over ``n_windows`` windows of ``h`` values at the end of each series and
keeps the absolute errors ``|y - yhat|`` per window, series and horizon step. For a level ``L`` (in %), the
interval half-width at step ``j`` is a conformal quantile of those errors: the ``k``-th smallest of ``n``
scores with ``k = ceil((n + 1) L / 100)``, which covers a new error with probability at least ``L`` when the
errors are exchangeable.

Which scores are pooled:

- **per series** when there are enough windows for the level, i.e. ``k <= n_windows`` (80% needs 4 windows,
  95% needs 19): the errors of that series at that step only;
- **pooled** otherwise (the usual case with the default 2-3 windows): errors are divided by each series'
  in-sample scale (the mean absolute seasonal difference, the MASE denominator), pooled across all series at
  that step, and the quantile is multiplied back by each series' scale. Series of different size then get
  widths in proportion to how variable they are. When even the pool is too small (``k > n``), the largest
  score is used, so intervals on very small panels under-cover rather than fail.
"""

from __future__ import annotations

import math

import numpy as np

from stackml.forecasting.panel import Panel

__all__ = ["conformal_half_widths", "insample_scale", "panel_scales", "scaled_errors"]


def insample_scale(y: np.ndarray, season_length: int = 1) -> float:
    """Mean absolute seasonal difference of ``y`` (lag ``season_length``, lag 1 for short series), never 0.

    Constant or one-value series fall back to the mean absolute level, then to 1, so dividing by it is safe.
    """
    y = np.asarray(y, dtype=np.float64)
    m = season_length if len(y) > season_length else 1
    if len(y) > m:
        scale = float(np.mean(np.abs(y[m:] - y[:-m])))
        if scale > 0 and np.isfinite(scale):
            return scale
    level = float(np.mean(np.abs(y))) if len(y) else 0.0
    return level if level > 0 and np.isfinite(level) else 1.0


def panel_scales(panel: Panel) -> np.ndarray:
    """:func:`insample_scale` of every series of ``panel`` (shape ``(n_series,)``)."""
    return np.array([insample_scale(panel.series(i), panel.season_length) for i in range(panel.n_series)])


def _rank(n: int, level: float) -> int:
    """1-based rank of the conformal quantile among ``n`` scores (may exceed ``n``)."""
    return math.ceil((n + 1) * level / 100.0 - 1e-9)


def conformal_half_widths(residuals: np.ndarray, scales: np.ndarray, level: float) -> np.ndarray:
    """Interval half-widths ``(n_series, h)`` for one level from backtest errors.

    Args:
        residuals: ``y - yhat`` of the backtest, shape ``(n_windows, n_series, h)``.
        scales: per-series scale (see :func:`panel_scales`), shape ``(n_series,)``.
        level: coverage in percent, strictly between 0 and 100.

    Returns:
        Non-negative half-widths; the interval is ``yhat -/+ width``.
    """
    scores = np.abs(np.asarray(residuals, dtype=np.float64))
    n_windows, n_series, _ = scores.shape
    k = _rank(n_windows, level)
    if k <= n_windows:
        # enough windows: each series gets its own quantile per step
        return np.sort(scores, axis=0)[k - 1]
    scaled = scores / scales[None, :, None]
    pooled = np.sort(scaled.reshape(n_windows * n_series, -1), axis=0)
    k = min(_rank(pooled.shape[0], level), pooled.shape[0])
    return pooled[k - 1][None, :] * scales[:, None]


def scaled_errors(
    actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray, metric: str = "mase"
) -> np.ndarray:
    """Per-series backtest error, averaged over windows and steps (shape ``(n_series,)``).

    Args:
        actual: held-out values ``(n_windows, n_series, h)``.
        forecast: forecasts of the same shape.
        scales: per-series scale for ``"mase"``.
        metric: ``"mase"`` (absolute error over the in-sample scale) or ``"smape"`` (symmetric percentage
            error, 0-200).
    """
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    if metric == "mase":
        return np.mean(np.abs(actual - forecast), axis=(0, 2)) / scales
    denom = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(actual - forecast), denom, out=np.zeros_like(denom), where=denom > 0)
    return 100 * np.mean(ratio, axis=(0, 2))
