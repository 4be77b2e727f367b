"""``stackml demo``: every pipeline on bundled or simulated data, with embedded defaults and no configuration.

Each pipeline contributes one step (a plain function taking a :class:`DemoContext`); the steps run in order and
each may write a report. The demo ends by rebuilding the report index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from stackml.config import Settings
    from stackml.warehouse import Warehouse

__all__ = ["run_demo", "DemoContext", "DemoResult", "DEMO_STEPS"]


@dataclass
class DemoContext:
    """What a demo step gets: settings, an open warehouse and a console to talk to."""

    settings: Settings
    warehouse: Warehouse
    console: Console | None = None
    reports: list[Path] = field(default_factory=list)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)


@dataclass(frozen=True)
class DemoResult:
    index_path: Path
    reports: list[Path]


def sample_step(ctx: DemoContext) -> None:
    """Load the bundled store-sales sample into the warehouse and write a short report about it."""
    from stackml.demo.sample import sample_path
    from stackml.demo.sample_report import sample_report

    loaded = ctx.warehouse.ingest(sample_path(), "demo_store_sales", if_exists="replace")
    ctx.say(f"Loaded {loaded.rows:,} rows into [bold]demo_store_sales[/bold]")
    ctx.reports.append(sample_report(ctx.warehouse, "demo_store_sales").write(ctx.settings.reports_dir))


# Pipelines add their demo step here, in the order a reader of the report index would expect.
DEMO_STEPS: list[tuple[str, Callable[[DemoContext], Any]]] = [
    ("Sample data", sample_step),
]


def run_demo(settings: Settings, console: Console | None = None) -> DemoResult:
    """Run every demo step against ``settings`` (created under its home) and return where the reports are."""
    from stackml.reports import build_index
    from stackml.warehouse import connect

    settings.ensure_home()
    with connect(settings=settings) as warehouse:
        ctx = DemoContext(settings=settings, warehouse=warehouse, console=console)
        for number, (title, step) in enumerate(DEMO_STEPS, start=1):
            ctx.say(f"[bold cyan][{number}/{len(DEMO_STEPS)}] {title}[/bold cyan]")
            step(ctx)
    index = build_index(settings.reports_dir)
    return DemoResult(index_path=index, reports=list(ctx.reports))
