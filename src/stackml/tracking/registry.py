"""The model registry: register pyfunc models, promote the better one to ``champion``, load by alias."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from stackml.checks import is_number
from stackml.config import Settings
from stackml.errors import InputError, RegistryError
from stackml.tracking import _alias_log
from stackml.tracking._setup import configure, mlflow_module, translate_mlflow_error
from stackml.tracking.runs import start_run

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "FEATURE_SERVICE_TAG",
    "PromotionResult",
    "register_model",
    "pinned_requirements",
    "promote",
    "list_models",
    "load_model",
]

MODEL_COLUMNS = ["name", "version", "aliases", "run_id", "metrics", "created"]
REGISTER_PIPELINE = "models"  # experiment of registrations made outside any run
TAG_DECISION = "stackml.promotion_decision"
TAG_COMPARED = "stackml.compared_with"
TAG_EVALUATION = "stackml.evaluation_id"  # what the promotion metric was measured on (see promote)
TAG_PROMOTION = "stackml.promotion.v"  # + candidate version -> JSON record of that comparison
TAG_METRIC = "stackml.primary_metric"  # the metric promote compared the version on
FEATURE_SERVICE_TAG = "stackml.feature_service"
"""Version tag naming the feature service whose online features serving adds to the version's records."""
_BASE_PACKAGES = ("mlflow", "pandas", "numpy", "cloudpickle", "stackml")


def pinned_requirements(*packages: str) -> list[str]:
    """Pip requirements pinned to the installed versions of what a stackml pyfunc model needs.

    Passing these to ``log_model`` skips MLflow's own requirement inference, which imports the model
    in a subprocess and takes tens of seconds.

    Args:
        packages: extra distributions the model needs (e.g. ``"statsforecast"``), beyond mlflow,
            pandas, numpy, cloudpickle and stackml.

    Returns:
        Lines like ``"pandas==2.3.3"``; a package that is not installed is listed unpinned.

    Example:
        >>> [r.split("==")[0] for r in pinned_requirements()][:2]
        ['mlflow', 'pandas']
    """
    lines = []
    for name in dict.fromkeys((*_BASE_PACKAGES, *packages)):
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(name)
    return lines


