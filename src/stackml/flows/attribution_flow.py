"""AttributionFlow: from raw touchpoints (or aggregated paths) to every method's channel credit, tracked and
reported.

1. start: read the configuration and the input; cut journeys from touchpoints in SQL (or read the aggregated
   paths); every bad row named; read what the credit is compared with (a truth file, a registered MMM).
2. fit: the rules, the Markov chain and Shapley values, side by side.
3. publish: write ``<model name>_paths`` to the warehouse; track the run with the credit tables.
4. end: write the report and a Tableau extract of the credit tables beside it.

The steps are the functions :mod:`stackml.attribution.pipeline` holds, called in the same order as
:func:`stackml.attribution.pipeline.run_pipeline`; this file only wires them.
"""

from metaflow import FlowSpec, Parameter, step


class AttributionFlow(FlowSpec):
    """Credit channels for conversions along user paths, several ways side by side."""

    config_json = Parameter("config", required=True, help="AttributionConfig as JSON (to_json())")
    data = Parameter("data", default="", help="touchpoints or aggregated paths, CSV/Parquet")
    table = Parameter("table", default="", help="read the input from this warehouse table instead")
    model_name = Parameter("model_name", default="attribution", help="name of the run's outputs")
    register_model = Parameter("register", type=bool, default=True, help="register models the run makes")

    @step
    def start(self):
        """Read the input and cut it into paths."""
        from stackml.attribution.config import AttributionConfig
        from stackml.attribution.pipeline import load, load_references
        from stackml.pipelines import Source
        from stackml.warehouse import connect

        self.config = AttributionConfig.from_json(self.config_json)
        with connect() as wh:
            self.paths = load(self.config, Source.of(self.data, self.table), wh)
        self.references = load_references(self.config)
        self.next(self.fit)

    @step
    def fit(self):
        """Every method's credit."""
        from stackml.attribution.pipeline import fit, summarise

        fitted, seconds = fit(self.config, self.paths)
        self.result = summarise(self.config, self.paths, fitted, seconds, self.references)
        self.next(self.publish)

    @step
    def publish(self):
        """Write the paths table and track the run (credit tables logged with it)."""
        from stackml.attribution.pipeline import paths_table, publish_run, write_paths
        from stackml.warehouse import connect

        with connect() as wh:
            self.paths_table = write_paths(self.result, wh, self.model_name)
        self.published = publish_run(
            self.result, paths_table(self.paths), model_name=self.model_name, register=self.register_model
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report and, beside it, a Tableau extract of the credit tables; keep the summary for the
        CLI."""
        from stackml.attribution.report import attribution_report
        from stackml.reports import write_extract_beside

        report = attribution_report(
            self.result,
            title=f"Path attribution: {self.model_name}",
            run_id=self.published.run_id,
            registry_note=self.published.note,
        )
        self.report_path = str(report.write())
        extract = write_extract_beside(self.report_path, self.result.tables())
        self.extract_path = None if extract is None else str(extract)
        self.summary = self.result.summary() | {"paths_table": self.paths_table, "extract": self.extract_path}


if __name__ == "__main__":
    AttributionFlow()
