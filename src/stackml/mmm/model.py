"""The front door: :class:`MediaMixModel`, a Bayesian media-mix model written directly on PyMC."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stackml.errors import InputError, NotFittedError, raise_if_problems
from stackml.mmm import calibration, sampling, selection
from stackml.mmm import validation as checks
from stackml.mmm._design import Design, build_design, infer_period_days
from stackml.mmm._graph import build_pymc_model
from stackml.mmm._posterior import PosteriorDraws, hdi
from stackml.mmm.identification import prior_roas_draws
from stackml.mmm.transforms import (
    DEFAULT_L_MAX,
    MIN_CARRYOVER_DAYS,
    Adstock,
    Saturation,
    get_adstock,
    get_saturation,
)

__all__ = ["MediaMixModel"]


@dataclass
class _Fit:
    """One sampled candidate of a fit: its saturation family, graph, sampler result and draws."""

    saturation: Saturation
    pymc_model: Any
    result: sampling.SampleResult
    posterior: PosteriorDraws
    target_accept: float
    retry: dict[str, Any] | None


class MediaMixModel:
    """Bayesian media-mix model: adstock, saturation, trend, yearly seasonality and controls, sampled with
    NUTS.

    Inputs are scaled before modelling (each channel's spend by its maximum, controls by their largest
    absolute value, the target by its mean), so the default priors need no tuning. With ``roas_prior`` the
    channel coefficients are parameterised by their return on ad spend instead, with a log-normal prior.

    Args:
        date_column: one row per period (week or day), evenly spaced.
        channel_columns: spend columns, one per channel, non-negative.
        target_column: what media drives (revenue, conversions, ...).
        control_columns: other numeric drivers (promotions, price, holidays).
        adstock: ``"geometric"`` (default), ``"delayed"``, ``"weibull"``, ``"weibull_pdf"`` or an ``Adstock``.
        saturation: ``"default"``: the Hill curve, whose two parameters per channel take concave and
            S-shaped responses alike, which keeps intervals honest when the true curve is either; the
            logistic curve when lift tests calibrate the fit (see :mod:`stackml.mmm.selection`).
            ``"hill"``, ``"logistic"``, ``"michaelis_menten"``, ``"auto"`` (logistic and Hill both fitted,
            the data choose by PSIS-LOO) or a ``Saturation``.
        l_max: longest carryover in periods, for a named adstock; default 8 periods, and at least
            ``stackml.mmm.transforms.MIN_CARRYOVER_DAYS`` days (21 for daily data).
        yearly_seasonality: Fourier order of the yearly cycle (0 turns it off).
        trend: add a linear trend.
        time_varying_intercept: let the baseline's level drift: a random walk over knots a quarter apart
            (``stackml.mmm._design.LEVEL_KNOT_DAYS``), for demand that moves in ways the trend, the
            seasonality and the controls miss. Its steps have a prior sd of 5% of the target's mean
            (``priors={"level_step_sd": ...}`` changes it).
        roas_prior: ``(mean, sd)`` for every channel, or ``{channel: (mean, sd)}``, in target units per spend
            unit (log-normal). None: a weak prior from the data's scale, every channel's ROAS around the
            return at which media, in proportion to spend, drive a fifth of the target, within a factor of
            6.6 either side (``stackml.mmm._graph.default_roas_prior``). ``priors={"beta": ...}`` puts a
            prior on the coefficients of the scaled model instead.
        priors: overrides of the default priors, ``{name: (pymc distribution, kwargs)}`` with names from
            ``stackml.mmm._graph.DEFAULT_PRIORS`` or ``adstock_<param>`` / ``saturation_<param>``.
        target_accept: NUTS target acceptance; a fit with divergences samples once more at a higher one.

    Example:
        >>> from stackml.mmm import MediaMixModel, simulate
        >>> sim = simulate("2y_3ch", seed=1)
        >>> mmm = MediaMixModel("date", sim.channels, "revenue", control_columns=sim.controls)
        >>> mmm = mmm.fit(sim.frame, draws=200, tune=200, chains=2, random_state=1)  # doctest: +SKIP
        >>> mmm.expected_response(sim.frame.tail(4)).shape  # doctest: +SKIP
        (400, 3)
    """

    def __init__(
        self,
        date_column: str,
        channel_columns: Sequence[str],
        target_column: str,
        control_columns: Sequence[str] = (),
        *,
        adstock: str | Adstock = "geometric",
        saturation: str | Saturation = "default",
        l_max: int | None = None,
        yearly_seasonality: int = 2,
        trend: bool = True,
        time_varying_intercept: bool = False,
        roas_prior: Any = None,
        priors: dict[str, Any] | None = None,
        target_accept: float | None = None,
    ) -> None:
        self.date_column = date_column
        self.channel_columns = channel_columns
        self.target_column = target_column
        self.control_columns = control_columns
        self.adstock = adstock
        self.saturation = saturation
        self.l_max = l_max
        self.yearly_seasonality = yearly_seasonality
        self.trend = trend
        self.time_varying_intercept = time_varying_intercept
        self.roas_prior = roas_prior
        self.priors = priors
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
        lift_tests: str | Path | pd.DataFrame | None = None,
        progressbar: bool = False,
        retry_divergences: bool = True,
    ) -> MediaMixModel:
        """Validate ``df``, build the PyMC model and sample its posterior.

        Args:
            df: the model frame, one row per period.
            draws, tune, chains: NUTS draws kept and warm-up draws per chain, and the number of chains;
                default the pipeline's (:class:`~stackml.mmm.config.MMMConfig`: 2000 draws keep r_hat below
                1.01 reliably; tests may use far fewer).
            random_state: seed for the sampler.
            sampler: ``"nutpie"`` (default; falls back to PyMC with a warning if it is missing or fails) or
                ``"pymc"``.
            lift_tests: experiments to calibrate with (CSV path or frame, see :mod:`stackml.mmm.calibration`).
            progressbar: show the sampler's progress bar.
            retry_divergences: if the sampler reports divergent transitions, sample once more at a higher
                target acceptance (:func:`~stackml.mmm.sampling.raised_target_accept`).

        Returns:
            self, with ``idata_`` (ArviZ InferenceData), ``posterior_`` (flat draws), ``prior_roas_`` (the
            prior's ROAS draws, see :mod:`stackml.mmm.identification`), ``design_`` and
            ``fit_stats_`` (sampler used, compile and sampling seconds, the target acceptance the kept draws
            were sampled at, and ``divergence_retry``: None, or the divergences that caused a retry, the
            target acceptance they came at and the divergences after it).
        """
        from stackml.mmm.config import config_default

        draws = config_default("draws") if draws is None else draws
        tune = config_default("tune") if tune is None else tune
        chains = config_default("chains") if chains is None else chains
        frame = self._check_fit_input(df, draws, tune, chains, sampler)
        design = build_design(
            frame,
            date_column=self.date_column,
            channels=tuple(self.channel_columns),
            controls=tuple(self.control_columns),
            target_column=self.target_column,
            fourier_order=int(self.yearly_seasonality),
            trend=bool(self.trend),
            time_varying_level=bool(self.time_varying_intercept),
        )
        adstock = get_adstock(self.adstock, l_max=self.resolved_l_max(design.period_days))
        lift = tests = None
        if lift_tests is not None:
            tests = calibration.load_lift_tests(lift_tests)
            lift = calibration.build_lift_design(tests, design, adstock.l_max)
        run = {"draws": draws, "tune": tune, "chains": chains, "random_state": random_state}
        names = selection.candidates(self.saturation, calibrated=lift is not None)
        fits = [
            self._sample(
                design, adstock, get_saturation(name), lift, run, sampler, progressbar, retry_divergences
            )
            for name in names
        ]
        comparison = None
        if len(fits) > 1:
            comparison = selection.compare(
                names,
                [
                    selection.pointwise_log_likelihood(
                        design.target,
                        f.posterior.expected(design.dates, design.spend, design.control_values),
                        f.posterior.sigma * design.target_scale,
                        chains,
                    )
                    for f in fits
                ],
            )
        chosen = fits[int(np.flatnonzero(comparison["chosen"])[0])] if comparison is not None else fits[0]
        self.design_: Design = design
        self.adstock_ = adstock
        self.saturation_ = chosen.saturation
        self.saturation_comparison_ = comparison
        self.lift_tests_ = tests
        self.pymc_model_ = chosen.pymc_model
        self.idata_ = chosen.result.idata
        self.posterior_ = chosen.posterior
        # What the prior alone says about ROAS, to tell identified channels from restated priors.
        self.prior_roas_ = prior_roas_draws(
            chosen.pymc_model, design, adstock, chosen.saturation, random_state
        )
        self.fit_stats_ = {
            "sampler": chosen.result.sampler,
            "compile_seconds": sum(f.result.compile_seconds for f in fits),
            "sampling_seconds": sum(f.result.sampling_seconds for f in fits),
            **run,
            "saturation": chosen.saturation.name,
            "target_accept": chosen.target_accept,
            "divergence_retry": chosen.retry,
            "fallback_reason": chosen.result.fallback_reason,
        }
        self._sample_result = chosen.result
        return self

    def _sample(
        self,
        design: Design,
        adstock: Adstock,
        saturation: Saturation,
        lift: Any,
        run: dict[str, Any],
        sampler: str,
        progressbar: bool,
        retry_divergences: bool,
    ) -> _Fit:
        """Build and sample the model with one saturation family; one retry after divergences."""
        model = build_pymc_model(
            design, adstock, saturation, roas_prior=self.roas_prior, priors=self.priors, lift=lift
        )
        result, target_accept, retry = sampling.sample_with_retry(
            model,
            sampler=sampler,
            target_accept=self.resolved_target_accept(),
            progressbar=progressbar,
            retry_divergences=retry_divergences,
            **run,
        )
        posterior = PosteriorDraws.from_idata(result.idata, design, adstock, saturation)
        return _Fit(saturation, model, result, posterior, target_accept, retry)

    def resolved_l_max(self, period_days: float) -> int:
        """``l_max`` as given, or the default for periods of ``period_days``: 8 periods, and at least
        :data:`~stackml.mmm.transforms.MIN_CARRYOVER_DAYS` days (daily data carry over for more than 8
        periods)."""
        if self.l_max is not None:
            return int(self.l_max)
        return max(DEFAULT_L_MAX, math.ceil(MIN_CARRYOVER_DAYS / period_days))

    def resolved_target_accept(self) -> float:
        """``target_accept`` as given, or the pipeline's default (:class:`~stackml.mmm.config.MMMConfig`)."""
        from stackml.mmm.config import config_default

        return config_default("target_accept") if self.target_accept is None else float(self.target_accept)

    def _check_fit_input(self, df: Any, draws: Any, tune: Any, chains: Any, sampler: Any) -> pd.DataFrame:
        problems = checks.check_settings(self) + checks.check_fit_args(draws, tune, chains, sampler)
        channels = list(self.channel_columns) if checks.is_names(self.channel_columns) else []
        controls = list(self.control_columns) if checks.is_names(self.control_columns) else []
        l_max = self.l_max if isinstance(self.l_max, int) and self.l_max > 0 else DEFAULT_L_MAX
        order = self.yearly_seasonality if isinstance(self.yearly_seasonality, int) else 0
        problems += checks.check_frame(
            df,
            date_column=self.date_column,
            channels=channels,
            controls=controls,
            target_column=self.target_column,
            min_rows=checks.min_rows_for(len(channels), len(controls), max(order, 0), l_max),
        )
        raise_if_problems(
            problems,
            what="the media-mix model's input",
            hint="Fix the listed items; the model frame needs one row per period with numeric, non-negative "
            "spend columns (stackml.mmm.aggregate_touchpoints builds one from raw touchpoints).",
        )
        frame = df.copy()
        frame[self.date_column] = pd.to_datetime(frame[self.date_column])
        return frame.sort_values(self.date_column).reset_index(drop=True)

    def __getstate__(self) -> dict[str, Any]:
        # The compiled sampler (numba functions) and the PyMC graph do not pickle; the posterior and the
        # design are all that predictions, outputs and the optimiser need, so a registered model carries only
        # those.
        return {k: v for k, v in self.__dict__.items() if k not in ("pymc_model_", "_sample_result")}

    # -- using the posterior -------------------------------------------------------------------------------
    @property
    def channels_(self) -> tuple[str, ...]:
        self._check_fitted()
        return self.design_.channels

    def _check_fitted(self) -> None:
        if not hasattr(self, "posterior_"):
            raise NotFittedError(
                "This MediaMixModel is not fitted yet.", hint="Call .fit(df) before using the posterior."
            )

    def contribution_draws(self) -> np.ndarray:
        """Channel contributions over the training period, ``(n_draws, n_periods, n_channels)`` in target
        units."""
        self._check_fitted()
        return self.posterior_.contributions(self.design_.spend)

    def predict(self, df: pd.DataFrame, *, hdi_prob: float = 0.94, history: bool = True) -> pd.DataFrame:
        """Expected target for the periods in ``df`` (dates, channel spend and controls; no target needed).

        Args:
            df: one row per period, evenly spaced at the training frequency.
            hdi_prob: probability mass of the returned highest-density interval.
            history: let the training spend before ``df``'s first date carry over into it (the plan replaces
                the training spend on its own dates).

        Returns:
            Columns ``date``, ``prediction`` (posterior mean), ``hdi_low``, ``hdi_high``.
        """
        draws = self._expected_draws(df, history=history)
        low, high = hdi(draws, hdi_prob)
        dates = pd.to_datetime(df[self.date_column]).sort_values().to_numpy()
        return pd.DataFrame(
            {"date": dates, "prediction": draws.mean(axis=0), "hdi_low": low, "hdi_high": high}
        )

    def _expected_draws(self, df: pd.DataFrame, *, history: bool) -> np.ndarray:
        self._check_fitted()
        dates, spend, controls = self._plan_arrays(df, need_controls=True)
        full, offset = self._with_history(dates, spend, history)
        media = self.posterior_.contributions(full)[:, offset:, :].sum(axis=2)
        return self.posterior_.baseline(dates, controls) + media

    def expected_response(
        self,
        spend_plan: pd.DataFrame | np.ndarray,
        *,
        history: bool = True,
        include_tail: bool = False,
    ) -> np.ndarray:
        """Posterior draws of each channel's total contribution over a spend plan, in target units.

        This is what a budget optimiser maximises; the uplift of a plan is its response minus that of a
        zero-spend plan over the same dates (which keeps only the carryover of past spend).

        Args:
            spend_plan: a frame with the date column and every channel column, or an array
                ``(n_periods, n_channels)`` for the periods right after the training data.
            history: count carryover from the training spend before the plan's first date.
            include_tail: also count the plan's carryover in the ``l_max - 1`` periods after it.

        Returns:
            ``(n_draws, n_channels)``.
        """
        self._check_fitted()
        if isinstance(spend_plan, np.ndarray):
            dates, spend = self._array_plan(spend_plan)
        else:
            dates, spend, _ = self._plan_arrays(spend_plan, need_controls=False)
        full, offset = self._with_history(dates, spend, history)
        if include_tail:
            full = np.vstack([full, np.zeros((self.adstock_.l_max - 1, full.shape[1]))])
        return self.posterior_.contributions(full)[:, offset:, :].sum(axis=1)

    # -- plan handling -------------------------------------------------------------------------------------
    def _array_plan(self, spend: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
        d = self.design_
        if (
            spend.ndim != 2
            or spend.shape[1] != len(d.channels)
            or not np.isfinite(spend).all()
            or (spend < 0).any()
        ):
            raise InputError(
                f"A spend plan array must be (n_periods, {len(d.channels)}) with finite, non-negative "
                f"values; got shape {spend.shape}.",
                hint=f"Order the columns as the model's channels {list(d.channels)}.",
            )
        step = pd.Timedelta(days=d.period_days)
        dates = pd.DatetimeIndex([d.dates[-1] + step * (i + 1) for i in range(spend.shape[0])])
        return dates, spend.astype(float)

    def _plan_arrays(
        self, df: pd.DataFrame, *, need_controls: bool
    ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray | None]:
        d = self.design_
        controls = list(d.controls) if need_controls else []
        problems = checks.check_frame(
            df,
            date_column=self.date_column,
            channels=d.channels,
            controls=controls,
            target_column=None,
            min_rows=1,
            require_spend=False,  # a plan may leave channels dark
        )
        raise_if_problems(
            problems,
            what="the spend plan",
            hint=f"Give one row per period with '{self.date_column}' "
            f"and the columns {list(d.channels) + controls}.",
        )
        frame = df.assign(**{self.date_column: pd.to_datetime(df[self.date_column])}).sort_values(
            self.date_column
        )
        dates = pd.DatetimeIndex(frame[self.date_column])
        if len(dates) > 1:
            period = infer_period_days(dates, self.date_column)
            if abs(period - d.period_days) > 0.5:
                raise InputError(
                    f"The plan's periods are {period:g} days apart "
                    f"but the model was fitted on {d.period_days:g}-day periods.",
                    hint="Aggregate the plan to the training frequency.",
                )
        spend = frame[list(d.channels)].to_numpy(dtype=float)
        values = frame[controls].to_numpy(dtype=float) if controls else None
        return dates, spend, values

    def _with_history(
        self, dates: pd.DatetimeIndex, spend: np.ndarray, history: bool
    ) -> tuple[np.ndarray, int]:
        """Prepend the training spend that carries over into the plan; returns ``(spend, plan offset)``."""
        d = self.design_
        if not history:
            return spend, 0
        first = int(d.positions(dates[:1])[0])
        positions = np.arange(d.n_periods)
        carry = (positions < first) & (positions >= first - (self.adstock_.l_max - 1))
        if not carry.any():
            return spend, 0
        gap = first - (positions[carry][-1] + 1)  # periods between the training data and the plan
        full = np.vstack([d.spend[carry], np.zeros((gap, spend.shape[1])), spend])
        return full, len(full) - len(spend)
