"""The budget optimiser, on one small fitted model (nutpie's compile dominates)
and on models with known curves.

Oracles: a brute-force grid over the budget simplex scored with ``MediaMixModel.expected_response`` itself,
for the fitted three-channel model and for a two-channel model whose posterior we set by hand
(no sampling, exact curves).
"""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.mmm import MediaMixModel, simulate
from stackml.mmm._design import build_design
from stackml.mmm._posterior import PosteriorDraws
from stackml.mmm.optimize import BudgetPlan, _ResponseSurface, _thin, optimize_budget
from stackml.mmm.transforms import get_adstock, get_saturation

DRAWS, CHAINS, HORIZON = 100, 2, 8


@pytest.fixture(scope="module")
def sim():
    return simulate("2y_3ch", seed=3, n_periods=60)


@pytest.fixture(scope="module")
def model(sim) -> MediaMixModel:
    pytest.importorskip("pymc")
    pytest.importorskip("nutpie")
    mmm = MediaMixModel("date", list(sim.channels), "revenue", control_columns=list(sim.controls))
    return mmm.fit(
        sim.frame, draws=DRAWS, tune=150, chains=CHAINS, random_state=11, lift_tests=sim.lift_tests
    )


@pytest.fixture(scope="module")
def budget(sim) -> float:
    """The historical spend rate over the horizon: the budget a planner would start from."""
    return float(sim.frame[list(sim.channels)].to_numpy().mean(axis=0).sum() * HORIZON)


@pytest.fixture(scope="module")
def default_plan(model, budget) -> BudgetPlan:
    return optimize_budget(model, budget, HORIZON)


def known_model(alpha, lam, beta, *, n_draws: int = 40, jitter: float = 0.05, seed: int = 0) -> MediaMixModel:
    """A two-channel model whose posterior is set by hand: geometric adstock and logistic saturation with
    parameters scattered by ``jitter`` (log scale) around the given values, so response curves are known."""
    rng = np.random.default_rng(seed)
    sim = simulate(None, seed=1, n_periods=40, channels=("a", "b"))
    mmm = MediaMixModel("date", ["a", "b"], "revenue", yearly_seasonality=0, trend=False)
    design = build_design(
        sim.frame,
        date_column="date",
        channels=("a", "b"),
        controls=(),
        target_column="revenue",
        fourier_order=0,
        trend=False,
    )
    adstock, saturation = get_adstock("geometric", l_max=8), get_saturation("logistic")

    def scatter(values):
        return np.asarray(values, dtype=float)[None, :] * np.exp(jitter * rng.standard_normal((n_draws, 2)))

    zeros = np.zeros(n_draws)
    mmm.design_, mmm.adstock_, mmm.saturation_ = design, adstock, saturation
    mmm.posterior_ = PosteriorDraws(
        design,
        adstock,
        saturation,
        {"alpha": np.clip(scatter(alpha), 0.0, 0.95)},
        {"lam": scatter(lam)},
        scatter(beta),
        zeros,
        zeros,
        np.zeros((n_draws, 0)),
        np.zeros((n_draws, 0)),
        zeros + 1.0,
    )
    return mmm


def plan_frame(model: MediaMixModel, dates: pd.DatetimeIndex, spend: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, **{c: spend[k] for k, c in enumerate(model.channels_)}})


# -- the objective -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("history", "include_tail"), [(True, False), (False, False), (True, True)])
def test_closed_form_objective_equals_expected_response(model, history, include_tail) -> None:
    """The optimiser's fast objective is the model's own expected_response on the same draws."""
    dates = pd.date_range(model.design_.dates[-1] + pd.Timedelta(days=7), periods=HORIZON, freq="7D")
    surface = _ResponseSurface(model, model.posterior_, dates, history=history, include_tail=include_tail)
    rng = np.random.default_rng(0)
    for spend in (np.zeros(3), rng.uniform(0, 2, 3) * model.design_.spend.mean(axis=0)):
        expected = model.expected_response(
            plan_frame(model, dates, spend), history=history, include_tail=include_tail
        )
        np.testing.assert_allclose(surface.per_draw(spend), expected, rtol=1e-9, atol=1e-6)
    # the central-difference gradient matches a finite difference of expected_response
    spend = model.design_.spend.mean(axis=0)
    step = 1e-3 * spend
    for k in range(3):
        bumped = spend.copy()
        bumped[k] += step[k]
        slope = (
            model.expected_response(
                plan_frame(model, dates, bumped), history=history, include_tail=include_tail
            )
            - model.expected_response(
                plan_frame(model, dates, spend), history=history, include_tail=include_tail
            )
        ).sum(axis=1).mean() / step[k]
        assert surface.gradient(spend)[k] == pytest.approx(slope, rel=1e-2)


