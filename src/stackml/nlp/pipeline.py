"""The NLP pipeline as plain functions: check, load, train (with an optional search), choose, speed up,
summarise. ``NLPFlow`` (Metaflow) and ``stackml nlp train`` call these in order; a notebook can too. Nothing
here knows about Metaflow, MLflow or the CLI.

The choice between model kinds is made on the validation split taken from the training data (macro-F1, so
rare classes count); a ``--test`` file is scored once, after the choice, and never steers it.

Example:
    >>> from stackml.nlp.pipeline import NLPConfig, run_pipeline
    >>> result = run_pipeline(frame, NLPConfig(models="tfidf"))  # doctest: +SKIP
    >>> result.best, result.validation[result.best]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml.checks import missing_columns_problem
from stackml.errors import InputError, raise_if_problems
from stackml.nlp.config import MODEL_KINDS, NLPConfig
from stackml.nlp.data import check_labels, clean_texts, unseen_labels
from stackml.nlp.result import NLPResult
from stackml.pipelines import Source

if TYPE_CHECKING:
    from stackml.nlp.classifier import TextClassifier
    from stackml.warehouse import Warehouse

__all__ = [
    "NLPConfig",
    "NLPResult",
    "check_source",
    "choose",
    "load",
    "load_test",
    "run_pipeline",
    "speed_up",
    "summarise",
    "train",
    "train_progress",
]

Progress = Callable[[str, int, dict], None]  # (model kind, epoch or trial, row)
LATENCY_TEXTS = 50  # validation texts the single-text latency is measured on


# -- the source ----------------------------------------------------------------------------------------------
def check_source(config: NLPConfig, source: Source, warehouse: Warehouse | None = None) -> None:
    """The text and label columns exist in the source (and in the test file, if any)."""
    problems = [
        p
        for p in [
            missing_columns_problem(source.columns(warehouse), [config.text_column, config.label_column])
        ]
        if p
    ]
    if config.test:
        test_columns = Source.of(config.test).columns()
        missing = missing_columns_problem(test_columns, [config.text_column, config.label_column])
        if missing:
            problems.append(f"the test file: {missing}")
    raise_if_problems(
        problems,
        what=source.describe(),
        hint="Name the columns with --text-column and --label-column.",
    )


def _frame(raw: pd.DataFrame, config: NLPConfig, what: str) -> pd.DataFrame:
    texts = clean_texts(raw[config.text_column].tolist(), what=what)
    return pd.DataFrame({"text": texts, "label": raw[config.label_column].tolist()})


def load(config: NLPConfig, source: Source, warehouse: Warehouse | None = None) -> pd.DataFrame:
    """Step 1: the training texts and labels as ``text, label``, every bad row named."""
    check_source(config, source, warehouse)
    frame = _frame(source.read(warehouse), config, "the training texts")
    labels = check_labels(frame["text"].tolist(), frame["label"].tolist())
    return frame.assign(label=labels)


def load_test(config: NLPConfig, train: pd.DataFrame) -> pd.DataFrame | None:
    """The test file as ``text, label`` (None without one); labels the training data never had are refused."""
    if not config.test:
        return None
    frame = _frame(Source.of(config.test).read(), config, "the test texts")
    frame["label"] = frame["label"].astype(str)
    unseen = unseen_labels(frame["label"], sorted(set(train["label"])))
    if unseen:
        listed = ", ".join(f"{k!r} ({n})" for k, n in list(unseen.items())[:5])
        raise InputError(
            f"The test file has {len(unseen)} label(s) the training data does not: {listed}.",
            hint="A model cannot predict a class it never saw: add training examples of those labels, or "
            "drop those rows from the test file.",
        )
    return frame


# -- training ------------------------------------------------------------------------------------------------
def kind_params(kind: str, config: NLPConfig) -> dict[str, Any]:
    """The configured settings each kind takes (the rest keep the kind's defaults)."""
    if kind == "minilm":
        return {"epochs": config.epochs, "max_length": config.max_length, "max_minutes": config.max_minutes}
    if kind == "embed-linear":
        return {"max_length": config.max_length}
    return {}


def train(
    frame: pd.DataFrame, config: NLPConfig, *, progress: Progress | None = None
) -> tuple[dict[str, TextClassifier], dict[str, pd.DataFrame]]:
    """Step 2: each configured kind, searched with Optuna when it is in ``config.searched``.

    Returns:
        ``(classifiers, searches)``: the fitted classifier of each kind, and the search history of each
        searched kind.
    """
    from stackml.nlp.classifier import TextClassifier

    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    classifiers: dict[str, TextClassifier] = {}
    searches: dict[str, pd.DataFrame] = {}
    for kind in sorted(config.models, key=MODEL_KINDS.index):  # cheapest first
        report = None if progress is None else (lambda step, row, kind=kind: progress(kind, step, row))
        if config.trials and kind in config.searched:
            from stackml.nlp.search import search

            found = search(
                kind,
                texts,
                labels,
                trials=config.trials,
                storage=config.storage,
                seed=config.random_state,
                fixed=kind_params(kind, config),
                validation_share=config.validation_share,
                progress=report,
            )
            searches[kind] = found.history
            clf = found.best_classifier
            if clf is None:  # the best trial came from an earlier run of the study: refit its settings
                clf = TextClassifier(
                    kind,
                    validation_share=config.validation_share,
                    random_state=config.random_state,
                    **kind_params(kind, config),
                    **found.best_params,
                ).fit(texts, labels)
        else:
            clf = TextClassifier(
                kind,
                validation_share=config.validation_share,
                random_state=config.random_state,
                **kind_params(kind, config),
            ).fit(texts, labels, progress=report)
        classifiers[kind] = clf
    return classifiers, searches


def train_progress(config: NLPConfig, emit: Callable[[str, int, int, str], None]) -> Progress:
    """A ``progress`` for :func:`train` that counts each kind's trials (a searched kind) or epochs and calls
    ``emit(label, done, total, detail)``, e.g. ``("minilm epochs", 3, 10, "validation accuracy 0.912")``; the
    flow passes :func:`stackml.flows.step_progress`, which the CLI draws as a bar."""
    done: dict[str, int] = {}

    def report(kind: str, _step: int, row: dict) -> None:
        done[kind] = done.get(kind, 0) + 1
        if config.trials and kind in config.searched:
            best = row.get("best_value")
            detail = f"best {best:.4f}" if isinstance(best, float) and math.isfinite(best) else ""
            emit(f"{kind} trials", done[kind], config.trials, detail)
            return
        accuracy = row.get("val_accuracy")
        detail = f"validation accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
        emit(f"{kind} epochs", done[kind], config.epochs if kind == "minilm" else 1, detail)

    return report


def choose(classifiers: dict[str, TextClassifier]) -> str:
    """The kind with the best validation macro-F1; on a tie the cheaper kind."""
    return max(
        sorted(classifiers, key=MODEL_KINDS.index),
        key=lambda k: (classifiers[k].validation_scores_["macro_f1"], -MODEL_KINDS.index(k)),
    )


def validation_texts(frame: pd.DataFrame, classifier: TextClassifier) -> tuple[list[str], list[str]]:
    """The validation texts and labels ``classifier`` held out of ``frame`` (its training input)."""
    rows = classifier.validation_rows_
    return frame["text"].iloc[rows].tolist(), frame["label"].iloc[rows].astype(str).tolist()


# -- fast inference ------------------------------------------------------------------------------------------
def speed_up(
    best: TextClassifier, frame: pd.DataFrame, config: NLPConfig, *, transformer: TextClassifier | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, float]], str]:
    """Step 3: ONNX fp32 and int8 copies of a fine-tuned transformer, and every variant's latency.

    Args:
        best: the chosen classifier.
        frame: its training input (the validation texts are taken from it).
        config: ``quantize`` and ``max_int8_loss`` apply.
        transformer: a fine-tuned ``minilm`` that was trained but not chosen: its variants are measured too
            (``minilm``, ``minilm-onnx-fp32``, ``minilm-onnx-int8``), for the report, and not served.

    Returns:
        ``(predictors, latency, serving)``: the predictors by variant (``model``, the classifier itself,
        always; ``onnx-fp32`` and ``onnx-int8`` for a chosen transformer with ``config.quantize``), each
        measured variant's single-text p50/p99 latency, throughput and validation accuracy, and the variant to
        serve: int8 when its validation accuracy is within ``config.max_int8_loss`` of the fp32 model's, else
        the model itself.
    """
    texts, labels = validation_texts(frame, best)
    predictors: dict[str, Any] = {"model": best}
    if best.kind == "minilm" and config.quantize:
        predictors |= _onnx_variants(best)
    measured = _measure(predictors, best.classes_, texts, labels)
    if transformer is not None and best.kind != "minilm" and config.quantize:
        others = {"minilm": transformer} | {f"minilm-{k}": v for k, v in _onnx_variants(transformer).items()}
        measured |= _measure(others, transformer.classes_, *validation_texts(frame, transformer))
    serving = "model"
    int8 = measured.get("onnx-int8")
    if int8 is not None and int8["val_accuracy"] >= measured["model"]["val_accuracy"] - config.max_int8_loss:
        serving = "onnx-int8"
    return predictors, measured, serving


