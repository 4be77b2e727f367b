"""Mean, median and backtest-chosen combinations of member models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting.models.base import LocalModel
from stackml.forecasting.models.ensemble import BestOnBacktest, MeanEnsemble, MedianEnsemble
from stackml.forecasting.panel import Panel


class Constant(LocalModel):
    """Forecasts a fixed value, so ensemble arithmetic is easy to check."""

    default_alias = "Constant"

    def __init__(self, *, value: float = 0.0, alias: str | None = None) -> None:
        super().__init__(alias=alias)
        self.value = value

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return None

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, self.value)


class Last(LocalModel):
    default_alias = "Last"

    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        return float(y[-1])

    def predict_one(self, state: Any, h: int) -> np.ndarray:
        return np.full(h, state)


def _consts(*values: float) -> list[Constant]:
    return [Constant(value=v, alias=f"c{v:g}") for v in values]


@pytest.fixture(scope="module")
def panel() -> Panel:
    # series a sits at 10 with little noise, series b at 30 with ten times more: a backtest tells which
    # constant suits which series, and scaled errors weigh a miss on the calm series more
    rng = np.random.default_rng(0)
    return Panel.from_arrays([10 + rng.normal(0, 0.1, 40), 30 + rng.normal(0, 1.0, 40)], ids=["a", "b"])


def test_mean_and_median(panel: Panel) -> None:
    members = _consts(1, 2, 9)
    assert np.allclose(MeanEnsemble(models=members).fit(panel).predict(3), 4.0)
    assert np.allclose(MedianEnsemble(models=members).fit(panel).predict(3), 2.0)


def test_members_from_registry_names(panel: Panel) -> None:
    model = MeanEnsemble(models=["naive", "rwd"]).fit(panel)
    assert [m.name for m in model.members_] == ["Naive", "RWD"]
    assert np.allclose(model.predict(2), model.member_forecasts(2).mean(axis=0))


def test_fitting_does_not_touch_the_given_members(panel: Panel) -> None:
    member = Last()
    MeanEnsemble(models=[member, Constant()]).fit(panel)
    assert not hasattr(member, "n_series_")


def test_prefitted_members_are_reused_only_for_the_same_panel(panel: Panel) -> None:
    ready = Last().fit(panel)
    model = MeanEnsemble(models=[Last(), Constant()])
    model.use_prefitted({repr(Last()): ready})
    model.fit(panel)
    assert model.members_[0] is ready
    other = Panel.from_arrays([np.ones(5)])
    model.use_prefitted({repr(Last()): ready})
    model.fit(other)
    assert model.members_[0] is not ready and model.predict(1).shape == (1, 1)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (None, r"MeanEnsemble needs member models, got models=None"),
        ([Constant(), Constant()], r"members share the aliases \['Constant'\]"),
        ([Constant(), 5], r"5 is neither a ForecastModel nor a registry name"),
        ([Constant(), MeanEnsemble(models=[Last()])], r"MeanEnsemble is an ensemble; nest members directly"),
        (["naive", "nope"], r"Unknown model name 'nope'"),
    ],
)
def test_bad_members(models: Any, message: str, panel: Panel) -> None:
    with pytest.raises(InputError, match=message):
        MeanEnsemble(models=models).fit(panel)


def test_best_on_backtest_picks_the_member_with_the_lowest_error(panel: Panel) -> None:
    model = BestOnBacktest(models=_consts(10, 30, 20)).fit(panel)
    # 10 misses the noisy series b by 20 (about 20 of its scales), 30 misses the calm series a by 20
    # (about 200)
    assert np.allclose(model.predict(4), 10.0)
    assert model.weights_[:, 0].tolist() == [1.0, 0.0, 0.0]
    errors = model.backtest_errors_[4]
    assert errors[0].mean() < errors[2].mean() < errors[1].mean()


def test_best_on_backtest_per_series(panel: Panel) -> None:
    model = BestOnBacktest(models=_consts(10, 30, 20), per_series=True).fit(panel)
    assert np.allclose(model.predict(4), [[10.0] * 4, [30.0] * 4])
    assert not model.is_global  # local members and per-series choice: can be fitted chunk by chunk


@pytest.mark.parametrize(
    ("combination", "expected_weights"),
    [("inverse_error", None), ("mean_top_k", [0.5, 0.0, 0.5])],
)
def test_best_on_backtest_combinations(combination: str, expected_weights: Any, panel: Panel) -> None:
    model = BestOnBacktest(models=_consts(10, 30, 20), combination=combination, top_k=2).fit(panel)
    model.predict(2)
    weights = model.weights_[:, 0]
    assert np.isclose(weights.sum(), 1.0)
    if expected_weights is not None:
        assert np.allclose(weights, expected_weights)
    else:  # weights fall as the scaled error grows: 10, then 20, then 30
        assert weights[0] > weights[2] > weights[1]


def test_supplied_backtest_errors_replace_the_own_backtest(panel: Panel) -> None:
    model = BestOnBacktest(models=_consts(10, 30)).fit(panel)
    model.set_backtest_errors(3, {"c10": np.array([5.0, 5.0]), "c30": np.array([1.0, 1.0])})
    assert np.allclose(model.predict(3), 30.0)
    assert np.allclose(
        model.predict(2), 10.0
    )  # another horizon: its own backtest again (ties go to the first)
    with pytest.raises(InputError, match=r"backtest errors are missing for members \['c30'\]"):
        model.set_backtest_errors(3, {"c10": np.zeros(2)})
    with pytest.raises(InputError, match=r"backtest errors cover 3 series, the panel has 2"):
        model.set_backtest_errors(3, {"c10": np.zeros(3), "c30": np.zeros(3)})


def test_series_too_short_for_the_backtest_are_left_out() -> None:
    panel = Panel.from_arrays([np.full(3, 10.0), np.full(30, 30.0)])
    model = BestOnBacktest(models=_consts(10, 30)).fit(panel)
    out = model.predict(5)  # series 0 (3 values) cannot hold a 5-step window; series 1 decides
    assert np.allclose(out, 30.0) and np.isnan(model.backtest_errors_[5][:, 0]).all()
    lonely = BestOnBacktest(models=_consts(10, 30)).fit(Panel.from_arrays([np.full(3, 10.0)]))
    assert np.allclose(lonely.predict(5), 20.0)  # nothing to score: plain mean


def test_best_on_backtest_bad_arguments_and_not_fitted(panel: Panel) -> None:
    with pytest.raises(
        InputError, match=r"combination must be one of .*got 'vote'.*top_k must be a positive"
    ):
        BestOnBacktest(models=_consts(1, 2), combination="vote", top_k=0).fit(panel)
    with pytest.raises(InputError, match=r"metric must be 'mase' or 'smape', got 'mape'.*n_windows must be"):
        BestOnBacktest(models=_consts(1, 2), metric="mape", n_windows=0).fit(panel)
    with pytest.raises(NotFittedError, match=r"BestOnBacktest is not fitted yet"):
        BestOnBacktest(models=_consts(1, 2)).set_backtest_errors(1, {})


def test_smape_metric_and_several_windows(panel: Panel) -> None:
    model = BestOnBacktest(models=_consts(10, 30, 20), metric="smape", n_windows=3).fit(panel)
    model.predict(2)
    assert model.backtest_errors_[2].shape == (3, 2)
    assert np.allclose(model.backtest_errors_[2][0], [0.0, 100.0], atol=5)  # 10 vs ~10 and 10 vs ~30
