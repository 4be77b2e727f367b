"""One forecasting run's results: a candidate model's, and the whole run's, which is what gets published.

:class:`PipelineResult` implements :class:`stackml.pipelines.Publishable`: the champion moves only when a
candidate beats it on the backtest OWA of the same backtest (same data, horizon, season and windows).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.pipelines import ModelToRegister

if TYPE_CHECKING:
    from stackml.forecasting.config import ForecastConfig
    from stackml.forecasting.forecaster import Forecaster
    from stackml.forecasting.selection import Choice

__all__ = ["CandidateResult", "PipelineResult"]


@dataclass
class CandidateResult:
    """One candidate model: its backtest, its forecaster fitted on all the data, and its point forecasts."""

    name: str
    alias: str
    backtest: pd.DataFrame
    forecaster: Forecaster | None  # None when the candidate stopped early
    forecast: pd.DataFrame | None
    seconds: float
    stopped: str | None = None  # why the candidate stopped before its final fit


@dataclass
class PipelineResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: ForecastConfig
    run_id: str
    scores: pd.DataFrame  # backtest accuracy per candidate (ensembles included), best first
    choice: Choice
    ensembles: dict[str, tuple[str, ...]]
    backtest: pd.DataFrame  # wide, every candidate and ensemble
    forecasts: pd.DataFrame  # wide, every candidate and ensemble, with intervals
    widths: dict[str, dict[float, np.ndarray]]
    forecasters: dict[str, Forecaster]  # alias -> fitted on all the data
    alias_names: dict[str, str]  # alias -> model name, for every candidate
    holdout: pd.DataFrame | None
    by_step: pd.DataFrame  # backtest error by horizon step and model
    by_series: pd.DataFrame  # backtest error by series and model
    seconds: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)  # model name -> why it did not run to the end
    backtest_coverage: dict[str, dict[float, float]] = field(default_factory=dict)  # alias -> level -> share

    @property
    def holdout_gap(self) -> float | None:
        """Holdout OWA minus backtest OWA of the chosen forecast (positive: the backtest was optimistic)."""
        if self.holdout is None or "owa" not in self.holdout:
            return None
        held = self.holdout.set_index("model")["owa"].get(self.choice.alias)
        back = self.scores.set_index("model")["owa"].get(self.choice.alias)
        return None if held is None or back is None else float(held) - float(back)

    def without_forecasters(self) -> PipelineResult:
        """The same result with no fitted models: reading it back needs none of the models' libraries."""
        return replace(self, forecasters={})

    def with_forecasters(self, forecasters: dict[str, Forecaster]) -> PipelineResult:
        return replace(self, forecasters=forecasters)

    @property
    def members(self) -> list[str]:
        """Aliases whose mean is the chosen forecast."""
        alias_of = {name: alias for alias, name in self.alias_names.items()}
        return [alias_of[m] for m in self.choice.members] if self.choice.is_ensemble else [self.choice.alias]

    def summary(self) -> dict[str, Any]:
        """Scores per model (holdout when given, else backtest), the chosen alias and why, the coverage of
        its intervals (backtest, and holdout when given), and the models that did not run to the end: plain
        values, what ``stackml forecast run --json`` prints."""
        scores = self.holdout if self.holdout is not None else self.scores
        metrics = {
            str(row["model"]): {k: _plain(row[k]) for k in ("smape", "mase", "owa") if k in row}
            | {k: _plain(row[k]) for k in row.index if k.startswith("coverage_")}
            for _, row in scores.iterrows()
        }
        alias = self.choice.alias
        coverage = {
            "backtest": {
                f"{level:g}": _plain(v) for level, v in self.backtest_coverage.get(alias, {}).items()
            }
        }
        if self.holdout is not None:
            held = self.holdout.set_index("model").loc[alias]
            coverage["holdout"] = {
                k.removeprefix("coverage_").replace("_", "."): _plain(held[k])
                for k in held.index
                if k.startswith("coverage_")
            }
        cfg = self.config
        return {
            "models": metrics,
            "best": alias,
            "why": self.choice.why,
            "scored_on": "holdout" if self.holdout is not None else "backtest",
            "members": self.members,
            "coverage": coverage,
            "holdout_gap_owa": None if self.holdout_gap is None else _plain(self.holdout_gap),
            "skipped": dict(self.skipped),
            "season_length": cfg.season_length,
            "seasonal_periods": list(cfg.seasonal_periods or ()),
            "n_windows": cfg.n_windows,
        }

    # -- the publish protocol (stackml.pipelines.publish): the champion moves only on the same backtest ------
    pipeline = "forecasting"
    primary_metric = "backtest_owa"
    higher_is_better = False
    passed = True  # forecasting has no gates: the backtest comparison with the champion decides

    def failed_gates(self) -> list[str]:
        return []

    def params(self) -> dict[str, Any]:
        """The configuration as given (lists as comma text) and the chosen alias."""
        params = {
            k: ",".join(map(str, v)) if isinstance(v, tuple) else ("" if v is None else v)
            for k, v in self.config.model_dump().items()
        }
        return params | {"chosen": self.choice.alias}

    def metrics(self) -> dict[str, float]:
        """Backtest (and holdout) scores of the chosen configuration, plus each candidate's backtest OWA."""
        chosen = self.scores.set_index("model").loc[self.choice.alias]
        metrics = {f"backtest_{k}": float(chosen[k]) for k in ("smape", "mase", "owa", "rmse")}
        for model, owa in zip(self.scores["model"], self.scores["owa"]):
            metrics[f"backtest_owa_{model}"] = float(owa)
        for level, share in self.backtest_coverage.get(self.choice.alias, {}).items():
            metrics[f"backtest_coverage_{level:g}".replace(".", "_")] = float(share)
        if self.holdout_gap is not None:
            metrics["holdout_gap_owa"] = self.holdout_gap
        if self.holdout is not None:
            held = self.holdout.set_index("model").loc[self.choice.alias]
            metrics.update({f"holdout_{k}": float(held[k]) for k in ("smape", "mase", "owa") if k in held})
            metrics.update({f"holdout_{k}": float(held[k]) for k in held.index if k.startswith("coverage_")})
        return metrics

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"backtest_scores": self.scores}

    def comparison_key(self, frame: pd.DataFrame) -> str:
        """Identity of a backtest: the same data, horizon, season and windows give the same key."""
        from stackml.tracking import data_fingerprint

        cfg = self.config
        key = json.dumps(
            [data_fingerprint(frame), cfg.horizon, cfg.season_length, cfg.n_windows], default=str
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The chosen configuration as a pyfunc that forecasts the trained series by id."""
        from stackml.forecasting.registry_model import MODEL_REQUIREMENTS, ForecastPyfunc, signature_for

        members = self.members
        model = ForecastPyfunc(
            forecasters={a: self.forecasters[a] for a in members},
            members=members,
            widths=self.widths[self.choice.alias],
            horizon=self.config.horizon,
        )
        example = pd.DataFrame({"unique_id": [str(frame["unique_id"].iloc[0])], "h": [self.config.horizon]})
        signature = signature_for(model.predict(None, example))
        return [ModelToRegister(model, example, signature, MODEL_REQUIREMENTS)]


def _plain(value: Any) -> float | None:
    """A float for JSON: NaN becomes None."""
    value = float(value)
    return None if value != value else round(value, 6)
