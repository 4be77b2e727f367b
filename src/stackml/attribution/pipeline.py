"""The attribution pipeline's steps, as plain functions: ``AttributionFlow`` calls them in this order, and so
does :func:`run_pipeline` in one process.

1. :func:`load`: the paths, from the aggregated format or cut from raw touchpoints in SQL (every bad row
   named before anything runs);
2. :func:`load_references`: what the credit is compared with, if anything: the truth of simulated data and a
   registered media-mix model;
3. :func:`fit`: every method's credit, side by side;
4. :func:`summarise`: the result the registry, the report and the CLI read;
5. :func:`write_paths`: the paths back to the warehouse (``<model name>_paths``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.attribution.config import AttributionConfig
from stackml.attribution.model import Attribution, AttributionResult
from stackml.attribution.neural import NeuralOptions
from stackml.attribution.paths import SEPARATOR, Paths, paths_from_touchpoints, read_paths
from stackml.attribution.result import AttributionRun
from stackml.attribution.triangulation import References, load_references

if TYPE_CHECKING:
    from stackml.pipelines import Source
    from stackml.warehouse import Warehouse

__all__ = [
    "load",
    "load_references",
    "check_source",
    "fit",
    "summarise",
    "run_pipeline",
    "write_paths",
    "paths_table",
    "publish_run",
]


def load(config: AttributionConfig, source: Source, warehouse: Warehouse) -> Paths:
    """The paths of ``source`` (a file or a warehouse table).

    Raises:
        InputError: missing columns, duplicate touchpoints, empty paths, negative values, no conversions.
    """
    if config.format == "paths":
        # the format's files are usually ';'-separated, which the warehouse's CSV reader refuses
        return read_paths(source.path if source.table is None else source.read(warehouse))
    if source.table is not None:
        return _cut(config, warehouse, source.table)
    from stackml.warehouse import connect

    # A file of touchpoints: cut in a throwaway in-memory DuckDB, the same SQL as on a table.
    with connect("duckdb:///:memory:") as scratch:
        scratch.ingest(source.path, "touchpoints")
        return _cut(config, scratch, "touchpoints")


def _cut(config: AttributionConfig, warehouse: Warehouse, table: str) -> Paths:
    return paths_from_touchpoints(
        warehouse,
        table,
        user_column=config.user_column,
        time_column=config.time_column,
        channel_column=config.channel_column,
        conversion_column=config.conversion_column,
        value_column=config.value_column,
        lookback_days=config.lookback_days,
    )


def check_source(config: AttributionConfig, source: Source, warehouse: Warehouse) -> None:
    """Load and discard: every problem of the input, the truth file and the MMM named is reported before a
    flow starts."""
    load(config, source, warehouse)
    load_references(config)


def fit(config: AttributionConfig, paths: Paths) -> tuple[AttributionResult, dict[str, float]]:
    """Every configured method's credit, and the seconds each took."""
    model = Attribution(
        config.methods,
        markov_order=config.markov_order,
        half_life_days=config.half_life_days,
        shapley_permutations=config.shapley_permutations,
        random_state=config.random_state,
        neural_options=NeuralOptions(epochs=config.neural_epochs),
    )
    fitted = model.fit(paths)
    return fitted, dict(fitted.seconds)


def summarise(
    config: AttributionConfig,
    paths: Paths,
    fitted: AttributionResult,
    seconds: dict[str, float],
    references: References | None = None,
) -> AttributionRun:
    return AttributionRun(
        config=config, paths=paths, fitted=fitted, seconds=seconds, references=references or References()
    )


def run_pipeline(
    source_frame: pd.DataFrame | Paths, config: AttributionConfig | None = None
) -> AttributionRun:
    """Every step in this process: ``source_frame`` is an aggregated-paths frame or :class:`Paths`."""
    config = config or AttributionConfig(format="paths")
    paths = source_frame if isinstance(source_frame, Paths) else read_paths(source_frame)
    references = load_references(config)
    started = time.perf_counter()
    fitted, seconds = fit(config, paths)
    seconds["total"] = time.perf_counter() - started
    return summarise(config, paths, fitted, seconds, references)


def paths_table(paths: Paths) -> pd.DataFrame:
    """The paths as a warehouse table: ``path`` text joined by ``" > "``, counts, and the gaps as text."""
    table = pd.DataFrame(
        {
            "path": [SEPARATOR.join(p) for p in paths.frame["path"]],
            "touches": paths.frame["path"].map(len).astype("int64"),
            "conversions": paths.frame["conversions"].astype(float),
            "value": paths.frame["value"].astype(float),
            "nulls": paths.frame["nulls"].astype(float),
        }
    )
    if paths.has_gaps:
        table["gaps_days"] = [",".join(f"{g:g}" for g in gaps) for gaps in paths.frame["gaps"]]
    return table


def write_paths(run: AttributionRun, warehouse: Warehouse, model_name: str) -> str:
    """Write the run's paths to ``<model name>_paths`` (replaced in one transaction); returns the name."""
    from stackml.warehouse.identifiers import fold_table_name

    name = fold_table_name(f"{model_name.replace('-', '_')}_paths")
    warehouse.ingest(paths_table(run.paths), name, if_exists="replace")
    return name


def publish_run(run: AttributionRun, frame: pd.DataFrame, *, model_name: str, register: bool = True) -> Any:
    """Track the run (credit tables logged with it) and register the models it made, if any."""
    from stackml.pipelines import publish

    published = publish(run, frame, model_name=model_name, register=register)
    if run.fitted.neural is None:
        published.note = (
            "Nothing registered: the rule, Markov and Shapley credits are tables, logged with the run "
            f"{published.run_id}; the neural method registers its sequence model."
        )
    return published
