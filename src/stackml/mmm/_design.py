"""The model's design: scaled arrays and the time features, built once from the training frame.

All frame handling of the model lives here and in :mod:`stackml.mmm.validation`; the graph and the posterior
code see only NumPy arrays. Scales are fixed at fit time and reused for every later prediction, so a spend
plan is scaled the same way as the training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stackml.errors import InputError

DAYS_PER_YEAR = 365.25
# A time-varying level moves at knots this many days apart (a quarter): slow enough that a burst of spend is
# not absorbed into the level, fast enough to follow a drift in demand the trend and seasonality miss.
LEVEL_KNOT_DAYS = 91.0


@dataclass(frozen=True)
class Design:
    """Scales and time anchors learned from the training frame, plus its scaled arrays."""

    channels: tuple[str, ...]
    controls: tuple[str, ...]
    dates: pd.DatetimeIndex
    period_days: float
    spend: np.ndarray  # (T, K) raw
    spend_scale: np.ndarray  # (K,) max per channel
    control_values: np.ndarray  # (T, C) raw
    control_scale: np.ndarray  # (C,) max |value| per control
    target: np.ndarray  # (T,) raw
    target_scale: float  # mean of the target
    fourier_order: int
    trend: bool
    level_knots: int = 0  # knots of the time-varying level (0: a constant intercept)

    @property
    def n_periods(self) -> int:
        return len(self.dates)

    @property
    def start(self) -> pd.Timestamp:
        return self.dates[0]

    def positions(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Integer period index of ``dates`` counted from the first training date."""
        offset = (dates - self.start) / pd.Timedelta(days=self.period_days)
        return np.round(np.asarray(offset, dtype=float)).astype(int)

    def time_index(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Trend time, 0 at the first and 1 at the last training period (extrapolates past it)."""
        return self.positions(dates) / max(self.n_periods - 1, 1)

    def fourier(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Yearly Fourier features ``(T, 2 * order)``: sin then cos for orders 1..order."""
        if self.fourier_order == 0:
            return np.zeros((len(dates), 0))
        year_fraction = (np.asarray(dates.dayofyear, dtype=float) - 1.0) / DAYS_PER_YEAR
        orders = np.arange(1, self.fourier_order + 1)
        angle = 2.0 * np.pi * year_fraction[:, None] * orders[None, :]
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)

    def level_basis(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Piecewise-linear interpolation weights ``(T, level_knots)`` of the time-varying level: knots evenly
        spaced over the training periods; before the first and after the last the level stays flat."""
        if not self.level_knots:
            return np.zeros((len(dates), 0))
        where = np.clip(self.time_index(dates), 0.0, 1.0) * (self.level_knots - 1)
        left = np.minimum(np.floor(where).astype(int), self.level_knots - 2)
        share = where - left
        basis = np.zeros((len(dates), self.level_knots))
        rows = np.arange(len(dates))
        basis[rows, left] = 1.0 - share
        basis[rows, left + 1] = share
        return basis

    def scaled_spend(self, spend: np.ndarray) -> np.ndarray:
        return np.asarray(spend, dtype=float) / self.spend_scale

    def scaled_controls(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float) / self.control_scale


def infer_period_days(dates: pd.DatetimeIndex, date_column: str) -> float:
    """The spacing of the periods in days (7 for weekly, 1 for daily), checking it is regular."""
    gaps = np.diff(dates.values).astype("timedelta64[s]").astype(float) / 86400.0
    period = float(np.median(gaps))
    irregular = np.abs(gaps - period) > 0.5
    if period <= 0 or irregular.any():
        bad = dates[1:][irregular][:3].strftime("%Y-%m-%d").tolist()
        raise InputError(
            f"The dates in '{date_column}' are not evenly spaced (typical gap {period:g} days; "
            f"irregular at {bad}).",
            hint="Aggregate to one row per week or day without gaps "
            "(stackml.mmm.aggregate_touchpoints does this), filling missing periods with zero spend.",
        )
    return period


def build_design(
    df: pd.DataFrame,
    *,
    date_column: str,
    channels: tuple[str, ...],
    controls: tuple[str, ...],
    target_column: str,
    fourier_order: int,
    trend: bool,
    time_varying_level: bool = False,
) -> Design:
    """Build the design from an already validated, date-sorted frame."""
    dates = pd.DatetimeIndex(pd.to_datetime(df[date_column]))
    period = infer_period_days(dates, date_column)
    spend = df[list(channels)].to_numpy(dtype=float)
    spend_scale = spend.max(axis=0)
    control_values = df[list(controls)].to_numpy(dtype=float) if controls else np.zeros((len(df), 0))
    control_scale = np.abs(control_values).max(axis=0) if controls else np.zeros(0)
    control_scale = np.where(control_scale > 0, control_scale, 1.0)
    target = df[target_column].to_numpy(dtype=float)
    return Design(
        channels=channels,
        controls=controls,
        dates=dates,
        period_days=period,
        spend=spend,
        spend_scale=spend_scale,
        control_values=control_values,
        control_scale=control_scale,
        target=target,
        target_scale=float(np.mean(np.abs(target))),
        fourier_order=fourier_order,
        trend=trend,
        level_knots=level_knot_count(len(dates), period) if time_varying_level else 0,
    )


def level_knot_count(n_periods: int, period_days: float) -> int:
    """Knots of the time-varying level: one every :data:`LEVEL_KNOT_DAYS`, at least 3."""
    span_days = (n_periods - 1) * period_days
    return max(3, int(np.ceil(span_days / LEVEL_KNOT_DAYS)) + 1)
