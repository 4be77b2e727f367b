"""The PyMC graph of the media-mix model, in scaled units.

``target / mean(target) ~ Normal(mu, sigma)`` with
``mu = intercept [+ level(t)] + slope * t + fourier @ gamma_fourier + controls @ gamma_control
+ sum_k beta_k * sat_k(adstock_k(x_k))``
where ``x_k`` is channel ``k``'s spend divided by its maximum and ``t`` runs from 0 to 1 over the training
period. With every input on a unit scale the default priors below hold for any currency and any size of
business. The channel coefficients ``beta`` are not given a prior of their own: each follows from the
channel's ROAS, whose prior is stated in target units per spend unit (the user's ``roas_prior``, else
:func:`default_roas_prior`, set from the data's own ratio of target to spend).

The likelihood is a ``Potential`` weighted by ``fit_mask`` (a data container): a time-slice check then
re-samples the compiled model with the last periods masked out instead of compiling a second model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stackml._deps import require
from stackml.mmm._design import Design
from stackml.mmm.calibration import LiftDesign, add_lift_likelihood
from stackml.mmm.transforms import Adstock, Saturation, lag_matrix

# The default ROAS prior, in target units per spend unit: each channel's ROAS log-normal around the return at
# which media, in proportion to spend, would drive DEFAULT_MEDIA_SHARE of the target, wide on the log scale
# (94% of its mass within a factor of 6.6 either side). Media in published MMMs drive a few percent to a
# third of sales, so the prior doubts only a channel that would carry most of the target on its own.
DEFAULT_MEDIA_SHARE = 0.2
DEFAULT_ROAS_SD_LOG = 1.0

# name -> (distribution, kwargs) on the scaled problem; overridable through MediaMixModel(priors=...).
# "beta" (a channel's coefficient on its saturated media) is used only when given: by default the
# coefficients follow from the ROAS prior above.
DEFAULT_PRIORS: dict[str, tuple[str, dict[str, float]]] = {
    "intercept": ("Normal", {"mu": 0.0, "sigma": 2.0}),
    "trend_slope": ("Normal", {"mu": 0.0, "sigma": 1.0}),
    "gamma_fourier": ("Normal", {"mu": 0.0, "sigma": 0.5}),
    "gamma_control": ("Normal", {"mu": 0.0, "sigma": 1.0}),
    "beta": ("HalfNormal", {"sigma": 1.0}),
    "sigma": ("HalfNormal", {"sigma": 1.0}),
    # the time-varying level (optional): a random walk over knots a quarter apart, each step's sd this
    # share of the target's mean
    "level_step_sd": ("HalfNormal", {"sigma": 0.05}),
}


def lognormal_from_mean_sd(mean: float, sd: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal with this mean and standard deviation."""
    sigma2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2.0), float(np.sqrt(sigma2))


def default_roas_prior(design: Design) -> tuple[float, float]:
    """``(mean, sd)`` of the default log-normal ROAS prior of every channel of ``design`` (see
    :data:`DEFAULT_MEDIA_SHARE`)."""
    median = DEFAULT_MEDIA_SHARE * abs(float(design.target.sum())) / float(design.spend.sum())
    mean = median * float(np.exp(DEFAULT_ROAS_SD_LOG**2 / 2.0))
    return mean, mean * float(np.sqrt(np.expm1(DEFAULT_ROAS_SD_LOG**2)))


