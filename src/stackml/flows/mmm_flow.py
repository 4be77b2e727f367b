"""MMMFlow: from raw touchpoints (or a model frame) to a checked, registered media-mix model, a budget plan
and a report.

1. start: read the data (raw touchpoints are aggregated in the warehouse with SQL) and validate it.
2. fit: sample the posterior with nutpie, then the time-slice check (refit without the last periods).
3. diagnose: apply the gates (divergences, r_hat, ESS, fit, held-out error); compute ROAS, shares and curves.
4. optimize: plan the budget over the horizon (only for a model that passed).
5. publish: track the run; register the model and promote it only if it passed every gate and beats the
   champion.
6. end: write the report, which says which gate failed and what to try when one did, and a Tableau
   extract of the ROAS and contribution tables beside it.

Steps 1-4 are the functions :func:`stackml.mmm.pipeline.run_pipeline` calls in the same order; this file only
wires them.
"""

from metaflow import FlowSpec, Parameter, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # see the function: tasks of other flows may import torch in this process


class MMMFlow(FlowSpec):
    """Fit a Bayesian media-mix model, gate it, plan a budget, register it and report."""

    config_json = Parameter("config", required=True, help="MMMConfig as JSON (MMMConfig.to_json())")
    data = Parameter("data", default="", help="model frame CSV/Parquet, one row per period")
    table = Parameter(
        "table", default="", help="warehouse table: raw touchpoints (has 'channel') or a model frame"
    )
    model_name = Parameter("model_name", default="mmm", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Read the configuration and the data (aggregating touchpoints in SQL), and validate them."""
        from stackml.mmm.config import MMMConfig
        from stackml.mmm.pipeline import load
        from stackml.pipelines import Source
        from stackml.warehouse import connect

        self.config = MMMConfig.from_json(self.config_json)
        with connect() as wh:
            self.frame = load(self.config, Source.of(self.data, self.table), wh)
        self.next(self.fit)

    @step
    def fit(self):
        """Sample the posterior, then refit without the last periods to measure the held-out error."""
        from stackml.mmm.pipeline import fit

        self.model, self.holdout_result, self.seconds = fit(self.frame, self.config)
        self.next(self.diagnose)

    @step
    def diagnose(self):
        """Apply the gates, and compute contributions, ROAS, marginal ROAS and response curves."""
        from stackml.mmm.pipeline import diagnose_and_summarise

        self.result = diagnose_and_summarise(self.model, self.config, self.holdout_result, self.seconds)
        self.next(self.optimize)

    @step
    def optimize(self):
        """Plan the budget over the horizon with the model, if it passed its gates."""
        from stackml.mmm.pipeline import add_plan

        self.result = add_plan(self.result)
        self.next(self.publish)

    @step
    def publish(self):
        """Track the run; register the model and promote it, only when it passed every gate."""
        from stackml.pipelines import publish

        self.published = publish(
            self.result, self.frame, model_name=self.model_name, register=self.register_model
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report (it names any failed gate and what to try) and, beside it, a Tableau extract of
        the ROAS and contribution tables; keep the summary for the CLI."""
        from stackml.mmm.report import mmm_report
        from stackml.reports import write_extract_beside

        report = mmm_report(
            self.result,
            title=f"Media mix: {self.model_name}",
            run_id=self.published.run_id,
            registry_note=self.published.note,
        )
        self.report_path = str(report.write())
        extract = write_extract_beside(self.report_path, self.result.tables())
        self.extract_path = None if extract is None else str(extract)


if __name__ == "__main__":
    MMMFlow()