def test_thinning_keeps_evenly_spread_draws(model) -> None:
    thin = _thin(model.posterior_, 20)
    assert thin.n_draws == 20 and thin.beta.shape == (20, 3)
    np.testing.assert_array_equal(thin.beta[0], model.posterior_.beta[0])
    np.testing.assert_array_equal(thin.beta[-1], model.posterior_.beta[-1])
    assert _thin(model.posterior_, 10_000) is model.posterior_


# -- the plan ------------------------------------------------------------------------------------------------
def test_plan_spends_the_budget_within_bounds_and_beats_the_historical_mix(
    default_plan, model, budget
) -> None:
    plan, alloc = default_plan, default_plan.allocation
    assert list(alloc.index) == list(model.channels_)
    assert alloc["total"].sum() == pytest.approx(budget, rel=1e-9)
    assert alloc["share"].sum() == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(alloc["lower"], 0.0)
    np.testing.assert_allclose(alloc["upper"], 3.0 * model.design_.spend.mean(axis=0))
    assert (alloc["per_period"] >= alloc["lower"] - 1e-9).all()
    assert (alloc["per_period"] <= alloc["upper"] + 1e-9).all()
    mix = model.design_.spend.sum(axis=0) / model.design_.spend.sum()
    np.testing.assert_allclose(alloc["baseline_per_period"], mix * budget / HORIZON)
    assert plan.expected_response >= plan.baseline_response
    assert plan.uplift == pytest.approx(plan.expected_response - plan.baseline_response, rel=1e-9)
    assert plan.uplift_hdi[0] <= plan.uplift <= plan.uplift_hdi[1]
    assert plan.expected_response_hdi[0] <= plan.expected_response <= plan.expected_response_hdi[1]
    assert 0.0 <= plan.uplift_probability <= 1.0 and plan.converged
    assert alloc["response"].sum() == pytest.approx(plan.expected_response, rel=1e-9)
    # the plan frame is a valid spend plan, starting the period after the data, flat per channel
    assert len(plan.plan) == HORIZON and list(plan.plan.columns) == ["date", *model.channels_]
    assert plan.plan["date"].iloc[0] == model.design_.dates[-1] + pd.Timedelta(days=7)
    np.testing.assert_allclose(model.expected_response(plan.plan).sum(axis=1).mean(), plan.expected_response)
    json.dumps(plan.as_dict())  # JSON-ready for the CLI


def test_optimum_beats_a_brute_force_grid_over_the_simplex(default_plan, model, budget) -> None:
    """Oracle: every feasible split on a 1/40 grid of the three-channel simplex,
    scored with expected_response."""
    upper = default_plan.allocation["upper"].to_numpy()
    best_value, best_share = -np.inf, None
    steps = 40
    for i, j in itertools.product(range(steps + 1), repeat=2):
        if i + j > steps:
            continue
        share = np.array([i, j, steps - i - j]) / steps
        spend = share * budget / HORIZON
        if (spend > upper).any():
            continue
        value = model.expected_response(np.tile(spend, (HORIZON, 1))).sum(axis=1).mean()
        if value > best_value:
            best_value, best_share = value, share
    assert default_plan.expected_response >= best_value - 1e-9 * abs(best_value)
    np.testing.assert_allclose(default_plan.allocation["share"], best_share, atol=1.5 / steps)


@pytest.mark.parametrize(("history", "include_tail"), [(True, False), (False, True)])
def test_two_channel_optimum_matches_a_fine_grid_on_known_curves(history, include_tail) -> None:
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3])
    budget = float(mmm.design_.spend.mean(axis=0).sum() * 10)
    wide = {c: (0.0, budget) for c in mmm.channels_}  # no bound can bind: the optimum is interior
    plan = optimize_budget(mmm, budget, 10, bounds=wide, history=history, include_tail=include_tail)
    shares = np.linspace(0.0, 1.0, 2001)
    values = [
        mmm.expected_response(
            np.tile(np.array([s, 1 - s]) * budget / 10, (10, 1)), history=history, include_tail=include_tail
        )
        .sum(axis=1)
        .mean()
        for s in shares
    ]
    best = int(np.argmax(values))
    assert 0 < best < len(shares) - 1  # interior, so the check is about the optimiser, not a corner
    assert plan.allocation["share"].iloc[0] == pytest.approx(shares[best], abs=1e-3)
    assert plan.expected_response >= values[best] - 1e-9 * values[best]
    assert plan.binding == {} and plan.uplift > 0