def roas_prior_arrays(roas_prior: Any, channels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel log-normal ``(mu, sigma)`` from ``(mean, sd)`` or ``{channel: (mean, sd)}``."""
    pairs = [roas_prior[c] if isinstance(roas_prior, dict) else roas_prior for c in channels]
    mus, sigmas = zip(*(lognormal_from_mean_sd(float(m), float(s)) for m, s in pairs), strict=True)
    return np.asarray(mus), np.asarray(sigmas)


def build_pymc_model(
    design: Design,
    adstock: Adstock,
    saturation: Saturation,
    *,
    roas_prior: Any = None,
    priors: dict[str, Any] | None = None,
    lift: LiftDesign | None = None,
    fit_mask: np.ndarray | None = None,
) -> Any:
    """Build (not sample) the PyMC model for ``design``."""
    pm = require("pymc", extra="mmm")
    coefficient_prior = roas_prior is None and "beta" in (priors or {})
    if roas_prior is None and not coefficient_prior:
        roas_prior = default_roas_prior(design)
    priors = {**DEFAULT_PRIORS, **(priors or {})}

    def var(name: str, **kwargs: Any) -> Any:
        dist, params = priors[name]
        return getattr(pm, dist)(name, **params, **kwargs)

    dates = design.dates
    fourier = design.fourier(dates)
    coords: dict[str, Any] = {"channel": list(design.channels), "date": dates}
    if fourier.shape[1]:
        coords["fourier"] = [f"{f}_{k}" for f in ("sin", "cos") for k in range(1, design.fourier_order + 1)]
    if design.controls:
        coords["control"] = list(design.controls)
    if design.level_knots:
        coords["level_knot"] = np.arange(design.level_knots)
    if lift is not None:
        coords["lift_test"] = np.arange(lift.n_tests)
    x_lagged = lag_matrix(design.scaled_spend(design.spend), adstock.l_max)
    mask = np.ones(design.n_periods) if fit_mask is None else fit_mask

    with pm.Model(coords=coords) as model:
        ad_params = adstock.create_variables(pm, "adstock", _prefixed(priors, "adstock_"))
        sat_params = saturation.create_variables(pm, "saturation", _prefixed(priors, "saturation_"))

        def saturated(lagged: Any, index: np.ndarray | None = None) -> Any:
            pick = (lambda v: v) if index is None else (lambda v: v[index])
            adstocked = adstock.apply_pt(lagged, **{k: pick(v) for k, v in ad_params.items()})
            return saturation.apply_pt(adstocked, **{k: pick(v) for k, v in sat_params.items()})

        media = saturated(x_lagged)  # (T, K)
        if roas_prior is None:
            beta = var("beta", dims="channel")
        else:
            mu_log, sigma_log = roas_prior_arrays(roas_prior, design.channels)
            roas = pm.LogNormal("roas", mu=mu_log, sigma=sigma_log, dims="channel")
            # ROAS = beta * target_scale * sum_t media / sum_t spend, solved for beta.
            spend_total = design.spend.sum(axis=0)
            beta = pm.Deterministic(
                "beta", roas * spend_total / (design.target_scale * media.sum(axis=0)), dims="channel"
            )
        mu = var("intercept") + (media * beta[None, :]).sum(axis=1)
        if design.trend:
            mu = mu + var("trend_slope") * design.time_index(dates)
        if fourier.shape[1]:
            mu = mu + pm.math.dot(fourier, var("gamma_fourier", dims="fourier"))
        if design.level_knots:
            # non-centred random walk, centred on zero so the intercept keeps its meaning (the mean level)
            steps = pm.Normal("level_steps", 0.0, 1.0, dims="level_knot")
            walk = pm.math.cumsum(steps) * var("level_step_sd")
            level = pm.Deterministic("level", walk - walk.mean(), dims="level_knot")
            mu = mu + pm.math.dot(design.level_basis(dates), level)
        if design.controls:
            controls = design.scaled_controls(design.control_values)
            mu = mu + pm.math.dot(controls, var("gamma_control", dims="control"))
        sigma = var("sigma")
        target = pm.Data("target", design.target / design.target_scale)
        weight = pm.Data("fit_mask", mask)
        pm.Potential("target_loglik", (weight * pm.logp(pm.Normal.dist(mu, sigma), target)).sum())
        if lift is not None:
            add_lift_likelihood(
                pm, lift, lambda lagged, index: saturated(lagged, index) * beta[index][None, :]
            )
    return model


def _prefixed(priors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in priors.items() if k.startswith(prefix)}
