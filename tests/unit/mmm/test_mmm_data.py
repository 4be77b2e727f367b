"""The SQL aggregation of raw touchpoints, checked against a pandas oracle on the same rows
(DuckDB in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, TableNotFoundError
from stackml.mmm import aggregate_touchpoints, simulate
from stackml.warehouse import connect


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=5, n_periods=30)


@pytest.fixture(scope="module")
def wh(sim) -> Iterator:
    with connect("duckdb:///:memory:") as warehouse:
        warehouse.ingest(sim.touchpoints, "touchpoints")
        warehouse.ingest(sim.controls_frame, "controls")
        yield warehouse


def oracle(touchpoints: pd.DataFrame, freq: str, target: str, channels: list[str]) -> pd.DataFrame:
    """The same aggregation, written the obvious way in pandas."""
    tp = touchpoints.copy()
    day = tp["date"].dt.normalize()
    tp["period"] = day - pd.to_timedelta(day.dt.dayofweek, unit="D") if freq == "W" else day
    spend = tp.pivot_table(index="period", columns="channel", values="spend", aggfunc="sum", fill_value=0.0)
    out = spend.reindex(columns=channels, fill_value=0.0)
    out[target] = tp.groupby("period")[target].sum()
    return out.reset_index(names="date")


def test_weekly_frame_matches_the_oracle_and_the_simulator(wh, sim) -> None:
    frame = aggregate_touchpoints(
        wh, "touchpoints", controls_table="controls", controls=["promo", "price_index"]
    )
    assert list(frame.columns) == ["date", "search", "social", "tv", "promo", "price_index", "revenue"]
    expected = oracle(sim.touchpoints, "W", "revenue", ["search", "social", "tv"])
    np.testing.assert_array_equal(frame["date"].to_numpy(), expected["date"].to_numpy())
    np.testing.assert_allclose(
        frame[["search", "social", "tv", "revenue"]], expected[["search", "social", "tv", "revenue"]]
    )
    # and it reproduces the simulator's model frame exactly, controls included
    cols = ["search", "social", "tv", "promo", "price_index", "revenue"]
    np.testing.assert_allclose(frame[cols].to_numpy(), sim.frame[cols].to_numpy(), rtol=1e-12)


def test_daily_frame_with_bounds_other_target_and_chosen_channels(wh, sim) -> None:
    frame = aggregate_touchpoints(
        wh,
        "touchpoints",
        freq="D",
        target="conversions",
        channels=["tv", "search"],
        start="2022-01-05",
        end="2022-02-13",
    )
    tp = sim.touchpoints[
        (sim.touchpoints["date"] >= "2022-01-05") & (sim.touchpoints["date"] <= "2022-02-13")
    ]
    expected = oracle(tp, "D", "conversions", ["tv", "search"])
    assert list(frame.columns) == ["date", "tv", "search", "conversions"]
    assert len(frame) == 40 and frame["date"].iloc[0] == pd.Timestamp("2022-01-05")
    np.testing.assert_allclose(
        frame[["tv", "search", "conversions"]], expected[["tv", "search", "conversions"]]
    )


def test_channels_default_to_those_with_spend(wh) -> None:
    frame = aggregate_touchpoints(wh, "touchpoints")
    assert (
        "organic" not in frame.columns
    )  # no spend, so not a channel; its revenue still counts in the target


def test_accepts_a_url(tmp_path: Path, sim) -> None:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    with connect(url) as warehouse:
        warehouse.ingest(sim.touchpoints, "tp")
    assert len(aggregate_touchpoints(url, "tp")) == 30


def test_missing_table_and_columns_are_reported(wh, sim) -> None:
    with pytest.raises(TableNotFoundError, match="Table 'nope' does not exist"):
        aggregate_touchpoints(wh, "nope")
    with pytest.raises(InputError, match=r"missing columns \['cost', 'sales'\]"):
        aggregate_touchpoints(wh, "touchpoints", spend_column="cost", target="sales")
    with pytest.raises(InputError, match=r"missing columns \['discount'\]"):
        aggregate_touchpoints(wh, "touchpoints", controls_table="controls", controls=["discount"])
    with pytest.raises(InputError, match="'freq' parameter must be one of"):
        aggregate_touchpoints(wh, "touchpoints", freq="M")
    with pytest.raises(InputError, match="no controls_table"):
        aggregate_touchpoints(wh, "touchpoints", controls=["promo"])


def test_a_gap_in_the_periods_is_an_error(sim) -> None:
    tp = sim.touchpoints
    holed = tp[(tp["date"] < "2022-02-07") | (tp["date"] >= "2022-02-21")]  # two weeks without any row
    with connect("duckdb:///:memory:") as warehouse:
        warehouse.ingest(holed, "touchpoints")
        with pytest.raises(InputError, match=r"no rows for 2 period\(s\), starting at \['2022-02-07'\]"):
            aggregate_touchpoints(warehouse, "touchpoints")