def test_thinned_objective_still_finds_the_optimum(default_plan, model, budget) -> None:
    thin = optimize_budget(model, budget, HORIZON, max_draws=25)
    assert thin.settings["optimizer_draws"] == 25 and thin.settings["posterior_draws"] == DRAWS * CHAINS
    np.testing.assert_allclose(thin.allocation["share"], default_plan.allocation["share"], atol=0.05)
    assert thin.expected_response >= thin.baseline_response


def test_binding_bounds_are_reported(default_plan, model, budget) -> None:
    alloc = default_plan.allocation
    interior = [c for c in alloc.index if alloc.loc[c, "bound"] == ""]
    assert interior, "the default plan should leave some channel between its bounds"
    capped = interior[0]
    cap = 0.5 * alloc.loc[capped, "per_period"]
    plan = optimize_budget(model, budget, HORIZON, bounds={capped: (None, cap)})
    assert plan.allocation.loc[capped, "per_period"] == pytest.approx(cap, rel=1e-6)
    assert plan.binding.get(capped) == "upper"
    assert plan.expected_response <= default_plan.expected_response + 1e-9  # a tighter bound cannot help

    # Above the optimum, so it binds; halfway to the default cap, so it is a valid bound on any posterior.
    optimum, default_cap = alloc.loc[capped, "per_period"], alloc.loc[capped, "upper"]
    floor = optimum + 0.5 * (default_cap - optimum)
    plan = optimize_budget(model, budget, HORIZON, bounds={capped: (floor, None)})
    assert plan.allocation.loc[capped, "per_period"] == pytest.approx(floor, rel=1e-6)
    assert plan.binding.get(capped) == "lower"
    # every reported binding sits on its bound, every other channel is strictly inside
    for channel, row in plan.allocation.iterrows():
        side = plan.binding.get(channel)
        if side is None:
            assert row["lower"] < row["per_period"] < row["upper"]
        else:
            assert row["per_period"] == pytest.approx(row[side], rel=1e-6, abs=1e-6)


def test_fixed_bounds_at_the_historical_mix_give_no_uplift(model, budget) -> None:
    mix = model.design_.spend.sum(axis=0) / model.design_.spend.sum() * budget / HORIZON
    plan = optimize_budget(model, budget, HORIZON, bounds={c: (v, v) for c, v in zip(model.channels_, mix)})
    np.testing.assert_allclose(plan.allocation["per_period"], mix, rtol=1e-9)
    assert plan.uplift == pytest.approx(0.0, abs=1e-6 * plan.baseline_response)
    assert plan.binding == {c: "fixed" for c in model.channels_}


def test_a_pickled_model_plans_the_same(default_plan, model, budget) -> None:
    """What the registry stores (posterior and design, no compiled sampler) is enough to plan with."""
    restored = pickle.loads(pickle.dumps(model))
    plan = optimize_budget(restored, budget, HORIZON)
    pd.testing.assert_frame_equal(plan.allocation, default_plan.allocation)
    assert plan.uplift_hdi == default_plan.uplift_hdi


def test_start_date_and_history(model, budget) -> None:
    late = model.design_.dates[-1] + pd.Timedelta(weeks=20)  # beyond any carryover of the training spend
    with_history = optimize_budget(model, budget, HORIZON, start_date=late)
    without = optimize_budget(model, budget, HORIZON, start_date=late, history=False)
    assert with_history.plan["date"].iloc[0] == late
    assert with_history.expected_response == pytest.approx(without.expected_response, rel=1e-9)
    soon_with = optimize_budget(model, budget, HORIZON)
    soon_without = optimize_budget(model, budget, HORIZON, history=False)
    assert soon_with.expected_response > soon_without.expected_response  # last weeks' spend still works


