"""``TextClassifier``: the one front door to text classification, with scikit-learn's contract.

It owns what every model kind shares: cleaning and checking the texts and labels, encoding the labels, a
stratified validation split taken from the training data (for early stopping and for choosing between
models: a test set is never used to choose), and the validation scores. The kind itself (``tfidf``,
``embed-linear``, ``minilm``; see :mod:`stackml.nlp.models`) only learns from clean texts and integer
labels.

Example:
    >>> clf = TextClassifier("tfidf").fit(texts, labels)  # doctest: +SKIP
    >>> clf.predict(["my card has not arrived"])  # doctest: +SKIP
    array(['card_arrival'], dtype=object)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stackml.errors import InputError, NotFittedError
from stackml.nlp.data import check_labels, clean_texts, stratified_split, unseen_labels
from stackml.nlp.models import Fitted, make_model

__all__ = ["TextClassifier", "scores"]

DEFAULT_VALIDATION_SHARE = 0.1


def scores(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (every class weighs the same, so rare classes count)."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


class TextClassifier:
    """Classify texts with one model kind.

    Args:
        kind: ``"tfidf"`` (seconds to train), ``"embed-linear"`` (frozen sentence embeddings + logistic
            regression) or ``"minilm"`` (fine-tuned all-MiniLM-L6-v2).
        validation_share: share of each class held out of training to validate on (early stopping, model
            choice); 0 trains on everything and reports no validation scores.
        random_state: seeds the split and the model.
        **params: the kind's own settings (e.g. ``epochs=3`` for ``minilm``, ``c=5.0`` for ``tfidf``).

    Attributes (after ``fit``):
        classes_: the labels, sorted; columns of :meth:`predict_proba`.
        validation_scores_: ``{"accuracy", "macro_f1"}`` on the validation split (None without one).
        validation_rows_: positions of the validation texts in the training input.
        history_: one row per epoch (``train_loss``, ``val_accuracy``, ...), for learning curves.
        truncated_: training texts longer than the model's window (cut; the transformer kinds only).
        fit_seconds_: wall time of the model's fit.
    """

    def __init__(
        self,
        kind: str = "tfidf",
        *,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        random_state: int | None = 0,
        **params: Any,
    ) -> None:
        self.kind = kind
        self.validation_share = validation_share
        self.random_state = random_state
        self.params = params

    def fit(
        self,
        texts: Sequence[Any],
        labels: Sequence[Any],
        *,
        progress: Callable[[int, dict], None] | None = None,
    ) -> TextClassifier:
        """Check the input, split off the validation share, fit the model kind, score the validation split.

        Args:
            texts: the texts (str, or UTF-8 bytes).
            labels: one label per text; at least two classes, two examples each.
            progress: called as ``progress(epoch, row)`` after each epoch (the CLI draws a bar with it).
        """
        if not 0.0 <= self.validation_share < 0.5:
            raise InputError(
                f"validation_share must be in [0, 0.5); got {self.validation_share!r}.",
                hint="Use 0.1 (the default) to hold out a tenth of each class.",
            )
        texts = clean_texts(texts, what="the training texts")
        labels = check_labels(texts, labels, min_per_class=2 if self.validation_share else 1)
        self.classes_ = np.asarray(sorted(set(labels.tolist())), dtype=object)
        codes = np.searchsorted(self.classes_, labels)
        seed = 0 if self.random_state is None else self.random_state
        params = dict(self.params)
        if self.kind == "minilm":
            params.setdefault("seed", seed)
        self.model_ = make_model(self.kind, **params)
        if self.validation_share:
            train, valid = stratified_split(labels, self.validation_share, seed)
            validation = ([texts[i] for i in valid], codes[valid])
        else:
            train, valid, validation = np.arange(len(texts)), np.arange(0), None
        self.validation_rows_ = valid
        fitted: Fitted = self.model_.fit(
            [texts[i] for i in train],
            codes[train],
            len(self.classes_),
            validation=validation,
            progress=progress,
        )
        self.history_, self.truncated_, self.fit_seconds_ = fitted.history, fitted.truncated, fitted.seconds
        self.validation_scores_ = None
        if validation is not None:
            predicted = self.classes_[self.model_.predict_proba(validation[0]).argmax(axis=1)]
            self.validation_scores_ = scores(self.classes_[validation[1]], predicted)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This TextClassifier is not fitted yet.", hint="Call fit(texts, labels) before predicting."
            )

    def predict_proba(self, texts: Sequence[Any]) -> np.ndarray:
        """Probabilities ``(n_texts, n_classes)``, columns in the order of ``classes_``."""
        self._check_fitted()
        return self.model_.predict_proba(clean_texts(texts))

    def predict(self, texts: Sequence[Any]) -> np.ndarray:
        """The most probable label of each text."""
        proba = self.predict_proba(texts)
        return self.classes_[proba.argmax(axis=1)]

    def predict_top_k(self, texts: Sequence[Any], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable labels of each text, with their probabilities, best first."""
        proba = self.predict_proba(texts)
        k = max(1, min(int(k), len(self.classes_)))
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(str(self.classes_[j]), float(row[j])) for j in picks] for row, picks in zip(proba, top)]

    def evaluate(self, texts: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
        """Accuracy and macro-F1 on labelled texts (a test set), refusing labels the model never saw."""
        self._check_fitted()
        texts = clean_texts(texts, what="the test texts")
        if len(labels) != len(texts):
            raise InputError(f"{len(texts)} test texts but {len(labels)} labels; each text needs one label.")
        unseen = unseen_labels(labels, self.classes_)
        if unseen:
            listed = ", ".join(f"{k!r} ({n})" for k, n in list(unseen.items())[:5])
            raise InputError(
                f"The test set has {len(unseen)} label(s) the model was not trained on: {listed}.",
                hint="Train on data that has every label, or drop those rows from the test set; a model "
                "cannot predict a class it never saw.",
            )
        return scores([str(v) for v in labels], self.predict(texts))
