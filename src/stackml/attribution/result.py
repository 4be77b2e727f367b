"""The attribution pipeline's result: every method's credit with its inputs, in the shape ``publish``, the
report and the CLI read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.attribution.paths import Paths, journeys_summary
from stackml.attribution.triangulation import (
    References,
    credit_error,
    triangulation_table,
    unmatched_channels,
)

if TYPE_CHECKING:
    from stackml.attribution.config import AttributionConfig
    from stackml.attribution.model import AttributionResult
    from stackml.pipelines import ModelToRegister

__all__ = ["AttributionRun", "PRIMARY_METRIC"]

#: the sequence model is promoted on its calibrated validation log-loss (lower is better)
PRIMARY_METRIC = "neural_valid_logloss"


@dataclass
class AttributionRun:
    """What one attribution run found."""

    config: AttributionConfig
    paths: Paths
    fitted: AttributionResult
    seconds: dict[str, float] = field(default_factory=dict)
    references: References = field(default_factory=References)

    pipeline = "attribution"
    primary_metric = PRIMARY_METRIC
    higher_is_better = False

    # -- Publishable ----------------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return True

    def failed_gates(self) -> list[str]:
        return []

    def params(self) -> dict[str, Any]:
        return {
            "format": self.config.format,
            "methods": ",".join(self.config.methods),
            "lookback_days": self.config.lookback_days,
            "markov_order": self.config.markov_order,
            "half_life_days": self.config.half_life_days,
            "random_state": self.config.random_state,
            "truth_file": self.config.truth_file or "",
            "mmm_model": self.config.mmm_model or "",
        }

    def metrics(self) -> dict[str, float]:
        summary = journeys_summary(self.paths)
        metrics: dict[str, float] = {
            "paths": float(summary["paths"]),
            "journeys": summary["journeys"],
            "conversions": summary["conversions"],
            "channels": float(len(summary["channels"])),
            "mean_path_length": summary["mean_length"],
        }
        if self.fitted.markov is not None:
            metrics["markov_conversion_probability"] = self.fitted.markov.conversion_probability
        neural = self.fitted.neural
        if neural is not None:
            cal = neural.calibration
            metrics[PRIMARY_METRIC] = cal["log_loss_after"]
            metrics["neural_valid_brier"] = cal["brier_after"]
            metrics["neural_valid_ece"] = cal["ece_after"]
            metrics["neural_epochs"] = float(neural.epochs_run)
        for method, seconds in self.seconds.items():
            metrics[f"seconds_{method}"] = seconds
        for method, error in self.credit_errors().items():
            metrics[f"credit_error_{method}"] = error
        return metrics

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"credit": self.fitted.credit}
        if self.fitted.markov is not None:
            tables["markov_removal_effects"] = self.fitted.markov.removal_effects
            tables["markov_transitions"] = self.fitted.markov.transitions
        if self.fitted.shapley is not None:
            tables["shapley"] = self.fitted.shapley.credit
        if self.fitted.neural is not None:
            tables["neural_learning_curve"] = self.fitted.neural.learning_curve
        if self.references.truth is not None or self.references.mmm is not None:
            tables["triangulation"] = self.triangulation()
        return tables

    def comparison_key(self, frame: pd.DataFrame) -> str:
        from stackml.tracking import data_fingerprint

        return f"attribution:{data_fingerprint(frame)}"

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The sequence model as a pyfunc (a path in; its conversion probability and each touch's credit
        out); the other methods' credits are tables logged with the run."""
        if self.fitted.neural is None:
            return []
        from stackml.attribution.registry_model import model_to_register

        return [model_to_register(self.fitted.neural.model, self.paths)]

    # -- for the report and the CLI ------------------------------------------------------------------------
    def credit_errors(self) -> dict[str, float]:
        """``{method: total absolute difference from the true shares}`` (0 best, 2 worst); empty without a
        truth."""
        if self.references.truth is None:
            return {}
        table = credit_error(self.fitted.shares(), self.references.truth)
        return {str(m): float(e) for m, e in table["total_abs_error"].items()}

    def mmm_truth_error(self) -> float:
        """The MMM's contribution shares judged like a path method's credit (needs a truth and an MMM)."""
        mmm, truth = self.references.mmm, self.references.truth
        return float(credit_error({"mmm": mmm.shares.to_dict()}, truth)["total_abs_error"].iloc[0])

    def triangulation(self) -> pd.DataFrame:
        """Every method's shares beside the truth's and the MMM's (see :func:`triangulation_table`)."""
        return triangulation_table(self.fitted.shares(), self.references)

    def summary(self) -> dict[str, Any]:
        """``{"credit": {method: {channel: share}}, "paths": {...}, ...}`` (shares of total conversions)."""
        out: dict[str, Any] = {
            "credit": self.fitted.shares(),
            "conversions": {
                method: {row.channel: round(float(row.conversions), 6) for row in rows.itertuples()}
                for method, rows in self.fitted.credit.groupby("method", sort=False)
            },
            "paths": journeys_summary(self.paths),
            "methods": list(self.config.methods),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }
        if self.fitted.markov is not None:
            out["markov"] = {
                "order": self.config.markov_order,
                "states": self.fitted.markov.states,
                "conversion_probability": round(self.fitted.markov.conversion_probability, 6),
            }
        if self.fitted.shapley is not None:
            out["shapley"] = {
                "exact": self.fitted.shapley.exact,
                "permutations": self.fitted.shapley.permutations,
            }
        if self.fitted.neural is not None:
            neural = self.fitted.neural
            out["neural"] = {
                "epochs_run": neural.epochs_run,
                "best_epoch": neural.best_epoch,
                "calibration": {k: round(float(v), 6) for k, v in neural.calibration.items()},
            }
        truth, mmm = self.references.truth, self.references.mmm
        if truth is not None:
            out["truth"] = {str(c): round(float(s), 6) for c, s in truth["share"].items()}
            out["credit_error"] = {m: round(e, 6) for m, e in self.credit_errors().items()}
        if mmm is not None:
            out["mmm"] = mmm.summary()
            if truth is not None:
                out["mmm"]["truth_error"] = round(self.mmm_truth_error(), 6)
        if truth is not None or mmm is not None:
            out["unmatched_channels"] = unmatched_channels(self.fitted.shares(), self.references)
        return out
