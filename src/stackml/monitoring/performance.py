"""Model performance once ground truth arrives: a labels table joined to the prediction log by request id.

Ground truth comes late (a chargeback confirmed, a ticket resolved, the week's sales counted): it is loaded
into a table of its own with the ``request_id`` the service answered with (and the ``row_index`` of the record
when a request held several), plus the true value. Classifiers are scored by accuracy and macro-F1,
regressors and forecasts by MAE and sMAPE, overall and per time bucket, so a slow decline shows as a
timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.monitoring.sources import LOG_TABLE, WHOLE_PREDICTION, Window, json_field, json_path, json_whole

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["Performance", "measure_performance", "PREDICTION_FIELDS"]

#: the output field compared with the truth, in order of preference, when none is named
PREDICTION_FIELDS = ("label", "prediction", "yhat", "y_hat", "forecast", "value", WHOLE_PREDICTION)


@dataclass(frozen=True)
class Performance:
    """Scores of the logged predictions that have ground truth.

    Attributes:
        kind: ``"classification"`` or ``"regression"`` (None when nothing could be scored).
        overall: accuracy and macro_f1, or mae and smape (percent), over the window.
        by_bucket: one row per time bucket: ``bucket, n`` and the same scores.
        n_labelled: logged rows with a truth.
        field: the output field compared.
        reason: None, or why nothing was scored (no labels table, no matching request ids, ...).
    """

    kind: str | None
    overall: dict[str, float] = field(default_factory=dict)
    by_bucket: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_labelled: int = 0
    field: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_labelled": self.n_labelled,
            "field": self.field,
            **{k: round(v, 6) for k, v in self.overall.items()},
            "reason": self.reason,
        }


def measure_performance(
    warehouse: Warehouse,
    model_name: str,
    *,
    labels_table: str,
    window: Window,
    label_column: str = "label",
    prediction_field: str | None = None,
    output_fields: list[str] | None = None,
    version: int | None = None,
    table: str = LOG_TABLE,
) -> Performance:
    """Join the log to ``labels_table`` (``request_id``, optional ``row_index``, ``label_column``) and score.

    Never raises for missing pieces: a missing table or column, or no joined rows, is the ``reason``.
    """
    from stackml.warehouse.identifiers import quote_column, quote_table

    if not warehouse.has_table(labels_table):
        return Performance(None, reason=f"the labels table '{labels_table}' does not exist")
    columns = warehouse.schema(labels_table)
    missing = [c for c in ("request_id", label_column) if c not in columns]
    if missing:
        return Performance(
            None, reason=f"the labels table '{labels_table}' lacks {missing} (it has {list(columns)})"
        )
    fields = output_fields or []
    chosen = prediction_field or next((f for f in PREDICTION_FIELDS if f in fields), None)
    if chosen is None or (fields and chosen not in fields):
        return Performance(
            None, reason=f"no output field to compare with the truth (the outputs have {fields or 'none'})"
        )
    predicted = (
        json_whole(warehouse, "p.outputs")
        if chosen == WHOLE_PREDICTION
        else json_field(warehouse, "p.outputs")
    )
    params: list[Any] = [] if chosen == WHOLE_PREDICTION else [json_path(warehouse, chosen)]
    join = "l.request_id = p.request_id" + (
        " AND l.row_index = p.row_index" if "row_index" in columns else ""
    )
    where = "p.model_name = ? AND p.row_index >= 0 AND p.logged_at >= ? AND p.logged_at < ?"
    params += [model_name, window.start, window.end]
    if version is not None:
        where += " AND p.model_version = ?"
        params.append(int(version))
    actual = f"l.{quote_column(label_column)}"
    rows = warehouse.query(
        f"SELECT p.logged_at AS logged_at, {predicted} AS predicted, {actual} AS actual "
        f"FROM {quote_table(table)} p JOIN {quote_table(labels_table)} l ON {join} WHERE {where}",
        params,
    )
    rows = rows[rows["actual"].notna()]
    if rows.empty:
        return Performance(
            None, field=chosen, reason="no logged prediction in the window has a truth in the labels table"
        )
    return _score(rows, chosen, _bucket_for(window.length))


def _bucket_for(length: timedelta) -> str:
    """Hourly buckets for a window of up to two days, daily beyond."""
    return "h" if length <= timedelta(days=2) else "D"


def _score(rows: pd.DataFrame, chosen: str, bucket: str) -> Performance:
    predicted_numbers = pd.to_numeric(rows["predicted"], errors="coerce")
    actual_numbers = pd.to_numeric(rows["actual"], errors="coerce")
    numeric = chosen != "label" and predicted_numbers.notna().all() and actual_numbers.notna().all()
    rows = rows.assign(bucket=pd.to_datetime(rows["logged_at"], utc=True).dt.floor(bucket))
    if numeric:
        rows = rows.assign(predicted=predicted_numbers, actual=actual_numbers)
        scorer, kind = _regression_scores, "regression"
    else:
        rows = rows.assign(predicted=rows["predicted"].astype(str), actual=rows["actual"].astype(str))
        scorer, kind = _classification_scores, "classification"
    by_bucket = pd.DataFrame(
        [{"bucket": b, "n": len(g), **scorer(g)} for b, g in rows.groupby("bucket", sort=True)]
    )
    return Performance(kind, scorer(rows), by_bucket, len(rows), chosen)


def _classification_scores(rows: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import f1_score

    truth, guess = rows["actual"].to_numpy(), rows["predicted"].to_numpy()
    return {
        "accuracy": float(np.mean(truth == guess)),
        "macro_f1": float(f1_score(truth, guess, average="macro", zero_division=0)),
    }


def _regression_scores(rows: pd.DataFrame) -> dict[str, float]:
    truth, guess = rows["actual"].to_numpy(float), rows["predicted"].to_numpy(float)
    denominator = np.abs(truth) + np.abs(guess)
    ratio = np.divide(2 * np.abs(guess - truth), denominator, out=np.zeros_like(truth), where=denominator > 0)
    return {"mae": float(np.mean(np.abs(guess - truth))), "smape": float(100 * np.mean(ratio))}
