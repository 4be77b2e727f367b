"""National figures of a geo media-mix model: every geo's draws summed on the national calendar.

The geos' posterior views (:attr:`GeoMediaMixModel.geo_models_`) share the joint draws, so draw ``s`` of one
geo and draw ``s`` of another are the same sample: a national figure is the per-draw sum over geos, and its
interval is the interval of that sum (not the sum of the geos' intervals). Geos that start later contribute
nothing before their first period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stackml.errors import InputError
from stackml.mmm._design import Design
from stackml.mmm._posterior import hdi
from stackml.mmm.outputs import _summarise, long_contributions

# The model is annotated ``GeoMediaMixModel`` in words only: stackml.mmm.geo imports this module, and a
# type-checking import back would be an import circle.
GeoMediaMixModel = Any

__all__ = [
    "NationalPosterior",
    "national_contributions",
    "national_design",
    "national_dates",
    "national_expected",
    "national_marginal_roas",
    "national_predictive",
    "national_response_curves",
    "national_target",
]


def national_dates(model: GeoMediaMixModel) -> pd.DatetimeIndex:
    """Every period any geo has, sorted."""
    dates = pd.DatetimeIndex([])
    for view in model.geo_models_.values():
        dates = dates.union(view.design_.dates)
    return dates.sort_values()


def _on_calendar(dates: pd.DatetimeIndex, own: pd.DatetimeIndex, draws: np.ndarray) -> np.ndarray:
    """``draws`` ``(S, T_geo, ...)`` on the national calendar ``dates`` (zeros where the geo has none)."""
    out = np.zeros((draws.shape[0], len(dates), *draws.shape[2:]))
    out[:, dates.get_indexer(own)] = draws
    return out


def national_target(model: GeoMediaMixModel) -> np.ndarray:
    """The observed target summed over geos per national period."""
    dates = national_dates(model)
    total = np.zeros(len(dates))
    for view in model.geo_models_.values():
        total[dates.get_indexer(view.design_.dates)] += view.design_.target
    return total


def national_expected(model: GeoMediaMixModel) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the expected national target ``(S, T)`` and of its noise sd ``(S, T)`` (the geos' noise is
    independent, so variances add over the geos present in a period)."""
    dates = national_dates(model)
    expected = variance = None
    for view in model.geo_models_.values():
        d, post = view.design_, view.posterior_
        mean = _on_calendar(dates, d.dates, post.expected(d.dates, d.spend, d.control_values))
        present = _on_calendar(dates, d.dates, np.ones((1, d.n_periods)))
        var = (post.sigma * d.target_scale)[:, None] ** 2 * present
        expected = mean if expected is None else expected + mean
        variance = var if variance is None else variance + var
    return expected, np.sqrt(variance)


def national_predictive(model: GeoMediaMixModel, seed: int = 0) -> np.ndarray:
    """Posterior-predictive draws of the national target ``(S, T)``."""
    expected, sd = national_expected(model)
    rng = np.random.default_rng(seed)
    return expected + rng.normal(size=expected.shape) * sd


