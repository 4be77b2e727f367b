"""NLPFlow: from a table of labelled texts to a chosen, quantised, registered text classifier and a report.

1. start: read the configuration, the training texts (and a test file), and check them.
2. train: train each model kind (searching the settings of the cheap ones with Optuna), validate each on the
   same held-out split, choose the best on validation macro-F1.
3. speed_up: export a chosen transformer to ONNX and int8, measure each variant's latency and validation
   accuracy, and pick the one to serve; score the test file (after the choice).
4. publish: track the run; register the served variant and the other one, promote on validation macro-F1.
5. end: write the report.

Steps 2-3 are the functions :func:`stackml.nlp.pipeline.run_pipeline` calls in the same order; this file only
wires them.
"""

from metaflow import FlowSpec, Parameter, step

from stackml._deps import guard_typing_against_metaflow

guard_typing_against_metaflow()  # tasks import torch after Metaflow


class NLPFlow(FlowSpec):
    """Train text classifiers, choose one, quantise it, register it and report."""

    config_json = Parameter("config", required=True, help="NLPConfig as JSON (NLPConfig.to_json())")
    data = Parameter("data", default="", help="labelled texts, CSV/Parquet")
    table = Parameter("table", default="", help="read the labelled texts from this warehouse table instead")
    model_name = Parameter("model_name", default="nlp", help="registered model name")
    register_model = Parameter("register", type=bool, default=True, help="register and promote the model")

    @step
    def start(self):
        """Read and check the configuration, the training texts and the test file."""
        from stackml.nlp.config import NLPConfig
        from stackml.nlp.pipeline import load, load_test
        from stackml.pipelines import Source
        from stackml.warehouse import connect

        self.config = NLPConfig.from_json(self.config_json)
        with connect() as wh:
            self.frame = load(self.config, Source.of(self.data, self.table), wh)
        self.test = load_test(self.config, self.frame)
        self.next(self.train)

    @step
    def train(self):
        """Train (and search) each model kind; each trial and epoch is reported as progress (a bar in the CLI,
        a line in the task's log)."""
        import time

        from stackml.flows import step_progress
        from stackml.nlp.pipeline import train, train_progress

        started = time.perf_counter()
        progress = train_progress(self.config, step_progress)
        self.classifiers, self.searches = train(self.frame, self.config, progress=progress)
        self.seconds = {"train": time.perf_counter() - started}
        self.next(self.speed_up)

    @step
    def speed_up(self):
        """Quantise a chosen transformer, measure each variant, score the test file, summarise."""
        import time

        from stackml.nlp.pipeline import choose, speed_up, summarise

        started = time.perf_counter()
        classifiers = self.classifiers
        best, transformer = classifiers[choose(classifiers)], classifiers.get("minilm")
        speed = speed_up(best, self.frame, self.config, transformer=transformer)
        self.seconds["speed_up"] = time.perf_counter() - started
        self.result = summarise(
            classifiers,
            self.searches,
            self.frame,
            self.config,
            test=self.test,
            speed=speed,
            seconds=self.seconds,
        )
        self.next(self.publish)

    @step
    def publish(self):
        """Track the run; register the served variant and the other one; promote on validation macro-F1."""
        from stackml.pipelines import publish

        self.published = publish(
            self.result, self.frame, model_name=self.model_name, register=self.register_model
        )
        self.next(self.end)

    @step
    def end(self):
        """Write the report and keep the summary for the CLI."""
        from stackml.nlp.report import nlp_report

        report = nlp_report(
            self.result,
            title=f"Text classification: {self.model_name}",
            run_id=self.published.run_id,
            registry_note=self.published.note,
        )
        self.report_path = str(report.write())
        self.summary = self.result.summary()


if __name__ == "__main__":
    NLPFlow()
