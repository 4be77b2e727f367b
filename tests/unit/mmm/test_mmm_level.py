"""The optional time-varying level of the baseline: its basis, and a fit that follows a drift in demand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackml.mmm import MediaMixModel, diagnose, simulate
from stackml.mmm._design import LEVEL_KNOT_DAYS, build_design, level_knot_count

DRAWS, CHAINS = 150, 2


def test_level_knots_are_a_quarter_apart() -> None:
    assert level_knot_count(105, 7.0) == int(np.ceil(104 * 7 / LEVEL_KNOT_DAYS)) + 1 == 9
    assert level_knot_count(10, 7.0) == 3  # never fewer than 3


def test_level_basis_interpolates_and_stays_flat_outside_the_training_period() -> None:
    dates = pd.date_range("2024-01-01", periods=60, freq="7D")
    frame = pd.DataFrame({"date": dates, "a": 1.0 + np.arange(60) % 3, "y": 100.0})
    design = build_design(
        frame,
        date_column="date",
        channels=("a",),
        controls=(),
        target_column="y",
        fourier_order=0,
        trend=True,
        time_varying_level=True,
    )
    basis = design.level_basis(design.dates)
    assert basis.shape == (60, design.level_knots) and design.level_knots == level_knot_count(60, 7.0)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0)
    assert basis[0, 0] == 1.0 and basis[-1, -1] == 1.0
    assert ((basis > 0).sum(axis=1) <= 2).all()  # each period between two neighbouring knots
    outside = pd.DatetimeIndex([dates[0] - pd.Timedelta(days=70), dates[-1] + pd.Timedelta(days=70)])
    np.testing.assert_array_equal(design.level_basis(outside), basis[[0, -1]])
    roles = {"date_column": "date", "channels": ("a",), "controls": (), "target_column": "y"}
    off = build_design(frame, **roles, fourier_order=0, trend=True)
    assert off.level_knots == 0 and off.level_basis(dates).shape == (60, 0)


@pytest.fixture(scope="module")
def drifting():
    """Simulated data whose demand steps up by a fifth of the mean halfway and back down later: a drift that
    neither the linear trend nor the yearly seasonality can follow."""
    sim = simulate("2y_3ch", seed=5, n_periods=80)
    frame = sim.frame.copy()
    t = np.arange(len(frame))
    bump = 0.2 * frame["revenue"].mean() * ((t >= 30) & (t < 60))
    frame["revenue"] = frame["revenue"] + bump
    return sim, frame, bump


def test_a_time_varying_level_follows_a_drift_the_trend_misses(drifting) -> None:
    sim, frame, bump = drifting
    fits = {}
    for varying in (False, True):
        mmm = MediaMixModel(
            "date",
            list(sim.channels),
            "revenue",
            control_columns=list(sim.controls),
            saturation="logistic",
            time_varying_intercept=varying,
        )
        fits[varying] = mmm.fit(frame, draws=DRAWS, tune=200, chains=CHAINS, random_state=3)
    flat, varying = diagnose(fits[False], min_ess=1), diagnose(fits[True], min_ess=1)
    assert varying.r2 > flat.r2
    assert varying.residual_acf1 < flat.residual_acf1
    model = fits[True]
    d = model.design_
    level = model.posterior_.baseline_parts(d.dates, d.control_values)["level"].mean(axis=0)
    # the level is higher inside the bump than outside it, by a good part of the bump
    inside = (np.arange(len(frame)) >= 30) & (np.arange(len(frame)) < 60)
    assert level[inside].mean() - level[~inside].mean() > 0.4 * bump.max()
    # predictions past the data hold the last level
    last = frame["date"].iloc[-1]
    future = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=7), periods=4, freq="7D")})
    for c in sim.channels:
        future[c] = frame[c].mean()
    for c in sim.controls:
        future[c] = 0.0
    assert np.isfinite(model.predict(future, history=True)["prediction"]).all()
    assert "level" in model.idata_.posterior and "level" not in fits[False].idata_.posterior
