"""The :class:`Report`: one self-contained HTML page per pipeline run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from stackml.checks import int_problem
from stackml.errors import ConfigError, InputError
from stackml.reports import _blocks
from stackml.reports._files import SIDECAR_SUFFIX, atomic_write_text, check_slug, report_stem, slugify
from stackml.reports._format import FloatFormat, float_formatter, human_time
from stackml.reports._templates import asset, plotly_js, template
from stackml.reports.index import build_index

__all__ = ["Report", "human_time"]

DEFAULT_MAX_ROWS = 500


def _text(name: str, value: Any, *, optional: bool = False, allow_empty: bool = True) -> str | None:
    """Check a text argument, naming the parameter in the error."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        want = "a non-empty string" if not allow_empty else "a string"
        raise InputError(
            f"The '{name}' of a report must be {want}, got {value!r}.",
            hint=f"Pass {name}='...' as text.",
        )
    return value


class Report:
    """A report a stakeholder can open anywhere: one HTML file with plotly.js, tables and text inline.

    Blocks appear in the order they are added. Every ``add_*`` method returns the report, so calls chain.

    Args:
        title: the page heading and the name in the index.
        narrative: a short summary shown under the header; blank lines separate paragraphs.
        pipeline: the pipeline that produced it (``"forecast"``, ``"mmm"``, ...), shown and indexed.
        run_id: the MLflow or Metaflow run it belongs to, so a reader can find the run.
        created_at: timezone-aware creation time; default now. Mostly useful in tests.

    Example:
        >>> import pandas as pd
        >>> report = Report("Weekly forecast", "Demand rises 4% next week.", pipeline="forecast")
        >>> report = report.add_metrics({"MASE": 0.82, "series": 120})
        >>> totals = pd.DataFrame({"store": ["A", "B"], "y": [10.5, 7.25]})
        >>> report = report.add_table(totals, caption="Totals")
        >>> "Weekly forecast" in report.to_html()
        True
    """

    def __init__(
        self,
        title: str,
        narrative: str = "",
        pipeline: str | None = None,
        run_id: str | None = None,
        *,
        created_at: datetime | None = None,
    ) -> None:
        self.title = _text("title", title, allow_empty=False)
        self.narrative = _text("narrative", narrative)
        self.pipeline = _text("pipeline", pipeline, optional=True)
        self.run_id = _text("run_id", run_id, optional=True)
        if created_at is None:
            created_at = datetime.now(UTC)
        elif not isinstance(created_at, datetime) or created_at.tzinfo is None:
            raise InputError(
                f"'created_at' must be a timezone-aware datetime, got {created_at!r}.",
                hint="Pass e.g. datetime.now(UTC) or leave it out.",
            )
        self.created_at = created_at.astimezone(UTC)
        self._blocks: list[str] = []
        self._n_tables = 0
        self._n_figures = 0

    def __repr__(self) -> str:
        return f"Report(title={self.title!r}, pipeline={self.pipeline!r}, blocks={len(self._blocks)})"

    def add_heading(self, text: str) -> Report:
        """Start a new section with a heading."""
        self._blocks.append(f"<h2>{escape(_text('heading', text, allow_empty=False))}</h2>")
        return self

    def add_paragraph(self, text: str) -> Report:
        """Add text; blank lines start new paragraphs. Text is shown as written, never as HTML."""
        self._blocks.append(_blocks.paragraphs(_text("paragraph", text)))
        return self

    def add_metrics(self, metrics: Mapping[str, Any], *, float_format: FloatFormat | None = None) -> Report:
        """Add key figures as cards, e.g. ``{"MAPE": 0.071, "Series": 120}``, in the order given."""
        if not isinstance(metrics, Mapping) or not metrics:
            raise InputError(
                f"add_metrics expects a non-empty mapping of label to value, got {metrics!r}.",
                hint="Pass e.g. {'MAPE': 0.071, 'Series': 120}.",
            )
        self._blocks.append(_blocks.metrics_block(metrics, float_formatter(float_format)))
        return self

    def add_table(
        self,
        df: Any,
        caption: str | None = None,
        float_format: FloatFormat | None = None,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> Report:
        """Add a pandas DataFrame as a table.

        Args:
            df: the table; a non-default index is shown as leading columns.
            caption: text under the table, after "Table N.".
            float_format: a format string (``"{:,.2f}"``, ``".1%"``) or a function of a float;
                default: one format per column, four significant digits on its largest value.
            max_rows: rows shown at most; a note says how many were left out. Reports are for reading,
                so keep tables short and put full results in the warehouse.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise InputError(
                f"add_table expects a pandas DataFrame, got {type(df).__name__}.",
                hint="Convert it first, e.g. pandas.DataFrame(rows) or series.to_frame().",
            )
        if problem := int_problem("max_rows", max_rows, low=1):
            raise InputError(f"{problem}.", hint="Pass e.g. max_rows=100.")
        fmt = None if float_format is None else float_formatter(float_format)
        self._n_tables += 1
        self._blocks.append(
            _blocks.table_block(df, self._n_tables, _text("caption", caption, optional=True), fmt, max_rows)
        )
        return self

    def add_figure(self, fig: Any, caption: str | None = None) -> Report:
        """Add a plotly figure; it is copied now, so later changes to ``fig`` do not show."""
        spec = _blocks.figure_json(fig)
        self._n_figures += 1
        self._blocks.append(
            _blocks.figure_block(spec, self._n_figures, _text("caption", caption, optional=True))
        )
        return self

    def metadata(self) -> dict[str, Any]:
        """What the index needs to list this report."""
        from stackml import __version__

        return {
            "title": self.title,
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "created_at": self.created_at.isoformat(),
            "figures": self._n_figures,
            "tables": self._n_tables,
            "stackml_version": __version__,
        }

    def to_html(self) -> str:
        """The whole page as one string: CSS, plotly.js (only when there are figures) and content."""
        from stackml import __version__

        pipeline_badge = f'<span class="badge">{escape(self.pipeline)}</span>' if self.pipeline else ""
        run_id_item = (
            f"<div><dt>Run</dt><dd><code>{escape(self.run_id)}</code></dd></div>\n" if self.run_id else ""
        )
        narrative = (
            f'<section class="narrative">{_blocks.paragraphs(self.narrative)}</section>'
            if self.narrative.strip()
            else ""
        )
        has_figures = self._n_figures > 0
        return template("report.html").substitute(
            version=escape(__version__),
            title=escape(self.title),
            css=asset("style.css"),
            plotlyjs=plotly_js() if has_figures else "",
            pipeline_badge=pipeline_badge,
            created_iso=self.created_at.isoformat(),
            created_human=human_time(self.created_at),
            run_id_item=run_id_item,
            narrative=narrative,
            body="\n".join(self._blocks),
            figures_js=asset("figures.js") if has_figures else "",
        )

    def write(self, reports_dir: Path | str | None = None, *, slug: str | None = None) -> Path:
        """Write the page and its metadata atomically, then rebuild the folder's ``index.html``.

        Args:
            reports_dir: target folder, created if missing; default ``get_settings().reports_dir``.
            slug: file-name part after the timestamp; default derived from the title.

        Returns:
            The path of the new ``<UTC timestamp>-<slug>.html`` file.
        """
        if reports_dir is None:
            from stackml.config import get_settings

            reports_dir = get_settings().reports_dir
        directory = Path(reports_dir).expanduser()
        slug = slugify(self.title) if slug is None else check_slug(slug)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the reports folder '{directory}': {exc}.",
                hint="Pass reports_dir= a writable folder, or set STACKML_REPORTS_DIR.",
            ) from exc
        stem = report_stem(directory, self.created_at, slug)
        # Page first, sidecar second: the index lists a report only once its page is complete.
        path = atomic_write_text(directory / f"{stem}.html", self.to_html())
        meta = {**self.metadata(), "file": path.name}
        atomic_write_text(directory / f"{stem}{SIDECAR_SUFFIX}", json.dumps(meta, indent=2) + "\n")
        build_index(directory)
        return path
