"""The metrics of earlier monitoring passes, kept in the warehouse: what ``outside_band`` rules compare a new
value with (mean +- k sd of the earlier windows), and what the report draws as timelines.

One row per pass and metric in ``monitor_metrics (subject, metric, value, window_start, window_end,
recorded_at)``; a pass appends its rows in one load.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from stackml.warehouse.identifiers import quote_table

if TYPE_CHECKING:
    from stackml.monitoring.sources import Window
    from stackml.warehouse import Warehouse

__all__ = ["MetricHistory", "HISTORY_TABLE"]

HISTORY_TABLE = "monitor_metrics"
RECENT_PASSES = 30  # earlier values a band is computed from


class MetricHistory:
    """Read and append the metric values of monitoring passes."""

    def __init__(self, warehouse: Warehouse, table: str = HISTORY_TABLE) -> None:
        self.warehouse = warehouse
        self.table = table

    def frame(self, subject: str) -> pd.DataFrame:
        """Every recorded value of ``subject``, oldest first (empty before the first pass)."""
        columns = ["subject", "metric", "value", "window_start", "window_end", "recorded_at"]
        if not self.warehouse.has_table(self.table):
            return pd.DataFrame(columns=columns)
        return self.warehouse.query(
            f"SELECT * FROM {quote_table(self.table)} WHERE subject = ? ORDER BY recorded_at, metric",
            [subject],
        )

    def recent(self, subject: str, passes: int = RECENT_PASSES) -> dict[str, list[float]]:
        """The last ``passes`` values of each metric of ``subject``, oldest first."""
        frame = self.frame(subject)
        return {
            metric: group["value"].astype(float).tail(passes).tolist()
            for metric, group in frame.groupby("metric", sort=True)
        }

    def record(self, subject: str, metrics: dict[str, float], window: Window | None = None) -> None:
        """Append this pass's values."""
        if not metrics:
            return
        now = datetime.now(UTC)
        rows = pd.DataFrame(
            {
                "subject": subject,
                "metric": list(metrics),
                "value": [float(v) for v in metrics.values()],
                "window_start": pd.Timestamp(window.start if window else now),
                "window_end": pd.Timestamp(window.end if window else now),
                "recorded_at": pd.Timestamp(now),
            }
        )
        self.warehouse.ingest(rows, self.table, if_exists="append")
