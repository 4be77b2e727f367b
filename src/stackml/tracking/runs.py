"""Runs of a pipeline: start one with provenance tags, log what it produced, list past runs."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.checks import is_int, is_number
from stackml.config import Settings
from stackml.errors import InputError, RegistryError
from stackml.tracking._setup import (
    configure,
    current_settings,
    experiment_artifact_location,
    mlflow_module,
    translate_mlflow_error,
)
from stackml.tracking.provenance import data_fingerprint, git_commit

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run

__all__ = [
    "start_run",
    "log_params",
    "log_metrics",
    "log_figure",
    "log_table",
    "log_reference_data",
    "load_reference_data",
    "load_tables",
    "list_runs",
    "EXPERIMENT_PREFIX",
]

EXPERIMENT_PREFIX = "stackml/"
TAG_PIPELINE = "stackml.pipeline"
TAG_COMMIT = "stackml.git_commit"
TAG_DATA = "stackml.data_fingerprint"
TAG_REFERENCE = "stackml.reference."  # + name -> fingerprint of that reference data
TAG_LAUNCH = "stackml.launch"  # the launch of a flow that started the run (see abandon_launch)
LAUNCH_ENV = "STACKML_LAUNCH_ID"  # set by the flow runner in the flow's processes
RUN_COLUMNS = [
    "run_id",
    "experiment",
    "pipeline",
    "run_name",
    "status",
    "start_time",
    "duration_s",
    "metrics",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(value: str, what: str) -> str:
    """Reject names that would escape their folder or break a URI; they become paths and tag keys."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(
            f"The {what} must be letters, digits, '_', '.' or '-' (starting with a letter or digit); "
            f"got {value!r}.",
            hint=f"Pick a {what} such as 'forecast' or 'demand_v2'.",
        )
    return value


@contextmanager
def start_run(
    pipeline: str,
    *,
    data: Any = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    settings: Settings | None = None,
) -> Iterator[Run]:
    """Run a block of a pipeline inside an MLflow run of the experiment ``stackml/<pipeline>``.

    The run is tagged with the pipeline, the git commit of the working directory and, when ``data``
    is given, its :func:`data_fingerprint` (and, inside a flow started by stackml, the launch, so an
    interrupted flow's runs can be found and closed). It ends FINISHED, or FAILED when the block raises (the
    exception propagates). Started inside another run, it becomes a nested child of it.

    Args:
        pipeline: pipeline name, e.g. ``"forecast"``.
        data: the training data (DataFrame, file path or list/dict of them) to fingerprint.
        params: parameters to log at the start.
        tags: extra run tags.
        run_name: display name of the run; MLflow picks one when omitted.
        settings: where to track; default the settings last configured.

    Yields:
        The active ``mlflow.entities.Run``.

    Example:
        >>> with start_run("forecast", data=frame, params={"horizon": 7}) as run:  # doctest: +SKIP
        ...     log_metrics({"rmse": 1.2})
    """
    check_name(pipeline, "pipeline name")
    client = configure(settings)
    mlflow = mlflow_module()
    experiment_id = _experiment_id(client, pipeline, settings or current_settings())
    run_tags = {TAG_PIPELINE: pipeline, TAG_COMMIT: git_commit()}
    if os.environ.get(LAUNCH_ENV):
        run_tags[TAG_LAUNCH] = os.environ[LAUNCH_ENV]
    if data is not None:
        run_tags[TAG_DATA] = data_fingerprint(data)
    run_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    nested = mlflow.active_run() is not None
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=run_tags, nested=nested
    ) as run:
        if params:
            mlflow.log_params(dict(params))
        yield run


