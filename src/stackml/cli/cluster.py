"""``stackml cluster run`` and ``stackml cluster predict``: the clustering pipeline (ClusterFlow) and a
registered clustering.

Exit codes as everywhere: 2 for bad input (missing columns, empty or repeated texts or ids, NaN, constant
columns, too few rows, ``--k`` above the rows), checked before the flow starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import (
    DataOption,
    JsonOption,
    ModelNameOption,
    RegisterOption,
    TableOption,
    WarehouseOption,
    default,
)
from stackml.clustering.config import ClusterConfig

cluster_app = typer.Typer(
    help="Clustering of texts or numeric rows: HDBSCAN or K-means, stability checked, clusters named.",
    no_args_is_help=True,
)


def _default(field: str) -> Any:
    value = default(ClusterConfig, field)
    return ",".join(value) if isinstance(value, tuple) else value


@cluster_app.command("run")
def run(
    data: DataOption = None,
    table: TableOption = None,
    text_column: Annotated[
        Optional[str],
        typer.Option("--text-column", help="Cluster the texts of this column (default: 'text' if present)."),
    ] = None,
    columns: Annotated[
        Optional[str], typer.Option("--columns", help="Cluster rows on these numeric columns: a,b,c.")
    ] = None,
    id_column: Annotated[
        Optional[str],
        typer.Option("--id-column", help="Row ids for the assignments table (default: 'id' if present)."),
    ] = None,
    labels_column: Annotated[
        Optional[str],
        typer.Option("--labels-column", help="Known classes to score the clusters against (never fitted)."),
    ] = None,
    dedupe: Annotated[
        bool,
        typer.Option("--dedupe", help="Cluster each distinct text once; its copies get the same cluster."),
    ] = _default("dedupe"),
    algorithm: Annotated[
        str, typer.Option("--algorithm", help="hdbscan (finds the number of clusters) or kmeans.")
    ] = _default("algorithm"),
    k: Annotated[
        Optional[int], typer.Option("--k", help="K-means: the number of clusters (default: by silhouette).")
    ] = None,
    embedding: Annotated[
        str, typer.Option("--embedding", help="Texts: minilm (sentence embeddings) or tfidf.")
    ] = _default("embedding"),
    reduction: Annotated[
        str, typer.Option("--reduction", help="auto (UMAP for texts, PCA for rows), umap, pca or none.")
    ] = _default("reduction"),
    min_cluster_size: Annotated[
        Optional[int],
        typer.Option(
            "--min-cluster-size", help="HDBSCAN's smallest cluster (default: chosen from the data)."
        ),
    ] = None,
    reassign_outliers: Annotated[
        bool,
        typer.Option(
            "--reassign-outliers/--keep-outliers", help="Move HDBSCAN's outliers to the nearest cluster."
        ),
    ] = _default("reassign_outliers"),
    n_boot: Annotated[
        int, typer.Option("--bootstraps", help="Bootstrap resamples for the stability table (0: skip).")
    ] = _default("n_boot"),
    fast: Annotated[
        bool, typer.Option("--fast", help="Draw the 2-D picture with PCA instead of UMAP.")
    ] = _default("fast"),
    seed: Annotated[int, typer.Option("--seed", help="Seeds the reductions, K-means and the bootstraps.")] = (
        _default("random_state")
    ),
    warehouse: WarehouseOption = None,
    model_name: ModelNameOption = None,
    register: RegisterOption = True,
    as_json: JsonOption = False,
) -> None:
    """Cluster texts or rows, check each cluster's stability, name the clusters, register and report."""
    from stackml.cli._pipeline import emit, open_source, run_command

    config = ClusterConfig(
        text_column=text_column,
        columns=columns or (),
        id_column=id_column,
        labels_column=labels_column,
        dedupe=dedupe,
        algorithm=algorithm,
        k=k,
        embedding=embedding,
        reduction=reduction,
        min_cluster_size=min_cluster_size,
        reassign_outliers=reassign_outliers,
        n_boot=n_boot,
        fast=fast,
        random_state=seed,
    )
    source = open_source(data, table, warehouse, check=lambda src, wh: _check_data(config, src, wh))
    name = model_name or source.default_model_name("cluster")
    end, shared = run_command(
        "cluster", config, source, model_name=name, register=register, warehouse=warehouse, as_json=as_json
    )
    emit(end.summary | shared, as_json, _print_run)


def _check_data(config: ClusterConfig, source: Any, warehouse: Any) -> None:
    from stackml.clustering.pipeline import load

    load(config, source, warehouse)  # every bad row named before the flow starts


def _print_run(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [
        {
            "cluster": c["cluster"],
            "name": c["name"],
            "size": c["size"],
            "silhouette": "" if c["silhouette"] is None else f"{c['silhouette']:.3f}",
            "stability": "" if c["stability"] is None else f"{c['stability']:.2f}",
            "": "unstable" if c["unstable"] else "",
        }
        for c in summary["clusters"]
    ]
    print_frame(pd.DataFrame(rows), title=f"{summary['n_clusters']} clusters of {summary['n_rows']:,} rows")
    out = console()
    stability = summary["stability"]
    if stability["mean"] is not None:
        out.print(
            f"Stability (mean bootstrap Jaccard over {stability['bootstraps']} resamples): mean "
            f"{stability['mean']:.2f}, least stable cluster {stability['min']:.2f}; "
            f"{len(stability['unstable'])} flagged unstable."
        )
    if summary["outliers_found"]:
        moved = f", {summary['reassigned']:,} moved to the nearest cluster" if summary["reassigned"] else ""
        out.print(f"HDBSCAN left {summary['outliers_found']:,} rows in no cluster{moved}.")
    if "external" in summary:
        ext = summary["external"]
        scores = f"V-measure {ext['v_measure']:.3f}, NMI {ext['nmi']:.3f}, ARI {ext['ari']:.3f}"
        out.print(f"Against the labels: {scores}.")
    out.print(f"Assignments: table {summary['assignments_table']}")
    out.print(summary["registry_note"])
    out.print(f"Report: {summary['report']}")


@cluster_app.command("predict")
def predict(
    model: Annotated[
        str, typer.Option("--model", help="Registered model: NAME (its champion) or NAME@ALIAS.")
    ],
    text: Annotated[
        Optional[list[str]], typer.Option("--text", help="A text to place (repeat for several).")
    ] = None,
    data: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """Place new texts (--text) or rows (--data FILE) in the clusters of a registered clustering."""
    import pandas as pd

    from stackml import tracking
    from stackml.errors import InputError

    if bool(text) == bool(data):
        raise InputError(
            "Give either --text (one or more) or --data FILE.",
            hint="stackml cluster predict --model NAME --text 'my card has not arrived'",
        )
    if text:
        rows = pd.DataFrame({"text": list(text)})
    else:
        from stackml.pipelines import Source

        rows = Source.of(data).read()
    loaded = tracking.load_model(model if "@" in model else f"{model}@champion")
    predictions = loaded.predict(rows)
    shown = rows.reset_index(drop=True).join(predictions)
    if as_json:
        from stackml.cli.output import frame_to_records, print_json

        print_json({"model": model, "predictions": frame_to_records(shown)})
        return
    from stackml.cli.output import print_frame

    print_frame(shown, title=f"Clusters from {model}")
