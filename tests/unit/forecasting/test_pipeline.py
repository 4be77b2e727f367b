"""The forecasting pipeline's plain functions on a tiny panel (no Metaflow, no MLflow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.forecasting import generate_series
from stackml.forecasting.pipeline import (
    ForecastConfig,
    PipelineResult,
    check_data,
    load_data,
    model_columns,
    run_pipeline,
)
from stackml.pipelines import Source
from stackml.warehouse import connect

H = 7


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = generate_series(
        n_series=4, freq="D", min_length=90, max_length=110, season_length=7, with_trend=True, random_state=3
    )
    train = df.groupby("unique_id").head(-H).reset_index(drop=True)
    test = df.groupby("unique_id").tail(H).reset_index(drop=True)
    return train, test


@pytest.fixture(scope="module")
def result(panel: tuple[pd.DataFrame, pd.DataFrame]) -> PipelineResult:
    train, test = panel
    config = ForecastConfig(
        horizon=H, season_length=7, freq="D", models=("snaive", "theta", "rwd"), n_windows=2
    )
    with connect("duckdb:///:memory:") as wh:
        return run_pipeline(train, config, warehouse=wh, run_id="t1", test=test)


def test_naive2_is_always_a_candidate_and_owa_is_relative_to_it(result: PipelineResult) -> None:
    assert result.config.candidates == ("snaive", "theta", "rwd", "naive2")
    scores = result.scores.set_index("model")
    assert scores.loc["Naive2", "owa"] == pytest.approx(1.0)
    assert {"SeasonalNaive", "Theta", "Naive2", "Ensemble2"} <= set(scores.index)


def test_a_candidate_far_worse_than_seasonal_naive_stops_after_one_window(result: PipelineResult) -> None:
    # a random walk with drift on strongly weekly data cannot win: it is not fitted to the end
    assert "RWD" not in set(result.scores["model"])
    assert "stopped after its first backtest window" in result.skipped["rwd"]
    assert "rwd" not in result.alias_names.values()


def test_choice_is_the_simplest_within_noise_of_the_lowest_backtest_owa(result: PipelineResult) -> None:
    from stackml.forecasting.selection import owa_standard_errors

    ranked = result.scores.sort_values("owa")
    best = ranked["model"].iloc[0]
    errors = owa_standard_errors(result.by_series, result.scores, best)
    chosen = result.scores.set_index("model").loc[result.choice.alias, "owa"]
    assert chosen - ranked["owa"].iloc[0] <= errors[result.choice.alias] + 1e-12
    alias = result.choice.alias
    assert result.members == (list(result.ensembles[alias]) if alias in result.ensembles else [alias])


def test_the_result_carries_each_alias_model_name(result: PipelineResult) -> None:
    assert result.alias_names == {
        "SeasonalNaive": "snaive",
        "Theta": "theta",
        "Naive2": "naive2",
    }
    assert not any(hasattr(fc, "_stackml_name") for fc in result.forecasters.values())
    assert "Theta-lo-80" in result.forecasts and "Theta-hi-95" in result.forecasts


def test_ensembles_are_means_of_the_best_singles_on_the_same_windows(result: PipelineResult) -> None:
    singles = result.scores[
        ~result.scores["model"].str.startswith("Ensemble") & (result.scores["model"] != "Naive2")
    ]
    top2 = tuple(singles.sort_values("owa")["model"].head(2))
    assert result.ensembles["Ensemble2"] == top2
    np.testing.assert_allclose(result.backtest["Ensemble2"], result.backtest[list(top2)].mean(axis=1))


def test_forecasts_have_conformal_intervals_for_every_alias(result: PipelineResult, panel) -> None:
    train, _ = panel
    fc = result.forecasts
    assert len(fc) == train["unique_id"].nunique() * H
    for alias in model_columns(fc):
        lo80, hi80 = fc[f"{alias}-lo-80"], fc[f"{alias}-hi-80"]
        lo95, hi95 = fc[f"{alias}-lo-95"], fc[f"{alias}-hi-95"]
        assert (
            (lo95 <= lo80).all()
            and (lo80 <= fc[alias]).all()
            and (fc[alias] <= hi80).all()
            and (hi80 <= hi95).all()
        )
    assert result.widths[result.choice.alias][80.0].shape == (train["unique_id"].nunique(), H)


def test_holdout_is_scored_with_coverage(result: PipelineResult) -> None:
    held = result.holdout.set_index("model")
    assert held.loc["Naive2", "owa"] == pytest.approx(1.0)
    assert {"coverage_80", "coverage_95"} <= set(held.columns)
    assert ((held["coverage_95"] >= 0) & (held["coverage_95"] <= 1)).all()


def test_by_step_and_by_series_cover_every_model(result: PipelineResult) -> None:
    assert set(result.by_step["h"]) == set(range(1, H + 1))
    assert set(result.by_series["model"]) == set(result.scores["model"])


def test_config_collects_every_problem() -> None:
    with pytest.raises(InputError) as caught:
        ForecastConfig(
            horizon=0, n_windows=0, models=("snaive", "bogus"), level=(80, 120), data_format="wide"
        )
    message = str(caught.value)
    for part in (
        "5 problem(s) with the forecast configuration",
        "'horizon': Input should be greater than or equal to 1, got 0",
        "'n_windows': Input should be greater than or equal to 1",
        "'models': Unknown model name 'bogus'",
        "'level.1': Input should be less than 100",
        "'data_format': Input should be 'long' or 'm4-wide'",
    ):
        assert part in message
    config = ForecastConfig(horizon=3, models="snaive, theta")
    assert config.models == ("snaive", "theta") and ForecastConfig.from_json(config.to_json()) == config


def test_check_data_names_short_series_and_foreign_holdout_ids(panel) -> None:
    train, test = panel
    config = ForecastConfig(horizon=60, season_length=7, n_windows=2)
    with pytest.raises(InputError, match=r"too short|shorter"):
        check_data(train, config)
    ok = ForecastConfig(horizon=H, season_length=7)
    with pytest.raises(InputError, match=r"not in the training data, e.g. \['zz'\]"):
        check_data(train, ok, test.assign(unique_id="zz"))
    check_data(train, ok, test)


def test_load_data_long_and_m4_wide(tmp_path: Path, panel) -> None:
    train, test = panel
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_parquet(tmp_path / "test.parquet")
    config = ForecastConfig(horizon=H, test=str(tmp_path / "test.parquet"))
    loaded, held = load_data(config, Source.of(tmp_path / "train.csv"))
    assert pd.api.types.is_datetime64_any_dtype(loaded["ds"]) and len(held) == len(test)
    wide = "\n".join(['"V1","V2","V3","V4","V5"', '"H1",1,2,3,4', '"H2",5,6,7,""']) + "\n"
    (tmp_path / "w.csv").write_text(wide)
    m4, none = load_data(ForecastConfig(horizon=H, data_format="m4-wide"), Source.of(tmp_path / "w.csv"))
    assert none is None and m4.groupby("unique_id").size().to_dict() == {"H1": 4, "H2": 3}
    with pytest.raises(InputError, match="Data file not found"):
        Source.of(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="exactly one of a data file or a warehouse table; got neither"):
        Source.of()
    with pytest.raises(InputError, match=r"'test': the holdout file was not found"):
        ForecastConfig(horizon=H, test=str(tmp_path / "missing.csv"))
    (tmp_path / "ragged.csv").write_text("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,2,9\n")
    with pytest.raises(InputError, match="Could not read .*ragged.csv"):  # the warehouse's strict reader
        load_data(config, Source.of(tmp_path / "ragged.csv"))


def test_load_data_from_a_warehouse_table(panel) -> None:
    train, _ = panel
    with connect("duckdb:///:memory:") as wh:
        wh.ingest(train, "sales")
        loaded, _ = load_data(ForecastConfig(horizon=H), Source.of(table="sales"), wh)
    assert len(loaded) == len(train) and loaded["unique_id"].dtype == object


def test_auto_windows_targets_about_12000_points_within_the_shortest_series() -> None:
    from stackml.forecasting.pipeline import auto_windows, resolve_windows

    def panel(n_series: int, length: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "unique_id": np.repeat(np.arange(n_series), length),
                "ds": np.tile(np.arange(length), n_series),
                "y": 1.0,
            }
        )

    assert auto_windows(panel(414, 700), 48) == 1  # 414 x 48 points: one window is plenty
    assert auto_windows(panel(80, 700), 48) == 4  # ceil(12000 / 3840) = 4
    assert auto_windows(panel(200, 700), 48) == 2  # ceil(12000 / 9600) = 2
    assert auto_windows(panel(5, 700), 48) == 4  # capped at 4
    assert (
        auto_windows(panel(5, 104), 48) == 2
    )  # the shortest series holds only 2 windows (+8 values to fit on)
    assert auto_windows(panel(5, 200), 48, season_length=24) == 3  # two seasons (48 values) stay to fit on
    assert auto_windows(panel(5, 40), 48) == 1  # too short for any: check_data then names the series
    fixed = ForecastConfig(horizon=48, n_windows=2)
    assert resolve_windows(fixed, panel(414, 700)) is fixed
    assert resolve_windows(ForecastConfig(horizon=48), panel(414, 700)).n_windows == 1
