"""The NLP pipeline's configuration: every setting of ``stackml nlp train`` with its one default.

The CLI takes its option defaults from these fields, ``NLPFlow`` receives the configuration as one JSON
Parameter, and the step functions of :mod:`stackml.nlp.pipeline` take the object itself.

Example:
    >>> from stackml.nlp.config import NLPConfig
    >>> NLPConfig(models="tfidf, minilm", epochs=3).models
    ('tfidf', 'minilm')
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["NLPConfig", "nlp_default"]

MODEL_KINDS = ("tfidf", "embed-linear", "minilm")  # the kinds of stackml.nlp.models, in cost order


class NLPConfig(PipelineConfig):
    """What to train on, which model kinds to compare, how long to train, and what to register.

    Attributes:
        text_column, label_column: the roles of the training table's columns.
        test: a labelled test file (same columns) scored once, after the choice; never used to choose.
        models: the model kinds to train and compare (on validation macro-F1).
        trials: Optuna trials for each kind in ``searched`` (0: every kind with its defaults).
        searched: the kinds whose settings are searched (cheap kinds by default: a fine-tune per trial costs
            minutes).
        storage: where Optuna keeps the study: a ``postgresql://`` URL (several workers share one study) or
            ``sqlite:///path``; default a SQLite file in the stackml home.
        epochs, max_length, max_minutes: the fine-tuned transformer's epochs (early stopping may end sooner),
            tokens per text, and wall-clock budget in minutes.
        validation_share: share of each class held out of training to validate on.
        quantize: export the fine-tuned transformer to ONNX and int8, registered as a variant, served when
            its validation accuracy is within ``max_int8_loss`` of the fp32 model's.
        top_k: labels (with probabilities) the registered model returns per text.
        random_state: seeds the split, the models and the search.
    """

    what = "the NLP configuration"
    hint = "See `stackml nlp train --help` for the options."

    text_column: str = "text"
    label_column: str = "label"
    test: str | None = None
    models: Annotated[Names, Field(min_length=1)] = ("tfidf", "minilm")
    trials: Annotated[Int, Field(ge=0, le=1000)] = 4
    searched: Names = ("tfidf", "embed-linear")
    storage: str | None = None
    epochs: Annotated[Int, Field(ge=1, le=100)] = 10
    max_length: Annotated[Int, Field(ge=8, le=512)] = 128
    max_minutes: Annotated[Float | None, Field(gt=0)] = 30.0
    validation_share: Annotated[Float, Field(gt=0, lt=0.5)] = 0.1
    quantize: bool = True
    max_int8_loss: Annotated[Float, Field(ge=0, le=1)] = 0.005
    top_k: Annotated[Int, Field(ge=1, le=20)] = 3
    random_state: Int = 0

    @field_validator("models", "searched")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in MODEL_KINDS]
        if unknown:
            raise ValueError(f"unknown model kind(s) {unknown}; the kinds are {list(MODEL_KINDS)}")
        duplicated = sorted({k for k in value if value.count(k) > 1})
        if duplicated:
            raise ValueError(f"model kind(s) {duplicated} named twice")
        return value

    @field_validator("test")
    @classmethod
    def _test_file(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"the test file {value!r} was not found")
        return str(path.resolve())  # the flow's steps may run in another folder

    @model_validator(mode="after")
    def _roles(self) -> NLPConfig:
        if self.text_column == self.label_column:
            raise ValueError(f"the text and the label column are the same column ({self.text_column!r})")
        return self

    @property
    def primary_metric(self) -> str:
        """Versions are compared on the chosen model's validation macro-F1 (every class weighs the same)."""
        return "val_macro_f1"


def nlp_default(field: str) -> Any:
    """The pipeline's default for ``field``."""
    from stackml.pipelines import default_of

    return default_of(NLPConfig, field)
