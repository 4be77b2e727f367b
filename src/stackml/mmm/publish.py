"""Registering a media-mix model that passed its gates, and promoting it only when it wins on the same data.

The primary metric is the time-slice MAPE (``holdout_mape``: the error on the last periods, forecast by a model
that did not see them) or, without a holdout, the in-sample MAPE. Two versions are compared only when they were
fitted on the same model frame, the same lift tests and the same column roles and holdout; otherwise the champion
stays and the candidate's version says why.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.mmm.pipeline import MMMResult



def comparison_id(frame: pd.DataFrame, result: MMMResult) -> str:
    """Identity of what a version's primary metric was measured on: same id, comparable metric."""
    from stackml.tracking import data_fingerprint

    cfg = result.config
    lift = result.model.lift_tests_
    key = json.dumps(
        [
            data_fingerprint(frame),
            None if lift is None else data_fingerprint(lift),
            cfg.date_column, list(cfg.channels), list(cfg.controls), cfg.target,
            result.diagnostics.holdout_periods, cfg.primary_metric,
        ],
        default=str,
    )  # fmt: skip
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def run_params(result: MMMResult) -> dict[str, Any]:
    """The run's parameters: the configuration (bounds as text) and how the sampler ran."""
    cfg = result.config
    params: dict[str, Any] = {
        "channels": ",".join(cfg.channels), "controls": ",".join(cfg.controls), "target": cfg.target,
        "date_column": cfg.date_column, "adstock": cfg.adstock, "saturation": cfg.saturation,
        "draws": cfg.draws, "tune": cfg.tune, "chains": cfg.chains, "random_state": cfg.random_state,
        "target_accept": cfg.target_accept, "holdout": cfg.holdout, "lift_tests": cfg.lift_tests or "",
        "horizon": cfg.horizon, "sampler": result.model.fit_stats_["sampler"],
    }  # fmt: skip
    if cfg.bounds:
        side = lambda v: "" if v is None else f"{v:g}"  # as written on the command line
        params["bounds"] = ",".join(f"{c}={side(lo)}:{side(hi)}" for c, (lo, hi) in cfg.bounds.items())
    return params


def run_metrics(result: MMMResult) -> dict[str, float]:
    """Diagnostics, fit, held-out error, ROAS and shares per channel, and timings, as finite numbers."""
    d = result.diagnostics
    metrics = {
        "divergences": d.divergences, "max_rhat": d.max_rhat, "min_ess": d.min_ess,
        "insample_r2": d.r2, "insample_mape": d.mape, "coverage_94": d.coverage,
        "gates_passed": float(d.passed),
    }  # fmt: skip
    if d.oos_mape is not None:
        metrics |= {"holdout_mape": d.oos_mape, "holdout_r2": d.oos_r2, "holdout_periods": d.holdout_periods}
    for channel in result.roas.index:
        metrics[f"roas_{channel}"] = result.roas.loc[channel, "mean"]
        metrics[f"share_{channel}"] = result.contribution_share.loc[channel, "mean"]
        metrics[f"mroas_{channel}"] = result.marginal_roas.loc[channel, "mean"]
    if result.plan is not None:
        metrics |= {"plan_uplift": result.plan.uplift, "plan_uplift_ratio": result.plan.uplift_ratio}
    metrics |= {f"seconds_{k}": v for k, v in result.seconds.items()}
    # MLflow stores NaN, but promote() and the model list read better without it (r_hat of one chain is NaN).
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}


def register_mmm(
    result: MMMResult, frame: pd.DataFrame, model_name: str, *, settings: Settings | None = None
) -> tuple[Any, Any]:
    """Register the model as a pyfunc (inside the active run) and promote it when it is better.

    Returns:
        ``(model_version, promotion)``; promotion is a :class:`stackml.tracking.PromotionResult`.

    Raises:
        GateFailedError: the model failed a diagnostics gate; nothing is registered.
    """
    from stackml import tracking
    from stackml.mmm.registry_model import MODEL_REQUIREMENTS, MMMPyfunc, example_plan, signature_for

    result.diagnostics.raise_if_failed()
    model = MMMPyfunc(result.model, hdi_prob=result.config.hdi_prob)
    example = example_plan(result.model)
    signature = signature_for(result.model, model.predict(None, example))
    metrics = run_metrics(result)
    metric = result.config.primary_metric
    if metric not in metrics:
        raise InputError(
            f"The primary metric '{metric}' was not measured, so the model cannot be compared.",
            hint="Keep the holdout (--holdout 0.15) or use the in-sample MAPE (--holdout 0).",
        )
    this = comparison_id(frame, result)
    version = tracking.register_model(
        model,
        model_name,
        input_example=example,
        signature=signature,
        pip_requirements=tracking.pinned_requirements(*MODEL_REQUIREMENTS),
        metrics=metrics,
        settings=settings,
    )
    decision = tracking.promote(
        model_name, version.version, metric, higher_is_better=False, comparable_on=this, settings=settings
    )
    return version, decision
