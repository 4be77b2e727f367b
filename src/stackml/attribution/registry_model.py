"""The attribution sequence model as a registered MLflow pyfunc: a path in, its conversion probability and
each touch's credit out.

Input records: ``path`` (channels joined by ``" > "``) and, for a model trained on journeys with times,
``gaps`` (days from each touch to the journey's end, comma-separated, one per touch). Output columns:
``probability`` (calibrated) and ``credit`` (JSON: one ``{"channel", "share"}`` per touch, shares summing
to 1).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from stackml._deps import require
from stackml.attribution.paths import SEPARATOR, Paths
from stackml.errors import InputError
from stackml.pipelines import ModelToRegister

mlflow_pyfunc = require("mlflow.pyfunc", extra="tracking")

MODEL_REQUIREMENTS = ("torch", "numpy", "pandas")
PATH_COLUMN, GAPS_COLUMN = "path", "gaps"


class AttributionPyfunc(mlflow_pyfunc.PythonModel):
    """Scores paths with a fitted :class:`~stackml.attribution.neural.NeuralModel`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        hint = f'Send records like [{{"path": "search{SEPARATOR}email", "gaps": "3,0"}}].'
        if not isinstance(model_input, pd.DataFrame) or PATH_COLUMN not in model_input.columns:
            got = (
                list(model_input.columns)
                if isinstance(model_input, pd.DataFrame)
                else type(model_input).__name__
            )
            raise InputError(f"The input needs a '{PATH_COLUMN}' column (got {got}).", hint=hint)
        paths = [[p.strip() for p in str(text).split(">") if p.strip()] for text in model_input[PATH_COLUMN]]
        gaps = None
        if self.model.uses_gaps:
            if GAPS_COLUMN not in model_input.columns:
                raise InputError(
                    f"This model reads the days from each touch to the journey's end: send '{GAPS_COLUMN}'.",
                    hint=hint,
                )
            gaps = [
                [float(g) for g in str(text).split(",") if g.strip()] for text in model_input[GAPS_COLUMN]
            ]
        probabilities, shares = self.model.predict(paths, gaps)
        credit = [
            json.dumps([{"channel": c, "share": round(float(s), 6)} for c, s in zip(path, share)])
            for path, share in zip(paths, shares)
        ]
        return pd.DataFrame({"probability": probabilities.astype(float), "credit": credit})


def example_input(paths: Paths, n: int = 2) -> pd.DataFrame:
    """The first paths as the registered model takes them."""
    head = paths.frame.head(n)
    example = pd.DataFrame({PATH_COLUMN: [SEPARATOR.join(p) for p in head["path"]]})
    if paths.has_gaps:
        example[GAPS_COLUMN] = [",".join(f"{g:g}" for g in gaps) for gaps in head["gaps"]]
    return example


def model_to_register(model: Any, paths: Paths) -> ModelToRegister:
    """The pyfunc with its example and signature."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    columns = [ColSpec(DataType.string, PATH_COLUMN)]
    if model.uses_gaps:
        columns.append(ColSpec(DataType.string, GAPS_COLUMN))
    outputs = Schema([ColSpec(DataType.double, "probability"), ColSpec(DataType.string, "credit")])
    signature = ModelSignature(inputs=Schema(columns), outputs=outputs)
    return ModelToRegister(AttributionPyfunc(model), example_input(paths), signature, MODEL_REQUIREMENTS)
