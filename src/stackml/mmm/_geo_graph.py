"""The PyMC graph of the geo media-mix model: one hierarchical model over every market, in scaled units.

Each geo is scaled on its own (spend by its maximum per channel, the target by its mean), so the national
model's unit-free priors hold in every market whatever its size. The rows of all geos are stacked; per geo
``g``:

``target_g / mean(target_g) ~ Normal(mu_g, sigma_g)`` with
``mu_g = intercept_g + slope_g * t + fourier @ gamma_fourier_g + controls @ gamma_control_g
+ sum_k beta_gk * sat_k(adstock_k(x_gk))``.

The adstock and saturation shapes are shared by all geos (a channel's carryover and curvature are properties
of the medium; the saturation acts on spend relative to each geo's own maximum). Every per-geo parameter is
partially pooled toward a national mean: ``log roas_gk = log roas_k + tau_k * z_gk`` (non-centred: the data
say little about one geo's ROAS), and the baseline's intercept, slope, seasonality and control effects around
national means (centred: the data pin each geo's baseline down). A geo with little data then borrows the
others' estimates, and ``tau`` says how much the geos differ. As in the national model
(:mod:`stackml.mmm._graph`), the coefficients follow from ROAS, whose national prior is stated in target units
per spend unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.mmm._design import Design
from stackml.mmm._graph import DEFAULT_MEDIA_SHARE, DEFAULT_ROAS_SD_LOG, roas_prior_arrays
from stackml.mmm.transforms import Adstock, Saturation, lag_matrix

# Prior sd of tau, the spread of log-ROAS across geos: half-normal 0.5 puts most of its mass on geos whose
# returns differ by less than a factor of 2 from the national one, and lets the data say more.
DEFAULT_GEO_ROAS_SPREAD = 0.5
# Prior sds of the spread across geos of the baseline's parameters (scaled units: share of the geo's mean).
_BASELINE_SPREAD = {"intercept": 0.5, "trend_slope": 0.5, "gamma_fourier": 0.2, "gamma_control": 0.5}


@dataclass(frozen=True)
class GeoStack:
    """Every geo's scaled rows stacked, with the geo each row belongs to."""

    designs: tuple[Design, ...]
    geo_index: np.ndarray  # (N,)
    lagged: np.ndarray  # (l_max, N, K) scaled spend, lagged within each geo
    time: np.ndarray  # (N,)
    fourier: np.ndarray  # (N, F)
    controls: np.ndarray  # (N, C)
    target: np.ndarray  # (N,) each geo's target over its own mean
    spend_total: np.ndarray  # (G, K) raw spend per geo and channel
    target_scale: np.ndarray  # (G,)

    @classmethod
    def of(cls, designs: tuple[Design, ...], l_max: int) -> GeoStack:
        return cls(
            designs=designs,
            geo_index=np.concatenate([np.full(d.n_periods, g) for g, d in enumerate(designs)]),
            lagged=np.concatenate([lag_matrix(d.scaled_spend(d.spend), l_max) for d in designs], axis=1),
            time=np.concatenate([d.time_index(d.dates) for d in designs]),
            fourier=np.concatenate([d.fourier(d.dates) for d in designs]),
            controls=np.concatenate([d.scaled_controls(d.control_values) for d in designs]),
            target=np.concatenate([d.target / d.target_scale for d in designs]),
            spend_total=np.stack([d.spend.sum(axis=0) for d in designs]),
            target_scale=np.array([d.target_scale for d in designs]),
        )

    @property
    def spent(self) -> np.ndarray:
        """``(G, K)``: did the geo spend on the channel at all (a channel dark in a geo has no effect)."""
        return self.spend_total > 0


def default_national_roas_prior(designs: tuple[Design, ...]) -> tuple[float, float]:
    """``(mean, sd)`` of the national ROAS prior: the national model's default on the summed markets."""
    target = sum(abs(float(d.target.sum())) for d in designs)
    spend = sum(float(d.spend.sum()) for d in designs)
    median = DEFAULT_MEDIA_SHARE * target / spend
    mean = median * float(np.exp(DEFAULT_ROAS_SD_LOG**2 / 2.0))
    return mean, mean * float(np.sqrt(np.expm1(DEFAULT_ROAS_SD_LOG**2)))


