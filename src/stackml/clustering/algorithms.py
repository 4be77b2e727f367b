"""Clustering algorithms on a numeric matrix, small classes found by name: ``"hdbscan"`` and ``"kmeans"``.

Each class fits on the reduced rows (``fit(X)``, NumPy only; the front door owns texts and frames) and
places new rows (``predict(X)`` -> labels and probabilities; ``membership(X)`` -> one column per cluster).
Label ``-1`` is an outlier: HDBSCAN finds them, K-means has none.

Example:
    >>> import numpy as np
    >>> X = np.r_[np.zeros((10, 2)), np.full((10, 2), 10.0)] + np.random.default_rng(0).normal(size=(20, 2))
    >>> make_algorithm("kmeans", k=2, random_state=0).fit(X).n_clusters_
    2
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, ClassVar

import numpy as np

from stackml._deps import require
from stackml.clustering.quality import OUTLIER
from stackml.errors import InputError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_K_RANGE",
    "OUTLIER",
    "HDBSCANClustering",
    "KMeansClustering",
    "default_min_samples",
    "make_algorithm",
    "min_cluster_size_candidates",
]

DEFAULT_K_RANGE = (2, 30)
# The silhouette is quadratic in the rows: above this many, K-means candidates are fitted and scored on a
# sample and only the chosen k is fitted on every row.
SILHOUETTE_SAMPLE = 3000
# HDBSCAN on a few reduced dimensions takes a fraction of a second per 10,000 rows; above this many rows the
# min_cluster_size search runs on a sample and the chosen size is scaled up to all the rows.
SIZE_SEARCH_ROWS = 20_000
WINDOW_STEP = 1.4  # ratio between neighbouring min_cluster_size candidates (two steps: about a factor of 2)
SEARCH_N_INIT = 3  # restarts per candidate k (the search compares k, it need not polish each one)
FINAL_N_INIT = 10  # restarts of the chosen k: cheap next to the search and steadier than one
ONE_THREAD_ROWS = 20_000  # K-means runs single-threaded up to this many rows (see _few_threads)


def min_cluster_size_candidates(n_rows: int) -> list[int]:
    """Sizes tried when ``min_cluster_size`` is None: ``sqrt(n) / 3`` times 1/2, 1/1.4, 1, 1.4 and 2, each at
    least 5 (and at most half the rows).

    The row count sets the scale (more rows, bigger groups); the data then picks within a factor of two
    (see ``HDBSCANClustering._choose_min_cluster_size``).

    Example:
        >>> min_cluster_size_candidates(3080)
        [9, 13, 18, 26, 36]
    """
    centre = math.sqrt(n_rows) / 3
    low, high = min(5, max(2, n_rows // 2)), max(2, n_rows // 2)
    sizes = {min(high, max(low, round(centre * WINDOW_STEP**j))) for j in range(-2, 3)}
    return sorted(sizes)


def default_min_samples(min_cluster_size: int) -> int:
    """How many neighbours make a point a core point: half the cluster size, at least 1.

    HDBSCAN defaults it to the cluster size, which calls every point in a thin region noise; half of it
    keeps the clusters and marks fewer of their edge points as outliers.
    """
    return max(1, min_cluster_size // 2)


class HDBSCANClustering:
    """HDBSCAN (``hdbscan`` package): clusters of any shape and number, with outliers (label ``-1``).

    Args:
        min_cluster_size: the smallest group to call a cluster; ``None`` chooses it from the data (see
            :meth:`_choose_min_cluster_size`).
        min_samples: neighbours that make a core point; ``None`` picks :func:`default_min_samples`.
        reassign_outliers: move each outlier to the cluster with the nearest centre (in the space clustered),
            here and in :meth:`predict`; ``reassigned_`` says how many moved, ``outliers_`` which rows.

    Attributes (after ``fit``):
        labels_, probabilities_ (HDBSCAN's membership strength, 0 for its outliers, moved or not),
        outliers_ (rows HDBSCAN put in no cluster), n_clusters_, min_cluster_size_, min_samples_,
        size_scores_ (``{min_cluster_size: relative validity}`` of the search; ``{}`` when the size was
        given), reassigned_, centres_ (mean of each cluster's members).
    """

    name: ClassVar[str] = "hdbscan"

    def __init__(
        self,
        *,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        reassign_outliers: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.reassign_outliers = reassign_outliers
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> HDBSCANClustering:
        n = X.shape[0]
        self.size_scores_: dict[int, float] = {}
        size = (
            self.min_cluster_size if self.min_cluster_size is not None else self._choose_min_cluster_size(X)
        )
        if size > n:
            raise InputError(
                f"'min_cluster_size' must be at most the number of rows ({n}), got {size}.",
                hint="Pass a smaller min_cluster_size, or None to choose it from the data.",
            )
        self.min_cluster_size_ = int(size)
        self.min_samples_ = int(self._min_samples(self.min_cluster_size_))
        self.model_ = self._hdbscan(self.min_cluster_size_, self.min_samples_, prediction_data=True).fit(X)
        labels = np.asarray(self.model_.labels_, dtype=np.int64)
        self.outliers_ = labels == OUTLIER
        self.n_clusters_ = int(labels.max() + 1) if labels.size else 0
        self.centres_ = np.array(  # (0, d) when HDBSCAN found no cluster: every row is an outlier
            [X[labels == c].mean(axis=0) for c in range(self.n_clusters_)], dtype=np.float64
        ).reshape(self.n_clusters_, X.shape[1])
        self.probabilities_ = np.asarray(self.model_.probabilities_, dtype=np.float64)
        self.labels_, self.reassigned_ = self._reassign(X, labels)
        return self

    def _min_samples(self, min_cluster_size: int) -> int:
        return self.min_samples if self.min_samples is not None else default_min_samples(min_cluster_size)

    def _hdbscan(self, min_cluster_size: int, min_samples: int, **options: Any) -> Any:
        hdbscan = require("hdbscan", extra="cluster")
        return hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            cluster_selection_method="eom",
            **options,
        )

    def _choose_min_cluster_size(self, X: np.ndarray) -> int:
        """The candidate of :func:`min_cluster_size_candidates` whose clustering has the best relative
        validity (HDBSCAN's fast DBCV, Moulavi et al. 2014: dense clusters, sparse gaps between them).

        The right size follows the size of the groups in the data, which the row count alone does not tell.
        Tried on 20 subsets of BANKING77's training split (MiniLM, UMAP to 5 dimensions; 200 to 4,130 texts,
        5 to 77 intents, 6 to 138 texts per intent), outliers moved: a fixed rule ``sqrt(n) / d`` scored mean
        V-measure 0.80-0.81 (d = 2 to 5), a fixed 10 (BERTopic's) 0.80; relative validity over every size up
        to n / 20 also 0.80, but fell to 0.55 where it preferred a few big clusters; relative validity within
        a factor of two of ``sqrt(n) / 3`` scored 0.83 (lowest 0.73, on 500 texts of 77 intents), where the
        best size of each subset would give 0.85. Each fit takes a fraction of a second on a few dimensions;
        above ``SIZE_SEARCH_ROWS`` rows each candidate is scored on a sample, scaled by the sample's share.
        """
        n = X.shape[0]
        candidates = min_cluster_size_candidates(n)
        if len(candidates) == 1:
            return candidates[0]
        sample, share = X, 1.0
        if n > SIZE_SEARCH_ROWS:
            rng = np.random.default_rng(self.random_state)
            sample, share = X[rng.choice(n, SIZE_SEARCH_ROWS, replace=False)], SIZE_SEARCH_ROWS / n
        for size in candidates:
            scaled = max(2, round(size * share))
            model = self._hdbscan(scaled, self._min_samples(scaled), gen_min_span_tree=True).fit(sample)
            found = int(np.max(model.labels_)) + 1
            # Relative validity is undefined with fewer than two clusters.
            self.size_scores_[size] = float(model.relative_validity_) if found >= 2 else float("nan")
        scored = {size: score for size, score in self.size_scores_.items() if score == score}
        return (
            max(scored, key=lambda size: (scored[size], -size))
            if scored
            else candidates[len(candidates) // 2]
        )

    def _reassign(self, X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
        """Outliers moved to the nearest cluster centre when asked (and when there is a cluster to move to).

        The nearest centre in the reduced space does as well as HDBSCAN's soft-membership vectors on
        BANKING77 (V-measure within 0.005) at a fraction of the cost, and places new rows the same way.
        """
        outliers = np.flatnonzero(labels == OUTLIER)
        if not self.reassign_outliers or self.n_clusters_ == 0 or outliers.size == 0:
            return labels, 0
        moved = labels.copy()
        moved[outliers] = _nearest(X[outliers], self.centres_)
        return moved, int(outliers.size)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels of new rows (``hdbscan.approximate_predict``: the cluster their neighbourhood joins, without
        refitting; outliers then moved as in ``fit``) and their membership strength."""
        if self.n_clusters_ == 0:
            return np.full(X.shape[0], OUTLIER, dtype=np.int64), np.zeros(X.shape[0])
        hdbscan = require("hdbscan", extra="cluster")
        labels, strengths = hdbscan.approximate_predict(self.model_, X)
        labels, _ = self._reassign(X, np.asarray(labels, dtype=np.int64))
        return labels, np.asarray(strengths, dtype=np.float64)

    def membership(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_clusters)``: HDBSCAN's soft membership of each row in each cluster
        (``hdbscan.membership_vector``; a row sums to at most 1, the rest being its outlier-ness)."""
        if self.n_clusters_ == 0:
            return np.zeros((X.shape[0], 0))
        hdbscan = require("hdbscan", extra="cluster")
        vectors = np.asarray(hdbscan.membership_vector(self.model_, X), dtype=np.float64)
        return vectors.reshape(X.shape[0], self.n_clusters_)  # one cluster comes back 1-D


class KMeansClustering:
    """K-means (scikit-learn): ``k`` round clusters, every row in one (no outliers).

    Args:
        k: the number of clusters; ``None`` chooses it by silhouette over ``k_range``.
        k_range: ``(lowest, highest)`` k tried, both included; the highest is capped at ``n - 1``.
        random_state: seed of the k-means++ starts and of the silhouette sample.

    Attributes (after ``fit``):
        labels_, probabilities_ (1.0: a hard assignment), n_clusters_, centres_, k_scores_ (``{k:
        silhouette}`` when k was chosen, else ``{}``).
    """

    name: ClassVar[str] = "kmeans"

    def __init__(
        self,
        *,
        k: int | None = None,
        k_range: tuple[int, int] = DEFAULT_K_RANGE,
        random_state: int | None = 0,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> KMeansClustering:
        cluster = require("sklearn.cluster", extra="cluster")
        n = X.shape[0]
        if self.k is not None and self.k > n:
            raise InputError(
                f"'k' must be at most the number of rows ({n}), got {self.k}.",
                hint="Pass a smaller k, or k=None to choose it by silhouette.",
            )
        self.k_scores_: dict[int, float] = {}
        with _few_threads(n):
            k = self.k if self.k is not None else self._choose_k(X)
            model = cluster.KMeans(n_clusters=k, n_init=FINAL_N_INIT, random_state=self.random_state)
            self.model_ = model.fit(X)
        self.labels_ = np.asarray(self.model_.labels_, dtype=np.int64)
        self.probabilities_ = np.ones(n)
        self.centres_ = np.asarray(self.model_.cluster_centers_)
        self.n_clusters_ = int(k)
        return self

    def _choose_k(self, X: np.ndarray) -> int:
        """The k of ``k_range`` with the highest silhouette, fitted and scored on a sample of large inputs."""
        cluster = require("sklearn.cluster", extra="cluster")
        metrics = require("sklearn.metrics", extra="cluster")
        n = X.shape[0]
        low, high = int(self.k_range[0]), min(int(self.k_range[1]), n - 1)
        if low > high:
            raise InputError(
                f"'k_range' {tuple(self.k_range)} has no k that fits {n} rows "
                "(silhouette needs 2 <= k <= n - 1).",
                hint=f"Pass k_range=(2, {max(2, n - 1)}) or give more rows.",
            )
        rng = np.random.default_rng(self.random_state)
        sample = X[rng.choice(n, SILHOUETTE_SAMPLE, replace=False)] if n > SILHOUETTE_SAMPLE else X
        for k in range(low, high + 1):
            model = cluster.KMeans(n_clusters=k, n_init=SEARCH_N_INIT, random_state=self.random_state)
            labels = model.fit_predict(sample)
            if np.unique(labels).size < 2:  # repeated rows can leave fewer distinct clusters than asked
                continue
            self.k_scores_[k] = float(metrics.silhouette_score(sample, labels))
        if not self.k_scores_:
            raise InputError(
                f"No k in {tuple(self.k_range)} split the rows into two or more groups "
                "(are they all equal?).",
                hint="Check the input: K-means needs rows that differ.",
            )
        return max(self.k_scores_, key=lambda k: (self.k_scores_[k], -k))  # ties: the fewer clusters

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest centre of each new row, probability 1.0."""
        return np.asarray(self.model_.predict(X), dtype=np.int64), np.ones(X.shape[0])

    def membership(self, X: np.ndarray) -> np.ndarray:
        """``(n, k)`` one-hot rows: K-means gives each row wholly to its nearest centre."""
        labels, _ = self.predict(X)
        return np.eye(self.n_clusters_)[labels]


ALGORITHMS: dict[str, type[Any]] = {cls.name: cls for cls in (HDBSCANClustering, KMeansClustering)}


def make_algorithm(name: str, **params: Any) -> Any:
    """The algorithm called ``name``, unfitted, with its own parameters.

    Raises:
        InputError: ``name`` is not one of :data:`ALGORITHMS`.
    """
    if name not in ALGORITHMS:
        raise InputError(f"Unknown algorithm {name!r}.", hint=f"Use one of {sorted(ALGORITHMS)}.")
    return ALGORITHMS[name](**params)


def _few_threads(n_rows: int) -> Any:
    """One BLAS/OpenMP thread for K-means on up to ``ONE_THREAD_ROWS`` rows, the default above.

    On small inputs each K-means iteration is microseconds of work, and starting and synchronising OpenMP
    threads costs more: on a busy 2-core machine the 29 candidate fits of a 600-row search took 17.5 s with
    the default threads and 0.15 s with one.
    """
    if n_rows > ONE_THREAD_ROWS:
        return contextlib.nullcontext()
    threadpoolctl = require("threadpoolctl", extra="cluster")
    return threadpoolctl.threadpool_limits(limits=1)


def _nearest(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row."""
    distances = (X**2).sum(axis=1)[:, None] - 2.0 * X @ centres.T + (centres**2).sum(axis=1)[None, :]
    return distances.argmin(axis=1)
