"""The feature store step of ``stackml demo``: simulated orders -> a feature repo -> a point-in-time correct
training set -> a churn model registered with its feature service -> (with PostgreSQL) the online store, a
prediction enriched by entity key, and a freshness alert for a feed that arrives late.

Customers order at their own rate; some stop. The label of a customer at a cutoff is whether they order again
within 21 days. The features are what the warehouse knew at the cutoff: the last order and backward-looking
window aggregations, which the point-in-time join must not take from the future.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.demo import DemoContext

ORDERS_TABLE = "demo_orders"
MODEL_NAME = "churn-demo"
SERVICE = "churn"
HORIZON = timedelta(days=21)
LATE = timedelta(days=2)  # the last two days of orders arrive late, after the first monitoring pass
REPO = """\
# The demo's feature repo: written by `stackml demo`, read by `stackml features ... --repo` (see the README).
entities: [{name: customer, join_keys: [customer_id]}]
sources:
  - {name: orders, table: demo_orders, timestamp_field: event_timestamp,
     created_timestamp_field: created_timestamp}
feature_views:
  - name: last_order
    entities: [customer]
    source: orders
    ttl: 30d
    freshness: 1d
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
  - name: history
    entities: [customer]
    source: orders
    ttl: 60d
    freshness: 1d
    features:
      - {name: orders_so_far, expr: "count(*) OVER (PARTITION BY customer_id ORDER BY event_timestamp
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"}
      - {name: avg_amount_5, expr: "avg(amount) OVER (PARTITION BY customer_id ORDER BY event_timestamp
          ROWS BETWEEN 4 PRECEDING AND CURRENT ROW)"}
services: [{name: churn, features: [last_order, history]}]
"""


def simulate_orders(customers: int, days: int, now: datetime, seed: int = 0) -> pd.DataFrame:
    """Orders of ``customers`` over the ``days`` before ``now``: each customer orders at a rate of their own
    (about weekly), a third of them stop at a random day; amounts are lognormal, larger for frequent
    buyers."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(1, customers + 1):
        rate = rng.lognormal(np.log(1 / 7), 0.6)  # orders per day
        stop = rng.uniform(0, days) if rng.random() < 1 / 3 else days
        t = rng.exponential(1 / rate)
        while t < stop:
            event = now - timedelta(days=days - t)
            amount = round(float(rng.lognormal(3.6 + 2 * rate, 0.5)), 2)
            # written a few minutes to hours after the event, as a feed would
            created = event + timedelta(minutes=float(rng.uniform(5, 240)))
            rows.append((customer, event, created, amount))
            t += rng.exponential(1 / rate)
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "created_timestamp", "amount"])
    return frame.sort_values("event_timestamp").reset_index(drop=True)


def churn_labels(orders: pd.DataFrame, cutoffs: list[datetime]) -> pd.DataFrame:
    """One entity row per customer and cutoff: ``churned`` = no order in the 21 days after it."""
    rows = []
    by_customer = orders.groupby("customer_id")["event_timestamp"]
    for customer, times in by_customer:
        values = times.to_numpy()
        for cutoff in cutoffs:
            if values[0] > np.datetime64(cutoff):
                continue  # not a customer yet
            later = ((values > np.datetime64(cutoff)) & (values <= np.datetime64(cutoff + HORIZON))).any()
            rows.append((customer, cutoff, int(not later)))
    return pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "churned"])


def numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Features as floats, every kind of missing (None, NaN, pd.NA of a nullable column) as NaN, which the
    gradient-boosted trees route on their own."""
    return frame.astype(object).where(frame.notna(), np.nan).astype(float)


def _pyfunc(classifier: Any, columns: list[str]) -> Any:
    """The classifier as an MLflow pyfunc (defined here so importing the demo does not import MLflow)."""
    import mlflow.pyfunc

    class Churn(mlflow.pyfunc.PythonModel):
        """The probability that a customer orders nothing in the next 21 days."""

        def __init__(self, classifier: Any, columns: list[str]) -> None:
            self.classifier = classifier
            self.columns = columns

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            x = numbers(model_input[self.columns])
            return pd.DataFrame({"churn_probability": self.classifier.predict_proba(x)[:, 1]})

    return Churn(classifier, columns)


def _signature(train: pd.DataFrame, columns: list[str]) -> Any:
    """Every feature optional: a customer without an order in a view's TTL has no value there, in training
    (NULL) as at serving time (null), and the model was trained with those gaps."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    def kind(column: str) -> str:
        values = train[column].dropna()
        return (
            "boolean"
            if len(values) and values.map(lambda v: isinstance(v, (bool, np.bool_))).all()
            else "double"
        )

    return ModelSignature(
        inputs=Schema([ColSpec(kind(c), c, required=False) for c in columns]),
        outputs=Schema([ColSpec("double", "churn_probability")]),
    )