def _experiment_id(client: Any, pipeline: str, settings: Settings) -> str:
    """Id of ``stackml/<pipeline>``, creating it (or restoring a deleted one) when needed."""
    name = EXPERIMENT_PREFIX + pipeline
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            location = experiment_artifact_location(settings, pipeline)
            return client.create_experiment(name, artifact_location=location)
        except mlflow_module().exceptions.MlflowException:
            # Another process may have created it between our lookup and our create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        # A deleted experiment keeps its name reserved; reviving it beats failing every later run.
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _active_run_id(action: str) -> str:
    run = mlflow_module().active_run()
    if run is None:
        raise InputError(
            f"{action} needs an active run, and none is active.",
            hint="Call it inside `with stackml.tracking.start_run('<pipeline>'):`.",
        )
    return run.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters of the active run (values are stored as text)."""
    _active_run_id("log_params")
    mlflow_module().log_params(dict(params))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log numeric metrics of the active run, optionally at a training ``step``.

    Raises:
        InputError: when no run is active or a value is not a number (all bad keys are named).
    """
    _active_run_id("log_metrics")
    # NumPy scalars count as numbers; bools are ints to Python but never a metric.
    bad = {k: v for k, v in metrics.items() if not is_number(v)}
    if bad:
        raise InputError(
            f"log_metrics needs numbers; these metrics are not: {bad!r}.",
            hint="Log text as a tag or parameter instead, and convert arrays to a single number.",
        )
    mlflow_module().log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_figure(fig: Any, name: str) -> str:
    """Log a Plotly figure as a self-contained HTML file (Plotly inlined, no CDN) under ``figures/``.

    Args:
        fig: a ``plotly.graph_objects.Figure``.
        name: file name, with or without ``.html``.

    Returns:
        The artifact path, e.g. ``"figures/forecast.html"``.
    """
    _active_run_id("log_figure")
    stem = check_name(name.removesuffix(".html") if isinstance(name, str) else name, "figure name")
    if not hasattr(fig, "to_html"):
        raise InputError(
            f"log_figure needs a Plotly figure; got {type(fig).__name__}.",
            hint="Build it with plotly.graph_objects or plotly.express.",
        )
    artifact = f"figures/{stem}.html"
    # Inline plotly.js: reports and artifacts must open without internet access.
    mlflow_module().log_text(fig.to_html(include_plotlyjs=True, full_html=True), artifact)
    return artifact


def log_table(df: pd.DataFrame, name: str) -> str:
    """Log a DataFrame as a Parquet artifact under ``tables/``; returns the artifact path."""
    return _log_parquet(df, "tables", name, "log_table")


def log_reference_data(df: pd.DataFrame, name: str = "reference") -> str:
    """Log the data a model was trained on, the baseline monitoring compares live data against.

    Stored as ``reference/<name>.parquet``; the run also gets the tag ``stackml.reference.<name>``
    holding its :func:`data_fingerprint`.

    Returns:
        The artifact path, e.g. ``"reference/reference.parquet"``.
    """
    artifact = _log_parquet(df, "reference", name, "log_reference_data")
    mlflow_module().set_tag(TAG_REFERENCE + name, data_fingerprint(df))
    return artifact


def _log_parquet(df: Any, folder: str, name: str, action: str) -> str:
    import pandas as pd

    _active_run_id(action)
    stem = check_name(name.removesuffix(".parquet") if isinstance(name, str) else name, "table name")
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{action} needs a pandas DataFrame; got {type(df).__name__}.")
    with tempfile.TemporaryDirectory(prefix="stackml-") as tmp:
        path = Path(tmp) / f"{stem}.parquet"
        try:
            df.to_parquet(path)
        except (ValueError, TypeError, ImportError) as exc:
            raise InputError(
                f"{action} could not write '{stem}' as Parquet: {exc}",
                hint="Column names must be strings and each column must hold one type.",
            ) from exc
        mlflow_module().log_artifact(str(path), artifact_path=folder)
    return f"{folder}/{stem}.parquet"


