"""ForecastFlow: from a long frame (or M4 wide file) to a registered, backtested forecaster and a report.

1. start: read the configuration and the data, validate them, fix the seasonal periods and the backtest
   windows, and measure which candidates fit the time budget.
2. candidate (one task per group of models, a group per core, in parallel): backtest each model, then fit
   it on all the data and forecast (one far worse than seasonal naive on its first window stops there).
3. choose: score every backtest in the warehouse (SQL), add ensembles, choose the best, score the holdout.
4. publish: track the run in MLflow, register the chosen forecaster, promote it to champion only if it wins.
5. end: write the report.

Steps 1-3 are the functions :func:`stackml.forecasting.pipeline.run_pipeline` calls in the same order; this
file only wires them.
"""

from metaflow import FlowSpec, Parameter, current, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # tasks unpickle torch models; see the function's docstring


class ForecastFlow(FlowSpec):
    """Backtest candidate forecasters, choose one (or an ensemble), register it and report."""

    config_json = Parameter("config", required=True, help="ForecastConfig as JSON (ForecastConfig.to_json())")
    data = Parameter("data", default="", help="long CSV/Parquet (unique_id, ds, y) or M4 wide CSV")
    table = Parameter("table", default="", help="read the training data from this warehouse table instead")
    model_name = Parameter("model_name", default="forecast", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Read and validate the configuration and the data; one candidate task per model."""
        from stackml.forecasting.config import ForecastConfig
        from stackml.forecasting.pipeline import check_data, load_data, plan_candidates
        from stackml.pipelines import Source
        from stackml.warehouse import connect

        config = ForecastConfig.from_json(self.config_json)
        with connect() as wh:
            self.train, self.holdout_data = load_data(config, Source.of(self.data, self.table), wh)
        self.config = check_data(self.train, config, self.holdout_data)
        self.plan = plan_candidates(self.train, self.config)
        self.candidate_groups = [list(group) for group in self.plan.groups]
        self.next(self.candidate, foreach="candidate_groups")

    @step
    def candidate(self):
        """Backtest each model of this group, then fit it on all the data and forecast."""
        from stackml.forecasting.pipeline import run_candidate

        self.results = [
            run_candidate(self.train, n, self.plan.config_for(n, self.config)) for n in self.input
        ]
        self.next(self.choose)

    @step
    def choose(self, inputs):
        """Score the backtests in the warehouse, add ensembles, choose, attach intervals, score the
        holdout."""
        from stackml.forecasting.pipeline import summarise
        from stackml.warehouse import connect

        # the branches read the same data; taken from one of them, since pandas may reorganise a frame's
        # memory in place when it is read (different pickles, which merge_artifacts calls a conflict)
        self.merge_artifacts(inputs, include=["config", "plan"])
        self.train, self.holdout_data = inputs[0].train, inputs[0].holdout_data
        order = {name: k for k, name in enumerate(self.plan.models)}
        candidates = sorted((r for i in inputs for r in i.results), key=lambda r: order[r.name])
        with connect() as wh:
            pipeline = summarise(
                candidates,
                self.train,
                self.config,
                wh,
                run_id=f"flow-{current.run_id}",
                test=self.holdout_data,
                skipped=self.plan.skipped,
            )
        # the fitted models apart: only publish needs them, and loading them imports the models' libraries
        self.forecasters, self.pipeline = pipeline.forecasters, pipeline.without_forecasters()
        self.next(self.publish)

    @step
    def publish(self):
        """Track the run, register the chosen forecaster and promote it when it beats the champion."""
        from stackml.pipelines import publish

        self.published = publish(
            self.pipeline.with_forecasters(self.forecasters),
            self.train,
            model_name=self.model_name,
            register=self.register_model,
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report; keep a plain summary for the CLI (reading it back needs no model code)."""
        from stackml.forecasting.report import forecast_report

        report = forecast_report(
            self.pipeline,
            self.train,
            self.holdout_data,
            title=f"Forecast: {self.model_name}",
            run_id=self.published.run_id,
            registry_note=self.published.note,
        )
        self.report_path = str(report.write())
        self.summary = self.pipeline.summary()


if __name__ == "__main__":
    ForecastFlow()
