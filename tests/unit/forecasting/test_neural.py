"""The N-HiTS-style PyTorch forecaster on tiny panels (a few hundred steps of a small network,
seconds on CPU)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting.models.neural import NHITSForecaster, _append, _windows
from stackml.forecasting.panel import Panel

pytest.importorskip("torch")

M, H = 12, 12
TINY = {"hidden_size": 32, "batch_size": 64, "max_steps": 300, "learning_rate": 3e-3, "n_models": 1}
QUICK = {**TINY, "max_steps": 30}


def _seasonal(n_series: int = 5, n: int = 120, seed: int = 0) -> tuple[Panel, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, future = [], []
    for i in range(n_series):
        t = np.arange(n + H)
        clean = rng.uniform(10, 1000) * (1 + 0.3 * np.sin(2 * np.pi * (t + 3 * i) / M))
        train.append(clean[:n] * (1 + rng.normal(0, 0.01, n)))
        future.append(clean[n:])
    return Panel.from_arrays(train, season_length=M), np.vstack(future)


@pytest.fixture(scope="module")
def fitted() -> tuple[NHITSForecaster, Panel, np.ndarray]:
    panel, future = _seasonal()
    return NHITSForecaster(**TINY, horizon=H, random_state=1).fit(panel), panel, future


def test_learns_a_clean_seasonal_panel(fitted) -> None:
    model, _, future = fitted
    pred = model.predict(H)
    mape = np.mean(np.abs(pred - future) / future)
    # the series differ 100-fold in level; per-window scaling lets one small network forecast them all
    assert mape < 0.05, mape
    assert model.input_size_ == 7 * M and 1 <= model.best_steps_[0] <= TINY["max_steps"]


def test_same_seed_same_forecasts(fitted) -> None:
    _, panel, _ = fitted
    first = NHITSForecaster(**QUICK, horizon=H, random_state=1).fit(panel).predict(H)
    again = NHITSForecaster(**QUICK, horizon=H, random_state=1).fit(panel).predict(H)
    np.testing.assert_array_equal(first, again)
    other = NHITSForecaster(**QUICK, horizon=H, random_state=2).fit(panel).predict(H)
    assert not np.array_equal(other, again)


def test_members_are_averaged(fitted) -> None:
    _, panel, _ = fitted
    pair = NHITSForecaster(**{**QUICK, "n_models": 2}, horizon=H, random_state=4).fit(panel)
    singles = [NHITSForecaster(**QUICK, horizon=H, random_state=s).fit(panel).predict(H) for s in (4, 5)]
    assert len(pair.nets_) == 2
    np.testing.assert_allclose(pair.predict(H), np.mean(singles, axis=0), rtol=1e-6)


def test_longer_and_shorter_horizons(fitted) -> None:
    model, panel, future = fitted
    long = model.predict(2 * H + 5)  # rolls forward on its own forecasts
    assert long.shape == (panel.n_series, 2 * H + 5) and np.isfinite(long).all()
    np.testing.assert_allclose(long[:, :H], model.predict(H))
    np.testing.assert_allclose(model.predict(3), model.predict(H)[:, :3])
    # one season later the pattern repeats: the rolled forecast should stay close to the truth
    assert np.mean(np.abs(long[:, H : 2 * H] - future) / future) < 0.08


def test_short_series_are_padded_and_masked() -> None:
    panel, _ = _seasonal(n_series=3, n=100)
    short = Panel.from_arrays([*(panel.series(i) for i in range(3)), np.linspace(5, 6, 20)], season_length=M)
    model = NHITSForecaster(**QUICK, horizon=H).fit(short)
    assert model.use_mask_ and model.input_size_ == 84
    pred = model.predict(H)
    assert pred.shape == (4, H) and np.isfinite(pred).all()


def test_default_horizon_and_panel_horizon() -> None:
    panel, _ = _seasonal(n_series=2, n=80)
    assert NHITSForecaster(**QUICK).fit(panel).horizon_ == 2 * M
    hinted = Panel.from_arrays([panel.series(0), panel.series(1)], season_length=M)
    hinted.extra["horizon"] = 5
    assert NHITSForecaster(**QUICK).fit(hinted).horizon_ == 5


def test_windows_gather_and_scale() -> None:
    y = np.arange(1.0, 11.0)  # two series: 1..4 and 5..10
    indptr = np.array([0, 4, 10])
    x, mask, scale = _windows(y, indptr, np.array([0, 1]), np.array([2, 4]), 3, 2)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3, 4], [6, 7, 8, 9, 10]])
    np.testing.assert_array_equal(mask, [[0, 1, 1], [1, 1, 1]])
    np.testing.assert_allclose(scale, [1.5, 7.0])
    out, ptr = _append(y, indptr, np.array([[-1.0], [-2.0]]))
    np.testing.assert_array_equal(out, [1, 2, 3, 4, -1, 5, 6, 7, 8, 9, 10, -2])
    np.testing.assert_array_equal(ptr, [0, 5, 12])


def test_errors_are_clear() -> None:
    panel, _ = _seasonal(n_series=2, n=80)
    with pytest.raises(InputError) as err:
        NHITSForecaster(max_steps=0, pool_sizes=(2, 1), downsample=(1,), learning_rate=0).fit(panel)
    for part in ("max_steps must be a positive integer", "one entry per stack", "learning_rate must be"):
        assert part in str(err.value)
    with pytest.raises(InputError, match="no series is long enough to train on"):
        NHITSForecaster(horizon=50).fit(Panel.from_arrays([np.arange(30.0)]))
    with pytest.raises(InputError, match="missing or infinite"):
        NHITSForecaster().fit(Panel.from_arrays([np.array([1.0, np.inf] * 20)]))
    with pytest.raises(NotFittedError):
        NHITSForecaster().predict(3)


def test_a_fitted_model_pickles(fitted) -> None:
    model = fitted[0]
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(H), model.predict(H))
    assert isinstance(loaded.get_params(), dict) and loaded.clone().get_params() == model.get_params()
