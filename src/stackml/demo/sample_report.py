"""The report of the demo's sample data: what was loaded, summarised in SQL, drawn with Plotly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackml.warehouse import quote_table

if TYPE_CHECKING:
    from stackml.reports import Report
    from stackml.warehouse import Warehouse


def sample_report(warehouse: Warehouse, table: str) -> Report:
    """Per-store summary and weekly totals of a ``unique_id, ds, y`` table, computed by the warehouse."""
    import plotly.graph_objects as go

    from stackml.reports import Report

    source = quote_table(table)
    summary = warehouse.query(
        f"SELECT unique_id AS store, count(*) AS days, min(ds) AS first_day, max(ds) AS last_day, "
        f"round(avg(y), 2) AS mean_daily_sales, round(sum(y), 0) AS total_sales "
        f"FROM {source} GROUP BY unique_id ORDER BY unique_id"
    )
    weekly = warehouse.query(
        f"SELECT unique_id, date_trunc('week', ds) AS week, sum(y) AS sales FROM {source} "
        # complete weeks only: a partial week looks like a drop
        "GROUP BY 1, 2 HAVING count(*) = 7 ORDER BY 1, 2",
        dialect="duckdb",
    )
    figure = go.Figure()
    for store, rows in weekly.groupby("unique_id"):
        figure.add_trace(go.Scatter(x=rows["week"], y=rows["sales"], mode="lines", name=str(store)))
    figure.update_layout(xaxis_title="week", yaxis_title="sales", legend_title="store", height=420)

    observations = int(summary["days"].sum())
    report = Report(
        title="Sample data: daily store sales",
        narrative=(
            f"The demo loaded {observations:,} daily observations of {len(summary)} stores into the "
            f"warehouse table '{table}'. Sales follow a weekly rhythm and a yearly swing; the forecasting "
            "pipeline uses this table as its input."
        ),
        pipeline="demo",
    )
    report.add_metrics(
        {
            "stores": len(summary),
            "days per store": int(summary["days"].max()),
            "total sales": f"{summary['total_sales'].sum():,.0f}",
        }
    )
    report.add_table(summary, caption="Per-store summary, computed in SQL by the warehouse")
    report.add_figure(figure, caption="Weekly sales per store (complete weeks)")
    return report
