"""The fast baseline: word and character n-gram TF-IDF with a multinomial logistic regression.

Word uni- and bigrams carry the topic; character 2-5-grams within word boundaries carry misspellings, word
forms and short codes ("pin", "atm") that a word vocabulary misses. Sublinear term frequency keeps a repeated
word from dominating a short text. Trains in seconds on tens of thousands of texts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.nlp.models.base import Fitted, TextModel

__all__ = ["TfidfModel"]


class TfidfModel(TextModel):
    """Word (1-2) + character (2-5) n-gram TF-IDF, then logistic regression with balanced class weights.

    Args:
        c: inverse regularisation strength of the logistic regression.
        min_df: a term must occur in at least this many training texts.
        max_features: cap on each vocabulary (the most frequent terms are kept).
    """

    kind = "tfidf"

    def __init__(self, c: float = 10.0, min_df: int = 1, max_features: int | None = 200_000) -> None:
        self.c = c
        self.min_df = min_df
        self.max_features = max_features

    def _features(self) -> Any:
        sk = require("sklearn.feature_extraction.text", extra="nlp")
        pipeline = require("sklearn.pipeline", extra="nlp")
        word = sk.TfidfVectorizer(
            ngram_range=(1, 2), min_df=self.min_df, sublinear_tf=True, max_features=self.max_features
        )
        char = sk.TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            min_df=max(self.min_df, 2),
            sublinear_tf=True,
            max_features=self.max_features,
        )
        return pipeline.FeatureUnion([("word", word), ("char", char)])

    def fit(self, texts, codes, n_classes, *, validation=None, progress=None) -> Fitted:
        linear = require("sklearn.linear_model", extra="nlp")
        started = time.perf_counter()
        self._features_ = self._features()
        x = self._features_.fit_transform(texts)
        self._model_ = linear.LogisticRegression(C=self.c, max_iter=2000, class_weight="balanced")
        self._model_.fit(x, codes)
        self._n_classes = n_classes
        row = {"epoch": 1.0, "train_accuracy": float((self._model_.predict(x) == codes).mean())}
        if validation is not None:
            row["val_accuracy"] = float((self.predict_proba(validation[0]).argmax(1) == validation[1]).mean())
        if progress is not None:
            progress(1, row)
        return Fitted(history=[row], seconds=time.perf_counter() - started)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        proba = self._model_.predict_proba(self._features_.transform(texts))
        # a class absent from the training part has no column: give it probability 0
        out = np.zeros((len(texts), self._n_classes))
        out[:, self._model_.classes_] = proba
        return out
