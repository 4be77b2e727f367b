"""AttributionFlow end to end through the CLI: raw touchpoints in the warehouse -> journeys cut in SQL ->
every method's credit, the paths table and the report; the aggregated path format from a file; bad input
exits 2 before any flow starts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def touchpoints(n_users: int = 400, seed: int = 0) -> pd.DataFrame:
    """Users who see search, email and display; those who saw email convert more often."""
    rng = np.random.default_rng(seed)
    rows, t0 = [], datetime(2026, 1, 1)
    for user in range(n_users):
        channels = list(rng.choice(["search", "email", "display"], size=rng.integers(1, 5)))
        converted = rng.random() < (0.5 if "email" in channels else 0.1)
        for i, channel in enumerate(channels):
            last = i == len(channels) - 1
            rows.append(
                (
                    f"u{user}",
                    t0 + timedelta(days=i, hours=user % 24),
                    channel,
                    int(converted and last),
                    20.0 if converted and last else 0.0,
                )
            )
    return pd.DataFrame(rows, columns=["user_id", "ts", "channel", "conversion", "value"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stackml.config import get_settings
    from stackml.warehouse import connect

    home = tmp_path_factory.mktemp("attribution_home")
    with connect(settings=get_settings(home=home)) as wh:
        wh.ingest(touchpoints(), "touchpoints")
    return home


def test_touchpoints_in_the_warehouse_become_credit_a_paths_table_and_a_report(
    home: Path, stackml_cli
) -> None:
    proc = stackml_cli(
        home, "attribution", "run", "--table", "touchpoints", "--model-name", "touch", "--json"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert set(summary["credit"]) == {
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position",
        "markov",
        "shapley",
        "neural",
    }
    for method, shares in summary["credit"].items():
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5), method
    assert summary["credit"]["markov"]["email"] == max(summary["credit"]["markov"].values())
    assert summary["paths"]["journeys"] == 400 and summary["paths_table"] == "touch_paths"
    assert Path(summary["report"]).is_file() and summary["run_id"]
    from stackml.config import get_settings
    from stackml.warehouse import connect

    with connect(settings=get_settings(home=home)) as wh:
        assert wh.row_count("touch_paths") == 400
    # the sequence model is registered and promoted; it scores a path and credits each touch
    assert summary["registered"] and summary["model_version"] == 1 and summary["promoted"]
    assert (
        summary["neural"]["calibration"]["log_loss_after"]
        <= summary["neural"]["calibration"]["log_loss_before"]
    )
    from stackml.tracking import load_model

    model = load_model("models:/touch@champion", settings=get_settings(home=home))
    scored = model.predict(pd.DataFrame({"path": ["search > email", "display"], "gaps": ["1,0", "0"]}))
    assert list(scored.columns) == ["probability", "credit"]
    assert scored["probability"].iloc[0] > scored["probability"].iloc[1]  # email converts more
    credit = json.loads(scored["credit"].iloc[0])
    assert [c["channel"] for c in credit] == ["search", "email"] and sum(
        c["share"] for c in credit
    ) == pytest.approx(1.0)
    text = stackml_cli(
        home,
        "attribution",
        "run",
        "--table",
        "touchpoints",
        "--methods",
        "last_touch,markov",
        "--markov-order",
        "2",
    )
    assert text.returncode == 0, text.stderr[-3000:]
    assert "Share of" in text.stdout and "markov" in text.stdout


def test_the_aggregated_path_format_is_read_from_a_file(home: Path, stackml_cli, tmp_path: Path) -> None:
    paths = tmp_path / "paths.csv"
    rows = ["path;total_conversions;total_conversion_value;total_null", "search > email;30;300;70"]
    paths.write_text("\n".join([*rows, "display;2;20;98", "email;10;100;40"]) + "\n")
    proc = stackml_cli(
        home,
        "attribution",
        "run",
        "--data",
        str(paths),
        "--format",
        "paths",
        "--methods",
        "first_touch,markov",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["credit"]["first_touch"] == {
        "display": pytest.approx(2 / 42, abs=1e-6),
        "email": pytest.approx(10 / 42, abs=1e-6),
        "search": pytest.approx(30 / 42, abs=1e-6),
    }


def test_bad_input_exits_2_before_a_flow_starts(home: Path, stackml_cli, tmp_path: Path) -> None:
    unknown = stackml_cli(home, "attribution", "run", "--table", "touchpoints", "--methods", "markov,nural")
    assert unknown.returncode == 2 and "unknown method 'nural'" in unknown.stderr
    doubled = pd.concat([touchpoints(20), touchpoints(20).iloc[[0]]])
    doubled.to_csv(tmp_path / "tp.csv", index=False)
    repeated = stackml_cli(home, "attribution", "run", "--data", str(tmp_path / "tp.csv"))
    assert repeated.returncode == 2 and "1 touchpoint(s) repeated" in repeated.stderr
    assert "Traceback" not in unknown.stderr + repeated.stderr


def mmm_like_run(home: Path) -> str:
    """A real tracked run holding the ROAS table `stackml mmm fit` logs (fitting PyMC here would cost a
    minute; the demo test runs the real MMM -> attribution chain)."""
    from stackml import tracking
    from stackml.config import get_settings

    roas = pd.DataFrame(
        {
            "channel": ["search", "social", "tv"],
            "spend": [1000.0, 500.0, 800.0],
            "contribution": [3.0, 0.2, 1.0],
            "mean": [0.003, 0.0004, 0.00125],
            "hdi_low": [0.002, 0.0, 0.0008],
            "hdi_high": [0.004, 0.001, 0.0018],
        }
    )
    with tracking.start_run("mmm", params={"target": "conversions"}, settings=get_settings(home=home)) as run:
        tracking.log_table(roas, "roas")
    return run.info.run_id


def test_simulated_journeys_are_compared_with_their_truth_and_an_mmm(
    home: Path, stackml_cli, tmp_path: Path
) -> None:
    sim = stackml_cli(
        home,
        "attribution",
        "simulate",
        "--users",
        "3000",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "sim"),
        "--json",
    )
    assert sim.returncode == 0, sim.stderr[-3000:]
    files = json.loads(sim.stdout)["files"]
    run_id = mmm_like_run(home)
    proc = stackml_cli(
        home,
        "attribution",
        "run",
        "--data",
        files["touchpoints.parquet"],
        "--truth",
        files["truth.csv"],
        "--mmm",
        run_id,
        "--methods",
        "last_touch,markov",
        "--model-name",
        "simulated",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    truth = pd.read_csv(files["truth.csv"]).set_index("channel")["share"]
    assert summary["truth"] == pytest.approx(truth.to_dict(), abs=1e-6)
    assert set(summary["credit_error"]) == {"last_touch", "markov"}
    assert summary["credit_error"]["markov"] < summary["credit_error"]["last_touch"]  # retargeting fools it
    assert summary["mmm"]["run_id"] == run_id and summary["mmm"]["target"] == "conversions"
    assert summary["mmm"]["share"] == pytest.approx(
        {"search": 3 / 4.2, "social": 0.2 / 4.2, "tv": 1 / 4.2}, abs=1e-6
    )
    assert summary["unmatched_channels"] == {"paths": ["direct"]}
    html = Path(summary["report"]).read_text()
    assert "Triangulation: path credit beside the media-mix model and the true incremental shares" in html
    from stackml import tracking
    from stackml.config import get_settings

    logged = tracking.load_tables(summary["tracking_run_id"], settings=get_settings(home=home))
    assert set(logged["triangulation"]["view"]) == {"truth", "last_touch", "markov", "mmm"}
    # the credit tables as a Tableau extract next to the report, the same rows as the logged tables
    from stackml.reports import read_extract

    extract = read_extract(summary["extract"])
    assert Path(summary["extract"]).with_suffix(".html") == Path(summary["report"])
    assert set(extract) == set(logged) >= {"credit", "triangulation", "markov_transitions"}
    pd.testing.assert_frame_equal(extract["credit"], logged["credit"], check_dtype=False)
    text = stackml_cli(
        home,
        "attribution",
        "run",
        "--data",
        files["touchpoints.parquet"],
        "--truth",
        files["truth.csv"],
        "--methods",
        "last_touch",
    )
    assert text.returncode == 0 and "Distance from the true incremental shares" in text.stdout


def test_a_bad_truth_file_or_an_unknown_mmm_exits_2(home: Path, stackml_cli, tmp_path: Path) -> None:
    pd.DataFrame({"channel": ["search", "tv"], "share": [0.7, 0.7]}).to_csv(tmp_path / "t.csv", index=False)
    bad_truth = stackml_cli(
        home, "attribution", "run", "--table", "touchpoints", "--truth", str(tmp_path / "t.csv")
    )
    assert bad_truth.returncode == 2 and "the shares sum to 1.4, not 1" in bad_truth.stderr
    unknown = stackml_cli(home, "attribution", "run", "--table", "touchpoints", "--mmm", "no-such-mmm")
    assert unknown.returncode == 2 and "no-such-mmm" in unknown.stderr
    exists = stackml_cli(home, "attribution", "simulate", "--users", "10", "--out", str(tmp_path))
    assert exists.returncode == 2 and "--force" in exists.stderr
    assert "Traceback" not in bad_truth.stderr + unknown.stderr + exists.stderr
