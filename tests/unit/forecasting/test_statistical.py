"""ETS, Theta and ARIMA over statsforecast: accuracy on clean patterns, seasonality rules,
fallbacks, regressors."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.errors import InputError
from stackml.forecasting.models.statistical import ARIMA, ETS, Theta
from stackml.forecasting.panel import Panel

STATISTICAL = [ETS, Theta, ARIMA]
M = 12


def _seasonal(n: int, seed: int, level: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level * (1 + 0.3 * np.sin(2 * np.pi * t / M)) + 0.02 * t + rng.normal(0, 0.3, n)


@pytest.fixture(scope="module")
def split() -> tuple[Panel, np.ndarray]:
    full = [_seasonal(60, seed) for seed in range(2)]
    train = Panel.from_arrays([s[:-M] for s in full], season_length=M)
    return train, np.vstack([s[-M:] for s in full])


@pytest.fixture(scope="module")
def fitted(split: tuple[Panel, np.ndarray]) -> dict[str, object]:
    return {cls.__name__: cls().fit(split[0]) for cls in STATISTICAL}


@pytest.mark.parametrize("name", [c.__name__ for c in STATISTICAL])
def test_beats_naive_and_seasonal_pattern_is_learned(name: str, fitted: dict, split: tuple) -> None:
    train, actual = split
    forecast = fitted[name].predict(M)
    naive = np.vstack([np.repeat(train.series(i)[-1], M) for i in range(train.n_series)])
    assert np.mean(np.abs(forecast - actual)) < 0.25 * np.mean(np.abs(naive - actual))
    assert fitted[name].fallbacks_ == 0


@pytest.mark.parametrize("cls", STATISTICAL)
def test_short_constant_and_negative_series_stay_finite(cls: type) -> None:
    rng = np.random.default_rng(0)
    series = [
        np.array([5.0]),
        np.array([5.0, 6.0]),
        np.full(30, 3.0),
        rng.normal(0, 1, 30),
        np.arange(1.0, 8.0),
    ]
    model = cls().fit(Panel.from_arrays(series, season_length=M))
    out = model.predict(4)
    assert out.shape == (5, 4) and np.isfinite(out).all()
    assert np.allclose(out[0], 5.0) and np.allclose(out[2], 3.0)


def test_statsforecast_failures_fall_back_to_naive() -> None:
    model = ETS().fit(Panel.from_arrays([np.array([4.0]), np.array([1.0, 2.0, 3.0])], season_length=1))
    assert model.fallbacks_ == 2  # AutoETS refuses tiny series
    assert model.predict(2).tolist() == [[4.0, 4.0], [3.0, 3.0]]


def test_seasonality_needs_two_full_seasons() -> None:
    y = _seasonal(2 * M - 1, seed=1)
    state = ETS().fit_one(y, M)
    assert state.model.season_length == 1
    assert ETS().fit_one(_seasonal(2 * M, seed=1), M).model.season_length == M


def test_own_season_length_overrides_the_panels(split: tuple) -> None:
    model = Theta(season_length=1).fit(split[0])
    assert model.season_length_ == 1
    with pytest.raises(InputError, match=r"ETS: season_length must be a positive integer or None .*got 0"):
        ETS(season_length=0).fit(split[0])


def test_arima_uses_exogenous_regressors() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 110)
    y = 20 + 5 * x + rng.normal(0, 0.2, 110)
    panel = Panel(
        ids=np.array(["a"]), y=y[:100], indptr=np.array([0, 100]), X=x[:100, None], exog_names=("x",)
    )
    model = ARIMA().fit(panel)
    forecast = model.predict(10, X_future=x[100:, None])
    assert np.mean(np.abs(forecast[0] - y[100:])) < 0.5
    with pytest.raises(
        InputError, match=r"ARIMA was fitted with exogenous regressors and needs their future"
    ):
        model.predict(10)
    # ETS and Theta do not use regressors, so they need none
    assert ETS().fit(panel).predict(3).shape == (1, 3)


def test_arima_with_a_singular_regressor_retries_without_it() -> None:
    y = _seasonal(60, seed=2)
    panel = Panel(ids=np.array(["a"]), y=y, indptr=np.array([0, 60]), X=np.ones((60, 1)), exog_names=("one",))
    model = ARIMA().fit(panel)
    assert not model.states_[0].with_exog or model.states_[0].model is not None
    assert np.isfinite(model.predict(5, X_future=np.ones((5, 1)))).all()


def test_parameters_reach_statsforecast() -> None:
    state = ETS(model="ANN").fit_one(_seasonal(40, seed=0), 1)
    assert state.model.model == "ANN"
    assert Theta(model="STM", decomposition_type="additive")._sf_kwargs() == {
        "model": "STM",
        "decomposition_type": "additive",
    }
    assert ARIMA(approximation=True, stepwise=False)._sf_kwargs() == {
        "stepwise": False,
        "approximation": True,
    }
