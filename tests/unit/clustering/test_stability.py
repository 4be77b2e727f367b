"""Hennig's bootstrap stability: stable blobs, unstable noise, dissolved clusters, a hand-checked Jaccard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from stackml.clustering.stability import StabilityResult, bootstrap_stability, stability_weighted_silhouette
from stackml.errors import InputError


def kmeans_refit(k: int):
    """A refit that re-runs K-means with a fixed seed, as the pipeline's refit would."""

    def refit(rows: np.ndarray) -> np.ndarray:
        return KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(rows)

    return refit


def indexed_rows(n: int) -> np.ndarray:
    """Rows whose only feature is their position, so a refit can tell which original rows it received."""
    return np.arange(n, dtype=float)[:, None]


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, _ = make_blobs(n_samples=240, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.7, random_state=0)
    return X, kmeans_refit(3)(X)


def test_separated_blobs_with_a_kmeans_refit_are_stable(blobs):
    X, labels = blobs
    result = bootstrap_stability(X, labels, kmeans_refit(3), n_boot=8)
    assert result.mean > 0.9 and result.min > 0.9
    assert result.unstable_clusters == [] and not result.table["unstable"].any()
    assert list(result.table.columns) == [
        "cluster",
        "size",
        "mean_jaccard",
        "sd_jaccard",
        "dissolved_share",
        "recovered_share",
        "unstable",
    ]
    assert result.table["size"].tolist() == np.bincount(labels).tolist()
    assert (result.table["recovered_share"] == 1.0).all() and (result.table["dissolved_share"] == 0.0).all()
    assert result.per_boot.shape == (8, 3) and list(result.per_boot.columns) == [0, 1, 2]


def test_random_labels_on_uniform_noise_are_flagged_unstable():
    X = np.random.default_rng(0).uniform(size=(200, 2))
    labels = np.random.default_rng(1).integers(0, 4, size=200)
    draws = np.random.default_rng(2)

    def random_refit(rows: np.ndarray) -> np.ndarray:
        return draws.integers(0, 4, size=len(rows))

    result = bootstrap_stability(X, labels, random_refit, n_boot=10)
    assert result.table["unstable"].all() and result.unstable_clusters == [0, 1, 2, 3]
    assert result.mean < 0.4
    assert (result.table["dissolved_share"] == 1.0).all() and (result.table["recovered_share"] == 0.0).all()


def test_an_over_split_kmeans_on_one_blob_has_unstable_clusters():
    X, _ = make_blobs(n_samples=200, centers=[[0, 0]], cluster_std=1.0, random_state=0)
    refit = kmeans_refit(8)
    result = bootstrap_stability(X, refit(X), refit, n_boot=8)
    assert result.table["unstable"].any()
    assert result.min < 0.6


def test_jaccard_against_a_merged_refit_is_the_hand_computed_share():
    # Clusters {0,1,2} and {3,4,5}; the refit puts every row it gets into one cluster D = S_b, so the Jaccard
    # of C is |C ∩ S_b| / |S_b|.
    X, labels = indexed_rows(6), np.array([0, 0, 0, 1, 1, 1])
    seen: list[np.ndarray] = []

    def merge_all(rows: np.ndarray) -> np.ndarray:
        seen.append(rows[:, 0].astype(int))
        return np.zeros(len(rows), dtype=int)

    result = bootstrap_stability(X, labels, merge_all, n_boot=6)
    for b, rows in enumerate(seen):
        assert len(np.unique(rows)) == len(rows)  # each resampled row once
        for cluster in (0, 1):
            expected = np.isin(rows, np.flatnonzero(labels == cluster)).sum() / len(rows)
            assert result.per_boot.loc[b, cluster] == pytest.approx(expected)


