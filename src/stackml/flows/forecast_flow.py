"""ForecastFlow: from a long frame (or M4 wide file) to a registered, backtested forecaster and a report.

1. start: load and validate the data, fix the configuration.
2. candidate (one task per model, in parallel): backtest the model, then fit it on all the data and forecast.
3. choose: score every backtest in the warehouse (SQL), add ensembles, choose the best, score the holdout.
4. register: track the run in MLflow, register the chosen forecaster, promote it to champion only if it wins.
5. end: write the report.

Every step calls plain functions of :mod:`stackml.forecasting.pipeline`; this file only wires them.
"""

from metaflow import FlowSpec, Parameter, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # tasks unpickle torch models; see the function's docstring


class ForecastFlow(FlowSpec):
    """Backtest candidate forecasters, choose one (or an ensemble), register it and report."""

    data = Parameter("data", default="", help="long CSV/Parquet (unique_id, ds, y) or M4 wide CSV")
    table = Parameter("table", default="", help="read the training data from this warehouse table instead")
    fmt = Parameter("format", default="long", help="long or m4-wide")
    test = Parameter("test", default="", help="optional holdout file in the same format")
    horizon = Parameter("horizon", type=int, required=True, help="steps to forecast")
    season = Parameter("season", type=int, default=1, help="season length")
    freq = Parameter("freq", default="", help="pandas frequency of timestamp ds (inferred when empty)")
    models = Parameter("models", default="", help="comma-separated model names (default: the default set)")
    n_windows = Parameter("n_windows", type=int, default=0, help="backtest windows (0: chosen from the data)")
    model_name = Parameter("model_name", default="forecast", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Load and validate the data; one candidate task per model."""
        from stackml.forecasting.pipeline import DEFAULT_MODELS, ForecastConfig, check_data, load_data, resolve_windows
        from stackml.warehouse import connect

        names = tuple(m.strip() for m in self.models.split(",") if m.strip()) or DEFAULT_MODELS
        self.config = ForecastConfig(
            horizon=self.horizon, season_length=self.season, freq=self.freq or None, models=names,
            n_windows=self.n_windows or None,
        )
        if self.table:
            with connect() as wh:
                self.train, self.holdout_data = load_data(table=self.table, test=self.test or None, warehouse=wh)
        else:
            self.train, self.holdout_data = load_data(self.data, fmt=self.fmt, test=self.test or None)
        check_data(self.train, self.config, self.holdout_data)
        self.config = resolve_windows(self.config, self.train)
        self.candidate_names = list(self.config.candidates)
        self.next(self.candidate, foreach="candidate_names")

    @step
    def candidate(self):
        """Backtest one model, then fit it on all the data and forecast."""
        from stackml.forecasting.pipeline import run_candidate

        self.result = run_candidate(self.train, self.input, self.config)
        self.next(self.choose)

    @step
    def choose(self, inputs):
        """Score the backtests in the warehouse, add ensembles, choose, attach intervals, score the holdout."""
        from stackml.forecasting.pipeline import summarise
        from stackml.warehouse import connect

        self.merge_artifacts(inputs, include=["config", "train", "holdout_data"])
        with connect() as wh:
            self.pipeline = summarise(
                [i.result for i in inputs], self.train, self.config, wh, run_id=f"flow-{current_run_id()}",
                test=self.holdout_data,
            )
        self.next(self.register)

    @step
    def register(self):
        """Track the run, register the chosen forecaster and promote it when it beats the champion."""
        from stackml import tracking
        from stackml.forecasting.publish import register_forecaster, run_metrics, run_params

        self.model_version, self.promotion, self.mlflow_run_id = None, None, None
        with tracking.start_run("forecasting", data=self.train, params=run_params(self.pipeline)) as run:
            self.mlflow_run_id = run.info.run_id
            tracking.log_metrics(run_metrics(self.pipeline))
            tracking.log_table(self.pipeline.scores, "backtest_scores")
            tracking.log_reference_data(self.train, "training_data")
            if self.register_model:
                version, self.promotion = register_forecaster(self.pipeline, self.train, self.model_name)
                self.model_version = version.version
        self.next(self.end)

    @step
    def end(self):
        """Write the report."""
        from stackml.forecasting.report import forecast_report

        note = None
        if self.promotion is not None:
            note = f"Registered as {self.model_name} v{self.model_version}: {self.promotion.reason.rstrip('.')}."
        report = forecast_report(
            self.pipeline, self.train, self.holdout_data, title=f"Forecast: {self.model_name}",
            run_id=self.mlflow_run_id, registry_note=note,
        )
        self.report_path = str(report.write())


def current_run_id():
    from metaflow import current

    return current.run_id


if __name__ == "__main__":
    ForecastFlow()