def register_model(
    python_model: Any,
    name: str,
    *,
    input_example: pd.DataFrame,
    signature: Any = None,
    pip_requirements: Sequence[str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    code_paths: Sequence[str] | None = None,
    metrics: Mapping[str, float] | None = None,
    feature_service: str | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Log ``python_model`` in the active run (or a new one) and register it as a new version of ``name``.

    Args:
        python_model: an ``mlflow.pyfunc.PythonModel`` instance.
        name: registered model name.
        input_example: a few input rows; stored with the model and used to infer the signature.
        signature: the model signature; inferred from ``input_example`` and the model's prediction
            on it when omitted.
        pip_requirements: the model's pip requirements; default :func:`pinned_requirements`.
        artifacts: files the model needs, ``{key: local path}``, as for ``mlflow.pyfunc.log_model``.
        code_paths: local code to ship with the model.
        metrics: metrics to log on the run and the logged model (e.g. the holdout score that
            :func:`promote` compares).
        feature_service: the feature service the model was trained on (its inputs are that service's
            ``view__feature`` columns); recorded as the version's :data:`FEATURE_SERVICE_TAG`, so
            ``stackml serve`` reads those features online by entity key before the model sees a record.
        settings: where to track; default the settings last configured.

    Returns:
        The new ``ModelVersion`` (``.name``, ``.version``, ``.run_id``).

    Example:
        >>> mv = register_model(model, "demand", input_example=x.head())  # doctest: +SKIP
    """
    import pandas as pd

    client = configure(settings)
    mlflow = mlflow_module()
    problems = []
    if not isinstance(python_model, mlflow.pyfunc.PythonModel):
        kind = type(python_model).__name__
        problems.append(f"'python_model' must be an mlflow.pyfunc.PythonModel, got {kind}")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"'name' must be a non-empty string, got {name!r}")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        problems.append("'input_example' must be a non-empty pandas DataFrame")
    not_numbers = {k: v for k, v in (metrics or {}).items() if not is_number(v)}
    if not_numbers:
        problems.append(f"'metrics' must map names to numbers; these are not: {not_numbers!r}")
    if feature_service is not None and (not isinstance(feature_service, str) or not feature_service):
        problems.append(f"'feature_service' must be a non-empty string, got {feature_service!r}")
    if problems:
        raise InputError(f"register_model got invalid arguments: {'; '.join(problems)}.")
    if signature is None:
        signature = _infer_signature(mlflow, python_model, input_example, artifacts)
    requirements = list(pip_requirements) if pip_requirements is not None else pinned_requirements()

    # log_model outside a run would open one in MLflow's "Default" experiment; ours is findable.
    if mlflow.active_run() is None:
        run = start_run(REGISTER_PIPELINE, run_name=f"register-{name}", settings=settings)
    else:
        run = contextlib.nullcontext()
    with run:
        try:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                signature=signature,
                input_example=input_example,
                pip_requirements=requirements,
                artifacts=dict(artifacts) if artifacts else None,
                code_paths=list(code_paths) if code_paths else None,
                registered_model_name=name,
            )
        except mlflow.exceptions.MlflowException as exc:
            raise translate_mlflow_error(exc, f"model '{name}'") from exc
        if metrics:
            # Linked to the run (which promote reads) and to the logged model (which the MLflow UI shows).
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, model_id=info.model_id)
    version = str(info.registered_model_version)
    if feature_service is not None:
        client.set_model_version_tag(name, version, FEATURE_SERVICE_TAG, feature_service)
    return client.get_model_version(name, version)


def _infer_signature(mlflow: Any, python_model: Any, example: pd.DataFrame, artifacts: Any) -> Any:
    """Signature from the example and the model's own prediction on it, the way serving will call it."""
    from mlflow.pyfunc import PythonModelContext

    try:
        # MLflow 3 allows predict without the context argument; call it the way it is declared.
        if "context" in inspect.signature(python_model.predict).parameters:
            context = PythonModelContext(artifacts=dict(artifacts or {}), model_config={})
            prediction = python_model.predict(context, example.copy())
        else:
            prediction = python_model.predict(example.copy())
    except Exception as exc:  # any failure of user code means we cannot infer, whatever its type
        raise InputError(
            f"register_model could not infer the signature: predicting on 'input_example' failed with "
            f"{type(exc).__name__}: {exc}",
            hint="Pass signature=mlflow.models.infer_signature(inputs, outputs) explicitly.",
        ) from exc
    return mlflow.models.infer_signature(example, prediction)


@dataclass(frozen=True)
class PromotionResult:
    """Outcome of :func:`promote`.

    Attributes:
        promoted: whether the alias now points to the candidate because of this call.
        reason: one sentence saying why, with both metric values.
        candidate_value: the candidate's value of the metric.
        champion_version: the version the alias pointed to before the call (None if none).
        champion_value: that version's value of the metric (None if no champion).
        name: registered model name.
        candidate_version: the version considered.
        metric: the metric compared.
        alias: the alias considered.
    """

    promoted: bool
    reason: str
    candidate_value: float | None
    champion_version: int | None
    champion_value: float | None
    name: str = ""
    candidate_version: int | None = None
    metric: str = ""
    alias: str = "champion"


def promote(
    name: str,
    version: int | str,
    metric: str,
    higher_is_better: bool,
    *,
    alias: str = "champion",
    comparable_on: str | None = None,
    settings: Settings | None = None,
) -> PromotionResult:
    """Move ``alias`` to ``version`` only if it beats the current holder of the alias on ``metric``.

    With ``comparable_on`` (an id of the data the metric was measured on, e.g. a backtest), the id is tagged
    on the candidate and a champion measured on another id is not compared at all: the alias stays and the
    reason says so.

    The metric is read from each version's training run. With no current champion the candidate is
    promoted; a tie keeps the champion. A candidate whose metric is NaN or infinite is never promoted; a
    champion whose metric is NaN or infinite gives way to a candidate with a finite one. The comparison is
    recorded as tags on both versions: ``stackml.promotion.v<candidate>`` (a JSON record) on each, plus
    ``stackml.promotion_decision``, ``stackml.compared_with`` and ``stackml.primary_metric`` on the candidate.
    A move of the alias is also recorded for :func:`stackml.tracking.rollback` (who, why, the version it
    replaced).

    Args:
        name: registered model name.
        version: candidate version.
        metric: metric both runs logged, e.g. ``"rmse"``.
        higher_is_better: direction of the metric.
        alias: alias to move.
        comparable_on: id of what the metric was measured on; metrics of different ids are never compared.
        settings: where the registry is; default the settings last configured.

    Returns:
        A :class:`PromotionResult`; ``promoted`` is False when the alias already pointed there.

    Raises:
        RegistryError: the model, the version, or the metric on either version does not exist.

    Example:
        >>> promote("demand", 3, "rmse", higher_is_better=False).reason  # doctest: +SKIP
        'candidate v3 rmse=1.2 does not beat champion v2 rmse=1.1 (lower is better)'
    """
    client = configure(settings)
    mlflow = mlflow_module()
    candidate = get_version(client, mlflow, name, version)
    cand_v = int(candidate.version)
    cand_value = _version_metric(client, mlflow, candidate, metric)
    model = registered_model(client, mlflow, name)
    champ_v = int(model.aliases[alias]) if alias in model.aliases else None
    direction = "higher" if higher_is_better else "lower"

    def result(promoted: bool, reason: str, champ_value: float | None) -> PromotionResult:
        return PromotionResult(
            promoted, reason, cand_value, champ_v, champ_value, name, cand_v, metric, alias
        )

    client.set_model_version_tag(name, str(cand_v), TAG_METRIC, metric)
    if comparable_on is not None:
        client.set_model_version_tag(name, str(cand_v), TAG_EVALUATION, comparable_on)
    if champ_v == cand_v:
        return result(False, f"v{cand_v} already holds the alias '{alias}'; nothing to do.", cand_value)
    champ_eval = get_version(client, mlflow, name, champ_v).tags.get(TAG_EVALUATION) if champ_v else None
    if not math.isfinite(cand_value):
        reason = f"candidate v{cand_v} {metric}={cand_value} is not a finite number, so it is not promoted."
        outcome = result(False, reason, None)
    elif comparable_on is not None and champ_v is not None and champ_eval != comparable_on:
        reason = (
            f"candidate v{cand_v} was not compared: {alias} v{champ_v} was measured on other data "
            f"({champ_eval} vs {comparable_on}), so {alias} stays. "
            "Register under another name for other data."
        )
        outcome = result(False, reason, None)
    elif champ_v is None:
        outcome = result(True, f"candidate v{cand_v} {metric}={cand_value:.4g} is the first '{alias}'.", None)
    else:
        champion = get_version(client, mlflow, name, champ_v)
        champ_value = _version_metric(client, mlflow, champion, metric)
        if not math.isfinite(champ_value):
            # Every comparison with NaN is false: such a champion would never be beaten, so it gives way.
            reason = (
                f"candidate v{cand_v} {metric}={cand_value:.4g} replaces {alias} v{champ_v}, whose "
                f"{metric}={champ_value} is not a finite number"
            )
            outcome = result(True, reason, champ_value)
        else:
            better = cand_value > champ_value if higher_is_better else cand_value < champ_value
            verb = "beats" if better else "does not beat"
            reason = (
                f"candidate v{cand_v} {metric}={cand_value:.4g} {verb} {alias} v{champ_v} "
                f"{metric}={champ_value:.4g} ({direction} is better)"
            )
            outcome = result(better, reason, champ_value)
    # The alias moves last: a version whose decision is recorded but which does not hold the alias is a
    # promotion cut short, which stackml.tracking.abandon_launch removes.
    _record(client, outcome, higher_is_better)
    if outcome.promoted:
        _alias_log.move_forward(
            client,
            model,
            alias=alias,
            version=cand_v,
            action="compared",
            reason=outcome.reason,
            set_alias=lambda n, a, v: client.set_registered_model_alias(n, a, str(v)),
        )
    return outcome


def _record(client: Any, outcome: PromotionResult, higher_is_better: bool) -> None:
    """Write the comparison on both versions, so each one's page in the registry explains it."""
    record = json.dumps(
        {
            "decision": "promoted" if outcome.promoted else "kept",
            "alias": outcome.alias,
            "metric": outcome.metric,
            "higher_is_better": higher_is_better,
            "candidate": outcome.candidate_version,
            "candidate_value": outcome.candidate_value,
            "champion": outcome.champion_version,
            "champion_value": outcome.champion_value,
            "reason": outcome.reason,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    key = f"{TAG_PROMOTION}{outcome.candidate_version}"
    cand = str(outcome.candidate_version)
    client.set_model_version_tag(outcome.name, cand, key, record)
    client.set_model_version_tag(outcome.name, cand, TAG_DECISION, "promoted" if outcome.promoted else "kept")
    compared = f"v{outcome.champion_version}" if outcome.champion_version is not None else "none"
    client.set_model_version_tag(outcome.name, cand, TAG_COMPARED, compared)
    if outcome.champion_version is not None:
        client.set_model_version_tag(outcome.name, str(outcome.champion_version), key, record)


def registered_model(client: Any, mlflow: Any, name: str) -> Any:
    """The registered model, or our error saying it does not exist (or why it could not be read)."""
    try:
        return client.get_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        raise translate_mlflow_error(exc, f"Registered model '{name}'") from exc


def get_version(client: Any, mlflow: Any, name: str, version: int | str) -> Any:
    """The model version, or a RegistryError naming the model's versions."""
    registered_model(client, mlflow, name)
    try:
        return client.get_model_version(name, str(version))
    except mlflow.exceptions.MlflowException as exc:
        known = sorted(int(v.version) for v in client.search_model_versions(name_filter(name)))
        raise RegistryError(
            f"Model '{name}' has no version {version!r}; its versions are {known or 'none'}.",
            hint="Run `stackml models` to see registered versions.",
        ) from exc


def _version_metric(client: Any, mlflow: Any, mv: Any, metric: str) -> float:
    """The metric as logged in the version's run; a clear error lists what the run has instead."""
    metrics = run_metrics(client, mlflow, mv)
    if metric not in metrics:
        raise RegistryError(
            f"Model '{mv.name}' v{mv.version} has no metric '{metric}' in its run {mv.run_id}; "
            f"available metrics: {sorted(metrics) or 'none'}.",
            hint="Log it in the training run (log_metrics or register_model(metrics=...)) or compare "
            "on a metric listed above.",
        )
    return float(metrics[metric])


def run_metrics(client: Any, mlflow: Any, mv: Any) -> dict[str, float]:
    """The metrics of the version's training run; none when it has no run or the run was deleted."""
    if not mv.run_id:
        return {}
    try:
        return dict(client.get_run(mv.run_id).data.metrics)
    except mlflow.exceptions.MlflowException:
        return {}  # the run was deleted; the version still exists but has nothing to compare


def name_filter(name: str) -> str:
    """The search filter selecting the versions of one registered model."""
    return "name = '{}'".format(name.replace("'", "\\'"))


def _all_registered_models(client: Any) -> list[Any]:
    """Every registered model; the search pages through 100 at a time."""
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            return models


def list_models(*, settings: Settings | None = None) -> pd.DataFrame:
    """Every registered model version, newest version of each model first.

    Returns:
        Columns ``name, version, aliases`` (a sorted list, e.g. ``["champion"]``), ``run_id``, ``metrics``
        (a dict by name, e.g. ``{"rmse": 1.2}``) and ``created`` (UTC); empty with the same columns when
        nothing is registered.
    """
    import pandas as pd

    client = configure(settings)
    mlflow = mlflow_module()
    rows = []
    for model in _all_registered_models(client):
        # search_model_versions leaves aliases out; the registered model maps alias -> version.
        by_version: dict[int, list[str]] = {}
        for alias, v in model.aliases.items():
            by_version.setdefault(int(v), []).append(alias)
        for mv in client.search_model_versions(name_filter(model.name)):
            rows.append(
                {
                    "name": mv.name,
                    "version": int(mv.version),
                    "aliases": sorted(by_version.get(int(mv.version), [])),
                    "run_id": mv.run_id,
                    "metrics": dict(sorted(run_metrics(client, mlflow, mv).items())),
                    "created": pd.to_datetime(mv.creation_timestamp, unit="ms", utc=True),
                }
            )
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    return frame.sort_values(["name", "version"], ascending=[True, False], ignore_index=True)


def load_model(name_or_uri: str, alias: str = "champion", *, settings: Settings | None = None) -> Any:
    """Load a registered model as an MLflow pyfunc model.

    Args:
        name_or_uri: a registered model name (loaded as ``models:/<name>@<alias>``), ``"name@alias"``,
            or any MLflow model URI (``models:/...``, ``runs:/...``).
        alias: the alias to load when only a name is given.
        settings: where the registry is; default the settings last configured.

    Returns:
        An ``mlflow.pyfunc.PyFuncModel``; call ``.predict(frame)``.

    Example:
        >>> model = load_model("demand")  # doctest: +SKIP
    """
    configure(settings)
    mlflow = mlflow_module()
    if ":/" in name_or_uri:
        uri = name_or_uri
    elif "@" in name_or_uri:
        uri = f"models:/{name_or_uri}"
    else:
        uri = f"models:/{name_or_uri}@{alias}"
    try:
        return mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise translate_mlflow_error(exc, f"Model '{uri}'") from exc


@dataclass(frozen=True)
class ResolvedVersion:
    """A registered model version found from ``name``, ``name@alias`` or ``name/version``."""

    name: str
    version: int
    run_id: str
    alias: str | None


def resolve_version(spec: str, *, settings: Settings | None = None) -> ResolvedVersion:
    """The version ``spec`` names: ``name`` (its champion), ``name@alias`` or ``name/3``, with the run that
    trained it (where its reference data lives).

    Raises:
        RegistryError: no such model, alias or version; the message names what exists.
    """
    client = configure(settings)
    mlflow = mlflow_module()
    text = str(spec).strip()
    if not text:
        raise InputError("The model is empty.", hint="Name a model as NAME, NAME@ALIAS or NAME/VERSION.")
    name, alias, version = text, None, None
    if "@" in text:
        name, alias = text.split("@", 1)
    elif "/" in text:
        name, version = text.rsplit("/", 1)
    else:
        alias = "champion"
    if version is not None:
        mv = get_version(client, mlflow, name, version)
    else:
        model = registered_model(client, mlflow, name)
        if alias not in model.aliases:
            raise RegistryError(
                f"Model '{name}' has no alias '{alias}'; its aliases are {sorted(model.aliases) or 'none'}.",
                hint="Name a version as NAME/VERSION, or move the alias with `stackml models promote`.",
            )
        mv = get_version(client, mlflow, name, model.aliases[alias])
    return ResolvedVersion(name=mv.name, version=int(mv.version), run_id=mv.run_id, alias=alias)
