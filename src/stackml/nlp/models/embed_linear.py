"""The middle ground: frozen all-MiniLM-L6-v2 sentence embeddings and a logistic regression on them.

The encoder is not trained, so a fit costs one pass over the texts plus a linear model: minutes less than a
fine-tune, and usually well above TF-IDF on short texts with little word overlap between paraphrases.
"""

from __future__ import annotations

import time

import numpy as np

from stackml._deps import require
from stackml.embeddings import minilm as encoder
from stackml.nlp.models.base import Fitted, TextModel

__all__ = ["EmbedLinearModel"]


class EmbedLinearModel(TextModel):
    """Frozen MiniLM embeddings + multinomial logistic regression with balanced class weights.

    Args:
        c: inverse regularisation strength (embeddings are unit vectors, so a large value).
        max_length: tokens per text the encoder reads.
    """

    kind = "embed-linear"

    def __init__(self, c: float = 20.0, max_length: int = encoder.DEFAULT_MAX_LENGTH) -> None:
        self.c = c
        self.max_length = max_length

    def fit(self, texts, codes, n_classes, *, validation=None, progress=None) -> Fitted:
        linear = require("sklearn.linear_model", extra="nlp")
        started = time.perf_counter()
        tokenizer = encoder.load_tokenizer()
        truncated = int((encoder.token_lengths(tokenizer, texts) > self.max_length).sum())
        x = encoder.embed(texts, max_length=self.max_length)
        self._model_ = linear.LogisticRegression(C=self.c, max_iter=3000, class_weight="balanced").fit(
            x, codes
        )
        self._n_classes = n_classes
        row = {"epoch": 1.0, "train_accuracy": float((self._model_.predict(x) == codes).mean())}
        if validation is not None:
            row["val_accuracy"] = float((self.predict_proba(validation[0]).argmax(1) == validation[1]).mean())
        if progress is not None:
            progress(1, row)
        return Fitted(history=[row], truncated=truncated, seconds=time.perf_counter() - started)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        proba = self._model_.predict_proba(encoder.embed(texts, max_length=self.max_length))
        out = np.zeros((len(texts), self._n_classes))
        out[:, self._model_.classes_] = proba
        return out
