"""Seasonal periods: the one used for scoring, and the ones the models use, from the frequency or the data.

Two different questions get two answers:

- **scoring** (the MASE lag, M4's ``m``): what the competitions use, so scores compare with published ones:
  24 for hourly data, 12 monthly, 4 quarterly, 1 for daily, weekly and yearly data;
- **models** (``periods``): every cycle the data may hold, smallest first: hourly data has a day (24) and a
  week (168), daily data a week (7) and a year (365), weekly data a year (52), monthly 12, quarterly 4,
  yearly none. A period is kept only when the typical series holds two full cycles of it, since neither
  a seasonal model nor a seasonal lag can learn a cycle seen once.

Without a frequency (integer time steps) the periods come from the data: a period is taken when its
autocorrelation is significant in most series (:func:`detect_periods`). A user's ``season_length`` always
wins: it is the scoring period and the models' main period; longer periods found for the data are kept
after it.

Example:
    >>> import pandas as pd
    >>> for_frequency(pd.tseries.frequencies.to_offset("h"))
    Seasonality(scoring=24, periods=(24, 168))
    >>> for_frequency(pd.tseries.frequencies.to_offset("MS"))
    Seasonality(scoring=12, periods=(12,))
    >>> for_frequency(pd.tseries.frequencies.to_offset("YS"))
    Seasonality(scoring=1, periods=())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CANDIDATE_PERIODS", "Seasonality", "detect_periods", "for_frequency", "resolve_seasonality"]

_DAY = 86_400.0
_WEEK = 7 * _DAY
_YEAR = 365.25 * _DAY

#: periods tried on integer time steps, where no calendar says what to expect
CANDIDATE_PERIODS: tuple[int, ...] = (4, 5, 7, 12, 24, 52, 168)
#: share of series whose autocorrelation at a period must be significant for the period to be used
_DETECT_SHARE = 0.5
#: series sampled for detection (the test is cheap, but a million series need not all be tested)
_DETECT_SAMPLE = 500


@dataclass(frozen=True)
class Seasonality:
    """The scoring period (``m`` of MASE) and the models' periods, main (shortest) first."""

    scoring: int
    periods: tuple[int, ...]

    @property
    def main(self) -> int:
        """The period per-series models use (1 when there is none)."""
        return self.periods[0] if self.periods else 1


def for_frequency(offset: Any) -> Seasonality:
    """The seasonality a calendar frequency implies (see the module docstring for the table).

    Multiples scale: 30-minute data has periods 48 and 336, 2-hourly data 12 and 84.
    """
    from stackml.forecasting.frame import step_timedelta

    step = step_timedelta(offset).total_seconds()
    if step <= 0:
        return Seasonality(1, ())
    if step < _DAY:  # hourly and finer: a day and a week
        periods = (_DAY / step, _WEEK / step)
        scoring = _DAY / step
    elif step < _WEEK:  # daily, business daily: a week and a year (52.18 weeks)
        week = round(_WEEK / step)
        periods, scoring = (week, week * _YEAR / _WEEK), 1
    elif step < 28 * _DAY:  # weekly: a year (52.18 weeks)
        periods, scoring = (_YEAR / step,), 1
    elif step < _YEAR * 0.9:  # monthly, quarterly, half-yearly: the year
        periods = (_YEAR / step,)
        scoring = _YEAR / step
    else:
        return Seasonality(1, ())
    kept = tuple(sorted({int(round(p)) for p in periods if round(p) >= 2}))
    scoring = int(round(scoring))
    return Seasonality(scoring if scoring >= 2 else 1, kept)


