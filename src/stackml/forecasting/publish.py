"""Registering the chosen forecaster in MLflow and promoting it only when it wins on the same backtest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.forecasting.pipeline import PipelineResult

PRIMARY_METRIC = "backtest_owa"


def backtest_id(train: pd.DataFrame, result: PipelineResult) -> str:
    """Identity of a backtest: the same data, horizon, season and windows give the same id."""
    from stackml.tracking import data_fingerprint

    cfg = result.config
    key = json.dumps([data_fingerprint(train), cfg.horizon, cfg.season_length, cfg.n_windows], default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def run_params(result: PipelineResult) -> dict[str, Any]:
    cfg = asdict(result.config)
    return {**{k: ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in cfg.items()}, "chosen": result.choice.alias}


def run_metrics(result: PipelineResult) -> dict[str, float]:
    """Backtest (and holdout) scores of the chosen configuration, plus each candidate's backtest OWA."""
    chosen = result.scores.set_index("model").loc[result.choice.alias]
    metrics = {f"backtest_{k}": float(chosen[k]) for k in ("smape", "mase", "owa", "rmse")}
    for model, owa in zip(result.scores["model"], result.scores["owa"]):
        metrics[f"backtest_owa_{model}"] = float(owa)
    if result.holdout is not None:
        held = result.holdout.set_index("model").loc[result.choice.alias]
        metrics.update({f"holdout_{k}": float(held[k]) for k in ("smape", "mase", "owa") if k in held})
        metrics.update({f"holdout_{k}": float(held[k]) for k in held.index if k.startswith("coverage_")})
    return metrics


def register_forecaster(
    result: PipelineResult, train: pd.DataFrame, model_name: str, *, settings: Settings | None = None
) -> tuple[Any, Any]:
    """Register the chosen configuration as a pyfunc (inside the active run) and promote it when it is better.

    Returns ``(model_version, promotion)``; promotion is a :class:`stackml.tracking.PromotionResult`.
    """
    from stackml import tracking
    from stackml.forecasting.registry_model import MODEL_REQUIREMENTS, ForecastPyfunc, signature_for

    members = result.members
    model = ForecastPyfunc(
        forecasters={a: result.forecasters[a] for a in members},
        members=members,
        widths=result.widths[result.choice.alias],
        horizon=result.config.horizon,
    )
    example = pd.DataFrame({"unique_id": [str(train["unique_id"].iloc[0])], "h": [result.config.horizon]})
    signature = signature_for(model.predict(None, example))
    this_backtest = backtest_id(train, result)
    version = tracking.register_model(
        model,
        model_name,
        input_example=example,
        signature=signature,
        pip_requirements=tracking.pinned_requirements(*MODEL_REQUIREMENTS),
        metrics=run_metrics(result),
        settings=settings,
    )
    decision = tracking.promote(
        model_name, version.version, PRIMARY_METRIC, higher_is_better=False, comparable_on=this_backtest,
        settings=settings,
    )
    return version, decision
