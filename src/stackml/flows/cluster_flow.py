"""ClusterFlow: from a table of texts or numeric rows to named, checked clusters, a registered model, an
assignments table and a report.

1. start: read the configuration and the rows, and check them (empty or repeated texts or ids, NaN, constant
   columns, too few rows).
2. fit: embed the texts (MiniLM vectors through the warehouse's cache) and fit the reduction and the
   clustering.
3. assess: bootstrap stability of each cluster (each resample reported as progress), silhouette,
   Davies-Bouldin, Calinski-Harabasz, DBCV, external scores against a labels column, names, the 2-D picture.
4. publish: write ``<model name>_assignments`` to the warehouse; track the run; register the model and promote
   it on the stability-weighted silhouette.
5. end: write the report.

The steps are the functions :func:`stackml.clustering.pipeline.run_pipeline` calls in the same order; this
file only wires them.
"""

from metaflow import FlowSpec, Parameter, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # tasks import torch after Metaflow


class ClusterFlow(FlowSpec):
    """Cluster texts or rows, check the clusters' stability, name them, register the model and report."""

    config_json = Parameter("config", required=True, help="ClusterConfig as JSON (ClusterConfig.to_json())")
    data = Parameter("data", default="", help="rows to cluster, CSV/Parquet")
    table = Parameter("table", default="", help="read the rows from this warehouse table instead")
    model_name = Parameter("model_name", default="cluster", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Read and check the configuration and the rows."""
        from stackml.clustering.config import ClusterConfig
        from stackml.clustering.pipeline import load, split_copies
        from stackml.pipelines import Source
        from stackml.warehouse import connect

        self.config = ClusterConfig.from_json(self.config_json)
        with connect() as wh:
            self.frame, self.copies = split_copies(load(self.config, Source.of(self.data, self.table), wh))
        self.next(self.fit)

    @step
    def fit(self):
        """Embed the texts (cached in the warehouse) and fit the reduction and the clustering."""
        import time

        from stackml.clustering.pipeline import embed, fit, input_kind
        from stackml.flows import step_progress
        from stackml.warehouse import connect

        started = time.perf_counter()
        with connect() as wh:
            vectors = embed(self.config, self.frame, wh)
        embedded = time.perf_counter()
        reduction = self.config.reduction
        if reduction == "umap" or (reduction == "auto" and input_kind(self.frame) == "texts"):
            # UMAP is compiled by numba on its first use in a process; the compiled code is cached on disk
            step_progress("reduce and cluster", 0, 1, "UMAP's first run compiles numba (up to a minute)")
        self.model = fit(self.config, self.frame, vectors)
        step_progress("reduce and cluster", 1, 1, f"{self.model.n_clusters_} clusters")
        self.seconds = {"embed": embedded - started, "fit": time.perf_counter() - embedded}
        self.next(self.assess)

    @step
    def assess(self):
        """Bootstrap stability, quality scores, names and the picture; summarise."""
        from stackml.clustering.pipeline import assess, summarise
        from stackml.flows import step_progress

        assessed = assess(self.config, self.model, self.frame, progress=step_progress)
        self.result = summarise(
            self.config, self.model, self.frame, assessed, seconds=self.seconds, copies=self.copies
        )
        self.next(self.publish)

    @step
    def publish(self):
        """Write the assignments table; track the run; register the model, promote on stability-weighted
        silhouette."""
        from stackml.clustering.pipeline import write_assignments
        from stackml.pipelines import publish
        from stackml.warehouse import connect

        with connect() as wh:
            self.assignments_table = write_assignments(self.result, wh, self.model_name)
        self.published = publish(
            self.result, self.frame, model_name=self.model_name, register=self.register_model
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report and keep the summary for the CLI."""
        from stackml.clustering.report import cluster_report

        report = cluster_report(
            self.result,
            title=f"Clustering: {self.model_name}",
            run_id=self.published.run_id,
            registry_note=self.published.note,
        )
        self.report_path = str(report.write())
        self.summary = self.result.summary() | {"assignments_table": self.assignments_table}


if __name__ == "__main__":
    ClusterFlow()