def build_geo_pymc_model(
    stack: GeoStack,
    geos: tuple[str, ...],
    adstock: Adstock,
    saturation: Saturation,
    *,
    roas_prior: Any = None,
    roas_spread: float = DEFAULT_GEO_ROAS_SPREAD,
) -> Any:
    """Build (not sample) the hierarchical PyMC model for ``stack``."""
    pm = require("pymc", extra="mmm")
    d0 = stack.designs[0]
    coords: dict[str, Any] = {"geo": list(geos), "channel": list(d0.channels)}
    if stack.fourier.shape[1]:
        coords["fourier"] = [f"{f}_{k}" for f in ("sin", "cos") for k in range(1, d0.fourier_order + 1)]
    if d0.controls:
        coords["control"] = list(d0.controls)
    g = stack.geo_index
    n_geos = len(geos)
    segment = np.zeros((n_geos, len(g)))
    segment[g, np.arange(len(g))] = 1.0  # sums rows into their geo
    spent = stack.spent.astype(float)
    # beta = roas * spend / (target scale * sum of saturated media); a geo-channel never spent has no media
    # and gets beta 0 (the 1 - spent keeps the division finite there)
    spend_per_target = stack.spend_total / stack.target_scale[:, None]
    roas_prior = default_national_roas_prior(stack.designs) if roas_prior is None else roas_prior
    mu_log, sigma_log = roas_prior_arrays(roas_prior, d0.channels)

    def pooled(name: str, mean_prior: tuple[float, float], spread: float, dims: tuple[str, ...]) -> Any:
        """``name[geo, ...] ~ Normal(name_national[...], name_spread)``, centred: every geo has a season or
        more of rows, which pin its baseline down well, and there the non-centred form makes a funnel."""
        national = pm.Normal(f"{name}_national", mean_prior[0], mean_prior[1], dims=dims or None)
        sd = pm.HalfNormal(f"{name}_spread", spread)
        return pm.Normal(name, national, sd, dims=("geo", *dims))

    with pm.Model(coords=coords) as model:
        ad_params = adstock.create_variables(pm, "adstock")
        sat_params = saturation.create_variables(pm, "saturation")
        adstocked = adstock.apply_pt(stack.lagged, **ad_params)
        media = saturation.apply_pt(adstocked, **sat_params)  # (N, K)

        log_roas = pm.Normal("log_roas_national", mu_log, sigma_log, dims="channel")
        roas_sd = pm.HalfNormal("roas_spread", roas_spread, dims="channel")
        roas_z = pm.Normal("roas_z", 0.0, 1.0, dims=("geo", "channel"))
        roas = pm.Deterministic("roas", pm.math.exp(log_roas + roas_sd * roas_z), dims=("geo", "channel"))
        media_sum = pm.math.dot(segment, media)  # (G, K)
        beta = pm.Deterministic(
            "beta", roas * spend_per_target * spent / (media_sum + (1.0 - spent)), dims=("geo", "channel")
        )

        intercept = pooled("intercept", (0.0, 2.0), _BASELINE_SPREAD["intercept"], ())
        mu = intercept[g] + (media * beta[g]).sum(axis=1)
        if d0.trend:
            slope = pooled("trend_slope", (0.0, 1.0), _BASELINE_SPREAD["trend_slope"], ())
            mu = mu + slope[g] * stack.time
        if stack.fourier.shape[1]:
            gamma = pooled("gamma_fourier", (0.0, 0.5), _BASELINE_SPREAD["gamma_fourier"], ("fourier",))
            mu = mu + (stack.fourier * gamma[g]).sum(axis=1)
        if d0.controls:
            gamma_c = pooled("gamma_control", (0.0, 1.0), _BASELINE_SPREAD["gamma_control"], ("control",))
            mu = mu + (stack.controls * gamma_c[g]).sum(axis=1)
        sigma = pm.HalfNormal("sigma", 1.0, dims="geo")
        pm.Normal("target", mu=mu, sigma=sigma[g], observed=stack.target)
    return model
