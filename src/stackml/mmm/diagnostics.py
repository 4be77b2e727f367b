"""Is the fitted model fit to use? Sampler health, in-sample fit and time-slice out-of-sample error, as gates.

A model that fails a gate should not be registered; each failed gate says what it measured, the threshold and
what to try.

Example:
    >>> from stackml.mmm.diagnostics import Gate
    >>> Gate("divergences", 3, 0, False, "raise --target-accept").message()
    'divergences = 3 (limit 0): raise --target-accept'
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stackml._deps import require
from stackml.errors import InputError, NotFittedError, StackmlError
from stackml.mmm import sampling
from stackml.mmm._posterior import PosteriorDraws, hdi

if TYPE_CHECKING:
    from stackml.mmm.model import MediaMixModel

__all__ = [
    "Diagnostics",
    "Gate",
    "GateFailedError",
    "diagnose",
    "fit_metrics",
    "predictive_draws",
    "residual_autocorrelation",
    "time_slice_error",
]

# The CLI option first (`stackml mmm fit`), the Python form in brackets.
ADVICE = {
    "divergences": "raise --target-accept to 0.97 (in Python: MediaMixModel(target_accept=0.97)), calibrate "
    "channels with little spend variation with --lift-tests or --roas-prior (in Python: roas_prior=...), or "
    "use a simpler --adstock/--saturation",
    "max_rhat": "the chains disagree: sample longer (--tune 2000 --draws 2000; in Python: "
    "fit(tune=2000, draws=2000)) or with more --chains; "
    "if it persists a channel is not identified (sparse or collinear spend), "
    "so add --lift-tests or --roas-prior (in Python: roas_prior=...)",
    "min_ess": "too few effective draws: increase --draws and --tune (in Python: fit(draws=..., tune=...))",
    "r2": "the model explains little of the target: add --controls columns (promotions, holidays, price), "
    "raise --yearly-seasonality to 4 (in Python: MediaMixModel(yearly_seasonality=4)), or check that "
    "--target is the right column",
    "mape": "large in-sample errors: add --controls columns for the periods with the largest residuals",
    "oos_mape": "the model forecasts the held-out periods badly: check for breaks at the end of the data, "
    "add --controls for new events, or calibrate with --lift-tests",
}


class GateFailedError(StackmlError, RuntimeError):
    """A fitted model failed a diagnostics gate and must not be registered."""


@dataclass(frozen=True)
class Gate:
    """One check: the measured value, its limit, whether it passed and what to try if not."""

    name: str
    value: float
    threshold: float
    passed: bool
    advice: str

    def message(self) -> str:
        return f"{self.name} = {self.value:.4g} (limit {self.threshold:.4g}): {self.advice}"


@dataclass
class Diagnostics:
    """The measured diagnostics and the gates derived from them."""

    divergences: int
    max_rhat: float
    min_ess: float
    r2: float
    mape: float
    coverage: float  # share of observations inside the 94% posterior-predictive interval
    coverage50: float = float("nan")  # ... inside the 50% interval
    residual_acf1: float = float("nan")  # lag-1 autocorrelation of the residuals of the posterior mean
    oos_mape: float | None = None
    oos_r2: float | None = None
    holdout_periods: int | None = None
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failures(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gates"] = [asdict(g) for g in self.gates]
        out["passed"] = self.passed
        return out

    def raise_if_failed(self) -> None:
        """Raise :class:`GateFailedError` naming every failed gate and what to try."""
        if self.failures:
            listed = "; ".join(g.message() for g in self.failures)
            raise GateFailedError(
                f"The media-mix model failed {len(self.failures)} diagnostics gate(s): {listed}.",
                hint="The model was not registered. Refit with the suggested changes.",
            )


def predictive_draws(expected_draws: np.ndarray, sigma: np.ndarray, seed: int = 0) -> np.ndarray:
    """Posterior-predictive draws of the target ``(S, T)``: each draw's expected target plus its own noise
    (``sigma`` per draw ``(S,)``, or per draw and period ``(S, T)``)."""
    rng = np.random.default_rng(seed)
    sigma = np.asarray(sigma)
    return expected_draws + rng.normal(size=expected_draws.shape) * (
        sigma[:, None] if sigma.ndim == 1 else sigma
    )


def residual_autocorrelation(residual: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals (0 for independent errors; NaN with under 3 periods)."""
    r = residual - residual.mean()
    denominator = float((r**2).sum())
    if len(r) < 3 or denominator == 0.0:
        return float("nan")
    return float((r[1:] * r[:-1]).sum() / denominator)


