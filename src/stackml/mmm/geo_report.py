"""The geo part of a media-mix report: ROAS per geo ranked without a map, and small multiples of the geos.

:func:`stackml.mmm.report.mmm_report` adds it when the run fitted a geo panel; everything else in that report
is national (sums over geos).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.mmm.amounts import format_amount

if TYPE_CHECKING:
    from stackml.mmm.geo_pipeline import GeoMMMResult
    from stackml.reports import Report

__all__ = ["add_geo_section"]

SMALL_MULTIPLES_COLUMNS = 3


def add_geo_section(report: Report, result: GeoMMMResult, pct: str) -> None:
    model = result.model
    report.add_heading("Geos")
    spread = result.geo_spread
    widest = spread["mean"].idxmax()
    report.add_paragraph(
        f"{len(model.geos_)} geos fitted in one hierarchical model: each geo's ROAS is pulled toward the "
        "national ROAS, the more so the less data the geo has. How far geos differ, as the spread of "
        f"log-ROAS across geos: from {spread['mean'].min():.2f} to {spread['mean'].max():.2f} "
        f"(widest: {widest}); near 0 the geos share one return and small geos borrow it."
    )
    report.add_table(
        _ranking(result),
        caption=f"ROAS per geo and channel with {pct} HDIs, best first within each channel; geos that "
        "never spent on a channel are left out of its ranking",
        float_format=format_amount,
    )
    report.add_figure(
        _small_multiples(result),
        caption="Each geo: observed target (dots) and the model's expected target (line) with its "
        f"{pct} interval",
    )


def _ranking(result: GeoMMMResult) -> pd.DataFrame:
    rows = result.geo_roas.dropna(subset=["mean"]).copy()
    rows["rank"] = rows.groupby("channel")["mean"].rank(ascending=False, method="first").astype(int)
    rows = rows.sort_values(["channel", "rank"])
    return pd.DataFrame(
        {
            "channel": rows["channel"],
            "rank": rows["rank"],
            "geo": rows["geo"],
            "spend": rows["spend"],
            "ROAS": rows["mean"],
            "ROAS low": rows["hdi_low"],
            "ROAS high": rows["hdi_high"],
            "identified": rows["identified"].map({True: "yes", False: "no"}),
        }
    ).reset_index(drop=True)


def _small_multiples(result: GeoMMMResult, prob: float = 0.94) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from stackml.mmm._posterior import hdi

    views = result.model.geo_models_
    n_cols = min(SMALL_MULTIPLES_COLUMNS, len(views))
    n_rows = int(np.ceil(len(views) / n_cols))
    figure = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=list(views), shared_xaxes=True)
    for i, view in enumerate(views.values()):
        d = view.design_
        expected = view.posterior_.expected(d.dates, d.spend, d.control_values)
        low, high = hdi(expected, prob)
        row, col = i // n_cols + 1, i % n_cols + 1
        first = i == 0
        band = {"mode": "lines", "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"}
        figure.add_trace(go.Scatter(x=d.dates, y=high, **band), row=row, col=col)
        figure.add_trace(
            go.Scatter(x=d.dates, y=low, fill="tonexty", fillcolor="rgba(37,99,235,0.2)", **band),
            row=row,
            col=col,
        )
        figure.add_trace(
            go.Scatter(
                x=d.dates,
                y=expected.mean(axis=0),
                mode="lines",
                line={"color": "#2563eb", "width": 1.2},
                name="expected",
                showlegend=first,
            ),
            row=row,
            col=col,
        )
        figure.add_trace(
            go.Scatter(
                x=d.dates,
                y=d.target,
                mode="markers",
                marker={"color": "#111827", "size": 3},
                name="observed",
                showlegend=first,
            ),
            row=row,
            col=col,
        )
    figure.update_layout(height=220 * n_rows + 60, hovermode="x unified")
    return figure
