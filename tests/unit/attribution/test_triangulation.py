"""The triangulation view: path credit beside the truth and a media-mix model, among the channels they share;
a truth file checked with every problem named; the run, its summary, tables and report carry the view."""

from __future__ import annotations

import pandas as pd
import pytest

from stackml.attribution.config import AttributionConfig
from stackml.attribution.pipeline import run_pipeline
from stackml.attribution.report import attribution_report
from stackml.attribution.simulation import simulate_journeys
from stackml.attribution.triangulation import (
    MMMView,
    References,
    credit_error,
    read_truth,
    triangulation_table,
    unmatched_channels,
)
from stackml.errors import InputError

SHARES = {
    "last_touch": {"search": 0.3, "social": 0.5, "tv": 0.0, "direct": 0.2},
    "markov": {"search": 0.5, "social": 0.2, "tv": 0.1, "direct": 0.2},
}
TRUTH = pd.DataFrame(
    {"channel": ["search", "social", "tv"], "share": [0.8, 0.0, 0.2], "roas": [2.0, 0.0, 1.5]}
)


def mmm_view(channels: tuple[str, ...] = ("search", "social", "tv", "radio")) -> MMMView:
    contribution = {"search": 600.0, "social": 100.0, "tv": 300.0, "radio": 50.0}
    roas = pd.DataFrame(
        {
            "channel": list(channels),
            "spend": [100.0] * len(channels),
            "contribution": [contribution[c] for c in channels],
            "mean": [contribution[c] / 100 for c in channels],
            "hdi_low": [contribution[c] / 200 for c in channels],
            "hdi_high": [contribution[c] / 50 for c in channels],
        }
    ).set_index("channel")
    return MMMView(model="mmm", version=3, run_id="abc", target="conversions", roas=roas)


def test_read_truth_accepts_a_frame_and_a_file(tmp_path) -> None:
    path = tmp_path / "truth.csv"
    TRUTH.to_csv(path, index=False)
    for source in (TRUTH, path, str(path)):
        truth = read_truth(source)
        assert list(truth.index) == ["search", "social", "tv"]
        assert truth["share"].tolist() == [0.8, 0.0, 0.2] and truth["roas"].tolist() == [2.0, 0.0, 1.5]


def test_read_truth_names_every_problem_at_once(tmp_path) -> None:
    bad = pd.DataFrame({"channel": ["a", "a", "b"], "share": [0.5, -0.1, float("nan")]})
    with pytest.raises(InputError) as caught:
        read_truth(bad)
    message = str(caught.value)
    assert "channel 'a' appears more than once" in message
    assert "row 2: 'share' must be a finite number >= 0, got -0.1" in message
    assert "row 3: 'share' must be a finite number >= 0" in message
    with pytest.raises(InputError, match=r"missing.*'share'.*stackml attribution simulate"):
        read_truth(pd.DataFrame({"channel": ["a"]}))
    with pytest.raises(InputError, match="the shares sum to 0.9, not 1"):
        read_truth(pd.DataFrame({"channel": ["a", "b"], "share": [0.5, 0.4]}))
    with pytest.raises(InputError, match="not found|does not exist|No such"):
        read_truth(tmp_path / "missing.csv")


def test_credit_error_rescales_each_method_over_the_truths_channels() -> None:
    errors = credit_error(SHARES, read_truth(TRUTH))
    # markov among search, social, tv: 0.625, 0.25, 0.125 against 0.8, 0, 0.2
    assert errors.loc["markov", "total_abs_error"] == pytest.approx(0.175 + 0.25 + 0.075)
    # last touch: 0.375, 0.625, 0 against 0.8, 0, 0.2
    assert errors.loc["last_touch", "total_abs_error"] == pytest.approx(0.425 + 0.625 + 0.2)
    assert list(errors.index) == ["markov", "last_touch"]  # closest first


