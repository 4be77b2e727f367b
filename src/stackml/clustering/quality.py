"""Quality scores of a clustering, as plain functions on arrays and label vectors.

Label ``-1`` marks an outlier everywhere. The internal scores (silhouette, Davies-Bouldin, Calinski-Harabasz)
judge the clusters without the outliers and report the outlier share next to them, because a clustering that
calls its hard points noise would otherwise look better for it. DBCV (Moulavi et al. 2014) is the score made
for density-based results such as HDBSCAN's. External scores compare a clustering with known classes.

Scores that need two clusters come back as NaN, not an exception, when fewer remain: a pipeline that sweeps
settings should log "undefined" for a degenerate candidate and go on.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    >>> scores = internal_scores(X, [0, 0, 1, 1])
    >>> round(scores["silhouette"], 3), scores["n_clusters"]
    (0.9, 2)
    >>> external_scores([0, 0, 1, 1], [1, 1, 0, 0])["hungarian_accuracy"]
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.checks import int_problem
from stackml.errors import raise_if_problems

__all__ = [
    "OUTLIER",
    "dbcv",
    "external_scores",
    "internal_scores",
    "per_cluster_silhouette",
    "silhouette_profile",
]

OUTLIER = -1
# A cluster needs two points for a silhouette, a spanning tree (DBCV) or a spread; samples keep that many.
_MIN_PER_CLUSTER = 2

Labels = Sequence[int] | np.ndarray


def internal_scores(
    X: Any, labels: Labels, *, sample_size: int = 5000, random_state: int | None = 0
) -> dict[str, Any]:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of the clusters, computed without the outliers.

    The silhouette is quadratic in the number of rows, so above ``sample_size`` clustered rows it is computed
    on a sample stratified by cluster: each cluster keeps its share of the sample and at least two points, so
    small clusters are not lost. Davies-Bouldin and Calinski-Harabasz are linear and use every clustered row.

    Args:
        X: the rows that were clustered, shape ``(n, d)`` (embeddings or numeric features).
        labels: one cluster label per row; ``-1`` marks an outlier.
        sample_size: the most rows the silhouette is computed on.
        random_state: seed of the silhouette sample.

    Returns:
        ``silhouette`` (in [-1, 1], higher is better), ``davies_bouldin`` (>= 0, lower is better),
        ``calinski_harabasz`` (>= 0, higher is better), ``n_clusters`` (without outliers), ``outlier_share``
        (of all rows), ``n_scored`` (rows the silhouette used) and ``reason``: ``None``, or why the three
        scores are NaN (fewer than two clusters remain without outliers, or every remaining row is its own
        cluster).

    Example:
        >>> internal_scores([[0.0], [1.0], [2.0]], [0, 0, -1])["reason"]
        'fewer than 2 clusters remain without outliers (found 1)'
    """
    X, labels = _rows_and_labels(X, labels, what="internal_scores")
    _check_ints(what="the internal_scores call", sample_size=(sample_size, 2))
    kept = labels != OUTLIER
    Xc, lc = X[kept], labels[kept]
    n_clusters = int(np.unique(lc).size)
    scores: dict[str, Any] = {
        "silhouette": math.nan,
        "davies_bouldin": math.nan,
        "calinski_harabasz": math.nan,
        "n_clusters": n_clusters,
        "outlier_share": float(np.mean(~kept)) if labels.size else math.nan,
        "n_scored": 0,
        "reason": _undefined_reason(n_clusters, lc.size),
    }
    if scores["reason"] is not None:
        return scores
    metrics = require("sklearn.metrics", extra="cluster")
    rng = np.random.default_rng(random_state)
    sample = _stratified_sample(lc, sample_size, rng)
    scores["silhouette"] = float(metrics.silhouette_score(Xc[sample], lc[sample]))
    scores["n_scored"] = int(sample.size)
    scores["davies_bouldin"] = float(metrics.davies_bouldin_score(Xc, lc))
    scores["calinski_harabasz"] = float(metrics.calinski_harabasz_score(Xc, lc))
    return scores


