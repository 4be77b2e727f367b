"""Bad input is reported in full, before any model is built (no sampling in this module)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.mmm import MediaMixModel, load_lift_tests, outputs, simulate
from stackml.mmm._design import build_design
from stackml.mmm.calibration import LIFT_TEST_COLUMNS, build_lift_design, counterfactual_spend
from stackml.mmm.diagnostics import diagnose


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate("2y_3ch", seed=1, n_periods=60).frame


def model(**kwargs) -> MediaMixModel:
    return MediaMixModel("date", kwargs.pop("channels", ["search", "social", "tv"]), "revenue", **kwargs)


def test_every_frame_problem_is_listed_at_once(frame) -> None:
    bad = frame.drop(columns=["tv"]).assign(search=frame["search"] * -1, social=frame["social"].astype(str))
    with pytest.raises(InputError) as info:
        model(control_columns=["promo", "holiday"]).fit(bad.head(10))
    message = str(info.value)
    assert "4 problem(s) with the media-mix model's input" in message
    assert "missing columns ['tv', 'holiday']" in message
    assert "channel 'search' has 10 negative spend values" in message
    assert "column 'social' is not numeric (dtype object)" in message
    assert "too few rows: 10; this model needs at least" in message
    assert "aggregate_touchpoints" in info.value.hint


def test_settings_problems_are_listed_with_the_data_problems(frame) -> None:
    bad = model(
        adstock="exponential", saturation="tanh", yearly_seasonality=-1, l_max=0, time_varying_intercept="yes"
    )
    with pytest.raises(InputError) as info:
        bad.fit(frame.assign(tv=np.nan), draws=0, chains=1.5, sampler="stan")
    message = str(info.value)
    for expected in (
        "unknown adstock 'exponential'; choose one of ['delayed', 'geometric', 'weibull', 'weibull_pdf']",
        "unknown saturation 'tanh'; "
        "choose 'default', 'auto' or one of ['hill', 'logistic', 'michaelis_menten']",
        "'l_max' must be an int >= 1, got 0",
        "'yearly_seasonality' must be an int >= 0 (the Fourier order), got -1",
        "'time_varying_intercept' must be True or False, got 'yes'",
        "'draws' must be an int >= 1, got 0",
        "'chains' must be an int >= 1, got 1.5",
        "'sampler' must be one of ['nutpie', 'pymc'], got 'stan'",
        "column 'tv' has 60 missing or infinite values",
    ):
        assert expected in message


def test_dates_must_be_dates_unique_and_evenly_spaced(frame) -> None:
    with pytest.raises(InputError, match=r"column 'date' has values that are not dates, e\.g\. \['soon'\]"):
        model().fit(frame.assign(date=frame["date"].astype(str).where(frame.index > 0, "soon")))
    with pytest.raises(InputError, match="column 'date' has repeated dates"):
        model().fit(pd.concat([frame, frame.tail(1)]))
    with pytest.raises(InputError, match="not evenly spaced"):
        build_design(
            frame.drop(index=[5, 6]),
            date_column="date",
            channels=("tv",),
            controls=(),
            target_column="revenue",
            fourier_order=2,
            trend=True,
        )


def test_roles_and_priors_are_checked(frame) -> None:
    with pytest.raises(InputError) as info:
        model(channels=["search", "revenue"], roas_prior={"search": (2.0, -1.0), "radio": (1.0, 1.0)}).fit(
            frame
        )
    message = str(info.value)
    assert "columns named in more than one role: ['revenue']" in message
    assert "roas_prior for 'search' must be (mean, sd) with both > 0, got (2.0, -1.0)" in message
    assert "roas_prior names channel 'radio', which is not in channel_columns" in message
    assert "roas_prior has no (mean, sd) for channels ['revenue']" in message
    with pytest.raises(InputError, match="channel 'tv' has no positive spend"):
        model().fit(frame.assign(tv=0.0))


def test_unfitted_model_says_so(frame) -> None:
    for use in (lambda m: m.predict(frame), lambda m: m.expected_response(frame), outputs.roas, diagnose):
        with pytest.raises(NotFittedError, match=r"not fitted yet.*Call \.fit\(df\)"):
            use(model())


def lift_rows(**changes) -> pd.DataFrame:
    row = {
        "channel": "tv",
        "start_date": "2022-03-07",
        "end_date": "2022-04-03",
        "spend_change": -1000.0,
        "incremental_target": -2500.0,
        "incremental_target_sd": 300.0,
    }
    return pd.DataFrame([{**row, **changes}])


def test_lift_test_csv_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "lift.csv"
    lift_rows().to_csv(path, index=False)
    tests = load_lift_tests(path)
    assert list(tests.columns) == list(LIFT_TEST_COLUMNS) and tests["start_date"].dtype.kind == "M"
    with pytest.raises(InputError, match="Lift-test file not found"):
        load_lift_tests(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"missing columns \['incremental_target_sd'\]"):
        load_lift_tests(lift_rows().drop(columns=["incremental_target_sd"]))
    bad = pd.concat(
        [
            lift_rows(end_date="2022-01-01"),
            lift_rows(incremental_target_sd=0, spend_change="x"),
            lift_rows(start_date="someday", spend_change=0.0),
        ]
    )
    with pytest.raises(InputError) as info:
        load_lift_tests(bad)
    message = str(info.value)
    for expected in (
        "row 1: end_date 2022-01-01 is before start_date 2022-03-07",
        "row 2: 'spend_change' is not a finite number ('x')",
        "row 2: incremental_target_sd must be > 0, got 0",
        "row 3: 'start_date' is not a date ('someday')",
        "row 3: spend_change is 0",
    ):
        assert expected in message


def test_lift_tests_must_fit_the_data(frame) -> None:
    design = build_design(
        frame,
        date_column="date",
        channels=("search", "tv"),
        controls=(),
        target_column="revenue",
        fourier_order=2,
        trend=True,
    )
    window_spend = frame.loc[(frame["date"] >= "2022-03-07") & (frame["date"] <= "2022-04-03"), "tv"].sum()
    tests = load_lift_tests(
        pd.concat(
            [
                lift_rows(channel="radio"),
                lift_rows(start_date="2030-01-01", end_date="2030-02-01"),
                lift_rows(spend_change=-2 * window_spend - 1),
            ]
        )
    )
    with pytest.raises(InputError) as info:
        build_lift_design(tests, design, l_max=8)
    message = str(info.value)
    assert "row 1: channel 'radio' is not one of the model's ['search', 'tv']" in message
    assert "row 2: the window 2030-01-01..2030-02-01 holds no period of the data" in message
    assert "row 3: spend_change" in message and "is below minus the window's spend" in message
    lift = build_lift_design(load_lift_tests(lift_rows(spend_change=-window_spend)), design, l_max=8)
    assert lift.n_tests == 1 and lift.mask.sum() == 4 + 7  # four weeks plus the carryover tail


def test_counterfactual_spend_spreads_the_change() -> None:
    spend = np.array([1.0, 2.0, 3.0, 4.0])
    window = np.array([False, True, True, False])
    np.testing.assert_allclose(counterfactual_spend(spend, window, -5.0), [1, 0, 0, 4])  # go dark
    np.testing.assert_allclose(counterfactual_spend(spend, window, 2.5), [1, 3, 4.5, 4])  # proportional
    np.testing.assert_allclose(
        counterfactual_spend(np.zeros(4), window, 2.0), [0, 1, 1, 0]
    )  # evenly from zero


def test_prior_overrides_are_checked(frame) -> None:
    bad = model(priors={"beta_tv": ("HalfNormal", {"sigma": 1}), "saturation_lam": "Gamma"})
    with pytest.raises(InputError) as info:
        bad.fit(frame)
    message = str(info.value)
    assert "priors names unknown variable 'beta_tv'" in message and "'saturation_lam'" in message
    assert "prior for 'saturation_lam' must be (distribution name, kwargs dict), got 'Gamma'" in message


def test_go_dark_lift_test_written_with_six_decimals_is_accepted(frame, tmp_path: Path) -> None:
    """Issue 17: a go-dark test rounded to 6 decimals may remove a hair more than the window's spend."""
    window = (frame["date"] >= "2022-03-07") & (frame["date"] <= "2022-04-03")
    # Small spend units whose window total rounds away from zero at the 6th decimal (41.983105 > 41.98310451):
    # relative 1.2e-8, which the old strict comparison (1e-9) rejected with "-41.9831 ... (-41.9831)".
    small = frame.assign(tv=frame["tv"] * (41.98310451 / frame.loc[window, "tv"].sum()))
    design = build_design(
        small,
        date_column="date",
        channels=("search", "tv"),
        controls=(),
        target_column="revenue",
        fourier_order=2,
        trend=True,
    )
    window_spend = float(design.spend[np.asarray(window), 1].sum())
    path = tmp_path / "lift.csv"

    def write(spend_change: float) -> Path:
        path.write_text(
            "channel,start_date,end_date,spend_change,incremental_target,incremental_target_sd\n"
            f"tv,2022-03-07,2022-04-03,{spend_change:.6f},-2500.000000,300.000000\n"
        )
        return path

    go_dark = round(-window_spend, 6)
    assert go_dark < -window_spend  # the file's number really is below minus the window's spend
    lift = build_lift_design(load_lift_tests(write(go_dark)), design, l_max=8)
    assert lift.n_tests == 1
    changed = lift.changed_lagged[0, :, 0]
    assert changed.min() >= 0.0 and np.all(changed[np.asarray(window)] == 0.0)  # dark, never negative

    for too_much in (-window_spend * (1 + 3e-6), -window_spend * 1.01):
        with pytest.raises(InputError) as info:
            build_lift_design(load_lift_tests(write(too_much)), design, l_max=8)
        message = str(info.value)
        found = re.search(r"spend_change (\S+) is below minus the window's spend \((\S+)\) by (\S+)", message)
        assert found, message
        shown, limit, by = found.groups()
        assert shown != limit and float(shown) < float(limit)  # two distinct numbers, in the right order
        assert float(limit) == pytest.approx(-window_spend, rel=1e-9)
        assert float(by) == pytest.approx(float(limit) - float(shown), rel=1e-2)
        assert "use spend_change >= -(the channel's spend" in message
