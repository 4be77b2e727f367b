"""What every text model kind does: learn from integer-coded labels, return class probabilities.

The front door (:class:`stackml.nlp.TextClassifier`) owns the labels, the validation split and the checks;
a model kind sees clean texts, labels ``0..n_classes-1`` and per-class weights against imbalance.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["Fitted", "TextModel", "class_weights"]


def class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_classes * count)`` per class (scikit-learn's "balanced"): a rare class weighs as much in
    the loss as a common one."""
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    return len(codes) / (n_classes * np.maximum(counts, 1.0))


@dataclass
class Fitted:
    """What a fit learnt beside the model: one row per epoch (or one for a closed-form fit), texts cut to
    the model's window, and seconds spent."""

    history: list[dict[str, float]] = field(default_factory=list)
    truncated: int = 0
    seconds: float = 0.0


class TextModel(abc.ABC):
    """A text classifier on integer-coded labels."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def fit(
        self,
        texts: list[str],
        codes: np.ndarray,
        n_classes: int,
        *,
        validation: tuple[list[str], np.ndarray] | None = None,
        progress: Any = None,
    ) -> Fitted:
        """Learn from ``texts`` labelled ``codes``; ``validation`` may steer early stopping;
        ``progress(epoch, row)`` is called after each epoch of an iterative fit."""

    @abc.abstractmethod
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities ``(n_texts, n_classes)``; each row sums to one."""

    def params(self) -> dict[str, Any]:
        """The settings that define the model (tracked with the run)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}
