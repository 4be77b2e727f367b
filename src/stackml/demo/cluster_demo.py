"""The clustering step of ``stackml demo``: the support messages the NLP step loaded (8 BANKING77 intents x 50
queries, CC BY 4.0) clustered without their labels -> MiniLM vectors (cached in the warehouse) -> UMAP ->
HDBSCAN -> bootstrap stability -> registry, assignments table and report; the intents only score the result.

Ten bootstraps keep the step short on two cores; ``stackml cluster run`` defaults to twenty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackml.demo import DemoContext

MODEL_NAME = "cluster-demo-support-messages"
DEMO_SETTINGS = {"labels_column": "label", "n_boot": 10}


def cluster_step(ctx: DemoContext) -> None:
    """Cluster the demo's support messages (loading them first when the NLP step has not) and say how the
    clusters match the intents."""
    from stackml.clustering.config import ClusterConfig
    from stackml.demo.nlp_demo import TEXTS_TABLE, demo_file

    with ctx.warehouse() as warehouse:
        if not warehouse.has_table(TEXTS_TABLE):
            warehouse.ingest(demo_file("train"), TEXTS_TABLE)
    ctx.say(
        f"Clustering the {TEXTS_TABLE} texts without their labels (MiniLM -> UMAP -> HDBSCAN); the first "
        "UMAP run compiles numba"
    )
    end = ctx.run_pipeline("cluster", ClusterConfig(**DEMO_SETTINGS), TEXTS_TABLE, MODEL_NAME)
    summary = end.summary
    stability = summary["stability"]
    ctx.say(
        f"{summary['n_clusters']} clusters, V-measure {summary['external']['v_measure']:.2f} against the 8 "
        f"intents; stability mean {stability['mean']:.2f} ({len(stability['unstable'])} unstable); "
        f"assignments in [bold]{summary['assignments_table']}[/bold]; {end.published.note}"
    )