def fit_metrics(observed: np.ndarray, expected_draws: np.ndarray, sigma: np.ndarray, seed: int = 0) -> dict:
    """R² and MAPE of the posterior-mean prediction; the posterior-predictive check: the share of periods
    inside the 94% and 50% predictive intervals, and the residuals' lag-1 autocorrelation."""
    prediction = expected_draws.mean(axis=0)
    residual = observed - prediction
    total = ((observed - observed.mean()) ** 2).sum()
    nonzero = observed != 0
    predictive = predictive_draws(expected_draws, sigma, seed)
    low, high = hdi(predictive, 0.94)
    low50, high50 = hdi(predictive, 0.50)
    return {
        "r2": float(1.0 - (residual**2).sum() / total) if total > 0 else float("nan"),
        "mape": float(np.mean(np.abs(residual[nonzero] / observed[nonzero])))
        if nonzero.any()
        else float("nan"),
        "coverage": float(np.mean((observed >= low) & (observed <= high))),
        "coverage50": float(np.mean((observed >= low50) & (observed <= high50))),
        "residual_acf1": residual_autocorrelation(residual),
    }


def _sampler_health(idata: Any) -> tuple[int, float, float]:
    az = require("arviz", extra="mmm")
    divergences = sampling.divergences(idata)
    names = [n for n in idata.posterior.data_vars if not n.startswith("lift_")]
    posterior = idata.posterior[names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-chain fits warn that r_hat is undefined; we report nan then
        rhat = az.rhat(posterior)
        ess = az.ess(posterior, method="bulk")
    max_rhat = float(np.nanmax([np.nanmax(np.asarray(rhat[n])) for n in names]))
    min_ess = float(np.nanmin([np.nanmin(np.asarray(ess[n])) for n in names]))
    return divergences, max_rhat, min_ess


def time_slice_error(
    model: MediaMixModel, holdout: float | int | None = None, **sample_kwargs: Any
) -> dict[str, Any]:
    """Refit without the last ``holdout`` periods (a count, or a fraction; default the pipeline's share, see
    :class:`~stackml.mmm.config.MMMConfig`) and score the forecast of them.

    The compiled model is re-sampled with those periods masked out of the likelihood, so no second compile is
    needed; the held-out spend is known, as it would be for a plan.

    Returns:
        ``{"holdout_periods", "oos_mape", "oos_r2", "oos_coverage"}``.
    """
    from stackml.mmm.config import config_default
    from stackml.mmm.sampling import resample

    holdout = config_default("holdout") if holdout is None else holdout
    model._check_fitted()
    if not hasattr(model, "_sample_result"):
        raise NotFittedError(
            "This MediaMixModel was loaded from a pickle, "
            "which keeps the posterior but not the compiled sampler.",
            hint="Run the time-slice check on the model object right after fit().",
        )
    d = model.design_
    n_holdout = round(holdout * d.n_periods) if isinstance(holdout, float) else int(holdout)
    if not 1 <= n_holdout <= d.n_periods // 2:
        raise InputError(
            f"The 'holdout' parameter must leave 1..{d.n_periods // 2} periods out; got {holdout!r} "
            f"({n_holdout} of {d.n_periods} periods).",
            hint="Pass a fraction such as 0.15 or a number of periods.",
        )
    mask = np.ones(d.n_periods)
    mask[-n_holdout:] = 0.0
    stats = model.fit_stats_
    kwargs = {k: stats[k] for k in ("draws", "tune", "chains", "random_state")}
    target_accept = stats.get("target_accept", model.resolved_target_accept())  # after any retry
    kwargs |= {"target_accept": target_accept, "progressbar": False, **sample_kwargs}
    idata = resample(model._sample_result, {"fit_mask": mask}, **kwargs)
    draws = PosteriorDraws.from_idata(idata, d, model.adstock_, model.saturation_)
    expected = draws.expected(d.dates, d.spend, d.control_values)[:, -n_holdout:]
    metrics = fit_metrics(d.target[-n_holdout:], expected, draws.sigma * d.target_scale)
    return {
        "holdout_periods": n_holdout,
        "oos_mape": metrics["mape"],
        "oos_r2": metrics["r2"],
        "oos_coverage": metrics["coverage"],
    }


def gated_diagnostics(
    idata: Any,
    metrics: dict[str, float],
    *,
    max_divergences: int,
    max_rhat: float,
    min_ess: float,
    min_r2: float,
    max_mape: float | None,
) -> Diagnostics:
    """The sampler's health from ``idata`` and the fit ``metrics`` (:func:`fit_metrics`), with the gates."""
    divergences, rhat, ess = _sampler_health(idata)
    report = Diagnostics(divergences=divergences, max_rhat=rhat, min_ess=ess, **metrics)
    report.gates = [
        Gate(
            "divergences", divergences, max_divergences, divergences <= max_divergences, ADVICE["divergences"]
        ),
        Gate("max_rhat", rhat, max_rhat, bool(rhat <= max_rhat), ADVICE["max_rhat"]),
        Gate("min_ess", ess, min_ess, bool(ess >= min_ess), ADVICE["min_ess"]),
        Gate("r2", report.r2, min_r2, bool(report.r2 >= min_r2), ADVICE["r2"]),
    ]
    if max_mape is not None:
        report.gates.append(Gate("mape", report.mape, max_mape, report.mape <= max_mape, ADVICE["mape"]))
    return report


def diagnose(
    model: MediaMixModel,
    *,
    holdout: float | None = None,
    max_divergences: int | None = None,
    max_rhat: float | None = None,
    min_ess: float | None = None,
    min_r2: float | None = None,
    max_mape: float | None = None,
    max_oos_mape: float | None = None,
) -> Diagnostics:
    """Measure a fitted model and apply the gates.

    Args:
        model: a fitted MediaMixModel.
        holdout: when given, also run :func:`time_slice_error` (costs one more sampling run).
        max_divergences, max_rhat, min_ess, min_r2: sampler and fit gates; default the pipeline's
            (:class:`~stackml.mmm.config.MMMConfig`).
        max_mape, max_oos_mape: optional error gates (None: reported, not gated).
    """
    from stackml.mmm.config import config_default

    max_divergences = config_default("max_divergences") if max_divergences is None else max_divergences
    max_rhat = config_default("max_rhat") if max_rhat is None else max_rhat
    min_ess = config_default("min_ess") if min_ess is None else min_ess
    min_r2 = config_default("min_r2") if min_r2 is None else min_r2
    model._check_fitted()
    d = model.design_
    expected = model.posterior_.expected(d.dates, d.spend, d.control_values)
    report = gated_diagnostics(
        model.idata_,
        fit_metrics(d.target, expected, model.posterior_.sigma * d.target_scale),
        max_divergences=max_divergences,
        max_rhat=max_rhat,
        min_ess=min_ess,
        min_r2=min_r2,
        max_mape=max_mape,
    )
    gates = report.gates
    if holdout is not None:
        oos = time_slice_error(model, holdout)
        report.oos_mape, report.oos_r2, report.holdout_periods = (
            oos["oos_mape"],
            oos["oos_r2"],
            oos["holdout_periods"],
        )
        if max_oos_mape is not None:
            gates.append(
                Gate(
                    "oos_mape",
                    report.oos_mape,
                    max_oos_mape,
                    report.oos_mape <= max_oos_mape,
                    ADVICE["oos_mape"],
                )
            )
    report.gates = gates
    return report
