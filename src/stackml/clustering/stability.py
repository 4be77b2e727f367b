"""Bootstrap stability of each cluster, after Hennig (2007), the method of R fpc's ``clusterboot``.

Hennig, C. (2007). Cluster-wise assessment of cluster stability. Computational Statistics & Data Analysis 52,
258-271. A cluster that is real reappears when the same method runs on a resample of the data; one that is
an artefact of the sample, of a seed or of an over-large ``k`` does not. For each bootstrap ``b``:

1. draw ``n`` row positions with replacement and keep each drawn row once: the set ``S_b`` of original rows;
2. re-run the clustering on ``X[S_b]`` (the caller's ``refit``);
3. for each original cluster ``C``, its Jaccard similarity to the bootstrap clustering is
   ``max_D |C ∩ S_b ∩ D| / |(C ∩ S_b) ∪ D|`` over the bootstrap clusters ``D`` (outliers, ``-1``, never form a
   cluster), or 0 when ``C ∩ S_b`` is empty or the refit found no cluster: the cluster dissolved.

``clusterboot`` refits on the resample with its repeated rows; keeping each drawn row once makes the Jaccard
one over sets of original rows and spares density-based methods the artificial clumps that copies make.

Hennig reads the mean Jaccard of a cluster as: below 0.5 dissolved, 0.6 to 0.75 a pattern but doubtful
membership, above 0.85 highly stable. ``clusterboot`` counts a bootstrap as dissolved at ``<= 0.5`` and
recovered at ``> 0.75``; here the bounds are ``< 0.5`` and ``>= 0.75`` (parameters), which differ only on the
boundary values themselves.

Example:
    >>> import numpy as np
    >>> X = np.repeat([[0.0], [9.0]], 10, axis=0)
    >>> by_sign = lambda rows: (rows[:, 0] > 4.5).astype(int)
    >>> result = bootstrap_stability(X, by_sign(X), by_sign, n_boot=5)
    >>> result.mean, result.table["unstable"].tolist()
    (1.0, [False, False])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import int_problem, number_problem
from stackml.clustering.quality import OUTLIER, Labels, _label_vector, _rows_and_labels
from stackml.errors import InputError, raise_if_problems

__all__ = ["StabilityResult", "bootstrap_stability", "stability_weighted_silhouette"]

TABLE_COLUMNS = (
    "cluster",
    "size",
    "mean_jaccard",
    "sd_jaccard",
    "dissolved_share",
    "recovered_share",
    "unstable",
)


@dataclass(frozen=True)
class StabilityResult:
    """The bootstrap stability of each cluster.

    Attributes:
        table: one row per original cluster (outliers excluded), columns ``cluster``, ``size`` (rows in the
            original clustering), ``mean_jaccard``, ``sd_jaccard`` (sample sd, NaN with one bootstrap),
            ``dissolved_share`` (share of bootstraps with Jaccard below the dissolution bound),
            ``recovered_share`` (share at or above the recovery bound) and ``unstable`` (mean Jaccard below
            the threshold).
        per_boot: the Jaccard of each bootstrap (rows, index ``boot``) and cluster (columns).
        threshold: the mean Jaccard under which a cluster is flagged unstable.
    """

    table: pd.DataFrame
    per_boot: pd.DataFrame
    threshold: float

    @property
    def mean(self) -> float:
        """The unweighted mean over clusters of their mean Jaccard; NaN when there are no clusters."""
        return float(self.table["mean_jaccard"].mean()) if len(self.table) else math.nan

    @property
    def min(self) -> float:
        """The mean Jaccard of the least stable cluster; NaN when there are no clusters."""
        return float(self.table["mean_jaccard"].min()) if len(self.table) else math.nan

    @property
    def unstable_clusters(self) -> list[int]:
        """The labels of the clusters flagged unstable."""
        return [int(c) for c in self.table.loc[self.table["unstable"], "cluster"]]


def bootstrap_stability(
    X: Any,
    labels: Labels,
    refit: Callable[[np.ndarray], Any],
    *,
    n_boot: int = 20,
    random_state: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    threshold: float = 0.6,
    dissolved_below: float = 0.5,
    recovered_at: float = 0.75,
) -> StabilityResult:
    """Hennig's cluster-wise bootstrap stability of ``labels`` (see the module docstring for the method).

    Args:
        X: the rows that were clustered, shape ``(n, d)``.
        labels: the original clustering, one label per row; ``-1`` marks an outlier.
        refit: re-runs the same clustering (same settings, a fixed seed) on a subset of the rows and returns
            one label per row of that subset, ``-1`` for outliers. It receives ``X[S_b]``, the distinct
            resampled rows in their original order.
        n_boot: the number of bootstraps (``clusterboot`` defaults to 100; 20 gives a usable mean).
        random_state: seed of the resamples. The result is reproducible when ``refit`` is too.
        progress: called as ``progress(done, n_boot)`` after each bootstrap, for a progress bar.
        threshold: a cluster whose mean Jaccard is below this is flagged ``unstable``.
        dissolved_below: a bootstrap whose Jaccard is below this counts as dissolving the cluster.
        recovered_at: a bootstrap whose Jaccard is at or above this counts as recovering the cluster.

    Returns:
        A :class:`StabilityResult`; with no clusters (every row an outlier) nothing is refitted, its tables
        are empty and its ``mean`` and ``min`` NaN.

    Raises:
        InputError: a bad argument, or ``refit`` returned the wrong number of labels.
    """
    X, labels = _rows_and_labels(X, labels, what="bootstrap_stability")
    _check_arguments(n_boot, threshold, dissolved_below, recovered_at)
    clusters, sizes = np.unique(labels[labels != OUTLIER], return_counts=True)
    rng = np.random.default_rng(random_state)
    jaccard = np.zeros((n_boot, clusters.size))
    for b in range(n_boot if clusters.size else 0):
        rows = np.unique(rng.integers(0, labels.size, size=labels.size))
        boot_labels = _refit_labels(refit, X[rows], b)
        jaccard[b] = _best_jaccard(labels[rows], boot_labels, clusters)
        if progress is not None:
            progress(b + 1, n_boot)
    per_boot = pd.DataFrame(jaccard, columns=pd.Index(clusters, name="cluster"))
    per_boot.index.name = "boot"
    table = _summarise(jaccard, clusters, sizes, threshold, dissolved_below, recovered_at)
    return StabilityResult(table=table, per_boot=per_boot, threshold=float(threshold))


def stability_weighted_silhouette(
    per_cluster_silhouette: Mapping[int, float] | pd.Series, stability_table: pd.DataFrame | StabilityResult
) -> float:
    """One number to promote models on: the size-weighted mean over clusters of silhouette x stability.

    ``sum_c n_c * s_c * J_c / sum_c n_c`` over the clusters present in both inputs, where ``n_c`` is the
    cluster's size (the table's ``size``), ``s_c`` its mean silhouette (in [-1, 1]) and ``J_c`` its mean
    bootstrap Jaccard (in [0, 1]). Higher is better: a cluster counts for as much of its silhouette as it
    reliably reappears, so a tight but unreproducible cluster earns little. For a negative silhouette a low
    stability shrinks the penalty towards 0 as well; such clusters are rare in a candidate worth promoting.

    Args:
        per_cluster_silhouette: mean silhouette by cluster label (e.g.
            :func:`stackml.clustering.quality.per_cluster_silhouette`).
        stability_table: :attr:`StabilityResult.table`, or the result itself.

    Returns:
        The weighted mean, or NaN when no cluster is in both inputs.

    Example:
        >>> table = pd.DataFrame({"cluster": [0, 1], "size": [30, 10], "mean_jaccard": [1.0, 0.5]})
        >>> stability_weighted_silhouette({0: 0.8, 1: 0.6}, table)
        0.675
    """
    table = stability_table.table if isinstance(stability_table, StabilityResult) else stability_table
    silhouette = pd.Series(per_cluster_silhouette, dtype=float)
    both = table[table["cluster"].isin(silhouette.index)]
    weights = both["size"].to_numpy(dtype=float)
    if weights.sum() <= 0:
        return math.nan
    scores = silhouette.loc[both["cluster"]].to_numpy() * both["mean_jaccard"].to_numpy(dtype=float)
    return float(np.sum(weights * scores) / weights.sum())


def _best_jaccard(original: np.ndarray, boot: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """For each original cluster, the best Jaccard against any bootstrap cluster, on the resampled rows only.

    ``original`` and ``boot`` label the same rows (those of the resample). A contingency table of the two
    gives every intersection at once; the union is ``|C ∩ S_b| + |D| - |C ∩ S_b ∩ D|``.
    """
    best = np.zeros(clusters.size)
    kept = boot != OUTLIER
    if not kept.any():
        return best  # the refit called everything noise: every cluster dissolved
    boot_clusters, boot_index = np.unique(boot[kept], return_inverse=True)
    in_cluster = np.isin(original, clusters)
    position = np.searchsorted(clusters, original)  # the cluster's column, meaningful where in_cluster
    inter = np.zeros((clusters.size, boot_clusters.size))
    both = in_cluster[kept]
    np.add.at(inter, (position[kept][both], boot_index[both]), 1)
    c_size = np.bincount(position[in_cluster], minlength=clusters.size)[:, None]
    d_size = np.bincount(boot_index, minlength=boot_clusters.size)[None, :]
    union = c_size + d_size - inter
    # A cluster with no row in the resample has an empty C ∩ S_b: Jaccard 0 (dissolved), not 0/0.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(c_size > 0, inter / union, 0.0)
    return ratio.max(axis=1)


def _summarise(
    jaccard: np.ndarray,
    clusters: np.ndarray,
    sizes: np.ndarray,
    threshold: float,
    dissolved_below: float,
    recovered_at: float,
) -> pd.DataFrame:
    """The per-cluster table of :class:`StabilityResult` from the ``(n_boot, clusters)`` Jaccard matrix."""
    n_boot = jaccard.shape[0]
    mean = jaccard.mean(axis=0)
    # R's sd, as clusterboot reports; undefined from a single bootstrap.
    sd = jaccard.std(axis=0, ddof=1) if n_boot > 1 else np.full(clusters.size, math.nan)
    table = pd.DataFrame(
        {
            "cluster": clusters.astype(np.int64),
            "size": sizes.astype(np.int64),
            "mean_jaccard": mean,
            "sd_jaccard": sd,
            "dissolved_share": (jaccard < dissolved_below).mean(axis=0),
            "recovered_share": (jaccard >= recovered_at).mean(axis=0),
            "unstable": mean < threshold,
        },
        columns=list(TABLE_COLUMNS),
    )
    return table.astype({"unstable": bool})


def _refit_labels(refit: Callable[[np.ndarray], Any], rows: np.ndarray, boot: int) -> np.ndarray:
    """Run ``refit`` on one resample and check that it labelled every row it was given."""
    labels, problems = _label_vector(np.asarray(refit(rows)).ravel(), name="refit(...)")
    if not problems and labels.size != rows.shape[0]:
        problems = [f"refit returned {labels.size} labels for the {rows.shape[0]} rows of bootstrap {boot}"]
    if problems:
        raise InputError(
            "; ".join(problems),
            hint="'refit' must return one cluster label per row of the subset it receives (-1 for outliers).",
        )
    return labels


def _check_arguments(n_boot: Any, threshold: Any, dissolved_below: Any, recovered_at: Any) -> None:
    """Every problem with the numeric arguments, at once."""
    problems = [
        int_problem("n_boot", n_boot, low=1),
        number_problem("threshold", threshold, low=0.0, high=1.0),
        number_problem("dissolved_below", dissolved_below, low=0.0, high=1.0),
        number_problem("recovered_at", recovered_at, low=0.0, high=1.0),
    ]
    raise_if_problems([p for p in problems if p], what="the bootstrap_stability call")