# -- errors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_budget": 0}, r"'total_budget' must be a finite number > 0, got 0"),
        ({"total_budget": -5.0}, r"'total_budget' must be a finite number > 0, got -5.0"),
        ({"total_budget": float("nan")}, r"'total_budget' must be a finite number > 0, got nan"),
        ({"total_budget": "1000"}, r"'total_budget' must be a finite number > 0, got '1000'"),
        ({"horizon_periods": 0}, r"'horizon_periods' must be an int >= 1, got 0"),
        ({"horizon_periods": 2.5}, r"'horizon_periods' must be an int >= 1, got 2.5"),
        ({"bounds": {"nope": (0, 1)}}, r"unknown channel 'nope'; the model's channels are \['a', 'b'\]"),
        ({"bounds": {"a": (5.0, 1.0)}}, r"bounds\['a'\]: min 5 is above max 1 per period"),
        (
            {"bounds": {"a": (-1.0, None)}},
            r"bounds\['a'\] min must be a finite number >= 0 or None, got -1.0",
        ),
        ({"bounds": {"a": 3}}, r"bounds\['a'\] must be a \(min, max\) pair, got 3"),
        ({"bounds": [("a", 0, 1)]}, r"'bounds' must be a dict"),
        (
            {"bounds": {"a": (0, 10.0), "b": (0, 20.0)}},
            (
                r"the bounds allow a total budget from 0 to 300 over 10 period\(s\), "
                r"got total_budget=1000, above their largest total by 700"
            ),
        ),
        (
            {"bounds": {"a": (60.0, None), "b": (50.0, None)}},
            (
                r"the bounds allow a total budget from 1100 to .* over 10 period\(s\), "
                r"got total_budget=1000, below their smallest total by 100"
            ),
        ),
        ({"hdi_prob": 1.5}, r"'hdi_prob' must be in \(0, 1\), got 1.5"),
        ({"max_draws": 0}, r"'max_draws' must be an int >= 1, got 0"),
    ],
)
def test_bad_inputs_are_named(kwargs, message) -> None:
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3], n_draws=4)
    args = {"total_budget": 1000.0, "horizon_periods": 10} | kwargs
    with pytest.raises(InputError, match=message) as info:
        optimize_budget(mmm, args.pop("total_budget"), args.pop("horizon_periods"), **args)
    assert "per-period spend" in info.value.hint


def test_every_problem_is_reported_at_once() -> None:
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3], n_draws=4)
    with pytest.raises(InputError, match=r"3 problem\(s\)") as info:
        optimize_budget(mmm, -1.0, 0, bounds={"tv": (0, 1)})
    assert "'total_budget'" in str(info.value) and "'horizon_periods'" in str(info.value)
    assert "unknown channel 'tv'" in str(info.value)


def test_unfitted_model_and_bad_start_date() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        optimize_budget(MediaMixModel("date", ["a"], "y"), 100.0, 4)
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3], n_draws=4)
    with pytest.raises(InputError, match=r"'start_date' must be a date, got 'soon'"):
        optimize_budget(mmm, float(mmm.design_.spend.mean(axis=0).sum() * 4), 4, start_date="soon")


def test_bounds_equal_to_the_budget_up_to_rounding_are_accepted() -> None:
    """Issue 17: bounds written with a few decimals that add up to the budget only up to rounding."""
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3], n_draws=4)
    # 3 x (0.1333333 + 0.2) = 0.9999999: 1e-7 short of the budget, beyond the old 1e-9 slack.
    plan = optimize_budget(mmm, 1.0, 3, bounds={"a": (0.1333333, 0.1333333), "b": (0.2, 0.2)})
    assert plan.allocation["total"].sum() == pytest.approx(1.0, rel=1e-9)  # the whole budget is spent
    assert plan.binding == {"a": "fixed", "b": "fixed"}
    # Min above max by rounding only: one fixed spend, not an error.
    plan = optimize_budget(mmm, 1.0, 3, bounds={"a": (0.13333334, 0.1333333), "b": (0.2, 0.2)})
    assert plan.allocation.loc["a", "per_period"] == pytest.approx(0.1333333, rel=1e-6)
    assert plan.allocation["total"].sum() == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (
            {"a": (0.2, 0.1999)},
            r"bounds\['a'\]: min 0.2 is above max 0.1999 per period by 0.0001 \(relative 5.0e-04; amounts "
            r"that agree within a relative 1e-06 count as equal\)",
        ),
        (
            {"a": (0.1333, 0.1333), "b": (0.2, 0.2)},
            r"the bounds allow a total budget from 0.9999 to 0.9999 over 3 period\(s\), got total_budget=1, "
            r"above their largest total by 0.0001 \(relative 1.0e-04",
        ),
    ],
)
def test_near_misses_beyond_rounding_are_rejected_with_distinct_numbers(bounds, message) -> None:
    mmm = known_model(alpha=[0.3, 0.6], lam=[1.0, 3.0], beta=[0.5, 0.3], n_draws=4)
    with pytest.raises(InputError, match=message):
        optimize_budget(mmm, 1.0, 3, bounds=bounds)
