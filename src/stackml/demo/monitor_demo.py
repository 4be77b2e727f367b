"""The monitoring step of ``stackml demo``: a customer segmentation (K-means on three simulated columns) is
registered, served by the prediction service in this process, fed an hour's worth of ordinary customers and
then customers who spend twice as much; a monitoring pass after each: the first finds nothing, the second
finds the drift and opens an alert (in the ``alerts`` table and the log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.demo import DemoContext

CUSTOMERS_TABLE = "demo_customers"
MODEL_NAME = "cluster-demo-customers"
COLUMNS = ["spend", "visits", "tenure"]
BATCH = 100  # records per request


def customers(n: int, seed: int, spend_factor: float = 1.0) -> pd.DataFrame:
    """Simulated customers: weekly spend (lognormal), visits per month (Poisson), tenure in months."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "spend": np.round(rng.lognormal(3.5, 0.5, n) * spend_factor, 2),
            "visits": rng.poisson(4, n).astype(float),
            "tenure": np.round(rng.gamma(2.0, 12.0, n), 1),
        }
    )


def monitor_step(ctx: DemoContext) -> None:
    """Register the segmentation, serve it, shift its inputs, and monitor before and after."""
    import time
    from datetime import UTC, datetime

    from stackml.clustering.config import ClusterConfig
    from stackml.monitoring.config import MonitorConfig
    from stackml.monitoring.monitor import run_monitor
    from stackml.monitoring.report import monitor_report

    with ctx.warehouse() as warehouse:
        warehouse.ingest(customers(2000, seed=0), CUSTOMERS_TABLE, if_exists="replace")
    config = ClusterConfig(columns=COLUMNS, algorithm="kmeans", k=4, n_boot=5, fast=True)
    ctx.run_pipeline("cluster", config, CUSTOMERS_TABLE, MODEL_NAME)
    ctx.say("Serving the segmentation; sending 1,000 ordinary customers, then 1,000 who spend twice as much")

    for label, factor, seed in (("ordinary", 1.0, 1), ("spending twice as much", 2.0, 2)):
        started = time.time()
        _serve(ctx, customers(1000, seed=seed, spend_factor=factor))
        now = time.time()
        window = f"{now - started + 0.5:.1f}s"
        config = MonitorConfig(
            model=MODEL_NAME, since=window, until=datetime.fromtimestamp(now, UTC).isoformat()
        )
        result = run_monitor(config, settings=ctx.settings)
        summary = result.summary()
        drifted = [c for c, d in summary["drift"].items() if d["drifted"]]
        opened = [e["alert"]["rule"] for e in summary["alerts"] if e["action"] == "opened"]
        ctx.say(
            f"Monitoring the {label} customers: drifted columns {drifted or 'none'}; "
            f"alerts opened {opened or 'none'}"
        )
        ctx.reports.append(monitor_report(result).write(ctx.settings.reports_dir))
        time.sleep(1.1)  # the next window starts after this one's last row


def _serve(ctx: DemoContext, frame: pd.DataFrame) -> None:
    """Send ``frame`` to the prediction service, in process; it logs every prediction and drains the log
    into the warehouse when it stops."""
    from fastapi.testclient import TestClient

    from stackml.serving import create_app

    app = create_app(ctx.settings, models=[MODEL_NAME], reload_interval_s=0)
    with TestClient(app) as client:
        for start in range(0, len(frame), BATCH):
            records = frame.iloc[start : start + BATCH].to_dict("records")
            client.post(f"/v1/models/{MODEL_NAME}/predict", json={"records": records}).raise_for_status()
