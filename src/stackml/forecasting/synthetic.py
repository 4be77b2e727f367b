"""Seeded synthetic panels in the long format, for tests, docs and the demo.

Example:
    >>> from stackml.forecasting.synthetic import generate_series
    >>> df = generate_series(
    ...     n_series=2, freq="h", min_length=48, max_length=48, season_length=24, random_state=0
    ... )
    >>> list(df.columns), len(df)
    (['unique_id', 'ds', 'y'], 96)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stackml.errors import InputError

__all__ = ["generate_series"]


def generate_series(
    n_series: int = 3,
    freq: str | None = "D",
    min_length: int = 50,
    max_length: int = 100,
    season_length: int = 1,
    random_state: int | None = 0,
    with_trend: bool = False,
    noise: float = 0.1,
    level: float = 10.0,
    n_exog: int = 0,
    start: str = "2000-01-01",
) -> pd.DataFrame:
    """A long frame ``unique_id, ds, y`` (+ ``x0, x1, ...`` when ``n_exog > 0``) of positive series.

    Each series is ``level_i * (1 + trend + seasonality) + noise + exogenous effect``, with a per-series level
    drawn around ``level``, so values stay positive (multiplicative models and sMAPE behave) and series differ
    in scale.

    Args:
        n_series: number of series (ids ``"s0"``, ``"s1"``, ...).
        freq: a pandas frequency for timestamp ``ds`` starting at ``start``, or ``None`` for integer
            ``ds`` 0, 1, ...
        min_length: shortest series length (inclusive).
        max_length: longest series length (inclusive); lengths are drawn uniformly in between.
        season_length: period of a sine seasonality with a random phase; 1 means no seasonality.
        random_state: seed; the same seed gives the same frame.
        with_trend: add a linear trend (up to about +50% of the level over the series).
        noise: standard deviation of the Gaussian noise relative to the series level.
        level: mean level of the series.
        n_exog: number of exogenous columns ``x0..``; each enters ``y`` linearly with a random coefficient, so
            a model that uses them can do better than one that does not.
        start: first timestamp when ``freq`` is set.

    Returns:
        The long frame sorted by ``unique_id`` then ``ds``; ``unique_id`` is a string column.

    Raises:
        InputError: if a count or length is out of range.
    """
    problems = []
    if not isinstance(n_series, (int, np.integer)) or n_series < 1:
        problems.append(f"n_series must be a positive integer, got {n_series!r}")
    if not isinstance(min_length, (int, np.integer)) or min_length < 1:
        problems.append(f"min_length must be a positive integer, got {min_length!r}")
    elif not isinstance(max_length, (int, np.integer)) or max_length < min_length:
        problems.append(f"max_length must be an integer >= min_length ({min_length}), got {max_length!r}")
    if not isinstance(season_length, (int, np.integer)) or season_length < 1:
        problems.append(f"season_length must be a positive integer, got {season_length!r}")
    if not isinstance(n_exog, (int, np.integer)) or n_exog < 0:
        problems.append(f"n_exog must be a non-negative integer, got {n_exog!r}")
    if problems:
        raise InputError("generate_series got invalid arguments: " + "; ".join(problems) + ".")

    rng = np.random.default_rng(random_state)
    lengths = rng.integers(min_length, max_length + 1, size=n_series)
    frames = []
    for i, n in enumerate(lengths):
        t = np.arange(n, dtype=np.float64)
        base = level * rng.uniform(0.5, 1.5)
        shape = np.ones(n)
        if with_trend:
            shape += rng.uniform(0.1, 0.5) * t / max(n - 1, 1)
        if season_length > 1:
            phase = rng.uniform(0, 2 * np.pi)
            shape += 0.3 * np.sin(2 * np.pi * t / season_length + phase)
        y = base * shape + rng.normal(0.0, noise * base, size=n)
        frame = {"unique_id": f"s{i}"}
        if n_exog:
            X = rng.normal(0.0, 1.0, size=(n, n_exog))
            y = y + X @ rng.uniform(0.1, 0.3, size=n_exog) * base
            for j in range(n_exog):
                frame[f"x{j}"] = X[:, j]
        # keep values strictly positive whatever the noise draw
        frame["y"] = np.maximum(y, 0.01 * base)
        frame["ds"] = (
            np.arange(n, dtype=np.int64) if freq is None else pd.date_range(start, periods=n, freq=freq)
        )
        frames.append(pd.DataFrame(frame))
    df = pd.concat(frames, ignore_index=True)
    cols = ["unique_id", "ds", "y"] + [f"x{j}" for j in range(n_exog)]
    return df[cols]
