"""Tracking and model registry on MLflow: runs with provenance, logged results, champion promotion.

Every pipeline runs inside :func:`start_run`, logs with the ``log_*`` helpers, registers a pyfunc
model with :func:`register_model` and calls :func:`promote` to move the ``champion`` alias only when
the new version is better. An operator moves it by hand with :func:`move_alias` and :func:`rollback`, both
recorded with who and why. MLflow itself is imported on first use, so importing this package is cheap.

Example:
    >>> from stackml import tracking
    >>> with tracking.start_run("forecast", data=train, params={"horizon": 7}):  # doctest: +SKIP
    ...     tracking.log_metrics({"rmse": 1.2})
    ...     mv = tracking.register_model(model, "demand", input_example=train.head(), metrics={"rmse": 1.2})
    >>> tracking.promote("demand", mv.version, "rmse", higher_is_better=False).promoted  # doctest: +SKIP
    True
"""

from __future__ import annotations

from stackml.tracking._setup import configure, ensure_store
from stackml.tracking.aliases import AliasMove, alias_history, move_alias, rollback
from stackml.tracking.launches import Abandoned, abandon_launch
from stackml.tracking.provenance import data_fingerprint, git_commit
from stackml.tracking.registry import (
    FEATURE_SERVICE_TAG,
    PromotionResult,
    ResolvedVersion,
    list_models,
    load_model,
    pinned_requirements,
    promote,
    register_model,
    resolve_version,
)
from stackml.tracking.runs import (
    LAUNCH_ENV,
    list_runs,
    load_reference_data,
    load_tables,
    log_figure,
    log_metrics,
    log_params,
    log_reference_data,
    log_table,
    start_run,
)

__all__ = [
    "configure",
    "ensure_store",
    "start_run",
    "data_fingerprint",
    "git_commit",
    "log_params",
    "log_metrics",
    "log_figure",
    "log_table",
    "log_reference_data",
    "load_reference_data",
    "load_tables",
    "register_model",
    "FEATURE_SERVICE_TAG",
    "pinned_requirements",
    "promote",
    "PromotionResult",
    "move_alias",
    "rollback",
    "alias_history",
    "AliasMove",
    "abandon_launch",
    "LAUNCH_ENV",
    "Abandoned",
    "list_runs",
    "list_models",
    "load_model",
    "resolve_version",
    "ResolvedVersion",
]