def dbcv(X: Any, labels: Labels, *, sample_size: int = 2000, random_state: int | None = 0) -> float:
    """Density-Based Clustering Validation (Moulavi et al. 2014) of an HDBSCAN-style result, in [-1, 1].

    Computed by ``hdbscan.validity.validity_index`` on float64 rows with euclidean distances. Outliers stay in
    as ``-1``, handled as the package does: they take part in no cluster, but the score is the size-weighted
    mean of the clusters' validity over *all* rows, so every outlier pulls the score towards 0. The method is
    quadratic in cluster size, so above ``sample_size`` rows it runs on a sample stratified by label (the
    outliers are one stratum, so their share is kept; each cluster keeps at least two points). A cluster of a
    single point has no spanning tree, which the package cannot score; such a point is passed as an outlier.

    Args:
        X: the rows that were clustered, shape ``(n, d)``.
        labels: one cluster label per row; ``-1`` marks an outlier.
        sample_size: the most rows the index is computed on.
        random_state: seed of the sample.

    Returns:
        The index (higher is better), or NaN when fewer than two clusters of two or more points remain.

    Example:
        >>> X = [[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]]
        >>> round(dbcv(X, [0, 0, 0, 1, 1, 1]), 2)
        0.97
    """
    X, labels = _rows_and_labels(X, labels, what="dbcv")
    _check_ints(what="the dbcv call", sample_size=(sample_size, 2))
    sample = _stratified_sample(labels, sample_size, np.random.default_rng(random_state))
    Xs, ls = X[sample], _singletons_as_outliers(labels[sample])
    clusters, dense = np.unique(ls[ls != OUTLIER], return_inverse=True)
    if clusters.size < 2:
        return math.nan
    # The package sizes its arrays by the largest label, so hand it labels 0..k-1.
    relabelled = np.full(ls.shape, OUTLIER, dtype=np.intp)
    relabelled[ls != OUTLIER] = dense
    validity = require("hdbscan.validity", extra="cluster")
    # Duplicate points give zero distances, which the package divides by, and near-duplicates overflow its
    # inverse powers; it copes with both (inf and 0 where they belong), the warnings are noise.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(validity.validity_index(Xs, relabelled))


def silhouette_profile(
    X: Any, labels: Labels, *, sample_size: int = 5000, random_state: int | None = 0
) -> pd.DataFrame:
    """The silhouette of every clustered row, for the report's silhouette picture.

    Outliers have no silhouette and are left out. Above ``sample_size`` clustered rows the profile covers a
    sample stratified by cluster, as in :func:`internal_scores` (the same seed draws the same rows).

    Args:
        X: the rows that were clustered, shape ``(n, d)``.
        labels: one cluster label per row; ``-1`` marks an outlier.
        sample_size: the most rows profiled.
        random_state: seed of the sample.

    Returns:
        Columns ``row`` (position in ``X``), ``cluster`` and ``silhouette``, sorted by cluster and then by
        silhouette from high to low (the order the classic picture draws); empty when fewer than two clusters
        remain without outliers.

    Example:
        >>> profile = silhouette_profile([[0.0], [1.0], [10.0], [11.0]], [0, 0, 1, 1])
        >>> profile["cluster"].tolist()
        [0, 0, 1, 1]
    """
    X, labels = _rows_and_labels(X, labels, what="silhouette_profile")
    _check_ints(what="the silhouette_profile call", sample_size=(sample_size, 2))
    rows = np.flatnonzero(labels != OUTLIER)
    lc = labels[rows]
    empty = pd.DataFrame(
        {"row": pd.Series(dtype="int64"), "cluster": pd.Series(dtype="int64"), "silhouette": []}
    )
    if _undefined_reason(int(np.unique(lc).size), lc.size) is not None:
        return empty
    sample = _stratified_sample(lc, sample_size, np.random.default_rng(random_state))
    metrics = require("sklearn.metrics", extra="cluster")
    values = metrics.silhouette_samples(X[rows[sample]], lc[sample])
    profile = pd.DataFrame({"row": rows[sample], "cluster": lc[sample], "silhouette": values})
    profile = profile.sort_values(["cluster", "silhouette"], ascending=[True, False], kind="stable")
    return profile.reset_index(drop=True)


