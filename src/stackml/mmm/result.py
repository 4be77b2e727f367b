"""One media-mix run's result: what the report, the registry and the CLI read, and how it is published.

:class:`MMMResult` implements :class:`stackml.pipelines.Publishable`: its parameters, metrics and tables are
what the MLflow run logs; its primary metric is the time-slice MAPE (``holdout_mape``: the error on the last
periods, forecast by a model that did not see them) or, without a holdout, the in-sample MAPE. Two versions
are compared only when they were fitted on the same model frame, the same lift tests and the same column roles
and holdout; otherwise the champion stays and the candidate's version says why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.pipelines import ModelToRegister, finite_metrics

if TYPE_CHECKING:
    from stackml.mmm.config import MMMConfig
    from stackml.mmm.diagnostics import Diagnostics
    from stackml.mmm.model import MediaMixModel
    from stackml.mmm.optimize import BudgetPlan

__all__ = ["MMMResult"]


def _json_number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if not np.isfinite(value) else value


@dataclass
class MMMResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: MMMConfig
    model: MediaMixModel
    diagnostics: Diagnostics
    holdout: dict[str, Any] | None
    roas: pd.DataFrame  # index channel; spend, contribution, mean, median, sd, hdi_low, hdi_high
    contribution_share: pd.DataFrame
    marginal_roas: pd.DataFrame
    contributions: pd.DataFrame  # long: date, component, kind, mean, hdi_low, hdi_high
    response_curves: pd.DataFrame
    plan: BudgetPlan | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    pipeline = "mmm"
    higher_is_better = False

    @property
    def primary_metric(self) -> str:
        return self.config.primary_metric

    @property
    def passed(self) -> bool:
        """Whether every diagnostics gate passed, i.e. the model may be registered and planned with."""
        return self.diagnostics.passed

    def failed_gates(self) -> list[str]:
        """One line per failed gate: what was measured, the limit and what to try."""
        return [g.message() for g in self.diagnostics.failures]

    # -- the publish protocol --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The run's parameters: the configuration as given (bounds as text) and how the sampler ran."""
        cfg = self.config
        params: dict[str, Any] = {
            k: ",".join(v) if isinstance(v, tuple) else ("" if v is None else v)
            for k, v in cfg.model_dump(exclude={"bounds", "roas_prior"}).items()
        }
        params["sampler"] = self.model.fit_stats_["sampler"]
        params["sampled_target_accept"] = self.model.fit_stats_.get("target_accept", cfg.target_accept)
        params["chosen_saturation"] = self.model.fit_stats_.get("saturation", cfg.saturation)
        if cfg.roas_prior:
            params["roas_prior"] = ",".join(f"{c}={m:g}:{sd:g}" for c, (m, sd) in cfg.roas_prior.items())
        if cfg.bounds:
            side = lambda v: "" if v is None else f"{v:g}"  # noqa: E731 - as written on the command line
            params["bounds"] = ",".join(f"{c}={side(lo)}:{side(hi)}" for c, (lo, hi) in cfg.bounds.items())
        return params

    def metrics(self) -> dict[str, float]:
        """Diagnostics, fit, held-out error, ROAS and shares per channel, the plan, and timings."""
        d = self.diagnostics
        metrics: dict[str, Any] = {
            "divergences": d.divergences,
            "max_rhat": d.max_rhat,
            "min_ess": d.min_ess,
            "insample_r2": d.r2,
            "insample_mape": d.mape,
            "coverage_94": d.coverage,
            "coverage_50": d.coverage50,
            "residual_acf1": d.residual_acf1,
            "gates_passed": float(d.passed),
        }
        if d.oos_mape is not None:
            metrics |= {
                "holdout_mape": d.oos_mape,
                "holdout_r2": d.oos_r2,
                "holdout_periods": d.holdout_periods,
            }
        for channel in self.roas.index:
            metrics[f"roas_{channel}"] = self.roas.loc[channel, "mean"]
            metrics[f"share_{channel}"] = self.contribution_share.loc[channel, "mean"]
            metrics[f"mroas_{channel}"] = self.marginal_roas.loc[channel, "mean"]
        if self.plan is not None:
            metrics |= {"plan_uplift": self.plan.uplift, "plan_uplift_ratio": self.plan.uplift_ratio}
        metrics |= {f"seconds_{k}": v for k, v in self.seconds.items()}
        # r_hat of one chain is NaN: dropped, so promotion and the model list read only real numbers.
        return finite_metrics(metrics)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"roas": self.roas.reset_index(), "contributions": self.contributions}

    def comparison_key(self, frame: pd.DataFrame) -> str:
        """Identity of what a version's primary metric was measured on: same id, comparable metric."""
        from stackml.tracking import data_fingerprint

        cfg = self.config
        lift = self.model.lift_tests_
        key = json.dumps(
            [
                data_fingerprint(frame),
                None if lift is None else data_fingerprint(lift),
                cfg.date_column,
                list(cfg.channels),
                list(cfg.controls),
                cfg.target,
                self.diagnostics.holdout_periods,
                cfg.primary_metric,
            ],
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The fitted model as a pyfunc that predicts the target of a spend plan."""
        from stackml.mmm.registry_model import MODEL_REQUIREMENTS, MMMPyfunc, example_plan, signature_for

        self.diagnostics.raise_if_failed()
        model = MMMPyfunc(self.model, hdi_prob=self.config.hdi_prob)
        example = example_plan(self.model)
        signature = signature_for(self.model, model.predict(None, example))
        return [ModelToRegister(model, example, signature, MODEL_REQUIREMENTS)]

    # -- what the CLI prints ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary: ROAS and contribution shares with HDIs, diagnostics, the plan."""

        def by_channel(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {
                str(c): {k: _json_number(frame.loc[c, k]) for k in ("mean", "hdi_low", "hdi_high")}
                for c in frame.index
            }
            if "identified" in frame:  # ROAS: did the data or the prior set it
                for c in frame.index:
                    out[str(c)] |= {
                        "identified": bool(frame.loc[c, "identified"]),
                        "note": frame.loc[c, "note"],
                    }
            return out

        d = self.diagnostics
        diagnostics = {
            "divergences": int(d.divergences),
            "max_rhat": _json_number(d.max_rhat),
            "min_ess": _json_number(d.min_ess),
            "r2": _json_number(d.r2),
            "mape": _json_number(d.mape),
            "holdout_mape": _json_number(d.oos_mape),
            "holdout_periods": d.holdout_periods,
            "passed": d.passed,
            "failed_gates": self.failed_gates(),
            "saturation": self.model.fit_stats_.get("saturation"),
            "target_accept": self.model.fit_stats_.get("target_accept"),
            "divergence_retry": self.model.fit_stats_.get("divergence_retry"),
        }
        return {
            "roas": by_channel(self.roas),
            "contribution_share": by_channel(self.contribution_share),
            "marginal_roas": by_channel(self.marginal_roas),
            "diagnostics": diagnostics,
            "budget_plan": None if self.plan is None else self.plan.as_dict(),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }
