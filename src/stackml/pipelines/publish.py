"""Publishing a pipeline's result: track the run, register the model(s), promote, and say what happened.

Every pipeline result that is registered implements :class:`Publishable`, a small protocol: what to log
(params, metrics, tables), how to compare versions (primary metric, direction, comparability key), whether the
gates passed, and which pyfunc models to register (the main model first; a variant such as an ONNX model after
it, registered under its own name suffix). :func:`publish` does the rest, the same way for every pipeline. A
pipeline that registers no model (the feature pipeline) simply does not call it.

Example:
    >>> published = publish(result, train, model_name="forecast-sales")  # doctest: +SKIP
    >>> published.note  # doctest: +SKIP
    'Registered as forecast-sales v3: promoted to champion ...'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from stackml.config import Settings
    from stackml.tracking import PromotionResult

__all__ = ["ModelToRegister", "Publishable", "Published", "publish", "registry_note", "finite_metrics"]


@dataclass(frozen=True)
class ModelToRegister:
    """One pyfunc to register: the model, its example and signature, the packages it needs to load.

    ``name_suffix`` is empty for the main model; a variant (e.g. ``"-onnx"``) is registered as
    ``<model_name><suffix>`` and promoted on the same metric and comparability key as the main model.
    """

    python_model: Any
    input_example: Any
    signature: Any
    requirements: tuple[str, ...] = ()
    name_suffix: str = ""


@runtime_checkable
class Publishable(Protocol):
    """What :func:`publish` needs from a pipeline result."""

    pipeline: str  # the MLflow experiment is stackml/<pipeline>
    primary_metric: str  # the metric promotion compares
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        """Whether every gate passed: only then is anything registered."""

    def failed_gates(self) -> list[str]:
        """One line per failed gate (what was measured, the limit, what to try)."""

    def params(self) -> dict[str, Any]:
        """The run's parameters."""

    def metrics(self) -> dict[str, float]:
        """The run's metrics (the primary metric among them)."""

    def tables(self) -> dict[str, pd.DataFrame]:
        """Result tables to log as run artifacts, by name."""

    def comparison_key(self, frame: pd.DataFrame) -> str:
        """Identity of what the primary metric was measured on: versions compare only when it matches."""

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The pyfunc models to register, the main model first."""


@dataclass
class Published:
    """What :func:`publish` did: the MLflow run, the registered version and its promotion, and a note."""

    model_name: str
    run_id: str | None = None
    model_version: int | None = None
    promotion: PromotionResult | None = None
    variants: dict[str, int] = field(default_factory=dict)  # registered variant name -> version
    note: str = ""


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Metrics as floats, without ``None`` and non-finite values (MLflow stores NaN, but promotion cannot use
    it)."""
    out = {}
    for key, value in metrics.items():
        if value is None:
            continue
        number = float(value)
        if math.isfinite(number):
            out[key] = number
    return out


def _unusable_metric(metrics: dict[str, Any], name: str) -> str | None:
    """Why ``metrics[name]`` cannot rank a model (``"... is NaN"``, ``"... is inf"``, ``"... was not
    measured"``), or ``None`` when it is a finite number."""
    value = metrics.get(name)
    if value is None:
        return f"the primary metric {name} was not measured"
    number = float(value)
    if math.isfinite(number):
        return None
    return f"the primary metric {name} is {'NaN' if math.isnan(number) else number}"


def registry_note(
    published: Published,
    *,
    passed: bool,
    failed_gates: list[str],
    register: bool,
    unusable: str | None = None,
) -> str:
    """One sentence for the report and the CLI: registered and promoted (or why not), or why not
    registered (``unusable`` says why, when the primary metric has no value)."""
    if published.promotion is not None:
        reason = published.promotion.reason.rstrip(".")
        return f"Registered as {published.model_name} v{published.model_version}: {reason}."
    if not passed:
        return f"Not registered: the model failed its diagnostics gates ({'; '.join(failed_gates)})."
    if not register:
        return "Not registered (registration was switched off)."
    if unusable:
        return (
            f"Not registered: {unusable}, so the model cannot be compared with the champion (a score can be "
            "undefined on, e.g., a constant series or one shorter than its season)."
        )
    return "Not registered."


def publish(
    result: Publishable,
    frame: pd.DataFrame,
    *,
    model_name: str,
    register: bool = True,
    settings: Settings | None = None,
) -> Published:
    """Track the run of ``result`` in MLflow; register and promote its model(s) when ``register``, it passed
    and its primary metric is a finite number.

    A NaN, infinite or missing primary metric never registers or promotes anything: the run is still tracked
    (with its finite metrics) and the note says why nothing was registered.

    Args:
        result: a pipeline result implementing :class:`Publishable`.
        frame: the training data: fingerprinted on the run, logged as its reference data, and part of the
            comparability key.
        model_name: the registered model name (variants add their suffix).
        register: register the model(s); when false only the run is tracked.
        settings: where to track; default the configured settings.
    """
    from stackml import tracking

    published = Published(model_name=model_name)
    measured = result.metrics()
    metrics = finite_metrics(measured)
    unusable = _unusable_metric(measured, result.primary_metric)
    with tracking.start_run(result.pipeline, data=frame, params=result.params(), settings=settings) as run:
        published.run_id = run.info.run_id
        tracking.log_metrics(metrics)
        for name, table in result.tables().items():
            tracking.log_table(table, name)
        tracking.log_reference_data(frame, "training_data")
        if register and result.passed and unusable is None:
            key = result.comparison_key(frame)
            for model in result.models(frame):
                name = model_name + model.name_suffix
                version = tracking.register_model(
                    model.python_model,
                    name,
                    input_example=model.input_example,
                    signature=model.signature,
                    pip_requirements=tracking.pinned_requirements(*model.requirements),
                    metrics=metrics,
                    settings=settings,
                )
                decision = tracking.promote(
                    name,
                    version.version,
                    result.primary_metric,
                    higher_is_better=result.higher_is_better,
                    comparable_on=key,
                    settings=settings,
                )
                if model.name_suffix:
                    published.variants[name] = int(version.version)
                else:
                    published.model_version, published.promotion = int(version.version), decision
    published.note = registry_note(
        published,
        passed=result.passed,
        failed_gates=result.failed_gates(),
        register=register,
        unusable=unusable,
    )
    return published