def per_cluster_silhouette(profile: pd.DataFrame) -> pd.Series:
    """The mean silhouette of each cluster, from a :func:`silhouette_profile` (no second quadratic pass).

    Example:
        >>> profile = silhouette_profile([[0.0], [1.0], [10.0], [11.0]], [0, 0, 1, 1])
        >>> per_cluster_silhouette(profile).round(3).to_dict()
        {0: 0.9, 1: 0.9}
    """
    return profile.groupby("cluster")["silhouette"].mean().rename("silhouette")


def external_scores(true_labels: Sequence[Any] | np.ndarray, labels: Labels) -> dict[str, float]:
    """Agreement of a clustering with known classes.

    V-measure (with its homogeneity and completeness), NMI and ARI are scikit-learn's, for which ``-1`` is one
    more cluster: the outliers form a group of their own. The Hungarian accuracy is the share of rows that are
    right under the best one-to-one matching of clusters to classes (``scipy.optimize.linear_sum_assignment``
    on the cluster-by-class contingency table). Rows of a cluster left without a class (more clusters than
    classes) count as wrong, and so do the outliers: they are never matched, so calling a row noise cannot
    make it right.

    Args:
        true_labels: the known class of each row (any hashable values).
        labels: the cluster of each row; ``-1`` marks an outlier.

    Returns:
        ``v_measure``, ``homogeneity``, ``completeness``, ``nmi``, ``ari`` and ``hungarian_accuracy``; 1.0
        each for a clustering identical to the classes up to renaming.

    Raises:
        InputError: the two label vectors differ in length, have fewer than two rows or are not 1-D.

    Example:
        >>> external_scores(["a", "a", "a", "b", "b", "b"], [1, 1, 0, 0, 0, 0])["hungarian_accuracy"]
        0.8333333333333334
    """
    truth, labels = _paired_labels(true_labels, labels)
    metrics = require("sklearn.metrics", extra="cluster")
    homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(truth, labels)
    return {
        "v_measure": float(v_measure),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "nmi": float(metrics.normalized_mutual_info_score(truth, labels)),
        "ari": float(metrics.adjusted_rand_score(truth, labels)),
        "hungarian_accuracy": _hungarian_accuracy(truth, labels),
    }


def _hungarian_accuracy(truth: np.ndarray, labels: np.ndarray) -> float:
    """Share of all rows on the diagonal of the best cluster-to-class matching; outliers are never matched."""
    kept = labels != OUTLIER
    if not kept.any():
        return 0.0
    _, cluster_index = np.unique(labels[kept], return_inverse=True)
    _, class_index = np.unique(truth[kept], return_inverse=True)
    table = np.zeros((cluster_index.max() + 1, class_index.max() + 1), dtype=np.int64)
    np.add.at(table, (cluster_index, class_index), 1)
    optimize = require("scipy.optimize", extra="cluster")
    rows, cols = optimize.linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels.size)


def _undefined_reason(n_clusters: int, n_rows: int) -> str | None:
    """Why the internal scores are undefined, or ``None`` when they can be computed."""
    if n_clusters < 2:
        return f"fewer than 2 clusters remain without outliers (found {n_clusters})"
    if n_clusters >= n_rows:
        return f"every one of the {n_rows} clustered rows is its own cluster"
    return None