def test_a_cluster_missing_from_a_resample_or_refit_as_noise_scores_zero():
    # Row 9 is a cluster of its own; a refit that labels rows by their original cluster recovers every cluster
    # that is present (Jaccard 1) and the lone cluster scores 0 whenever row 9 was not drawn.
    X, labels = indexed_rows(10), np.array([0] * 5 + [1] * 4 + [2])
    seen: list[np.ndarray] = []

    def recover(rows: np.ndarray) -> np.ndarray:
        seen.append(rows[:, 0].astype(int))
        return labels[rows[:, 0].astype(int)]

    result = bootstrap_stability(X, labels, recover, n_boot=30)
    drawn = np.array([9 in rows for rows in seen])
    assert 0 < drawn.sum() < 30  # both cases happen under this seed
    assert result.per_boot[2].tolist() == [1.0 if d else 0.0 for d in drawn]
    lone = result.table.set_index("cluster").loc[2]
    assert lone["dissolved_share"] == pytest.approx(1 - drawn.mean())

    everything_noise = bootstrap_stability(X, labels, lambda rows: np.full(len(rows), -1), n_boot=3)
    assert (everything_noise.per_boot.to_numpy() == 0).all() and everything_noise.table["unstable"].all()


def test_outliers_form_no_cluster_on_either_side():
    X, labels = indexed_rows(8), np.array([-1, -1, 0, 0, 0, 1, 1, 1])

    def recover(rows: np.ndarray) -> np.ndarray:
        return labels[rows[:, 0].astype(int)]

    result = bootstrap_stability(X, labels, recover, n_boot=5)
    assert result.table["cluster"].tolist() == [0, 1]
    assert result.table["size"].tolist() == [3, 3]


def test_same_seed_same_result_and_progress_is_reported(blobs):
    X, labels = blobs
    calls: list[tuple[int, int]] = []
    first = bootstrap_stability(
        X, labels, kmeans_refit(3), n_boot=3, random_state=7, progress=lambda *a: calls.append(a)
    )
    again = bootstrap_stability(X, labels, kmeans_refit(3), n_boot=3, random_state=7)
    pd.testing.assert_frame_equal(first.per_boot, again.per_boot)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_the_unstable_threshold_is_a_parameter(blobs):
    X, labels = blobs
    result = bootstrap_stability(X, labels, kmeans_refit(3), n_boot=2, threshold=1.0)
    assert result.threshold == 1.0
    assert result.table["unstable"].tolist() == (result.table["mean_jaccard"] < 1.0).tolist()


def test_no_clusters_gives_empty_tables_and_nan_summaries():
    result = bootstrap_stability(
        indexed_rows(4), [-1, -1, -1, -1], lambda rows: np.zeros(len(rows)), n_boot=2
    )
    assert result.table.empty and result.per_boot.shape == (2, 0)
    assert math.isnan(result.mean) and math.isnan(result.min)


def test_bad_arguments_are_reported_together():
    with pytest.raises(
        InputError, match=r"2 problem\(s\)[\s\S]*'n_boot' must be an int >= 1, got 0[\s\S]*'threshold'"
    ):
        bootstrap_stability(indexed_rows(4), [0, 0, 1, 1], lambda rows: rows, n_boot=0, threshold=2.0)
    with pytest.raises(InputError, match=r"'X' has 4 rows but 'labels' has 3 entries"):
        bootstrap_stability(indexed_rows(4), [0, 0, 1], lambda rows: rows)


def test_a_refit_that_drops_rows_is_named():
    with pytest.raises(
        InputError, match=r"refit returned 1 labels for the \d+ rows of bootstrap 0"
    ) as caught:
        bootstrap_stability(indexed_rows(6), [0, 0, 0, 1, 1, 1], lambda rows: np.zeros(1, dtype=int))
    assert "one cluster label per row" in caught.value.hint


def test_stability_weighted_silhouette_is_the_size_weighted_product():
    table = pd.DataFrame({"cluster": [0, 1, 2], "size": [30, 10, 5], "mean_jaccard": [1.0, 0.5, 0.9]})
    # cluster 2 has no silhouette, so it is left out: (30 * 0.8 * 1.0 + 10 * 0.6 * 0.5) / 40
    assert stability_weighted_silhouette({0: 0.8, 1: 0.6}, table) == pytest.approx(0.675)
    assert stability_weighted_silhouette(pd.Series({0: 0.8, 1: 0.6}), table) == pytest.approx(0.675)
    result = StabilityResult(table=table, per_boot=pd.DataFrame(), threshold=0.6)
    assert stability_weighted_silhouette({0: 0.8, 1: 0.6}, result) == pytest.approx(0.675)
    assert math.isnan(stability_weighted_silhouette({7: 0.5}, table))
