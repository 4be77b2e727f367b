"""Global LightGBM / XGBoost forecasters on tiny synthetic panels."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting.features import RollingSpec
from stackml.forecasting.models.ml import LightGBMForecaster, XGBoostForecaster
from stackml.forecasting.panel import Panel

M, H = 12, 12
CLASSES = [LightGBMForecaster, XGBoostForecaster]
FAST = {"n_estimators": 80, "learning_rate": 0.1, "n_jobs": 1}


def _truth(n_series: int = 6, n: int = 144, noise: float = 0.01, seed: int = 0) -> tuple[list, np.ndarray]:
    """Series with a level, a trend and a multiplicative season;
    returns (training series, noise-free future)."""
    rng = np.random.default_rng(seed)
    train, future = [], []
    for i in range(n_series):
        t = np.arange(n + H)
        level = rng.uniform(20, 500)
        clean = level * (1 + 0.003 * t) * (1 + 0.3 * np.sin(2 * np.pi * (t + i) / M))
        train.append(clean[:n] * (1 + rng.normal(0, noise, n)))
        future.append(clean[n:])
    return train, np.vstack(future)


def _mape(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - truth) / np.abs(truth)))


@pytest.fixture(scope="module")
def seasonal() -> tuple[Panel, np.ndarray]:
    train, future = _truth()
    return Panel.from_arrays(train, season_length=M), future


@pytest.mark.parametrize("cls", CLASSES)
def test_forecasts_a_seasonal_trending_panel_well(cls, seasonal) -> None:
    panel, future = seasonal
    pred = cls(**FAST).fit(panel).predict(H)
    snaive = np.vstack([panel.series(i)[-M:] for i in range(panel.n_series)])
    # the seasonal naive misses one season of trend (about 3.6%); the global model must do clearly better
    assert _mape(pred, future) < 0.5 * _mape(snaive, future)
    assert _mape(pred, future) < 0.02


@pytest.mark.parametrize("cls", CLASSES)
def test_same_random_state_same_forecasts(cls, seasonal) -> None:
    panel, _ = seasonal
    kw = {**FAST, "params": {"subsample": 0.7} if cls is XGBoostForecaster else {"bagging_fraction": 0.7}}
    first = cls(**kw, random_state=3).fit(panel).predict(H)
    again = cls(**kw, random_state=3).fit(panel).predict(H)
    other = cls(**kw, random_state=4).fit(panel).predict(H)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "options",
    [
        {"differences": ["season"], "level_window": None},
        {"differences": [1], "scaler": "standard", "level_window": None},
        {"scaler": "robust", "level_window": "season", "season_position": True},
        {"scaler": None, "lags": [1, 12], "rolling": [(1, 6, "std"), RollingSpec(12, 3, "max")]},
    ],
)
def test_feature_and_transform_options_forecast_sensibly(options, seasonal) -> None:
    panel, future = seasonal
    model = LightGBMForecaster(**FAST, **options).fit(panel)
    pred = model.predict(H)
    assert pred.shape == future.shape and np.isfinite(pred).all()
    assert _mape(pred, future) < 0.06
    assert len(model.feature_names_) == model.learner_.num_feature()


def test_longer_horizon_than_a_season_and_short_series_fallback() -> None:
    train, _ = _truth(n_series=3, n=100)
    # a 10-value series is too short for seasonal differencing: it gets its last value,
    # the others a real forecast
    panel = Panel.from_arrays([*train, np.arange(1.0, 11.0)], season_length=M)
    model = LightGBMForecaster(**FAST, differences=["season"]).fit(panel)
    pred = model.predict(30)
    assert pred.shape == (4, 30) and np.isfinite(pred).all()
    assert (pred[3] == 10.0).all()
    # a short series forecasts with missing long lags, so rows with missing long lags were kept for training
    assert model.short_history_


def test_rows_with_missing_lags_train_only_when_some_series_is_short(seasonal) -> None:
    panel, _ = seasonal  # 6 series of 144 values
    plain = {"rolling": [], "level_window": None}
    complete = LightGBMForecaster(**FAST, **plain, lags=[1, 12, 24]).fit(panel)
    assert not complete.short_history_ and complete.n_train_rows_ == 6 * (144 - 24)
    # lag 150 is missing at every forecast origin: rows without it
    # (all but the first of each series) must train
    partial = LightGBMForecaster(**FAST, **plain, lags=[1, 12, 150]).fit(panel)
    assert partial.short_history_ and partial.n_train_rows_ == 6 * (144 - 1)


def test_exogenous_and_calendar_columns_are_used() -> None:
    rng = np.random.default_rng(1)
    n, n_series, h = 120, 4, 6
    X = rng.normal(size=(n_series * (n + h), 1))
    hours = np.tile(np.arange(n + h) % M, n_series).astype(float)[:, None]
    # y is driven by the exogenous column only, so forecasts must follow the future X passed to predict
    y_all = (50 + 10 * X[:, 0]).reshape(n_series, n + h)
    X_all = X.reshape(n_series, n + h, 1)
    hours_all = hours.reshape(n_series, n + h, 1)
    panel = Panel(
        ids=np.arange(n_series),
        y=y_all[:, :n].ravel(),
        indptr=np.arange(0, n_series * n + 1, n),
        season_length=M,
        X=X_all[:, :n].reshape(-1, 1),
        exog_names=("x",),
        time_features=hours_all[:, :n].reshape(-1, 1),
        time_feature_names=("hour",),
        extra={"future_time_features": lambda k: hours_all[:, n : n + k].reshape(-1, 1)},
    )
    future_x = X_all[:, n:].reshape(-1, 1)
    kw = {"n_estimators": 150, "learning_rate": 0.1, "n_jobs": 1, "lags": [1]}
    model = LightGBMForecaster(**kw, level_window=None).fit(panel)
    assert model.feature_names_[-2:] == ["hour", "x"]
    pred = model.predict(h, future_x)
    assert np.mean(np.abs(pred - y_all[:, n:])) < 2.0  # y spans about +-20 around 50
    # relative to the last value, the change of y follows the change of x:
    # the previous x becomes a feature too
    relative = LightGBMForecaster(**kw).fit(panel)
    assert relative.feature_names_[-3:] == ["hour", "x", "x_prev"]
    assert np.corrcoef(relative.predict(h, future_x).ravel(), y_all[:, n:].ravel())[0, 1] > 0.8
    with pytest.raises(
        InputError, match=r"fitted with 1 exogenous columns, so predict needs their future values"
    ):
        model.predict(h)
    with pytest.raises(
        InputError, match=r"future exogenous values have shape \(5, 1\), expected \(4, 6, 1\)"
    ):
        model.predict(h, np.zeros((5, 1)))


def test_calendar_features_are_skipped_without_future_values() -> None:
    train, _ = _truth(n_series=2, n=60)
    panel = Panel.from_arrays(train, season_length=M)
    with_tf = replace(panel, time_features=np.zeros((len(panel.y), 1)), time_feature_names=("h",))
    model = LightGBMForecaster(**FAST).fit(with_tf)
    assert "h" not in model.feature_names_ and model.predict(3).shape == (2, 3)


def test_season_position_follows_integer_time() -> None:
    """With integer ds the position in season is absolute, so series that start at other phases line up."""
    rng = np.random.default_rng(4)
    starts, n = [0, 5, 7], 240
    series = [10 + 5 * (np.arange(s, s + n) % M == 0) + rng.normal(0, 0.01, n) for s in starts]
    panel = Panel.from_arrays(series, season_length=M)
    panel.extra.update(ds=np.concatenate([np.arange(s, s + n) * 2 for s in starts]), freq=2)
    model = LightGBMForecaster(**FAST, lags=[1, 2]).fit(panel)
    np.testing.assert_array_equal(model.start_, starts)
    pred = model.predict(H)
    # the spike every M steps is only visible through the position feature (lags 1 and 2 cannot see it coming)
    spikes = np.vstack([(np.arange(s + n, s + n + H) % M == 0) for s in starts])
    assert np.all(pred[spikes] > 13) and np.all(pred[~spikes] < 12)


def test_season_length_one_works() -> None:
    rng = np.random.default_rng(2)
    panel = Panel.from_arrays([10 + rng.normal(0, 1, 40).cumsum() for _ in range(3)], season_length=1)
    for cls in CLASSES:
        pred = cls(**FAST).fit(panel).predict(5)
        assert pred.shape == (3, 5) and np.isfinite(pred).all()


def test_invalid_arguments_are_reported_together() -> None:
    panel = Panel.from_arrays([np.arange(50.0)], season_length=1)
    bad = LightGBMForecaster(
        n_estimators=0,
        learning_rate=-1,
        lags=[0],
        scaler="minmax",
        differences=[0],
        level_window=0,
        params=[1],
    )
    with pytest.raises(InputError) as err:
        bad.fit(panel)
    for part in (
        "n_estimators must be a positive integer, got 0",
        "learning_rate must be a positive number, got -1",
        "lags must be positive integers, got [0]",
        "scaler must be one of",
        "differences must hold positive integers or 'season', got 0",
        "level_window must be a positive integer, 'season' or None, got 0",
        "params must be a dict",
    ):
        assert part in str(err.value)
    with pytest.raises(InputError, match="missing or infinite"):
        LightGBMForecaster(**FAST).fit(Panel.from_arrays([np.array([1.0, np.nan, 3.0] * 10)]))
    with pytest.raises(InputError, match="too short to build training rows"):
        LightGBMForecaster(**FAST, lags=[30]).fit(Panel.from_arrays([np.arange(10.0)]))
    with pytest.raises(NotFittedError):
        XGBoostForecaster().predict(3)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_fitted_model_pickles(cls, seasonal) -> None:
    panel, _ = seasonal
    model = cls(**FAST).fit(panel)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(H), model.predict(H))


def test_exogenous_names_that_clash_once_sanitised() -> None:
    rng = np.random.default_rng(5)
    n = 60
    base = Panel.from_arrays([10 + rng.normal(0, 1, n) for _ in range(2)], season_length=1)
    panel = replace(base, X=rng.normal(size=(2 * n, 2)), exog_names=("a b", "a_b"))
    model = LightGBMForecaster(**FAST).fit(panel)
    assert model.learner_.feature_name()[-4:] == ["a_b_8", "a_b_9", "a_b_prev_10", "a_b_prev_11"]
    assert model.predict(3, rng.normal(size=(6, 2))).shape == (2, 3)
