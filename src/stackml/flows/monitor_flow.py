"""MonitorFlow: one monitoring pass over a served model, as a flow a scheduler can run.

1. start: read the configuration; resolve the model version; read its reference data and its logged
   inputs and outputs in the window (and the window before, for the predictions).
2. check: drift per column and for the dataset, data quality, prediction drift, performance against ground
   truth, freshness; turn them into metrics.
3. alert: evaluate the rules, open and resolve alerts in the alerts table, notify the webhook.
4. end: write the report and keep the summary for the CLI.

The steps are the functions :func:`stackml.monitoring.monitor.run_monitor` calls in the same order; this file
only wires them. Run it every hour from cron (``stackml monitor run --model NAME``) or the Kubernetes CronJob.
"""

from metaflow import FlowSpec, Parameter, step


class MonitorFlow(FlowSpec):
    """Check a served model's inputs, predictions and performance; raise and resolve alerts; report."""

    config_json = Parameter("config", required=True, help="MonitorConfig as JSON (MonitorConfig.to_json())")

    @step
    def start(self):
        """Resolve the model and read what the window holds."""
        import time

        from stackml.monitoring.config import MonitorConfig
        from stackml.monitoring.monitor import gather
        from stackml.warehouse import connect

        started = time.perf_counter()
        self.config = MonitorConfig.from_json(self.config_json)
        with connect() as wh:
            self.observed = gather(self.config, wh)
        self.seconds = {"gather": time.perf_counter() - started}
        self.next(self.check)

    @step
    def check(self):
        """Drift, quality, prediction drift, performance, freshness; the metrics the rules read."""
        import time

        from stackml.monitoring.monitor import check, metrics_of
        from stackml.warehouse import connect

        started = time.perf_counter()
        with connect() as wh:
            self.checks = check(self.config, self.observed, wh)
        self.metrics = metrics_of(self.checks)
        self.seconds["check"] = time.perf_counter() - started
        self.next(self.alert)

    @step
    def alert(self):
        """Open and resolve alerts; a failing webhook is a problem in the summary, never a failed run."""
        import time

        from stackml.errors import StackmlError
        from stackml.monitoring.history import MetricHistory
        from stackml.monitoring.monitor import MonitorResult, raise_alerts
        from stackml.warehouse import connect

        started = time.perf_counter()
        subject = self.observed.version.name
        with connect() as wh:
            try:
                events, problems = raise_alerts(
                    self.config, self.metrics, subject, wh, window=self.observed.window
                )
            except StackmlError as exc:
                events, problems = [], [f"alerts: {exc.message}"]
            history = MetricHistory(wh).frame(subject)
        self.checks.problems += problems
        self.seconds["alerts"] = time.perf_counter() - started
        self.result = MonitorResult(
            self.config, self.observed, self.checks, self.metrics, events, self.seconds, history
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report and keep the summary for the CLI."""
        from stackml.monitoring.report import monitor_report

        self.report_path = str(monitor_report(self.result).write())
        self.summary = self.result.summary() | {"report": self.report_path}


if __name__ == "__main__":
    MonitorFlow()
