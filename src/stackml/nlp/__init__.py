"""Text classification: a TF-IDF baseline, frozen sentence embeddings, and a fine-tuned MiniLM, behind one
front door, :class:`TextClassifier` (scikit-learn's contract). Needs ``pip install 'stackml[nlp]'``.
"""

from stackml.nlp.classifier import TextClassifier, scores
from stackml.nlp.models import KINDS

__all__ = ["KINDS", "TextClassifier", "scores"]