def _acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations at lags ``0..max_lag`` of ``y`` after removing a linear trend (a trend would make
    every lag look seasonal)."""
    t = np.arange(len(y), dtype=np.float64)
    x = y - np.polyval(np.polyfit(t, y, 1), t)
    denom = float(np.dot(x, x))
    if denom <= 0:
        return np.zeros(max_lag + 1)
    return np.array([1.0] + [float(np.dot(x[:-k], x[k:])) / denom for k in range(1, max_lag + 1)])


def _is_seasonal(r: np.ndarray, n: int, period: int) -> bool:
    """A peak of the autocorrelation at ``period`` that beats a 90% bound (Bartlett's, as in the M4 test).

    The peak matters: a smooth series correlates at every short lag, but only a cycle makes a peak."""
    bound = 1.645 * np.sqrt((1 + 2 * float(np.sum(r[1:period] ** 2))) / n)
    return bool(r[period] > bound and r[period] >= r[period - 1] and r[period] >= r[period + 1])


def _peaks_among_multiples(r: np.ndarray, period: int, base: int) -> bool:
    """``period`` (a multiple of a found ``base``) correlates more than its neighbouring multiples: a weekly
    cycle in hourly data makes lag 168 beat lags 144 and 192, where a daily cycle alone would not."""
    return bool(r[period] > max(r[period - base], r[period + base]) + 0.02)


def detect_periods(
    series: Sequence[np.ndarray],
    candidates: Sequence[int] = CANDIDATE_PERIODS,
    known: Sequence[int] = (),
    seed: int = 0,
) -> tuple[int, ...]:
    """Periods that are a significant autocorrelation peak in at least half of the series long enough to
    test (three cycles and a bit), among ``candidates``.

    A multiple of an already found (or ``known``) period must also beat that period's neighbouring multiples,
    since every multiple of a real period correlates too.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(series), size=min(len(series), _DETECT_SAMPLE), replace=False)
    sample = [np.asarray(series[i], dtype=np.float64) for i in sorted(pick)]
    found: list[int] = list(known)
    for period in sorted(set(candidates) - set(known)):
        base = next((f for f in found if period % f == 0), None)
        reach = period + (base or 1)
        testable = [y for y in sample if len(y) >= max(3 * period, reach + 1) and np.ptp(y) > 0]
        if len(testable) < max(1, len(sample) // 4):
            continue  # too few series are long enough to tell
        hits = []
        for y in testable:
            r = _acf(y, reach)
            if base is None:
                hits.append(_is_seasonal(r, len(y), period))
            else:
                hits.append(_peaks_among_multiples(r, period, base))
        if np.mean(hits) >= _DETECT_SHARE:
            found.append(period)
    return tuple(sorted(found))


def resolve_seasonality(
    series: Sequence[np.ndarray], offset: Any = None, season_length: int | None = None
) -> Seasonality:
    """The seasonality of a panel: from the user's ``season_length``, the calendar ``offset``, or the data.

    Args:
        series: the training series (their lengths decide which periods can be learned).
        offset: a pandas ``DateOffset`` for timestamp data; ``None`` or an int for integer steps.
        season_length: the user's season; it wins (scoring period and main model period).

    Returns:
        The periods kept are those the median series holds twice (and the user's, always).
    """
    lengths = np.array([len(y) for y in series]) if len(series) else np.array([0])
    typical = float(np.median(lengths))
    if offset is not None and not isinstance(offset, (int, np.integer)):
        found = for_frequency(offset)
    else:
        found = Seasonality(1, ())
        periods = detect_periods(series) if season_length is None else ()
        if periods:
            found = Seasonality(periods[0], periods)
    learnable = tuple(p for p in found.periods if typical >= 2 * p)
    if season_length is not None and season_length > 1:
        longer = tuple(p for p in learnable if p > season_length)
        if offset is None or isinstance(offset, (int, np.integer)):
            # integer steps with a user season: look for longer cycles built on it (a week of 24 hours)
            multiples = [season_length * k for k in (4, 7, 12) if typical >= 2 * season_length * k]
            detected = detect_periods(series, multiples, known=(season_length,))
            longer = tuple(p for p in detected if p > season_length)
        return Seasonality(int(season_length), (int(season_length), *longer))
    if season_length == 1:
        return Seasonality(1, ())
    return Seasonality(found.scoring, learnable)
