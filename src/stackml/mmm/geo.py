"""Media-mix modelling by market: :class:`GeoMediaMixModel`, one hierarchical model over many geos.

Marketing teams buy media by market. Fitting each market alone throws away what markets share; summing them
into one national series blurs the differences the budget should follow. This model fits every geo of a long
frame (``date, geo, <channels>, <controls>, <target>``) at once, each geo's ROAS and baseline partially
pooled toward a national mean (see :mod:`stackml.mmm._geo_graph`), so a small market borrows strength from
the others.

After fitting, ``geo_models_`` holds one fitted :class:`~stackml.mmm.MediaMixModel` per geo: a view of the
joint posterior on that geo's data, so everything the national model offers (contributions, ROAS, response
curves, predictions, the budget optimiser) works per geo unchanged. The draws of all views come from the same
joint samples, so national figures are sums over geos draw by draw (:func:`national_roas`).

Example:
    >>> from stackml.mmm import GeoMediaMixModel, simulate_geo
    >>> sim = simulate_geo(n_geos=4, n_periods=104, seed=1)
    >>> model = GeoMediaMixModel("date", "geo", sim.channels, "revenue", control_columns=("promo",))
    >>> model = model.fit(sim.frame, draws=300, tune=300, chains=2, random_state=1)  # doctest: +SKIP
    >>> geo_roas(model).head()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stackml.errors import InputError, NotFittedError, raise_if_problems
from stackml.mmm import sampling, selection
from stackml.mmm import validation as checks
from stackml.mmm._design import Design, build_design, infer_period_days
from stackml.mmm._geo_graph import DEFAULT_GEO_ROAS_SPREAD, GeoStack, build_geo_pymc_model
from stackml.mmm._posterior import PosteriorDraws, flatten_draws, hdi
from stackml.mmm.identification import sample_prior
from stackml.mmm.model import MediaMixModel
from stackml.mmm.outputs import _summarise
from stackml.mmm.transforms import DEFAULT_L_MAX, get_adstock, get_saturation

__all__ = ["GeoMediaMixModel", "contributions_table", "geo_roas", "geo_summary", "national_roas"]

log = logging.getLogger(__name__)
PRIOR_DRAWS = 1000


class GeoMediaMixModel:
    """Bayesian media-mix model over many geos: per-geo ROAS and baselines pooled toward national means.

    Args:
        date_column: one row per period and geo, periods evenly spaced within each geo.
        geo_column: the market of each row (any labels; each geo fitted on the rows it has, so markets may
            start at different dates).
        channel_columns: spend columns, one per channel, non-negative; a channel a geo never spends on has
            no effect there (its ROAS in that geo is reported as null).
        target_column: what media drives (revenue, conversions, ...), in the same units in every geo.
        control_columns: other numeric drivers, per geo (price, promotions); their effects pooled like the
            baseline's.
        adstock, saturation, l_max, yearly_seasonality, trend: as in :class:`~stackml.mmm.MediaMixModel`;
            the adstock and saturation shapes are shared by all geos (``"auto"`` is not offered here).
        roas_prior: the national ROAS prior, ``(mean, sd)`` or ``{channel: (mean, sd)}`` in target units per
            spend unit; default the national model's weak prior on the summed markets.
        geo_roas_spread: prior sd (half-normal) of how far a geo's log-ROAS strays from the national one.
        target_accept: NUTS target acceptance; a fit with divergences samples once more at a higher one.
    """

    def __init__(
        self,
        date_column: str,
        geo_column: str,
        channel_columns: Sequence[str],
        target_column: str,
        control_columns: Sequence[str] = (),
        *,
        adstock: str = "geometric",
        saturation: str = "default",
        l_max: int | None = None,
        yearly_seasonality: int = 2,
        trend: bool = True,
        roas_prior: Any = None,
        geo_roas_spread: float = DEFAULT_GEO_ROAS_SPREAD,
        target_accept: float | None = None,
    ) -> None:
        self.date_column = date_column
        self.geo_column = geo_column
        self.channel_columns = channel_columns
        self.target_column = target_column
        self.control_columns = control_columns
        self.adstock = adstock
        self.saturation = saturation
        self.l_max = l_max
        self.yearly_seasonality = yearly_seasonality
        self.trend = trend
        self.roas_prior = roas_prior
        self.geo_roas_spread = geo_roas_spread
        self.target_accept = target_accept

    # -- fitting -------------------------------------------------------------------------------------------
    def fit(
        self,
        df: pd.DataFrame,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_state: int | None = None,
        sampler: str = "nutpie",
        progressbar: bool = False,
        retry_divergences: bool = True,
    ) -> GeoMediaMixModel:
        """Validate ``df``, build the hierarchical model and sample its posterior.

        Returns:
            self, with ``geos_`` (names, in the order of the frame's first appearance), ``geo_models_``
            (``{geo: MediaMixModel}``, each fitted on its geo's rows), ``idata_`` (the joint posterior),
            ``roas_spread_`` (draws of each channel's spread of log-ROAS across geos, ``(S, K)``) and
            ``fit_stats_`` as in the national model.
        """
        from stackml.mmm.config import config_default

        draws = config_default("draws") if draws is None else draws
        tune = config_default("tune") if tune is None else tune
        chains = config_default("chains") if chains is None else chains
        geos, frames = self._check_fit_input(df, draws, tune, chains, sampler)
        designs = tuple(self._design(frame) for frame in frames)
        period = designs[0].period_days
        national = self._national_model()
        adstock = get_adstock(self.adstock, l_max=national.resolved_l_max(period))
        names = selection.candidates(self.saturation, calibrated=False)
        saturation = get_saturation(names[0])
        stack = GeoStack.of(designs, adstock.l_max)
        model = build_geo_pymc_model(
            stack, geos, adstock, saturation, roas_prior=self.roas_prior, roas_spread=self.geo_roas_spread
        )
        run = {"draws": draws, "tune": tune, "chains": chains, "random_state": random_state}
        result, target_accept, retry = sampling.sample_with_retry(
            model,
            sampler=sampler,
            target_accept=national.resolved_target_accept(),
            progressbar=progressbar,
            retry_divergences=retry_divergences,
            **run,
        )
        self.geos_ = geos
        self.stack_ = stack
        self.lift_tests_ = None  # lift tests cannot calibrate a geo model yet
        self.adstock_ = adstock
        self.saturation_ = saturation
        self.pymc_model_ = model
        self.idata_ = result.idata
        self.roas_spread_ = flatten_draws(result.idata, "roas_spread")
        prior = sample_prior(model, random_state, PRIOR_DRAWS)
        self.fit_stats_ = {
            "sampler": result.sampler,
            "compile_seconds": result.compile_seconds,
            "sampling_seconds": result.sampling_seconds,
            **run,
            "saturation": saturation.name,
            "target_accept": target_accept,
            "divergence_retry": retry,
            "fallback_reason": result.fallback_reason,
        }
        self.geo_models_ = {
            geo: self._geo_view(g, design, result.idata, prior)
            for g, (geo, design) in enumerate(zip(geos, designs))
        }
        return self

    def _design(self, frame: pd.DataFrame) -> Design:
        design = build_design(
            frame,
            date_column=self.date_column,
            channels=tuple(self.channel_columns),
            controls=tuple(self.control_columns),
            target_column=self.target_column,
            fourier_order=int(self.yearly_seasonality),
            trend=bool(self.trend),
        )
        # a channel a geo never spends on has no scale of its own; 1 keeps its (zero) media finite
        return dataclasses.replace(
            design, spend_scale=np.where(design.spend_scale > 0, design.spend_scale, 1.0)
        )

    def _national_model(self, **overrides: Any) -> MediaMixModel:
        """The national model with this model's settings: it resolves the defaults, and each geo's view is
        one."""
        settings = {
            "adstock": self.adstock,
            "saturation": self.saturation,
            "l_max": self.l_max,
            "yearly_seasonality": self.yearly_seasonality,
            "trend": self.trend,
            "target_accept": self.target_accept,
        }
        return MediaMixModel(
            self.date_column,
            self.channel_columns,
            self.target_column,
            self.control_columns,
            **(settings | overrides),
        )

    def _geo_view(self, g: int, design: Design, idata: Any, prior: Any) -> MediaMixModel:
        """The national model's object for geo ``g``: its design and its slice of the joint draws."""
        view = self._national_model(saturation=self.saturation_.name, l_max=self.adstock_.l_max)
        view.design_ = design
        view.adstock_ = self.adstock_
        view.saturation_ = self.saturation_
        view.saturation_comparison_ = None
        view.lift_tests_ = None
        view.posterior_ = _geo_draws(idata, g, design, self)
        prior_draws = _geo_draws(prior, g, design, self)
        spent = design.spend.sum(axis=0)
        view.prior_roas_ = prior_draws.contributions(design.spend).sum(axis=1) / np.where(
            spent > 0, spent, 1.0
        )
        view.fit_stats_ = self.fit_stats_
        return view

    def _check_fit_input(
        self, df: Any, draws: Any, tune: Any, chains: Any, sampler: Any
    ) -> tuple[tuple[str, ...], list[pd.DataFrame]]:
        problems = checks.check_fit_args(draws, tune, chains, sampler)
        if self.saturation == "auto":
            problems.append(
                "saturation 'auto' is not offered for a geo model; name one curve "
                "('hill', 'logistic' or 'michaelis_menten') or keep the default"
            )
        if not isinstance(self.geo_roas_spread, (int, float)) or not self.geo_roas_spread > 0:
            problems.append(f"geo_roas_spread must be a positive number, got {self.geo_roas_spread!r}")
        if not isinstance(df, pd.DataFrame):
            problems.append(f"the data must be a pandas DataFrame, got {type(df).__name__}")
            raise_if_problems(problems, what="the geo media-mix model's input", hint="Pass a long DataFrame.")
        if self.geo_column not in df.columns:
            problems.append(f"missing geo column '{self.geo_column}' (the frame has {list(df.columns)})")
            raise_if_problems(
                problems,
                what="the geo media-mix model's input",
                hint="Give one row per period and geo, with the geo's name in the geo column.",
            )
        channels, controls = list(self.channel_columns), list(self.control_columns)
        l_max = self.l_max if isinstance(self.l_max, int) and self.l_max > 0 else DEFAULT_L_MAX
        order = self.yearly_seasonality if isinstance(self.yearly_seasonality, int) else 0
        # a geo borrows the others' strength, so it needs only a few carryover windows of its own; the
        # panel as a whole needs what one national series would
        min_rows = checks.min_rows_for(len(channels), len(controls), max(order, 0), l_max)
        if len(df) < min_rows:
            problems.append(
                f"too few rows in all geos together: {len(df)}; this model needs at least {min_rows}"
            )
        labels = df[self.geo_column]
        if labels.isna().any():
            problems.append(f"column '{self.geo_column}' has {int(labels.isna().sum())} missing geo names")
        geos = tuple(str(g) for g in pd.unique(labels.dropna()))
        frames, periods = [], {}
        for geo in geos:
            rows = df[labels.astype(str) == geo]
            found = checks.check_frame(
                rows,
                date_column=self.date_column,
                channels=channels,
                controls=controls,
                target_column=self.target_column,
                min_rows=2 * l_max,
                require_spend=False,  # a geo may leave a channel dark
            )
            problems += [f"geo '{geo}': {p}" for p in found]
            if found:
                continue
            frame = rows.assign(**{self.date_column: pd.to_datetime(rows[self.date_column])})
            frame = frame.sort_values(self.date_column).reset_index(drop=True)
            try:
                periods[geo] = infer_period_days(pd.DatetimeIndex(frame[self.date_column]), self.date_column)
            except InputError as exc:
                problems.append(f"geo '{geo}': {exc.message}")
                continue
            frames.append(frame)
        if len(set(periods.values())) > 1:
            problems.append(
                f"the geos' periods differ ({periods} days); aggregate every geo to one frequency"
            )
        if not problems and df[channels].to_numpy(dtype=float).sum(axis=0).min() <= 0:
            dark = [c for c in channels if not (df[c] > 0).any()]
            problems.append(
                f"channels {dark} have no positive spend in any geo; their effect cannot be estimated"
            )
        raise_if_problems(
            problems,
            what="the geo media-mix model's input",
            hint="Give one row per period and geo, every geo's periods evenly spaced without gaps "
            "(fill missing weeks with zero spend), numeric non-negative spend.",
        )
        return geos, frames

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "pymc_model_"}

    # -- using the posterior -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "geo_models_"):
            raise NotFittedError(
                "This GeoMediaMixModel is not fitted yet.", hint="Call .fit(df) before using the posterior."
            )

    @property
    def channels_(self) -> tuple[str, ...]:
        self._check_fitted()
        return tuple(self.channel_columns)

    @functools.cached_property
    def design_(self) -> Design:
        """The panel summed over geos on the national calendar (see
        :func:`stackml.mmm.geo_national.national_design`)."""
        from stackml.mmm.geo_national import national_design

        self._check_fitted()
        return national_design(self)

    @functools.cached_property
    def posterior_(self) -> Any:
        """The national sum of the geos' posteriors on the training periods
        (:class:`stackml.mmm.geo_national.NationalPosterior`)."""
        from stackml.mmm.geo_national import NationalPosterior

        self._check_fitted()
        return NationalPosterior(self)


def _geo_draws(idata: Any, g: int, design: Design, model: GeoMediaMixModel) -> PosteriorDraws:
    """Geo ``g``'s slice of the joint draws, as the national model's posterior object."""
    names = set(idata.posterior.data_vars)
    n = flatten_draws(idata, "sigma").shape[0]

    def per_geo(name: str, width: int) -> np.ndarray:
        if name not in names:
            return np.zeros((n, width))
        return flatten_draws(idata, name)[:, g]

    return PosteriorDraws(
        design=design,
        adstock=model.adstock_,
        saturation=model.saturation_,
        adstock_params={p: flatten_draws(idata, f"adstock_{p}") for p in model.adstock_.param_names},
        saturation_params={p: flatten_draws(idata, f"saturation_{p}") for p in model.saturation_.param_names},
        beta=flatten_draws(idata, "beta")[:, g, :],
        intercept=per_geo("intercept", 0).reshape(n),
        trend_slope=per_geo("trend_slope", 0).reshape(n),
        gamma_fourier=per_geo("gamma_fourier", 0).reshape(n, -1),
        gamma_control=per_geo("gamma_control", 0).reshape(n, -1),
        sigma=flatten_draws(idata, "sigma")[:, g],
    )


# -- outputs ------------------------------------------------------------------------------------------------
def geo_roas(model: GeoMediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """ROAS of every channel in every geo over the geo's fitted periods.

    Returns:
        Columns ``geo, channel, spend, contribution, mean, hdi_low, hdi_high, identified``; a channel the
        geo never spent on has null ROAS (and zero contribution).
    """
    from stackml.mmm.outputs import roas

    model._check_fitted()
    frames = []
    for geo, view in model.geo_models_.items():
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 for a channel dark in this geo
            out = roas(view, hdi_prob).reset_index()
        dark = out["spend"] <= 0
        out.loc[dark, ["mean", "median", "sd", "hdi_low", "hdi_high"]] = np.nan
        out.loc[dark, "identified"] = False
        out.loc[dark, "note"] = "no spend in this geo"
        out.insert(0, "geo", geo)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def _national_totals(model: GeoMediaMixModel) -> tuple[np.ndarray, np.ndarray, float]:
    """Draws of each channel's total contribution over all geos ``(S, K)``, the spend ``(K,)`` and the
    total target."""
    model._check_fitted()
    views = model.geo_models_.values()
    contribution = sum(v.contribution_draws().sum(axis=1) for v in views)
    spend = sum(v.design_.spend.sum(axis=0) for v in views)
    target = float(sum(v.design_.target.sum() for v in views))
    return contribution, spend, target


def national_roas(model: GeoMediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """National ROAS per channel: contributions summed over geos draw by draw, over the spend of all geos.

    Returns:
        Index ``channel``; columns ``spend, contribution, mean, hdi_low, hdi_high``.
    """
    contribution, spend, _ = _national_totals(model)
    out = _summarise(contribution / spend, pd.Index(model.channels_, name="channel"), hdi_prob)
    out.insert(0, "contribution", contribution.mean(axis=0))
    out.insert(0, "spend", spend)
    return out


def national_contribution_share(model: GeoMediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Share of the total target (all geos) each channel contributed."""
    contribution, _, target = _national_totals(model)
    return _summarise(contribution / target, pd.Index(model.channels_, name="channel"), hdi_prob)


def contributions_table(model: GeoMediaMixModel | MediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Weekly contribution of every channel (and geo) with its interval: what a known truth is scored against.

    Returns:
        Columns ``date, geo, channel, mean, hdi_low, hdi_high`` in target units; ``geo`` is empty for a
        national model.
    """
    views = model.geo_models_ if isinstance(model, GeoMediaMixModel) else {"": model}
    rows = []
    for geo, view in views.items():
        draws = view.contribution_draws()  # (S, T, K)
        low, high = hdi(draws, hdi_prob)
        dates = view.design_.dates
        for k, channel in enumerate(view.design_.channels):
            rows.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "geo": geo,
                        "channel": channel,
                        "mean": draws[:, :, k].mean(axis=0),
                        "hdi_low": low[:, k],
                        "hdi_high": high[:, k],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True).sort_values(["geo", "channel", "date"], ignore_index=True)


def geo_summary(model: GeoMediaMixModel, hdi_prob: float = 0.94) -> dict[str, Any]:
    """National ROAS and contribution shares, per-geo ROAS, and how far the geos differ, as JSON-ready dicts.

    ``geo_spread`` is each channel's spread of log-ROAS across geos (posterior mean and interval): near 0 the
    geos share one ROAS and the small ones borrow it; large, each geo follows its own data.
    """

    def as_dict(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
        return {
            str(ch): {k: _number(frame.loc[ch, k]) for k in ("mean", "hdi_low", "hdi_high")}
            for ch in frame.index
        }

    by_geo = geo_roas(model, hdi_prob)
    spread = _summarise(model.roas_spread_, pd.Index(model.channels_, name="channel"), hdi_prob)
    return {
        "roas": as_dict(national_roas(model, hdi_prob)),
        "contribution_share": as_dict(national_contribution_share(model, hdi_prob)),
        "geos": {
            geo: {"roas": as_dict(rows.set_index("channel"))}
            for geo, rows in by_geo.groupby("geo", sort=False)
        },
        "geo_spread": as_dict(spread),
    }


def _number(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
