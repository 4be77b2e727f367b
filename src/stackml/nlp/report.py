"""The NLP report: the models compared, per-class scores, the most confused classes, misclassified examples,
learning curves, the search history and the latency of each served variant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.reports import Report

# The result imports this module for its per-class table, so its type is spelled Any here (no import cycle).
NLPResult = Any

__all__ = ["confused_pairs", "nlp_report", "per_class_table"]

MOST_CONFUSED = 10  # classes in the confusion matrix
MISCLASSIFIED_SHOWN = 20


def _scored(result: NLPResult) -> tuple[str, list[str], list[str]]:
    """Where the chosen model is judged: the test set when there is one, else the validation split."""
    if result.test is not None:
        return "test set", result.test["text"].tolist(), result.test["label"].astype(str).tolist()
    return "validation split", result.validation_texts, result.validation_labels


def _predictions(result: NLPResult) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    where, texts, labels = _scored(result)
    proba = result.chosen.predict_proba(texts) if texts else np.zeros((0, len(result.chosen.classes_)))
    return where, texts, np.asarray(labels, dtype=object), proba


def per_class_table(result: NLPResult) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class for the chosen model (test set, else validation)."""
    from sklearn.metrics import precision_recall_fscore_support

    _, _, labels, proba = _predictions(result)
    classes = result.chosen.classes_
    predicted = classes[proba.argmax(axis=1)] if len(labels) else labels
    p, r, f, n = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    table = pd.DataFrame({"class": classes, "precision": p, "recall": r, "f1": f, "support": n})
    return table.sort_values(["f1", "class"]).reset_index(drop=True)


