"""TF-IDF + truncated SVD (latent semantic analysis): dense text vectors without a neural model.

Word unigrams and bigrams, English stop words removed, sublinear term frequency (a word said five times is
not five times the topic), then TruncatedSVD to a few dozen or hundred dimensions and unit length, so the
cosine of two rows is their dot product, as with the sentence embeddings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stackml._deps import require
from stackml.errors import InputError

__all__ = ["LSAModel", "fit_lsa", "lsa_embed", "min_df_for", "lsa_dims"]

NGRAM_RANGE = (1, 2)


def min_df_for(n_texts: int) -> int:
    """The fewest texts a term must appear in: every term counts in a small corpus (where dropping
    singletons may leave almost nothing), while in a larger one a term seen once is a typo or a name that
    only adds columns; the bar rises slowly to 5 at 10,000 texts."""
    if n_texts < 50:
        return 1
    return min(5, max(2, n_texts // 2000))


def lsa_dims(n_components: int, n_features: int, n_texts: int) -> int:
    """SVD dimensions: at most ``n_components``, and fewer than both the terms and the texts (the rank a
    truncated SVD can give)."""
    return min(n_components, n_features - 1, n_texts - 1)


def _vectorizer(min_df: int) -> Any:
    text = require("sklearn.feature_extraction.text", extra="nlp")
    return text.TfidfVectorizer(
        ngram_range=NGRAM_RANGE, sublinear_tf=True, stop_words="english", min_df=min_df, dtype=np.float32
    )


def _tfidf(texts: list[str], min_df: int) -> tuple[Any, Any]:
    """The fitted vectorizer and sparse TF-IDF matrix, or ``(None, None)`` when no term is left (the caller
    says why)."""
    vectorizer = _vectorizer(min_df)
    try:
        return vectorizer, vectorizer.fit_transform(texts)
    except ValueError:  # sklearn's "empty vocabulary" or "no terms remain", the only ValueErrors here
        return None, None


class LSAModel:
    """A fitted TF-IDF vocabulary and SVD: :meth:`transform` puts new texts in the space of the texts it was
    fitted on (a word it never saw adds nothing), so they can be compared with them."""

    def __init__(self, vectorizer: Any, svd: Any) -> None:
        self.vectorizer = vectorizer
        self.svd = svd

    @property
    def dim(self) -> int:
        return int(self.svd.n_components)

    def transform(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors ``(len(texts), dim)``, float32 (a zero row for a text with no known term)."""
        preprocessing = require("sklearn.preprocessing", extra="nlp")
        reduced = self.svd.transform(self.vectorizer.transform(list(texts)))
        return preprocessing.normalize(reduced).astype(np.float32, copy=False)


def fit_lsa(
    texts: list[str], *, n_components: int = 128, random_state: int = 0
) -> tuple[np.ndarray, LSAModel]:
    """Fit TF-IDF + SVD on ``texts``: their unit-length vectors ``(n, d)`` and the :class:`LSAModel` that maps
    new texts the same way, ``d = min(n_components, n_terms - 1, n - 1)``.

    Example:
        >>> vectors, model = fit_lsa(["card not arrived", "card arrived late", "reset my password"])
        >>> vectors.shape, model.transform(["my card"]).shape
        ((3, 2), (1, 2))
    """
    decomposition = require("sklearn.decomposition", extra="nlp")
    preprocessing = require("sklearn.preprocessing", extra="nlp")
    min_df = min_df_for(len(texts))
    vectorizer, counts = _tfidf(texts, min_df)
    if (counts is None or counts.shape[1] < 2) and min_df > 1:
        vectorizer, counts = _tfidf(texts, 1)  # the bar left too few terms: keep every term rather than fail
    n_features = 0 if counts is None else counts.shape[1]
    if n_features < 2:
        raise InputError(
            f"The texts hold {n_features} distinct word(s) once English stop words are removed; "
            "TF-IDF needs at least 2.",
            hint="Pass texts with more content words, or use method='minilm'.",
        )
    svd = decomposition.TruncatedSVD(
        n_components=lsa_dims(n_components, n_features, len(texts)), random_state=random_state
    )
    reduced = svd.fit_transform(counts)
    return preprocessing.normalize(reduced).astype(np.float32, copy=False), LSAModel(vectorizer, svd)


def lsa_embed(texts: list[str], *, n_components: int = 128, random_state: int = 0) -> np.ndarray:
    """Unit-length LSA vectors ``(n, d)``, float32, ``d = min(n_components, n_terms - 1, n - 1)``.

    A text with no term of the vocabulary (only stop words, say) gets a zero row. :func:`fit_lsa` also
    returns the fitted model, to embed new texts later.

    Args:
        texts: at least 2 texts.
        n_components: the most dimensions to keep.
        random_state: seed of the randomised SVD; the same seed gives the same vectors.

    Example:
        >>> lsa_embed(["card not arrived", "card arrived late", "reset my password"], n_components=8).shape
        (3, 2)
    """
    return fit_lsa(texts, n_components=n_components, random_state=random_state)[0]
