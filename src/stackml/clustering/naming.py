"""Words, examples and features that tell a reader what each cluster is.

Texts get keywords by class-based TF-IDF (c-TF-IDF, as BERTopic computes it) and the texts nearest the
cluster's centre; numeric rows get the features whose cluster mean stands furthest from the rest. The outlier
group (``-1``) is never described as a cluster.

Example:
    >>> cluster_name(["card arrive", "card", "delivery"])
    'card_arrive_delivery'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.checks import int_problem
from stackml.clustering.quality import OUTLIER, Labels, _label_vector, _rows_and_labels
from stackml.errors import raise_if_problems

__all__ = ["central_examples", "cluster_name", "ctfidf_keywords", "numeric_profile"]

_METRICS = ("cosine", "euclidean")


def ctfidf_keywords(texts: Sequence[str], labels: Labels, *, top_n: int = 8) -> dict[int, list[str]]:
    """The ``top_n`` words and bigrams of each cluster by class-based TF-IDF (BERTopic's c-TF-IDF).

    Each cluster is one class. With ``tf_{t,c}`` the count of term ``t`` in class ``c`` divided by the class's
    total count (L1-normalised, as BERTopic's ``ClassTfidfTransformer``), ``f_t`` the count of ``t`` over all
    classes and ``A`` the average number of terms per class, the score is ``tf_{t,c} * log(1 + A / f_t)``:
    frequent in the cluster, rare elsewhere. Terms are words of two or more letters and bigrams, with English
    stop words removed. Counts come from each text on its own, summed per cluster, so no bigram spans the
    end of one text and the start of the next (concatenating them would invent such pairs). The outliers'
    texts count towards ``f_t`` and ``A``, as BERTopic's ``-1`` topic does, but get no keywords of their own.

    Args:
        texts: one text per row; anything that is not a string (``None``, NaN) counts as empty.
        labels: one cluster per row; ``-1`` marks an outlier.
        top_n: the most keywords per cluster; fewer when a cluster has fewer scored terms.

    Returns:
        Keywords by cluster label, best first; ties keep alphabetical order. Every cluster is a key.

    Example:
        >>> texts = ["card arrived late", "my card has not arrived", "refund my payment", "payment refund"]
        >>> ctfidf_keywords(texts, [0, 0, 1, 1], top_n=2)
        {0: ['arrived', 'card'], 1: ['payment', 'refund']}
    """
    labels = _checked_labels(len(texts), labels, what="ctfidf_keywords", top_n=top_n)
    classes, class_index = np.unique(labels, return_inverse=True)
    keywords: dict[int, list[str]] = {int(c): [] for c in classes if c != OUTLIER}
    counts, vocabulary = _class_term_counts([t if isinstance(t, str) else "" for t in texts], class_index)
    if counts is None:
        return keywords  # nothing but stop words and one-letter tokens: no terms to rank
    scores = _ctfidf(counts)
    for row, cluster in enumerate(classes):
        if cluster != OUTLIER:
            keywords[int(cluster)] = _top_terms(scores.getrow(row), vocabulary, top_n)
    return keywords


def central_examples(
    X: Any, labels: Labels, texts: Sequence[str], *, n: int = 3, metric: str = "cosine"
) -> dict[int, list[str]]:
    """The ``n`` texts of each cluster whose rows lie nearest the cluster's centroid, nearest first.

    The centroid is the mean of the cluster's rows. ``metric="cosine"`` (the default, the measure sentence
    embeddings are built for) ranks by the angle to the centroid and so ignores vector length;
    ``"euclidean"`` ranks by straight distance. Ties keep row order.

    Args:
        X: the clustered rows (embeddings), shape ``(n_rows, d)``.
        labels: one cluster per row; ``-1`` marks an outlier, which gets no examples.
        texts: the text of each row.
        n: the most examples per cluster.
        metric: ``"cosine"`` or ``"euclidean"``.

    Returns:
        Example texts by cluster label.

    Example:
        >>> X = [[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.0, 1.0]]
        >>> central_examples(X, [0, 0, 0, 1], ["a", "b", "c", "d"], n=1)
        {0: ['b'], 1: ['d']}
    """
    X, labels = _rows_and_labels(X, labels, what="central_examples")
    problems = [int_problem("n", n, low=1)]
    if len(texts) != labels.size:
        problems.append(f"'texts' has {len(texts)} entries but 'labels' has {labels.size}")
    if metric not in _METRICS:
        problems.append(f"'metric' must be one of {list(_METRICS)}, got {metric!r}")
    raise_if_problems([p for p in problems if p], what="the central_examples call")
    texts = list(texts)  # a pandas Series would index by its labels, not by position
    examples: dict[int, list[str]] = {}
    for cluster in np.unique(labels[labels != OUTLIER]):
        rows = np.flatnonzero(labels == cluster)
        distance = _distance_to_centroid(X[rows], metric)
        nearest = rows[np.argsort(distance, kind="stable")[:n]]
        examples[int(cluster)] = [texts[i] for i in nearest]
    return examples


def numeric_profile(frame: pd.DataFrame | Any, labels: Labels, *, top_n: int = 3) -> dict[int, list[dict]]:
    """The numeric features that set each cluster apart from all the other rows, strongest first.

    The effect is the standardised mean difference (Cohen's d) of the cluster against every other row,
    outliers included: ``(mean_c - mean_rest) / s_pooled`` with ``s_pooled`` the pooled sample sd of the two
    groups, signed (positive: the cluster is higher). When both groups are constant the pooled sd is 0; the
    sd of all rows is used instead, so a feature that alone splits the cluster off still ranks first instead
    of dividing by 0. Missing values are skipped per feature; bool columns are not numeric features here.

    Args:
        frame: the numeric rows (a DataFrame, or an array whose columns become ``x0``, ``x1``, ...); columns
            that are not numeric are ignored.
        labels: one cluster per row; ``-1`` marks an outlier, which gets no profile.
        top_n: the most features per cluster.

    Returns:
        By cluster label, up to ``top_n`` dicts ``{"feature", "effect", "cluster_mean", "overall_mean"}`` in
        decreasing ``|effect|``; features with an undefined effect (no other rows, a constant feature) are
        left out.

    Example:
        >>> frame = pd.DataFrame({"spend": [1.0, 2.0, 9.0, 10.0], "age": [30.0, 40.0, 35.0, 35.0]})
        >>> [d["feature"] for d in numeric_profile(frame, [0, 0, 1, 1], top_n=1)[1]]
        ['spend']
    """
    if not isinstance(frame, pd.DataFrame):
        array = np.asarray(frame)
        frame = (
            pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])]) if array.ndim == 2 else None
        )
    labels = _checked_labels(-1 if frame is None else len(frame), labels, what="numeric_profile", top_n=top_n)
    numeric = frame.select_dtypes(include="number").astype(float)
    raise_if_problems(
        [] if numeric.shape[1] else [f"'frame' has no numeric columns (it has {list(frame.columns)})"],
        what="the numeric_profile input",
        hint="Pass the numeric features the rows were clustered on.",
    )
    overall_mean = numeric.mean()
    overall_sd = numeric.std(ddof=1)
    profile: dict[int, list[dict]] = {}
    for cluster in np.unique(labels[labels != OUTLIER]):
        inside = labels == cluster
        effect = _cohens_d(numeric[inside], numeric[~inside], overall_sd)
        ranked = effect.dropna().abs().sort_values(ascending=False, kind="stable").index[:top_n]
        cluster_mean = numeric[inside].mean()
        profile[int(cluster)] = [
            {
                "feature": str(name),
                "effect": float(effect[name]),
                "cluster_mean": float(cluster_mean[name]),
                "overall_mean": float(overall_mean[name]),
            }
            for name in ranked
        ]
    return profile


def cluster_name(keywords: Sequence[str], *, n_words: int = 3, fallback: str = "unnamed") -> str:
    """A readable label from a cluster's keywords: their first ``n_words`` distinct words joined by ``_``.

    Bigrams are split into their words and a word seen already is skipped, so ``["card arrive", "card",
    "delivery"]`` gives ``card_arrive_delivery``. Words are lower-cased and anything but letters and digits
    is dropped.

    Args:
        keywords: best first, as :func:`ctfidf_keywords` returns them.
        n_words: the most words in the name.
        fallback: the name when there is no usable keyword.

    Example:
        >>> cluster_name(["card", "arrive", "delivery", "late"])
        'card_arrive_delivery'
        >>> cluster_name([])
        'unnamed'
    """
    words: list[str] = []
    for keyword in keywords:
        for word in re.findall(r"[a-z0-9]+", str(keyword).lower()):
            if word not in words and len(words) < n_words:
                words.append(word)
    return "_".join(words) if words else fallback


def _class_term_counts(texts: list[str], class_index: np.ndarray) -> tuple[Any, np.ndarray]:
    """The sparse class-by-term count matrix and the vocabulary; ``(None, [])`` when there are no terms."""
    text = require("sklearn.feature_extraction.text", extra="cluster")
    sparse = require("scipy.sparse", extra="cluster")
    vectorizer = text.CountVectorizer(stop_words="english", ngram_range=(1, 2))
    try:
        doc_terms = vectorizer.fit_transform(texts)
    except ValueError:  # sklearn's "empty vocabulary": every token was a stop word or too short
        return None, np.array([], dtype=object)
    n_classes = int(class_index.max()) + 1
    membership = sparse.csr_matrix(
        (np.ones(class_index.size), (class_index, np.arange(class_index.size))), shape=(n_classes, len(texts))
    )
    return (membership @ doc_terms).tocsr(), vectorizer.get_feature_names_out()


def _ctfidf(counts: Any) -> Any:
    """BERTopic's c-TF-IDF weights of a sparse class-by-term count matrix (see :func:`ctfidf_keywords`)."""
    sparse = require("scipy.sparse", extra="cluster")
    per_class = np.asarray(counts.sum(axis=1)).ravel()
    per_term = np.asarray(counts.sum(axis=0)).ravel()
    average = per_class.mean()
    idf = np.log(1.0 + average / per_term)
    tf = sparse.diags(1.0 / np.where(per_class > 0, per_class, 1.0)) @ counts
    return (tf @ sparse.diags(idf)).tocsr()


def _top_terms(row: Any, vocabulary: np.ndarray, top_n: int) -> list[str]:
    """The ``top_n`` terms of one sparse score row, best first, ties in vocabulary (alphabetical) order."""
    order = np.lexsort((row.indices, -row.data))
    return [str(vocabulary[row.indices[i]]) for i in order[:top_n] if row.data[i] > 0]


def _distance_to_centroid(rows: np.ndarray, metric: str) -> np.ndarray:
    """Each row's distance to the mean of ``rows``: 1 - cosine similarity, or euclidean."""
    centroid = rows.mean(axis=0)
    if metric == "euclidean":
        return np.linalg.norm(rows - centroid, axis=1)
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(centroid)
    # A zero vector has no direction; similarity 0 puts it behind every row that has one.
    similarity = np.divide(rows @ centroid, norms, out=np.zeros(rows.shape[0]), where=norms > 0)
    return 1.0 - similarity


def _cohens_d(inside: pd.DataFrame, outside: pd.DataFrame, overall_sd: pd.Series) -> pd.Series:
    """Signed standardised mean difference per column; the overall sd stands in where the pooled one is 0."""
    n_in, n_out = inside.count(), outside.count()
    spread = (n_in - 1) * inside.var(ddof=1).fillna(0) + (n_out - 1) * outside.var(ddof=1).fillna(0)
    pooled_var = spread / (n_in + n_out - 2)
    scale = np.sqrt(pooled_var).where(lambda s: s > 0, overall_sd)
    # A constant feature (scale 0) or an empty side has nothing to say: NaN, which the caller drops.
    effect = (inside.mean() - outside.mean()) / scale.where(scale > 0)
    return effect.where((n_in > 0) & (n_out > 0))


def _checked_labels(n_rows: int, labels: Labels, *, what: str, top_n: Any) -> np.ndarray:
    """``labels`` as integers of the right length, and ``top_n`` checked; every problem at once."""
    labels, problems = _label_vector(labels)
    if n_rows < 0:
        problems.append("'frame' must be a DataFrame or a 2-D array of rows")
    elif labels.ndim == 1 and labels.size != n_rows:
        problems.append(f"the input has {n_rows} rows but 'labels' has {labels.size} entries")
    problems.append(int_problem("top_n", top_n, low=1))
    raise_if_problems(
        [p for p in problems if p], what=f"the {what} call", hint="Pass one cluster label per row, in order."
    )
    return labels
