"""The monitor's configuration: every setting of ``stackml monitor run`` with its one default.

Example:
    >>> from stackml.monitoring.config import MonitorConfig
    >>> MonitorConfig(model="churn@champion", since="7d").since
    '7d'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from stackml.pipelines import Float, Names, PipelineConfig

__all__ = ["MonitorConfig", "monitor_default"]


class MonitorConfig(PipelineConfig):
    """What to check, over which window, and where alerts go.

    Attributes:
        model: ``name`` (its champion), ``name@alias`` or ``name/version``.
        since: the window checked, ending now: ``30m``, ``24h``, ``7d``, ``2w``.
        until: the window's end instead of now (ISO 8601, e.g. ``2026-12-01T00:00Z``): to check a past
            day again, or to backfill the metric history.
        rules: a YAML file of alert rules (see :mod:`stackml.monitoring.rules`); none: the default rules
            (a column drifted, dataset drift, a quality break, a stale table).
        stattest, threshold: force one drift test and its threshold for every column (none: Evidently's
            default choice per column and size).
        drift_share: the dataset drifts when at least this share of its columns drift.
        keys: columns that must be unique in the window (duplicate keys are a quality break).
        max_null_increase: a column's null rate may rise this much (absolute) over the reference's.
        max_out_of_range: the share of a column's values that may fall outside the reference's range.
        labels_table, label_column, prediction_field: ground truth joined to the log by ``request_id``.
        freshness: ``TABLE.COLUMN=AGE`` checks, e.g. ``orders.created_at=6h``.
        webhook: a URL that receives each alert as a JSON POST (Slack-compatible).
        alerts_table: the warehouse table that keeps every alert and its open/resolved state.
        log_table: the prediction log ``stackml serve`` writes.
    """

    what = "the monitoring configuration"
    hint = "See `stackml monitor run --help` for the options."

    model: Annotated[str, Field(min_length=1)]
    since: str = "24h"
    until: str | None = None
    rules: str | None = None
    stattest: Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"] | None = None
    threshold: Annotated[Float | None, Field(gt=0)] = None
    drift_share: Annotated[Float, Field(gt=0, le=1)] = 0.5
    keys: Names = ()
    max_null_increase: Annotated[Float, Field(ge=0, le=1)] = 0.05
    max_out_of_range: Annotated[Float, Field(ge=0, le=1)] = 0.01
    labels_table: str | None = None
    label_column: str = "label"
    prediction_field: str | None = None
    freshness: Names = ()
    webhook: str | None = None
    alerts_table: str = "alerts"
    log_table: str = "prediction_log"

    @field_validator("since")
    @classmethod
    def _window(cls, value: str) -> str:
        from stackml.monitoring.rules import parse_window

        _checked(parse_window, value)
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if not value:
            return None
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'until' must be an ISO 8601 time such as 2026-12-01T00:00Z, got {value!r}"
            ) from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()

    @field_validator("rules")
    @classmethod
    def _rules_file(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"the rules file {value!r} was not found")
        return str(path.resolve())

    @field_validator("freshness")
    @classmethod
    def _freshness(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from stackml.monitoring.freshness import parse_freshness_spec

        for spec in value:
            _checked(parse_freshness_spec, spec)
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"the webhook must be an http:// or https:// URL, got {value!r}")
        return value or None


def _checked(parse: Any, value: Any) -> None:
    """Run a parser that raises InputError inside a validator, where pydantic collects ValueErrors."""
    from stackml.errors import InputError

    try:
        parse(value)
    except InputError as exc:
        raise ValueError(f"{exc.message} {exc.hint}") from None


def monitor_default(field: str) -> Any:
    """The monitor's default for ``field``."""
    from stackml.pipelines import default_of

    return default_of(MonitorConfig, field)
