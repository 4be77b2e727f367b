"""The media-mix pipeline's steps for a geo panel (``MMMConfig.geo_column``): check, fit, diagnose, summarise.

:mod:`stackml.mmm.pipeline` hands a configuration with a geo column to these functions, so ``MMMFlow`` and
``stackml mmm fit --geo-column`` run the same steps for one market or many. The national figures (ROAS,
shares, contributions, response curves) are sums over geos draw by draw (:mod:`stackml.mmm.geo_national`);
the gates judge the national fit. Not run for geo panels yet: the time-slice check, the budget plan, and
lift-test calibration (refused up front).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.errors import raise_if_problems
from stackml.mmm.result import MMMResult, _json_number
from stackml.pipelines import ModelToRegister

if TYPE_CHECKING:
    from stackml.mmm.config import MMMConfig
    from stackml.mmm.diagnostics import Diagnostics
    from stackml.mmm.geo import GeoMediaMixModel

__all__ = [
    "GeoMMMResult",
    "build_geo_model",
    "check_geo_config",
    "check_geo_frame",
    "diagnose_geo",
    "summarise_geo",
]

NOT_FOR_GEO = "not run for a geo model yet"


def check_geo_config(config: MMMConfig) -> None:
    """Options the geo model does not take, refused before any data is read."""
    problems = []
    if config.lift_tests:
        problems.append(
            "lift tests cannot calibrate a geo model yet; drop --lift-tests or fit one geo at a time"
        )
    if config.time_varying_intercept:
        problems.append("--time-varying-intercept is not offered for a geo model")
    if config.saturation == "auto":
        problems.append(
            "--saturation auto is not offered for a geo model; name one curve or keep the default"
        )
    raise_if_problems(
        problems, what="the geo media-mix configuration", hint="See `stackml mmm fit --help` for the options."
    )


def build_geo_model(config: MMMConfig) -> GeoMediaMixModel:
    from stackml.mmm.geo import GeoMediaMixModel

    return GeoMediaMixModel(
        config.date_column,
        str(config.geo_column),
        list(config.channels),
        config.target,
        list(config.controls),
        adstock=config.adstock,
        saturation=config.saturation,
        yearly_seasonality=config.yearly_seasonality,
        roas_prior=config.channel_roas_prior(),
        target_accept=config.target_accept,
    )


def check_geo_frame(frame: pd.DataFrame, config: MMMConfig) -> None:
    """Every problem of the panel, each naming its geo, before anything is compiled."""
    check_geo_config(config)
    build_geo_model(config)._check_fit_input(frame, config.draws, config.tune, config.chains, "nutpie")


def fit_geo_model(frame: pd.DataFrame, config: MMMConfig, *, progressbar: bool = False) -> GeoMediaMixModel:
    return build_geo_model(config).fit(
        frame,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        random_state=config.random_state,
        progressbar=progressbar,
    )


def diagnose_geo(model: GeoMediaMixModel, config: MMMConfig) -> Diagnostics:
    """The sampler's health over the joint posterior, and the fit of the national target (sum over geos)."""
    from stackml.mmm.diagnostics import fit_metrics, gated_diagnostics
    from stackml.mmm.geo_national import national_expected, national_target

    expected, sd = national_expected(model)
    return gated_diagnostics(
        model.idata_,
        fit_metrics(national_target(model), expected, sd),
        max_divergences=config.max_divergences,
        max_rhat=config.max_rhat,
        min_ess=config.min_ess,
        min_r2=config.min_r2,
        max_mape=config.max_mape,
    )


@dataclass
class GeoMMMResult(MMMResult):
    """An :class:`~stackml.mmm.result.MMMResult` whose tables are national sums, plus ROAS per geo."""

    geo_roas: pd.DataFrame = field(default_factory=pd.DataFrame)
    geo_spread: pd.DataFrame = field(default_factory=pd.DataFrame)
    contributions_by_geo: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        return super().tables() | {"geo_roas": self.geo_roas, "geo_contributions": self.contributions_by_geo}

    def metrics(self) -> dict[str, float]:
        metrics = super().metrics()
        metrics["geos"] = float(len(self.model.geos_))
        return metrics

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        from stackml.mmm.registry_model import (
            MODEL_REQUIREMENTS,
            GeoMMMPyfunc,
            geo_example_plan,
            geo_signature,
        )

        self.diagnostics.raise_if_failed()
        model = GeoMMMPyfunc(self.model, hdi_prob=self.config.hdi_prob)
        example = geo_example_plan(self.model)
        return [
            ModelToRegister(
                model, example, geo_signature(self.model, model.predict(None, example)), MODEL_REQUIREMENTS
            )
        ]

    def summary(self) -> dict[str, Any]:
        """The national summary, ``geos`` (ROAS per geo and channel, null where a geo never spent),
        ``geo_spread`` and the steps not run for a geo model."""
        out = super().summary()
        out["geos"] = {
            str(geo): {
                "roas": {
                    str(r.channel): {k: _json_number(getattr(r, k)) for k in ("mean", "hdi_low", "hdi_high")}
                    for r in rows.itertuples()
                }
            }
            for geo, rows in self.geo_roas.groupby("geo", sort=False)
        }
        out["geo_spread"] = {
            str(c): {k: _json_number(self.geo_spread.loc[c, k]) for k in ("mean", "hdi_low", "hdi_high")}
            for c in self.geo_spread.index
        }
        out["not_run"] = {"time_slice_check": NOT_FOR_GEO, "budget_plan": NOT_FOR_GEO}
        return out


def summarise_geo(
    model: GeoMediaMixModel,
    diagnostics: Diagnostics,
    config: MMMConfig,
    *,
    seconds: dict[str, float] | None = None,
) -> GeoMMMResult:
    """National outputs (sums over geos) and ROAS per geo, in one result."""
    from stackml.mmm import geo, geo_national

    prob = config.hdi_prob
    stats = model.fit_stats_
    from stackml.mmm.outputs import _summarise

    spread = _summarise(model.roas_spread_, pd.Index(model.channels_, name="channel"), prob)
    return GeoMMMResult(
        config=config,
        model=model,
        diagnostics=diagnostics,
        holdout=None,
        roas=geo.national_roas(model, prob),
        contribution_share=geo.national_contribution_share(model, prob),
        marginal_roas=geo_national.national_marginal_roas(model, prob),
        contributions=geo_national.national_contributions(model, prob),
        response_curves=geo_national.national_response_curves(model, hdi_prob=prob),
        plan=None,
        seconds={
            "compile": stats["compile_seconds"],
            "sampling": stats["sampling_seconds"],
            **(seconds or {}),
        },
        geo_roas=geo.geo_roas(model, prob),
        geo_spread=spread,
        contributions_by_geo=geo.contributions_table(model, prob),
    )
