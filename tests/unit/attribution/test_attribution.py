"""Path attribution: every method's credit on paths small enough to work out by hand, the exact Markov chain
against a closed form, Shapley's efficiency and symmetry, journeys cut from raw touchpoints in SQL on DuckDB
and PostgreSQL, and bad input named."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.attribution import METHODS, Attribution, Paths, paths_from_touchpoints, read_paths
from stackml.attribution.markov import markov_credit
from stackml.attribution.shapley import shapley_credit
from stackml.errors import InputError

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mta" / "channelattribution_paths.csv"


@pytest.fixture()
def small() -> Paths:
    return Paths.from_records(
        ["a > b > c", "b", "c > a"], conversions=[4, 2, 1], value=[40.0, 10.0, 5.0], nulls=[6, 8, 9]
    )


def test_the_rules_split_each_path_as_they_say(small: Paths) -> None:
    shares = Attribution(["first_touch", "last_touch", "linear", "position"]).fit(small).table("conversions")
    assert shares["first_touch"].to_dict() == {"a": 4.0, "b": 2.0, "c": 1.0}
    assert shares["last_touch"].to_dict() == {"a": 1.0, "b": 2.0, "c": 4.0}
    assert shares["linear"].round(6).to_dict() == {
        "a": round(4 / 3 + 0.5, 6),
        "b": round(4 / 3 + 2, 6),
        "c": round(4 / 3 + 0.5, 6),
    }
    # U-shaped: 40% to each end, the middle 20%; a two-touch path half and half; one touch all
    assert shares["position"].round(6).to_dict() == {"a": 1.6 + 0.5, "b": 0.8 + 2.0, "c": 1.6 + 0.5}


def test_time_decay_halves_a_touch_every_half_life() -> None:
    paths = Paths.from_records(["a > b"], conversions=[1], gaps=[[7.0, 0.0]])
    credit = Attribution(["time_decay"], half_life_days=7).fit(paths).table("conversions")["time_decay"]
    assert credit.round(6).to_dict() == {"a": round(1 / 3, 6), "b": round(2 / 3, 6)}


def test_every_method_shares_sum_to_one_and_credit_sums_to_the_totals(small: Paths) -> None:
    result = Attribution().fit(small)
    for method, shares in result.shares().items():
        assert sum(shares.values()) == pytest.approx(1.0), method
    totals = result.credit.groupby("method")[["conversions", "value"]].sum()
    assert np.allclose(totals["conversions"], 7.0) and np.allclose(totals["value"], 55.0)


def test_the_markov_chain_is_solved_exactly() -> None:
    # start -> a (always); a -> conversion 1/4, null 1/4, b 1/2; b -> conversion 1/2, null 1/2.
    paths = Paths.from_records(["a", "a", "a > b", "a > b"], conversions=[1, 0, 1, 0], nulls=[0, 1, 0, 1])
    result = markov_credit(paths)
    assert result.conversion_probability == pytest.approx(0.5)
    effects = dict(zip(result.removal_effects["channel"], result.removal_effects["conversions"]))
    assert effects["a"] == pytest.approx(1.0) and effects["b"] == pytest.approx(0.5)  # without b: 1/4
    credit = dict(zip(result.credit["channel"], result.credit["conversions"]))
    assert credit == pytest.approx({"a": 2 * 2 / 3, "b": 2 * 1 / 3})


def test_higher_markov_orders_remember_where_a_visitor_came_from() -> None:
    # After a, b converts; after c, b never does: order 1 cannot tell, order 2 can.
    paths = Paths.from_records(["a > b", "c > b"], conversions=[10, 0], nulls=[0, 10])
    first = markov_credit(paths, order=1).removal_effects.set_index("channel")["conversions"]
    second = markov_credit(paths, order=2).removal_effects.set_index("channel")["conversions"]
    assert second["c"] == pytest.approx(0.0) and first["c"] > 0
    assert second["a"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="order must be 1, 2 or 3"):
        markov_credit(paths, order=4)


def test_shapley_is_efficient_and_symmetric_and_sampling_states_its_error() -> None:
    paths = Paths.from_records(["a > b", "b > a", "c"], conversions=[3, 3, 2], value=[6.0, 6.0, 1.0])
    exact = shapley_credit(paths)
    credit = dict(zip(exact.credit["channel"], exact.credit["conversions"]))
    assert exact.exact and credit == pytest.approx({"a": 3.0, "b": 3.0, "c": 2.0})
    sampled = shapley_credit(paths, exact_up_to=1, permutations=400, random_state=1)
    assert not sampled.exact and {"conversions_se", "value_se"} <= set(sampled.credit.columns)
    assert sampled.credit["conversions"].sum() == pytest.approx(8.0)
    assert np.allclose(
        sampled.credit["conversions"], [3.0, 3.0, 2.0], atol=4 * sampled.credit["conversions_se"].max() + 1e-9
    )


@pytest.mark.skipif(not DATA.is_file(), reason=f"the ChannelAttribution paths fixture is not at {DATA}")
def test_the_aggregated_format_is_read_and_attributed_fast() -> None:
    paths = read_paths(DATA)
    assert (len(paths), paths.conversions, len(paths.channels)) == (10_000, 19_785.0, 12)
    result = Attribution([m for m in METHODS if m != "neural"]).fit(
        paths
    )  # the sequence model has its own tests
    assert set(result.shares()) == {
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position",
        "markov",
        "shapley",
    }
    assert sum(result.seconds.values()) < 10
    # the heuristics count touches: first touch credits each path's first channel with its conversions
    first = result.table("conversions")["first_touch"]
    expected = paths.frame.groupby(paths.frame["path"].map(lambda p: p[0]))["conversions"].sum()
    assert first.to_dict() == pytest.approx(expected.to_dict())


def test_bad_paths_are_named_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "paths.csv"
    bad.write_text(
        "path;total_conversions;total_conversion_value;total_null\na > b;1;2.0;3\n;1;0;0\nc;-2;0;1\n"
    )
    with pytest.raises(InputError) as caught:
        read_paths(bad)
    assert "1 path(s) with no channel" in str(
        caught.value
    ) and "'conversions' must be a finite number >= 0" in str(caught.value)
    with pytest.raises(InputError, match="lacks the column"):
        read_paths(pd.DataFrame({"route": ["a"]}))
    with pytest.raises(InputError, match="no conversions"):
        Paths.from_records(["a"], conversions=[0], nulls=[3])
    with pytest.raises(ValueError, match="unknown method 'nural'"):
        Attribution(["nural"])


def touchpoints() -> pd.DataFrame:
    t0 = datetime(2026, 1, 1)
    rows = [
        ("u1", t0, "search", 0, 0.0),
        ("u1", t0 + timedelta(days=1), "email", 0, 0.0),
        ("u1", t0 + timedelta(days=2), "search", 1, 10.0),  # converts: journey 1 ends here
        ("u1", t0 + timedelta(days=3), "display", 0, 0.0),  # journey 2, no conversion
        ("u2", t0, "display", 0, 0.0),  # 41 days before u2's conversion: outside the 30-day lookback
        ("u2", t0 + timedelta(days=40), "email", 0, 0.0),
        ("u2", t0 + timedelta(days=41), "search", 1, 5.0),
    ]
    return pd.DataFrame(rows, columns=["user_id", "ts", "channel", "conversion", "value"])


def test_journeys_are_cut_from_raw_touchpoints_in_sql(warehouse_url: str) -> None:
    from stackml.warehouse import connect

    with connect(warehouse_url) as wh:
        wh.ingest(touchpoints(), "touchpoints")
        paths = paths_from_touchpoints(wh, "touchpoints", lookback_days=30, out="journeys")
        written = wh.query("SELECT path, conversions, value, nulls, gaps FROM journeys ORDER BY path")
    got = {
        (p, c, v, n): g
        for p, c, v, n, g in paths.frame[["path", "conversions", "value", "nulls", "gaps"]].itertuples(
            index=False
        )
    }
    assert got == {
        (("search", "email", "search"), 1.0, 10.0, 0.0): (2.0, 1.0, 0.0),
        (("display",), 0.0, 0.0, 1.0): (0.0,),
        (("email", "search"), 1.0, 5.0, 0.0): (1.0, 0.0),
    }
    assert written["path"].tolist() == ["display", "email > search", "search > email > search"]


def test_bad_touchpoints_are_refused_before_anything_is_written(warehouse_url: str) -> None:
    from stackml.warehouse import connect

    rows = pd.concat([touchpoints(), touchpoints().iloc[[0]]], ignore_index=True)
    rows.loc[2, "value"] = -1.0
    with connect(warehouse_url) as wh:
        wh.ingest(rows, "touchpoints")
        with pytest.raises(InputError) as caught:
            paths_from_touchpoints(wh, "touchpoints", out="journeys")
        assert not wh.has_table("journeys")
        with pytest.raises(InputError, match="lacks the column"):
            paths_from_touchpoints(wh, "touchpoints", user_column="visitor")
    assert "1 touchpoint(s) repeated" in str(caught.value) and "1 row(s) with a negative value" in str(
        caught.value
    )


def test_a_user_with_a_flood_of_touchpoints_is_warned_about(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from stackml.attribution import paths as paths_module
    from stackml.warehouse import connect

    monkeypatch.setattr(paths_module, "HEAVY_USER_TOUCHES", 3)  # u1 has 4 touchpoints
    with connect(warehouse_url) as wh:
        wh.ingest(touchpoints(), "touchpoints")
        with caplog.at_level("WARNING", logger="stackml.attribution.paths"):
            paths = paths_from_touchpoints(wh, "touchpoints")
    assert len(paths) == 3 and "1 user(s) in 'touchpoints' have more than 3 touchpoints" in caplog.text
