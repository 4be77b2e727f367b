"""Baseline models: naive, seasonal naive, Naive2 (M4 definition) and random walk with drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting.models.baselines import (
    Naive,
    Naive2,
    RandomWalkWithDrift,
    SeasonalNaive,
    seasonal_indices,
    seasonality_test,
)
from stackml.forecasting.panel import Panel

ALL_BASELINES = [Naive, SeasonalNaive, Naive2, RandomWalkWithDrift]


def _seasonal_series(n: int, m: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 * (1 + 0.3 * np.sin(2 * np.pi * t / m)) * (1 + 0.002 * t) + rng.normal(0, noise * 100, n)


# -- pure-Python oracles of the M4 R code (acf, decompose), written loop by loop -----------------------------
def _r_acf(y: list[float], lag: int) -> float:
    n = len(y)
    mean = sum(y) / n
    c0 = sum((v - mean) ** 2 for v in y) / n
    ck = sum((y[t] - mean) * (y[t + lag] - mean) for t in range(n - lag)) / n
    return ck / c0


def _r_seasonality_test(y: list[float], m: int) -> bool:
    n = len(y)
    if n < 3 * m:
        return False
    lag_max = min(math.floor(10 * math.log10(n)), n - 1)
    if m > lag_max:  # acf(...)$acf[m] is NA, and the M4 code turns NA into FALSE
        return False
    acfs = [_r_acf(y, k) for k in range(1, m + 1)]
    clim = 1.645 / math.sqrt(n) * math.sqrt(1 + 2 * sum(a * a for a in acfs[: m - 1]))
    return abs(acfs[m - 1]) > clim


def _r_decompose_figure(y: list[float], m: int) -> list[float]:
    n = len(y)
    weights = [0.5] + [1.0] * (m - 1) + [0.5] if m % 2 == 0 else [1.0] * m
    weights = [w / m for w in weights]
    half = len(weights) // 2
    trend = [None] * n
    for t in range(half, n - half):
        trend[t] = sum(w * y[t - half + j] for j, w in enumerate(weights))
    figure = []
    for phase in range(m):
        ratios = [y[t] / trend[t] for t in range(phase, n, m) if trend[t] is not None]
        figure.append(sum(ratios) / len(ratios))
    mean = sum(figure) / m
    return [f / mean for f in figure]


def _fit_one(model_cls, y: np.ndarray, m: int, h: int) -> np.ndarray:
    return model_cls().fit(Panel.from_arrays([y], season_length=m)).predict(h)[0]


# -- the contract, for every baseline ------------------------------------------------------------------------
@pytest.mark.parametrize("model_cls", ALL_BASELINES)
def test_contract(model_cls):
    rng = np.random.default_rng(1)
    panel = Panel.from_arrays(
        [rng.uniform(1, 2, n) for n in (5, 30, 80)], ids=["a", "b", "c"], season_length=7
    )
    model = model_cls()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(3)
    assert model.fit(panel) is model
    out = model.predict(10)
    assert out.shape == (3, 10) and np.isfinite(out).all()
    with pytest.raises(InputError, match="positive integer"):
        model.predict(0)
    clone = model.clone()
    assert type(clone) is model_cls and not hasattr(clone, "n_series_")
    assert model_cls(alias="mine").name == "mine"
    assert model.name == model_cls.default_alias


def test_default_aliases():
    assert [m.default_alias for m in ALL_BASELINES] == ["Naive", "SeasonalNaive", "Naive2", "RWD"]


def test_naive_repeats_last_value():
    assert _fit_one(Naive, np.array([3.0, 1.0, 4.0]), 1, 3).tolist() == [4.0, 4.0, 4.0]


def test_seasonal_naive_repeats_last_season_in_phase():
    y = np.arange(1.0, 11.0)  # 10 values, m = 4: last season is 7, 8, 9, 10
    assert _fit_one(SeasonalNaive, y, 4, 6).tolist() == [7, 8, 9, 10, 7, 8]
    # without seasonality, or shorter than one season, it is the naive forecast
    assert _fit_one(SeasonalNaive, y, 1, 2).tolist() == [10, 10]
    assert _fit_one(SeasonalNaive, np.array([1.0, 2.0]), 4, 3).tolist() == [2, 2, 2]


def test_random_walk_with_drift():
    np.testing.assert_allclose(
        _fit_one(RandomWalkWithDrift, np.array([1.0, 4.0, 3.0, 7.0]), 1, 3), [9, 11, 13]
    )
    assert _fit_one(RandomWalkWithDrift, np.array([5.0]), 1, 2).tolist() == [5.0, 5.0]


# -- Naive2 and its parts against the oracles ----------------------------------------------------------------
@pytest.mark.parametrize(("n", "m", "seed"), [(100, 4, 0), (61, 12, 1), (300, 24, 2), (75, 7, 3), (40, 5, 4)])
def test_seasonal_indices_match_r_decompose(n, m, seed):
    y = _seasonal_series(n, m, seed)
    np.testing.assert_allclose(seasonal_indices(y, m), _r_decompose_figure(y.tolist(), m), rtol=1e-12)


def test_seasonality_test_matches_oracle():
    outcomes = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m = int(rng.choice([4, 7, 12, 24]))
        n = int(rng.integers(3 * m, 15 * m))
        # seasonal and non-seasonal series, with noise from negligible to swamping the pattern
        y = _seasonal_series(n, m, seed, noise=float(rng.choice([0.01, 0.3, 1.0, 3.0])))
        got = seasonality_test(y, m)
        assert got == _r_seasonality_test(y.tolist(), m), (seed, m, n)
        outcomes.append(got)
    assert 5 < sum(outcomes) < 35  # both answers are exercised


def test_seasonality_test_rules():
    y = _seasonal_series(300, 24, noise=0.01)
    assert seasonality_test(y, 24)
    assert not seasonality_test(y[:71], 24)  # n < 3m
    assert not seasonality_test(y, 1)
    assert not seasonality_test(np.full(100, 3.0), 4)  # constant: no autocorrelation
    # R's default lag.max = floor(10 log10 n) is 23 for n = 240: lag 24 is NA, hence not seasonal
    # (M4 code detail)
    assert not seasonality_test(y[:240], 24)
    assert seasonality_test(y[:252], 24)


def test_naive2_reproduces_an_exact_multiplicative_pattern():
    # A purely periodic series decomposes exactly, so Naive2 must continue it in phase.
    m, n = 6, 40  # n not a multiple of m, so a phase error would show
    pattern = np.array([0.5, 0.8, 1.0, 1.2, 1.5, 1.0])
    y = 10 * pattern[np.arange(n) % m]
    expected = 10 * pattern[np.arange(n, n + 15) % m]
    np.testing.assert_allclose(_fit_one(Naive2, y, m, 15), expected, rtol=1e-12)


def test_naive2_follows_the_m4_recipe():
    m = 12
    y = _seasonal_series(90, m, seed=5, noise=0.02)
    assert _r_seasonality_test(y.tolist(), m)
    figure = np.array(_r_decompose_figure(y.tolist(), m))
    seasonal = figure[np.arange(len(y)) % m]
    # SIout: the last m seasonal values of the in-sample series, repeated
    si_out = np.resize(seasonal[-m:], 30)
    expected = (y / seasonal)[-1] * si_out
    np.testing.assert_allclose(_fit_one(Naive2, y, m, 30), expected, rtol=1e-10)


def test_naive2_is_naive_when_not_seasonal_or_not_positive():
    rng = np.random.default_rng(0)
    noise = rng.uniform(1, 2, 200)
    assert not seasonality_test(noise, 12)
    assert _fit_one(Naive2, noise, 12, 4).tolist() == [noise[-1]] * 4
    seasonal = _seasonal_series(100, 4, noise=0.01)
    assert _fit_one(Naive2, seasonal, 1, 3).tolist() == [seasonal[-1]] * 3  # m = 1
    assert _fit_one(Naive2, seasonal[:11], 4, 3).tolist() == [seasonal[10]] * 3  # n < 3m
    shifted = seasonal - seasonal.mean()  # has values <= 0: multiplicative indices are meaningless
    assert _fit_one(Naive2, shifted, 4, 3).tolist() == [shifted[-1]] * 3


def test_panel_of_several_series_matches_one_by_one():
    series = [_seasonal_series(n, 24, seed=n) for n in (80, 260, 300)]
    panel = Panel.from_arrays(series, season_length=24)
    for cls in ALL_BASELINES:
        together = cls().fit(panel).predict(48)
        for i, y in enumerate(series):
            np.testing.assert_array_equal(together[i], _fit_one(cls, y, 24, 48))
