"""``stackml demo``: every pipeline on bundled or simulated data, with embedded defaults and no configuration.

Each pipeline contributes one step (a plain function taking a :class:`DemoContext`); the steps run in order
and each may write a report. The demo ends by rebuilding the report index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from stackml.config import Settings
    from stackml.pipelines import PipelineConfig
    from stackml.warehouse import Warehouse

__all__ = ["run_demo", "DemoContext", "DemoResult", "DEMO_STEPS"]


@dataclass
class DemoContext:
    """What a demo step gets: settings and a console to talk to.

    Steps open the warehouse themselves, briefly: DuckDB lets one process write at a time, and flows run their
    steps in processes of their own.
    """

    settings: Settings
    console: Console | None = None
    reports: list[Path] = field(default_factory=list)

    def warehouse(self) -> Warehouse:
        from stackml.warehouse import connect

        return connect(settings=self.settings)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def run_pipeline(self, pipeline: str, config: PipelineConfig, table: str, model_name: str) -> Any:
        """Run a pipeline's flow on a warehouse table; returns the data of its ``end`` step, whose report
        joins the demo's reports."""
        from stackml.flows import run_pipeline_flow
        from stackml.pipelines import Source

        result = run_pipeline_flow(
            pipeline,
            config,
            Source.of(table=table),
            model_name=model_name,
            settings=self.settings,
            console=self.console,
            show_progress=self.console is not None,
        )
        end = result.run["end"].task.data
        self.reports.append(Path(end.report_path))
        return end


@dataclass(frozen=True)
class DemoResult:
    index_path: Path
    reports: list[Path]


def sample_step(ctx: DemoContext) -> None:
    """Load the bundled store-sales sample into the warehouse and write a short report about it."""
    from stackml.demo.sample import sample_path
    from stackml.demo.sample_report import sample_report

    with ctx.warehouse() as warehouse:
        loaded = warehouse.ingest(sample_path(), SAMPLE_TABLE, if_exists="replace")
        report = sample_report(warehouse, SAMPLE_TABLE)
    ctx.say(f"Loaded {loaded.rows:,} rows into [bold]{SAMPLE_TABLE}[/bold]")
    ctx.reports.append(report.write(ctx.settings.reports_dir))


def forecast_step(ctx: DemoContext) -> None:
    """Run ForecastFlow on the sample table: backtest, choose, register, report (two weeks ahead)."""
    from stackml.forecasting.config import ForecastConfig

    config = ForecastConfig(horizon=14, season_length=7)
    end = ctx.run_pipeline("forecast", config, SAMPLE_TABLE, "forecast-demo-store-sales")
    ctx.say(f"Chose [bold]{end.summary['best']}[/bold]; {end.published.note}")


SAMPLE_TABLE = "demo_store_sales"

from stackml.demo.attribution_demo import attribution_step  # noqa: E402  (cheap: the flow loads inside the step)
from stackml.demo.cluster_demo import cluster_step  # noqa: E402  (cheap: the flow loads inside the step)
from stackml.demo.features_demo import features_step  # noqa: E402  (cheap: the store and MLflow load inside)
from stackml.demo.mmm_demo import mmm_step  # noqa: E402  (cheap: the flow and PyMC load inside the step)
from stackml.demo.monitor_demo import monitor_step  # noqa: E402  (cheap: FastAPI and the flow load inside)
from stackml.demo.nlp_demo import nlp_step  # noqa: E402  (cheap: the flow and torch load inside the step)
from stackml.demo.stream_demo import stream_step  # noqa: E402  (cheap: redis and the worker load inside)

# Pipelines add their demo step here, in the order a reader of the report index would expect.
DEMO_STEPS: list[tuple[str, Callable[[DemoContext], Any]]] = [
    ("Sample data", sample_step),
    ("Forecasting", forecast_step),
    ("Media-mix model", mmm_step),
    ("Path attribution", attribution_step),
    ("Text classification", nlp_step),
    ("Clustering", cluster_step),
    ("Feature store", features_step),
    ("Monitoring", monitor_step),
    ("Scoring a stream", stream_step),
]


def run_demo(settings: Settings, console: Console | None = None) -> DemoResult:
    """Run every demo step against ``settings`` (created under its home) and return where the reports are."""
    from stackml.reports import build_index

    settings.ensure_home()
    ctx = DemoContext(settings=settings, console=console)
    for number, (title, step) in enumerate(DEMO_STEPS, start=1):
        ctx.say(f"[bold cyan][{number}/{len(DEMO_STEPS)}] {title}[/bold cyan]")
        step(ctx)
    index = build_index(settings.reports_dir)
    return DemoResult(index_path=index, reports=list(ctx.reports))