def load_reference_data(
    run_id: str, name: str = "reference", *, settings: Settings | None = None
) -> pd.DataFrame:
    """Read back the reference data logged by :func:`log_reference_data` in run ``run_id``.

    Raises:
        RegistryError: when the run does not exist or has no reference data of that name; the
            message lists the names it has.
    """
    import pandas as pd

    check_name(name, "reference name")
    available = _parquet_artifacts(run_id, "reference", settings)
    if name not in available:
        raise RegistryError(
            f"Run '{run_id}' has no reference data named '{name}'; it has {available or 'none'}.",
            hint="Log it in the training run with stackml.tracking.log_reference_data(df, name).",
        )
    with _downloaded(run_id, f"reference/{name}.parquet") as local:
        return pd.read_parquet(local)


def load_tables(run_id: str, *, settings: Settings | None = None) -> dict[str, pd.DataFrame]:
    """Every table run ``run_id`` logged with :func:`log_table`, by name (``tables/<name>.parquet``).

    Raises:
        RegistryError: when the run does not exist or logged no tables.
    """
    import pandas as pd

    names = _parquet_artifacts(run_id, "tables", settings)
    if not names:
        raise RegistryError(
            f"Run '{run_id}' logged no tables.",
            hint="Pipelines log their result tables with stackml.tracking.log_table(df, name); "
            "`stackml runs` lists the runs.",
        )
    with _downloaded(run_id, "tables") as folder:
        return {name: pd.read_parquet(folder / f"{name}.parquet") for name in names}


def _parquet_artifacts(run_id: str, folder: str, settings: Settings | None) -> list[str]:
    """The names of the Parquet artifacts in ``folder`` of a run that must exist, sorted."""
    client = configure(settings)
    try:
        client.get_run(run_id)
    except mlflow_module().exceptions.MlflowException as exc:
        raise translate_mlflow_error(exc, f"Run '{run_id}'") from exc
    files = client.list_artifacts(run_id, folder)
    return sorted(Path(f.path).stem for f in files if not f.is_dir and f.path.endswith(".parquet"))


@contextmanager
def _downloaded(run_id: str, artifact_path: str) -> Iterator[Path]:
    """An artifact (file or folder) of a run, downloaded into a temporary folder removed afterwards."""
    # MLflow draws a download bar per artifact; a scheduled monitor or a service wants none in its log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="stackml-") as tmp:
        yield Path(
            mlflow_module().artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_path, dst_path=tmp
            )
        )


def list_runs(
    limit: int = 20, pipeline: str | None = None, *, settings: Settings | None = None
) -> pd.DataFrame:
    """The latest runs of stackml pipelines, newest first.

    Args:
        limit: maximum number of runs.
        pipeline: only runs of this pipeline.
        settings: where to look; default the settings last configured.

    Returns:
        One row per run with columns ``run_id, experiment, pipeline, run_name, status, start_time``
        (UTC), ``duration_s`` and ``metrics`` (a dict by name, e.g. ``{"mae": 0.8, "rmse": 1.2}``);
        empty with the same columns when there are none.
    """
    import pandas as pd

    if not is_int(limit) or limit < 1:
        raise InputError(f"The 'limit' of list_runs must be a positive integer; got {limit!r}.")
    client = configure(settings)
    if pipeline is not None:
        check_name(pipeline, "pipeline name")
        experiment = client.get_experiment_by_name(EXPERIMENT_PREFIX + pipeline)
        experiments = [experiment] if experiment is not None else []
    else:
        experiments = client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")
    if not experiments:
        return pd.DataFrame(columns=RUN_COLUMNS)
    names = {e.experiment_id: e.name for e in experiments}
    runs = client.search_runs(list(names), max_results=int(limit), order_by=["attributes.start_time DESC"])
    rows = []
    for run in runs:
        info = run.info
        rows.append(
            {
                "run_id": info.run_id,
                "experiment": names.get(info.experiment_id, info.experiment_id),
                "pipeline": run.data.tags.get(TAG_PIPELINE, ""),
                "run_name": info.run_name,
                "status": info.status,
                "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
                "duration_s": (info.end_time - info.start_time) / 1000 if info.end_time else None,
                "metrics": dict(sorted(run.data.metrics.items())),
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)
