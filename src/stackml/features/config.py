"""The settings of feature monitoring (``stackml features monitor``) and of a feature pipeline run
(``stackml features run``, ``FeaturesFlow``), each default written once, here.

The drift, quality and alert settings mean what they mean for a model (:mod:`stackml.monitoring.config`) and
take its defaults.

Example:
    >>> from stackml.features.config import FeatureMonitorConfig
    >>> FeatureMonitorConfig(service="churn").drift_share
    0.5
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from stackml.monitoring.config import monitor_default
from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["FeatureMonitorConfig", "FeaturesRunConfig", "REFERENCE_ROWS"]

#: the most rows of a training set kept as a service's reference, and of an online table read per check
REFERENCE_ROWS = 50_000


class FeatureMonitorConfig(PipelineConfig):
    """What feature monitoring checks and where its alerts go.

    Attributes:
        service: the feature service whose drift and quality are checked against its reference (None: every
            service with a recorded reference). Freshness and null rates are checked for every view.
        reference: a Parquet file of ``view__feature`` columns to use as the service's reference instead of
            the one ``stackml features training-set`` recorded (needs ``service``).
        rules: a YAML file of alert rules (:mod:`stackml.monitoring.rules`); none: the default rules (a stale
            view, a column drifted, drift of the service's features, a quality break).
        stattest, threshold, drift_share: the drift test forced on every column and its threshold (none:
            Evidently's choice per column and size), and the share of drifted columns that is dataset drift.
        max_null_increase, max_out_of_range: how far a feature's null rate may rise over the reference's, and
            the share of its values that may fall outside the reference's range.
        webhook: a URL that receives each alert as a JSON POST (Slack-compatible).
        alerts_table: the warehouse table of alerts (the one ``stackml monitor alerts`` lists).
        sample_rows: the most rows of each online table read for drift and quality (a seeded sample).
    """

    what = "the feature monitoring configuration"
    hint = "See `stackml features monitor --help` for the options."

    service: str | None = None
    reference: str | None = None
    rules: str | None = None
    stattest: str | None = None
    threshold: Annotated[Float | None, Field(gt=0)] = None
    drift_share: Annotated[Float, Field(gt=0, le=1)] = monitor_default("drift_share")
    max_null_increase: Annotated[Float, Field(ge=0, le=1)] = monitor_default("max_null_increase")
    max_out_of_range: Annotated[Float, Field(ge=0, le=1)] = monitor_default("max_out_of_range")
    webhook: str | None = None
    alerts_table: str = monitor_default("alerts_table")
    sample_rows: Annotated[Int, Field(ge=1)] = REFERENCE_ROWS

    @field_validator("stattest")
    @classmethod
    def _stattest(cls, value: str | None) -> str | None:
        from stackml.monitoring.drift import STATTESTS

        if value is not None and value not in STATTESTS:
            raise ValueError(f"must be one of {sorted(STATTESTS)}")
        return value

    @field_validator("rules", "reference")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"the file {value!r} was not found")
        return str(path.resolve())

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"the webhook must be an http:// or https:// URL, got {value!r}")
        return value or None

    @model_validator(mode="after")
    def _reference_needs_service(self) -> FeatureMonitorConfig:
        problems = []
        if self.reference and not self.service:
            problems.append("'reference' replaces one service's reference: name the service too")
        if self.reference and Path(self.reference).suffix.lower() not in (".parquet", ".pq"):
            problems.append(f"'reference' must be a .parquet file, got {self.reference!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FeaturesRunConfig(FeatureMonitorConfig):
    """One run of the feature pipeline (``FeaturesFlow``): compute each view's batch, check it, write it to
    the online store, then monitor.

    Attributes:
        repo: the feature repo folder (None: the definitions last applied to the warehouse).
        views: the views to materialise (empty: all).
    """

    what = "the feature pipeline configuration"
    hint = "See `stackml features run --help` for the options."

    repo: str | None = None
    views: Names = ()

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ValueError(f"the feature repo {value!r} is not a folder")
        return str(path.resolve())
