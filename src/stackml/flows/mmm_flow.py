"""MMMFlow: from raw touchpoints (or a model frame) to a checked, registered media-mix model, a budget plan and a report.

1. start: read the data (raw touchpoints are aggregated in the warehouse with SQL) and validate it.
2. fit: sample the posterior with nutpie, then the time-slice check (refit without the last periods).
3. diagnose: apply the gates (divergences, r_hat, ESS, fit, held-out error); compute ROAS, shares and curves.
4. register: track the run; register the model and promote it only if it passed every gate and beats the champion.
5. optimize: plan the budget over the horizon (only for a model that passed).
6. end: write the report, which says which gate failed and what to try when one did.

Every step calls plain functions of :mod:`stackml.mmm.pipeline`; this file only wires them.
"""

from metaflow import FlowSpec, Parameter, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # see the function: tasks of other flows may import torch in this process


class MMMFlow(FlowSpec):
    """Fit a Bayesian media-mix model, gate it, register it, plan a budget and report."""

    data = Parameter("data", default="", help="model frame CSV/Parquet, one row per period")
    table = Parameter(
        "table", default="", help="warehouse table: raw touchpoints (has 'channel') or a model frame"
    )
    controls_table = Parameter("controls_table", default="", help="table of control columns for touchpoints")
    freq = Parameter("freq", default="W", help="period to aggregate touchpoints to: W or D")
    date_column = Parameter("date_column", default="date", help="the date column")
    channels = Parameter("channels", required=True, help="comma-separated channels (spend columns)")
    target = Parameter("target", default="revenue", help="the target column")
    controls = Parameter("controls", default="", help="comma-separated control columns")
    lift_tests = Parameter("lift_tests", default="", help="lift-test CSV to calibrate with")
    adstock = Parameter(
        "adstock", default="geometric", help="adstock: geometric, delayed, weibull, weibull_pdf"
    )
    saturation = Parameter(
        "saturation", default="logistic", help="saturation: logistic, hill, michaelis_menten"
    )
    draws = Parameter("draws", type=int, default=2000, help="posterior draws per chain")
    tune = Parameter("tune", type=int, default=1000, help="warm-up draws per chain")
    chains = Parameter("chains", type=int, default=4, help="chains")
    target_accept = Parameter("target_accept", type=float, default=0.9, help="NUTS target acceptance")
    seed = Parameter("seed", type=int, default=0, help="random seed")
    holdout = Parameter(
        "holdout", type=float, default=0.15, help="share of last periods for the time-slice check"
    )
    max_divergences = Parameter("max_divergences", type=int, default=0, help="gate: most divergences")
    max_rhat = Parameter("max_rhat", type=float, default=1.01, help="gate: largest r_hat")
    min_ess = Parameter("min_ess", type=float, default=400.0, help="gate: smallest bulk ESS")
    min_r2 = Parameter("min_r2", type=float, default=0.5, help="gate: smallest in-sample R2")
    max_holdout_mape = Parameter(
        "max_holdout_mape", type=float, default=0.0, help="gate: held-out MAPE (0: none)"
    )
    horizon = Parameter("horizon", type=int, default=12, help="periods of the budget plan (0: no plan)")
    budget = Parameter("budget", type=float, default=0.0, help="plan budget (0: the historical spend rate)")
    bounds = Parameter("bounds", default="", help="per-period bounds: ch=min:max,...")
    model_name = Parameter("model_name", default="mmm", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Fix the configuration, read the data (aggregating touchpoints in SQL) and validate it."""
        from stackml.mmm.pipeline import MMMConfig, check_frame, load_frame, parse_bounds
        from stackml.warehouse import connect

        self.config = MMMConfig(
            channels=_names(self.channels), target=self.target, date_column=self.date_column,
            controls=_names(self.controls), freq=self.freq, adstock=self.adstock, saturation=self.saturation,
            target_accept=self.target_accept, draws=self.draws, tune=self.tune, chains=self.chains,
            random_state=self.seed, lift_tests=self.lift_tests or None, holdout=self.holdout,
            max_divergences=self.max_divergences, max_rhat=self.max_rhat, min_ess=self.min_ess, min_r2=self.min_r2,
            max_holdout_mape=self.max_holdout_mape or None, horizon=self.horizon, budget=self.budget or None,
            bounds=parse_bounds(self.bounds),
        )  # fmt: skip
        if self.table:
            with connect() as wh:
                self.frame = load_frame(
                    self.config, table=self.table, controls_table=self.controls_table or None, warehouse=wh
                )
        else:
            self.frame = load_frame(self.config, data=self.data)
        check_frame(self.frame, self.config)
        self.next(self.fit)

    @step
    def fit(self):
        """Sample the posterior, then refit without the last periods to measure the held-out error."""
        import time

        from stackml.mmm.pipeline import fit_model, holdout_error

        started = time.perf_counter()
        self.model = fit_model(self.frame, self.config)
        fitted = time.perf_counter()
        self.holdout_result = holdout_error(self.model, self.config)
        self.seconds = {"fit": fitted - started, "holdout": time.perf_counter() - fitted}
        self.next(self.diagnose)

    @step
    def diagnose(self):
        """Apply the gates, and compute contributions, ROAS, marginal ROAS and response curves."""
        from stackml.mmm.pipeline import check_model, summarise

        diagnostics = check_model(self.model, self.config, self.holdout_result)
        self.result = summarise(
            self.model, diagnostics, self.config, holdout=self.holdout_result, seconds=self.seconds
        )
        self.passed = self.result.passed
        self.failed_gates = self.result.failed_gates()
        self.next(self.register)

    @step
    def register(self):
        """Track the run; register the model and promote it, only when it passed every gate."""
        from stackml import tracking
        from stackml.mmm.publish import register_mmm, run_metrics, run_params

        self.model_version, self.promotion, self.mlflow_run_id = None, None, None
        with tracking.start_run("mmm", data=self.frame, params=run_params(self.result)) as run:
            self.mlflow_run_id = run.info.run_id
            tracking.log_metrics(run_metrics(self.result))
            tracking.log_table(self.result.roas.reset_index(), "roas")
            tracking.log_table(self.result.contributions, "contributions")
            tracking.log_reference_data(self.frame, "training_data")
            if self.passed and self.register_model:
                version, self.promotion = register_mmm(self.result, self.frame, self.model_name)
                self.model_version = int(version.version)
        self.next(self.optimize)

    @step
    def optimize(self):
        """Plan the budget over the horizon with the model, if it passed its gates."""
        from stackml.mmm.pipeline import plan_budget

        result = self.result  # reassigned below: Metaflow stores what a step assigns, not what it mutates
        if self.passed:
            result.plan = plan_budget(self.model, self.config)
        self.result = result
        self.next(self.end)

    @step
    def end(self):
        """Write the report (it names any failed gate and what to try) and keep the summary for the CLI."""
        from stackml.mmm.report import mmm_report

        if self.promotion is not None:
            note = (
                f"Registered as {self.model_name} v{self.model_version}: {self.promotion.reason.rstrip('.')}."
            )
        elif not self.passed:
            note = f"Not registered: the model failed its diagnostics gates ({'; '.join(self.failed_gates)})."
        else:
            note = "Not registered (registration was switched off)."
        report = mmm_report(self.result, title=f"Media mix: {self.model_name}", run_id=self.mlflow_run_id,
                            registry_note=note)  # fmt: skip
        self.report_path = str(report.write())
        self.summary = self.result.summary()


def _names(text):
    return tuple(c.strip() for c in text.split(",") if c.strip())


if __name__ == "__main__":
    MMMFlow()