def _singletons_as_outliers(labels: np.ndarray) -> np.ndarray:
    """``labels`` with every one-point cluster set to ``-1``."""
    values, counts = np.unique(labels, return_counts=True)
    lonely = values[(counts < _MIN_PER_CLUSTER) & (values != OUTLIER)]
    return np.where(np.isin(labels, lonely), OUTLIER, labels)


def _stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``size`` rows drawn without replacement, each label keeping its share of them.

    Every row when there are no more than ``size``. Each label keeps at least two rows, which can push the
    sample slightly above ``size`` when there are many tiny clusters: keeping every cluster scoreable matters
    more than the exact count.
    """
    n = labels.size
    if n <= size:
        return np.arange(n)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    take = np.minimum(np.maximum(_shares(size, counts), _MIN_PER_CLUSTER), counts)
    by_label = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.choice(members, size=k, replace=False) for members, k in zip(by_label, take)]
    return np.sort(np.concatenate(chosen))


def _shares(size: int, counts: np.ndarray) -> np.ndarray:
    """``size`` split in proportion to ``counts`` as whole numbers summing to ``size`` (largest remainder)."""
    quota = size * counts / counts.sum()
    shares = np.floor(quota).astype(np.int64)
    left = size - int(shares.sum())
    shares[np.argsort(shares - quota, kind="stable")[:left]] += 1
    return shares


def _label_vector(labels: Labels, *, name: str = "labels") -> tuple[np.ndarray, list[str]]:
    """``labels`` as a 1-D integer array, and the problems found (empty when fine).

    Float labels with whole values (``1.0``, as pandas makes of an integer column with gaps) are accepted.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        return array, [f"'{name}' must be 1-D (one cluster per row), got shape {array.shape}"]
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64), []
    if (
        np.issubdtype(array.dtype, np.floating)
        and np.all(np.isfinite(array))
        and np.all(array == np.round(array))
    ):
        return array.astype(np.int64), []
    return array, [f"'{name}' must hold integer cluster labels (-1 for outliers), got dtype {array.dtype}"]


def _check_ints(*, what: str, **bounded: tuple[Any, int]) -> None:
    """Raise one error for every ``name=(value, low)`` whose value is not an int ``>= low``."""
    problems = [int_problem(name, value, low=low) for name, (value, low) in bounded.items()]
    raise_if_problems([p for p in problems if p], what=what)


def _rows_and_labels(X: Any, labels: Labels, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as a float64 matrix and ``labels`` as integers, checked together; every problem at once."""
    matrix = np.asarray(X, dtype=np.float64)
    labels, problems = _label_vector(labels)
    if matrix.ndim != 2:
        problems.append(f"'X' must be 2-D (rows by features), got shape {matrix.shape}")
    elif labels.ndim == 1 and matrix.shape[0] != labels.shape[0]:
        problems.append(f"'X' has {matrix.shape[0]} rows but 'labels' has {labels.shape[0]} entries")
    raise_if_problems(
        problems,
        what=f"the {what} input",
        hint="Pass the clustered rows and their labels, in order.",
    )
    return matrix, labels


def _paired_labels(true_labels: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both label vectors as arrays, checked: 1-D, one length, at least two rows; every problem at once."""
    truth = np.asarray(true_labels)
    labels, problems = _label_vector(labels)
    if truth.ndim != 1:
        problems.append(f"'true_labels' must be 1-D (one class per row), got shape {truth.shape}")
    if truth.ndim == 1 and labels.ndim == 1:
        if truth.shape[0] != labels.shape[0]:
            problems.append(f"'true_labels' has {truth.shape[0]} entries but 'labels' has {labels.shape[0]}")
        elif truth.shape[0] < 2:
            problems.append(f"at least 2 rows are needed to compare labelings, got {truth.shape[0]}")
    raise_if_problems(
        problems,
        what="the external_scores input",
        hint="Pass the known class and the cluster of the same rows, in the same order.",
    )
    return truth, labels
