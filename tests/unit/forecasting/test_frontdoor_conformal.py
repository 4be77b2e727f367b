"""Conformal prediction intervals: the quantile rule against a loop-by-loop oracle,
and coverage in backtests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackml.forecasting import Forecaster
from stackml.forecasting.conformal import conformal_half_widths, insample_scale
from stackml.forecasting.models.base import LocalModel


class Mean(LocalModel):
    default_alias = "Mean"

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return float(np.mean(y))

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, state)


def _oracle(residuals: np.ndarray, scales: np.ndarray, level: float) -> np.ndarray:
    """The documented rule, written with plain loops."""
    n_windows, n_series, h = residuals.shape
    out = np.zeros((n_series, h))
    k = math.ceil((n_windows + 1) * level / 100)
    for i in range(n_series):
        for j in range(h):
            if k <= n_windows:
                out[i, j] = sorted(abs(residuals[w, i, j]) for w in range(n_windows))[k - 1]
            else:
                pool = sorted(
                    abs(residuals[w, s, j]) / scales[s] for w in range(n_windows) for s in range(n_series)
                )
                kk = min(math.ceil((len(pool) + 1) * level / 100), len(pool))
                out[i, j] = pool[kk - 1] * scales[i]
    return out


@pytest.mark.parametrize(("n_windows", "level"), [(2, 80), (4, 80), (3, 95), (19, 95), (30, 50), (1, 10)])
def test_half_widths_match_the_oracle(n_windows: int, level: float) -> None:
    rng = np.random.default_rng(n_windows)
    residuals = rng.normal(0, 1, (n_windows, 5, 3)) * np.arange(1, 6)[None, :, None]
    scales = rng.uniform(0.5, 2.0, 5)
    assert np.allclose(conformal_half_widths(residuals, scales, level), _oracle(residuals, scales, level))


def test_insample_scale_edge_cases() -> None:
    assert insample_scale(np.array([1.0, 3.0, 2.0, 6.0]), 2) == pytest.approx(2.0)  # |2-1|, |6-3|
    assert insample_scale(np.array([1.0, 3.0]), 12) == pytest.approx(2.0)  # too short for lag 12: lag 1
    assert insample_scale(np.full(5, 4.0)) == 4.0  # constant: mean level
    assert insample_scale(np.zeros(3)) == 1.0 and insample_scale(np.array([7.0])) == 7.0


@pytest.fixture(scope="module")
def noise_panel() -> pd.DataFrame:
    """Series of white noise around a level: the mean model's errors are exchangeable,
    so coverage is exact."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(40):
        scale = 1.0 if i % 2 else 10.0
        rows.append(
            pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(60), "y": 100 + rng.normal(0, scale, 60)})
        )
    return pd.concat(rows, ignore_index=True)


def test_backtest_coverage_is_close_to_nominal(noise_panel: pd.DataFrame) -> None:
    cv = Forecaster(models=[Mean()], conformal_windows=3).cross_validation(
        noise_panel, h=4, n_windows=3, level=[80, 95]
    )
    for level, low, high in ((80, 0.72, 0.88), (95, 0.9, 0.99)):
        inside = (cv["y"] >= cv[f"Mean-lo-{level}"]) & (cv["y"] <= cv[f"Mean-hi-{level}"])
        assert low <= inside.mean() <= high, (level, inside.mean())


def test_pooled_widths_follow_each_series_scale(noise_panel: pd.DataFrame) -> None:
    out = Forecaster(models=[Mean()], conformal_windows=2).fit(noise_panel).predict(4, level=[80])
    width = (out["Mean-hi-80"] - out["Mean-lo-80"]).groupby(out["unique_id"]).mean()
    calm = width[[f"s{i}" for i in range(1, 40, 2)]].mean()
    noisy = width[[f"s{i}" for i in range(0, 40, 2)]].mean()
    assert 6 < noisy / calm < 15  # noise differs tenfold


def test_per_series_widths_when_there_are_enough_windows(noise_panel: pd.DataFrame) -> None:
    """With 4 windows an 80% interval is the largest backtest error of that series and step."""
    data = noise_panel[noise_panel["unique_id"].isin(["s0", "s1"])]
    fc = Forecaster(models=[Mean()], conformal_windows=4).fit(data)
    out = fc.predict(3, level=[80])
    cv = Forecaster(models=[Mean()]).cross_validation(data, h=3, n_windows=4)
    cv["err"] = (cv["y"] - cv["Mean"]).abs()
    cv["step"] = cv.groupby(["unique_id", "cutoff"]).cumcount()
    expected = cv.groupby(["unique_id", "step"])["err"].max().to_numpy()
    assert np.allclose((out["Mean-hi-80"] - out["Mean"]).to_numpy(), expected)