def test_the_table_puts_every_view_on_the_common_channels() -> None:
    refs = References(truth=read_truth(TRUTH), mmm=mmm_view())
    table = triangulation_table(SHARES, refs)
    assert list(dict.fromkeys(table["view"])) == ["truth", "last_touch", "markov", "mmm"]
    assert set(table["channel"]) == {"search", "social", "tv"}  # direct and radio are not shared
    for view, rows in table.groupby("view"):
        assert rows["share"].sum() == pytest.approx(1.0), view
    mmm = table[table["view"] == "mmm"].set_index("channel")
    assert mmm.loc["search", "share"] == pytest.approx(0.6)  # 600 of 1000 among the three
    assert (mmm.loc["tv", "roas"], mmm.loc["tv", "roas_low"], mmm.loc["tv", "roas_high"]) == (3.0, 1.5, 6.0)
    assert table.loc[table["view"] == "truth", "roas"].tolist() == [2.0, 0.0, 1.5]
    assert table.loc[table["kind"] == "path", "roas"].isna().all()
    assert unmatched_channels(SHARES, refs) == {"paths": ["direct"], "mmm": ["radio"]}


def test_without_a_truth_the_mmms_channels_are_the_comparison() -> None:
    table = triangulation_table(SHARES, References(mmm=mmm_view(("search", "tv"))))
    assert set(table["channel"]) == {"search", "tv"} and set(table["kind"]) == {"path", "mmm"}


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory: pytest.TempPathFactory):
    world = simulate_journeys(1500, seed=3)
    truth_file = tmp_path_factory.mktemp("truth") / "truth.csv"
    world.paid_truth.to_csv(truth_file, index=False)
    config = AttributionConfig(methods="last_touch,linear,markov", truth_file=str(truth_file))
    return world, run_pipeline(world.paths(), config)


def test_a_run_with_a_truth_file_reports_each_methods_distance(simulated_run) -> None:
    world, run = simulated_run
    expected = world.credit_error(run.fitted.shares())["total_abs_error"]
    summary = run.summary()
    assert summary["truth"] == pytest.approx(
        dict(zip(world.paid_truth["channel"], world.paid_truth["share"]))
    )
    assert summary["credit_error"] == pytest.approx(expected.to_dict(), abs=1e-6)
    assert summary["unmatched_channels"] == {"paths": ["direct"]}
    assert run.metrics()["credit_error_markov"] == pytest.approx(expected["markov"])
    assert set(run.tables()["triangulation"]["view"]) == {"truth", "last_touch", "linear", "markov"}
    assert run.params()["truth_file"].endswith("truth.csv")


def test_the_report_shows_paths_beside_the_mmm_and_the_truth(simulated_run) -> None:
    _, run = simulated_run
    run.references = References(truth=run.references.truth, mmm=mmm_view(("search", "social", "tv")))
    html = attribution_report(run).to_html()
    assert "Triangulation: path credit beside the media-mix model and the true incremental shares" in html
    assert "Closest to the truth among the path methods:" in html and "mmm version 3 (run abc)" in html
    truth = run.references.truth["share"]  # the MMM's 0.6, 0.1, 0.3 judged like a method's credit
    expected = abs(0.6 - truth["search"]) + abs(0.1 - truth["social"]) + abs(0.3 - truth["tv"])
    assert run.summary()["mmm"]["truth_error"] == pytest.approx(expected, abs=1e-6)
    assert f"contribution shares are {expected:.2f} away." in html
    assert run.summary()["mmm"]["share"] == pytest.approx({"search": 0.6, "social": 0.1, "tv": 0.3})
    assert run.summary()["mmm"]["roas"]["tv"] == {"mean": 3.0, "hdi_low": 1.5, "hdi_high": 6.0}


def test_simulated_files_hold_touchpoints_the_weekly_table_and_the_truth(tmp_path) -> None:
    world = simulate_journeys(300, seed=2)
    files = world.write(tmp_path / "sim")
    assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == [
        "touchpoints.parquet",
        "truth.csv",
        "weekly.csv",
    ]
    assert len(pd.read_parquet(files["touchpoints.parquet"])) == len(world.touchpoints)
    weekly = pd.read_csv(files["weekly.csv"])
    assert weekly["conversions"].sum() == world.touchpoints["conversion"].sum()
    truth = read_truth(files["truth.csv"])
    assert list(truth.index) == list(world.channels)
    spend = world.weekly[list(world.channels)].sum()
    incremental = world.truth.set_index("channel")["incremental_conversions"]
    assert truth["roas"].to_dict() == pytest.approx((incremental[list(world.channels)] / spend).to_dict())
    with pytest.raises(InputError, match="already exists and is not an empty folder.*--force"):
        world.write(tmp_path / "sim")
    (tmp_path / "sim" / "notes.txt").write_text("mine")
    world.write(tmp_path / "sim", force=True)
    assert (tmp_path / "sim" / "notes.txt").read_text() == "mine"  # force replaces only the three files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