def _onnx_variants(classifier: TextClassifier) -> dict[str, Any]:
    """``onnx-fp32`` and ``onnx-int8`` copies of a fine-tuned transformer (their bytes and tokenizer travel
    with the objects, not the temporary folder)."""
    from stackml.nlp.fast import OnnxTextModel, export_onnx

    with tempfile.TemporaryDirectory(prefix="stackml-onnx-") as folder:
        export_onnx(classifier.model_, Path(folder), quantize=True)
        return {
            f"onnx-{v}": OnnxTextModel(folder, v, n_classes=len(classifier.classes_))
            for v in ("fp32", "int8")
        }


def _measure(
    predictors: dict[str, Any], classes: Any, texts: list[str], labels: list[str]
) -> dict[str, dict[str, float]]:
    """Each predictor's single-text latency on the first validation texts, and its validation accuracy."""
    from stackml.nlp.fast import latency

    truth = pd.Series(labels).to_numpy()
    measured = {}
    for name, predictor in predictors.items():
        accuracy = float((classes[predictor.predict_proba(texts).argmax(axis=1)] == truth).mean())
        measured[name] = {**latency(predictor.predict_proba, texts[:LATENCY_TEXTS]), "val_accuracy": accuracy}
    return measured


# -- the result ----------------------------------------------------------------------------------------------
def summarise(
    classifiers: dict[str, TextClassifier],
    searches: dict[str, pd.DataFrame],
    frame: pd.DataFrame,
    config: NLPConfig,
    *,
    test: pd.DataFrame | None = None,
    speed: tuple[dict[str, Any], dict[str, dict[str, float]], str] | None = None,
    seconds: dict[str, float] | None = None,
) -> NLPResult:
    """Score every kind on the test set (if any, after the choice) and gather what the report needs."""
    best = choose(classifiers)
    test_scores = None
    if test is not None:
        test_scores = {
            k: c.evaluate(test["text"].tolist(), test["label"].tolist()) for k, c in classifiers.items()
        }
    predictors, latency, serving = speed if speed is not None else ({"model": classifiers[best]}, {}, "model")
    val_texts, val_labels = validation_texts(frame, classifiers[best])
    return NLPResult(
        config=config,
        classifiers=classifiers,
        best=best,
        searches=searches,
        test_scores=test_scores,
        predictors=predictors,
        latency=latency,
        serving=serving,
        validation_texts=val_texts,
        validation_labels=val_labels,
        test=test,
        n_train=len(frame),
        seconds=dict(seconds or {}),
    )


def run_pipeline(
    frame: pd.DataFrame,
    config: NLPConfig,
    *,
    test: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> NLPResult:
    """Steps 2-4 in one process: train (and search), choose, speed up, summarise. Publishing and the report
    attach from outside, as in ``NLPFlow``."""
    started = time.perf_counter()
    classifiers, searches = train(frame, config, progress=progress)
    trained = time.perf_counter()
    speed = speed_up(classifiers[choose(classifiers)], frame, config, transformer=classifiers.get("minilm"))
    seconds = {"train": trained - started, "speed_up": time.perf_counter() - trained}
    return summarise(classifiers, searches, frame, config, test=test, speed=speed, seconds=seconds)