def confused_pairs(labels: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """``true, predicted, count`` of every kind of mistake, most frequent first."""
    wrong = labels != predicted
    pairs = pd.DataFrame({"true": labels[wrong], "predicted": predicted[wrong]})
    counts = pairs.value_counts().rename("count").reset_index()
    return counts.sort_values(
        ["count", "true", "predicted"], ascending=[False, True, True], ignore_index=True
    )


def nlp_report(
    result: NLPResult,
    *,
    title: str = "Text classification",
    run_id: str | None = None,
    registry_note: str | None = None,
) -> Report:
    """Build the report of one NLP run (nothing is written; call ``.write()``)."""
    from stackml.reports import Report

    where, texts, labels, proba = _predictions(result)
    classes = result.chosen.classes_
    predicted = classes[proba.argmax(axis=1)] if len(labels) else labels
    report = Report(
        title=title, narrative=_narrative(result, where, registry_note), pipeline="nlp", run_id=run_id
    )
    best = result.chosen.validation_scores_
    cards = {
        "texts": result.n_train,
        "classes": len(classes),
        "chosen": result.best,
        "validation accuracy": f"{best['accuracy']:.1%}",
        "validation macro-F1": f"{best['macro_f1']:.1%}",
    }
    if result.test_scores is not None:
        cards["test accuracy"] = f"{result.test_scores[result.best]['accuracy']:.1%}"
    served = result.latency.get(result.serving)
    if served:
        cards[f"p99 latency ({result.serving})"] = f"{served['p99_ms']:.1f} ms"
    report.add_metrics(cards)

    report.add_heading("Models compared")
    report.add_table(_models_table(result), caption="Every kind trained, chosen on validation macro-F1")

    report.add_heading(f"Per class ({where})")
    report.add_table(
        per_class_table(result),
        caption=f"The chosen model's scores per class, worst F1 first ({where})",
        max_rows=40,
    )
    pairs = confused_pairs(labels, predicted)
    if len(pairs):
        report.add_figure(
            _confusion_figure(labels, predicted, pairs),
            caption=f"Confusion matrix of the {MOST_CONFUSED} classes most involved in mistakes ({where}): "
            "rows "
            "are the true class, columns the predicted one",
        )
        wrong = np.flatnonzero(labels != predicted)[:MISCLASSIFIED_SHOWN]
        examples = pd.DataFrame(
            {
                "text": [texts[i] for i in wrong],
                "true": labels[wrong],
                "predicted": predicted[wrong],
                "probability": proba[wrong].max(axis=1),
            }
        )
        report.add_table(examples, caption=f"Misclassified examples ({where}, the first {len(wrong)})")
    else:
        report.add_paragraph(f"No mistakes on the {where}.")

    curves = {k: pd.DataFrame(c.history_) for k, c in result.classifiers.items() if len(c.history_) > 1}
    if curves:
        report.add_heading("Learning curves")
        report.add_figure(_curves_figure(curves), caption="Loss and validation accuracy per epoch")
    if result.searches:
        report.add_heading("Hyper-parameter search")
        for kind, history in result.searches.items():
            report.add_table(
                history, caption=f"Optuna trials of {kind} (validation macro-F1, higher is better)"
            )
    if result.latency:
        report.add_heading("Inference speed")
        table = pd.DataFrame(result.latency).T.rename_axis("variant").reset_index()
        report.add_table(
            table,
            caption="Single-text latency (p50, p99) and batch throughput of each variant on this machine, "
            f"and "
            f"its validation accuracy; served: {result.serving}",
        )
    return report


def _models_table(result: NLPResult) -> pd.DataFrame:
    rows = []
    for kind, clf in result.classifiers.items():
        row = {
            "model": kind,
            "chosen": "yes" if kind == result.best else "",
            "val accuracy": clf.validation_scores_["accuracy"],
            "val macro-F1": clf.validation_scores_["macro_f1"],
        }
        if result.test_scores is not None:
            row |= {
                "test accuracy": result.test_scores[kind]["accuracy"],
                "test macro-F1": result.test_scores[kind]["macro_f1"],
            }
        row |= {"fit s": clf.fit_seconds_, "epochs": len(clf.history_), "texts cut": clf.truncated_}
        rows.append(row)
    return pd.DataFrame(rows)


def _narrative(result: NLPResult, where: str, registry_note: str | None) -> str:
    cfg = result.config
    best = result.chosen.validation_scores_
    parts = [
        f"{result.n_train} training texts in {len(result.chosen.classes_)} classes; "
        f"{cfg.validation_share:.0%} "
        f"of each class held out to validate on. Trained: {', '.join(result.classifiers)}. The chosen model, "
        f"{result.best}, scored {best['accuracy']:.1%} accuracy and {best['macro_f1']:.1%} macro-F1 on "
        "validation."
    ]
    if result.test_scores is not None:
        test = result.test_scores[result.best]
        parts.append(
            "On the test set, which took no part in the choice, it scored "
            f"{test['accuracy']:.1%} accuracy and "
            f"{test['macro_f1']:.1%} macro-F1."
        )
    cut = {k: c.truncated_ for k, c in result.classifiers.items() if c.truncated_}
    if cut:
        listed = ", ".join(f"{n} for {k}" for k, n in cut.items())
        parts.append(f"Texts longer than the model's window of {cfg.max_length} tokens were cut: {listed}.")
    if result.serving == "onnx-int8":
        parts.append(
            "It is served as an int8 ONNX model, whose validation accuracy stays within "
            f"{cfg.max_int8_loss:.1%} of the full-precision model's."
        )
    text = " ".join(parts)
    return f"{text}\n\n{registry_note}" if registry_note else text


def _confusion_figure(labels: np.ndarray, predicted: np.ndarray, pairs: pd.DataFrame):
    import plotly.graph_objects as go

    involvement = (
        pd.concat([pairs.groupby("true")["count"].sum(), pairs.groupby("predicted")["count"].sum()])
        .groupby(level=0)
        .sum()
    )
    top = involvement.sort_values(ascending=False).index[:MOST_CONFUSED].tolist()
    matrix = pd.crosstab(pd.Series(labels, name="true"), pd.Series(predicted, name="predicted"))
    matrix = matrix.reindex(index=top, columns=top, fill_value=0)
    figure = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=top, y=top, colorscale="Blues", hoverongaps=False))
    figure.update_layout(xaxis_title="predicted", yaxis_title="true", height=480, yaxis_autorange="reversed")
    return figure


def _curves_figure(curves: dict[str, pd.DataFrame]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation accuracy"))
    for kind, history in curves.items():
        for column, dash in (("train_loss", "solid"), ("val_loss", "dot")):
            if column in history:
                figure.add_trace(
                    go.Scatter(
                        x=history["epoch"], y=history[column], name=f"{kind} {column}", line={"dash": dash}
                    ),
                    row=1,
                    col=1,
                )
        if "val_accuracy" in history:
            figure.add_trace(
                go.Scatter(x=history["epoch"], y=history["val_accuracy"], name=f"{kind} val_accuracy"),
                row=1,
                col=2,
            )
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=380)
    return figure
