"""The PyMC graph and the NumPy posterior code compute the same model, for every adstock and saturation.

At a random parameter point we evaluate the graph's data log-likelihood and compare it with a Normal
log-density of the NumPy prediction: a mismatch in any term (media, trend, seasonality, controls,
scaling) would show. No sampling.
"""

from __future__ import annotations

import numpy as np
import pytest

from stackml.mmm import simulate
from stackml.mmm._design import build_design
from stackml.mmm._graph import build_pymc_model
from stackml.mmm._posterior import PosteriorDraws
from stackml.mmm.transforms import get_adstock, get_saturation

pytest.importorskip("pymc")

CASES = [
    *[(adstock, "logistic", None) for adstock in ("geometric", "delayed", "weibull", "weibull_pdf")],
    ("geometric", "hill", None),
    ("geometric", "michaelis_menten", None),
    ("delayed", "hill", (2.0, 1.0)),  # ROAS parameterisation
]


@pytest.fixture(scope="module")
def design():
    sim = simulate("2y_3ch", seed=2, n_periods=40)
    return build_design(
        sim.frame,
        date_column="date",
        channels=sim.channels,
        controls=sim.controls,
        target_column="revenue",
        fourier_order=2,
        trend=True,
    )


@pytest.mark.parametrize(("adstock_name", "saturation_name", "roas_prior"), CASES)
def test_graph_likelihood_equals_numpy(design, adstock_name, saturation_name, roas_prior) -> None:
    adstock, saturation = get_adstock(adstock_name, l_max=6), get_saturation(saturation_name)
    model = build_pymc_model(design, adstock, saturation, roas_prior=roas_prior)
    rng = np.random.default_rng(4)
    start = model.initial_point()
    point = {name: value + rng.normal(scale=0.3, size=np.shape(value)) for name, value in start.items()}
    # the Potential is written on the random variables; evaluate it at their values, as the model's logp does
    outputs = [*model.replace_rvs_by_values([model["target_loglik"]]), *model.unobserved_value_vars]
    evaluate = model.compile_fn(
        outputs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE", point_fn=False
    )
    loglik, *values = evaluate(*[point[v.name] for v in model.value_vars])
    at = {
        v.name: np.asarray(value)[None, ...]
        for v, value in zip(model.unobserved_value_vars, values, strict=True)
    }
    draws = PosteriorDraws(
        design=design,
        adstock=adstock,
        saturation=saturation,
        adstock_params={p: at[f"adstock_{p}"] for p in adstock.param_names},
        saturation_params={p: at[f"saturation_{p}"] for p in saturation.param_names},
        beta=at["beta"],
        intercept=at["intercept"],
        trend_slope=at["trend_slope"],
        gamma_fourier=at["gamma_fourier"],
        gamma_control=at["gamma_control"],
        sigma=at["sigma"],
    )
    mu = draws.expected(design.dates, design.spend, design.control_values)[0] / design.target_scale
    y = design.target / design.target_scale
    sigma = at["sigma"][0]
    expected = np.sum(-0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(loglik, expected, rtol=1e-9)
    if roas_prior is not None:  # beta was derived so that the NumPy ROAS is exactly the sampled ROAS
        roas = draws.contributions(design.spend)[0].sum(axis=0) / design.spend.sum(axis=0)
        np.testing.assert_allclose(roas, at["roas"][0], rtol=1e-9)