def national_contributions(model: GeoMediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """National per-period contributions of every channel and baseline part, long format, as
    :func:`stackml.mmm.outputs.contributions` gives them for a national model."""
    dates = national_dates(model)
    channels: dict[str, np.ndarray] = {}
    baseline: dict[str, np.ndarray] = {}
    for view in model.geo_models_.values():
        d = view.design_
        draws = _on_calendar(dates, d.dates, view.contribution_draws())
        for k, channel in enumerate(d.channels):
            channels[channel] = channels.get(channel, 0.0) + draws[:, :, k]
        for name, part in view.posterior_.baseline_parts(d.dates, d.control_values).items():
            baseline[name] = baseline.get(name, 0.0) + _on_calendar(dates, d.dates, part)
    return long_contributions(dates, channels, baseline, hdi_prob)


def national_marginal_roas(
    model: GeoMediaMixModel, hdi_prob: float = 0.94, increase: float = 0.01
) -> pd.DataFrame:
    """Extra national target per extra spend unit if every geo's spend of a channel rose by ``increase``."""
    channels = model.channels_
    extra = np.zeros((_n_draws(model), len(channels)))
    spend = np.zeros(len(channels))
    for view in model.geo_models_.values():
        d = view.design_
        base = view.contribution_draws().sum(axis=1)
        for k in range(len(channels)):
            bumped_spend = d.spend.copy()
            bumped_spend[:, k] *= 1.0 + increase
            extra[:, k] += view.posterior_.contributions(bumped_spend)[:, :, k].sum(axis=1) - base[:, k]
        spend += increase * d.spend.sum(axis=0)
    return _summarise(extra / spend, pd.Index(channels, name="channel"), hdi_prob)


def national_response_curves(
    model: GeoMediaMixModel, n_points: int = 41, max_multiple: float = 2.0, hdi_prob: float = 0.94
) -> pd.DataFrame:
    """Steady-state national contribution per period if every geo spent a constant multiple of its own
    average on a channel; the spend axis is the national spend per period."""
    multiples = np.linspace(0.0, max_multiple, n_points)
    steady = model.adstock_.l_max
    channels = list(model.channels_)
    rows = []
    for multiple in multiples:
        total = 0.0
        national_spend = np.zeros(len(channels))
        for view in model.geo_models_.values():
            mean_spend = view.design_.spend.mean(axis=0)
            total = (
                total + view.posterior_.contributions(np.tile(mean_spend * multiple, (steady, 1)))[:, -1, :]
            )
            national_spend += mean_spend * multiple
        low, high = hdi(total, hdi_prob)
        rows.append(
            pd.DataFrame(
                {
                    "channel": channels,
                    "spend": national_spend,
                    "multiple": multiple,
                    "mean": total.mean(axis=0),
                    "hdi_low": low,
                    "hdi_high": high,
                }
            )
        )
    return pd.concat(rows, ignore_index=True).sort_values(["channel", "multiple"], ignore_index=True)


def _n_draws(model: GeoMediaMixModel) -> int:
    return next(iter(model.geo_models_.values())).posterior_.n_draws


def national_design(model: GeoMediaMixModel) -> Design:
    """The panel summed over geos on the national calendar, in the national model's :class:`Design` (spend and
    target summed; controls are per geo, so none here): what a report of national figures plots."""
    dates = national_dates(model)
    views = list(model.geo_models_.values())
    spend = np.zeros((len(dates), len(model.channels_)))
    for view in views:
        spend[dates.get_indexer(view.design_.dates)] += view.design_.spend
    target = national_target(model)
    first = views[0].design_
    return Design(
        channels=tuple(model.channels_),
        controls=(),
        dates=dates,
        period_days=first.period_days,
        spend=spend,
        spend_scale=np.where(spend.max(axis=0) > 0, spend.max(axis=0), 1.0),
        control_values=np.zeros((len(dates), 0)),
        control_scale=np.zeros(0),
        target=target,
        target_scale=float(np.mean(np.abs(target))),
        fourier_order=first.fourier_order,
        trend=first.trend,
    )


class NationalPosterior:
    """The national sum of the geos' posteriors, on the training calendar only: ``expected`` draws of the
    national target and the noise ``sigma`` (per draw and period, in units of the national target's mean), as
    the national model's posterior offers them to its report. Plans go to the geos' own views."""

    def __init__(self, model: GeoMediaMixModel) -> None:
        self._model = model
        self._expected, sd = national_expected(model)
        self.sigma = sd / model.design_.target_scale

    def expected(self, dates: pd.DatetimeIndex, spend: Any = None, control_values: Any = None) -> np.ndarray:
        if not pd.DatetimeIndex(dates).equals(self._model.design_.dates):
            raise InputError(
                "The national view of a geo model answers for its training periods only.",
                hint="Predict a plan per geo: model.geo_models_[geo].predict(plan), or the registered model.",
            )
        return self._expected