def features_step(ctx: DemoContext) -> None:
    """Simulate orders, apply the repo, build a training set, train and register; then the online store."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from stackml.features import FeatureStore
    from stackml.tracking import promote, register_model

    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    orders = simulate_orders(400, 150, now)
    arrived = orders[orders["event_timestamp"] <= now - LATE]
    with ctx.warehouse() as warehouse:
        warehouse.ingest(arrived, ORDERS_TABLE, if_exists="replace")
    repo = Path(ctx.settings.home) / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "features.yaml").write_text(REPO)
    store = FeatureStore(repo, warehouse=ctx.settings.warehouse_url)
    registered = store.apply()
    ctx.say(
        f"Simulated {len(orders):,} orders of 400 customers into {ORDERS_TABLE}; applied the feature repo "
        f"{repo} (version {registered.version})"
    )

    cutoffs = [now - timedelta(days=d) for d in range(105, 20, -7)]
    labels = churn_labels(arrived, cutoffs)
    train = store.get_training_set(labels, SERVICE)
    columns = [c for c in train.columns if "__" in c]
    split = train["event_timestamp"] < now - timedelta(days=45)  # older cutoffs train, newer ones test
    classifier = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, random_state=0)
    classifier.fit(numbers(train.loc[split, columns]), train.loc[split, "churned"])
    auc = float(
        roc_auc_score(
            train.loc[~split, "churned"],
            classifier.predict_proba(numbers(train.loc[~split, columns]))[:, 1],
        )
    )
    example = train.loc[~split, columns].head(3)
    version = register_model(
        _pyfunc(classifier, columns),
        MODEL_NAME,
        input_example=example,
        signature=_signature(train, columns),
        metrics={"auc": auc},
        feature_service=SERVICE,
        settings=ctx.settings,
    )
    promote(MODEL_NAME, version.version, "auc", higher_is_better=True, settings=ctx.settings)
    ctx.say(
        f"Training set: {len(train):,} rows (customers x weekly cutoffs), features {columns}; churn model "
        f"AUC {auc:.3f} on the later cutoffs, registered as {MODEL_NAME} v{version.version}"
    )
    _online(ctx, repo, orders, train, now)


def _online(ctx: DemoContext, repo: Path, orders: pd.DataFrame, train: pd.DataFrame, now: datetime) -> None:
    """FeaturesFlow while the last two days of orders are late (a freshness alert), an enriched prediction
    by customer id, then the late orders arrive and the next run resolves the alert."""
    from stackml.errors import InputError
    from stackml.features import FeatureStore
    from stackml.features.online import online_url

    try:
        url = online_url(settings=ctx.settings)
    except InputError:
        ctx.say(
            "Skipping the online store: it lives in PostgreSQL. Set STACKML_POSTGRES_URL="
            "postgresql://user@host:5432/db and run the demo again to see materialisation, online reads, "
            "enriched predictions and freshness alerts."
        )
        return
    store = FeatureStore(repo, warehouse=ctx.settings.warehouse_url, online=url)
    store.record_reference(SERVICE, train)  # what `features training-set --service` keeps for drift checks
    summary = _run_pipeline(ctx, repo)
    ctx.say(
        f"FeaturesFlow: materialised {_entities(summary)} into the online store; the feed is two days late, "
        f"so stale views {summary['monitor']['stale_views'] or 'none'}, alerts opened {_opened(summary)}"
    )
    customers = [{"customer_id": c} for c in (1, 2, 3)]
    with store:  # closes the connection get_online_features keeps
        online = store.get_online_features(SERVICE, customers)
    scores = _predict(ctx, customers)
    for i, row in enumerate(customers):
        ctx.say(
            f"  customer {row['customer_id']}: last order {online['last_order__amount'][i]}, "
            f"{online['history__orders_so_far'][i]} orders so far -> churn probability {scores[i]:.2f} "
            "(the service read the features by id)"
        )
    # the late orders are written now: their created time says so, and the next run reads them by it
    late = orders[orders["event_timestamp"] > now - LATE].assign(
        created_timestamp=datetime.now(timezone.utc).replace(tzinfo=None)
    )
    with ctx.warehouse() as warehouse:
        warehouse.ingest(late, ORDERS_TABLE, if_exists="append")
    summary = _run_pipeline(ctx, repo)
    resolved = [e["alert"]["rule"] for e in summary["monitor"]["alerts"] if e["action"] == "resolved"]
    ctx.say(
        f"The late orders arrived: FeaturesFlow materialised {_entities(summary)}; alerts resolved "
        f"{resolved or 'none'}"
    )


def _run_pipeline(ctx: DemoContext, repo: Path) -> dict[str, Any]:
    from stackml.features.config import FeaturesRunConfig
    from stackml.flows import flow_path, run_flow

    config = FeaturesRunConfig(repo=str(repo), service=SERVICE)
    result = run_flow(
        flow_path("features"),
        {"config": config.to_json()},
        settings=ctx.settings,
        show_progress=ctx.console is not None,
    )
    return result.run["end"].task.data.summary


def _entities(summary: dict[str, Any]) -> str:
    return ", ".join(f"{m['rows']:,} customers of {m['view']}" for m in summary["materialized"])


def _opened(summary: dict[str, Any]) -> list[str] | str:
    return [e["alert"]["rule"] for e in summary["monitor"]["alerts"] if e["action"] == "opened"] or "none"


def _predict(ctx: DemoContext, customers: list[dict[str, int]]) -> list[float]:
    """Ask the prediction service, in process, with nothing but the customer ids."""
    from fastapi.testclient import TestClient

    from stackml.serving import create_app

    app = create_app(ctx.settings, models=[MODEL_NAME], reload_interval_s=0)
    with TestClient(app) as client:
        answer = client.post(f"/v1/models/{MODEL_NAME}/predict", json={"records": customers})
        answer.raise_for_status()
    return [p["churn_probability"] for p in answer.json()["predictions"]]
