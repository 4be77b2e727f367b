"""The text model kinds, found by name: ``tfidf``, ``embed-linear`` and ``minilm``.

Each kind is one class in its own module; importing this package imports none of the heavy libraries
(scikit-learn, torch, transformers load when a model is fitted).
"""

from __future__ import annotations

from typing import Any

from stackml.errors import InputError
from stackml.nlp.models.base import Fitted, TextModel

__all__ = ["KINDS", "Fitted", "TextModel", "make_model"]

# name -> "module:class", imported on first use
KINDS = {
    "tfidf": "stackml.nlp.models.tfidf:TfidfModel",
    "embed-linear": "stackml.nlp.models.embed_linear:EmbedLinearModel",
    "minilm": "stackml.nlp.models.minilm:MiniLMModel",
}


def make_model(kind: str, **params: Any) -> TextModel:
    """An unfitted model of ``kind`` with ``params`` (each kind's constructor arguments)."""
    import importlib
    import inspect

    if kind not in KINDS:
        raise InputError(
            f"Unknown text model kind {kind!r}; the kinds are {sorted(KINDS)}.",
            hint="Pick one of them, e.g. TextClassifier('tfidf') or --models tfidf,minilm.",
        )
    module, name = KINDS[kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InputError(
            f"The {kind!r} model has no parameter(s) {unknown}; it takes {sorted(accepted)}.",
            hint="Check the spelling of the parameter names.",
        )
    return cls(**params)
