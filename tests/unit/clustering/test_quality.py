"""Internal, density-based and external quality scores, on synthetic blobs and tiny hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import make_blobs

from stackml.clustering.quality import (
    dbcv,
    external_scores,
    internal_scores,
    per_cluster_silhouette,
    silhouette_profile,
)
from stackml.errors import InputError


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.6, random_state=0)
    return X, y


def with_outliers(X: np.ndarray, y: np.ndarray, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` with ``n`` far-away rows labelled -1 spliced in between the clustered rows."""
    noise = np.random.default_rng(1).uniform(40, 60, size=(n, X.shape[1]))
    X_all = np.vstack([X[:150], noise, X[150:]])
    y_all = np.concatenate([y[:150], np.full(n, -1), y[150:]])
    return X_all, y_all


def test_internal_scores_match_sklearn_without_outliers(blobs):
    X, y = blobs
    scores = internal_scores(X, y)
    assert scores["silhouette"] == pytest.approx(metrics.silhouette_score(X, y))
    assert scores["davies_bouldin"] == pytest.approx(metrics.davies_bouldin_score(X, y))
    assert scores["calinski_harabasz"] == pytest.approx(metrics.calinski_harabasz_score(X, y))
    assert (scores["n_clusters"], scores["outlier_share"], scores["n_scored"], scores["reason"]) == (
        3,
        0.0,
        300,
        None,
    )


def test_internal_scores_ignore_outliers(blobs):
    X, y = blobs
    X_all, y_all = with_outliers(X, y)
    clean, noisy = internal_scores(X, y), internal_scores(X_all, y_all)
    for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "n_clusters"):
        assert noisy[name] == pytest.approx(clean[name])
    assert noisy["outlier_share"] == pytest.approx(20 / 320)


def test_internal_silhouette_on_a_stratified_sample_is_close_and_reproducible(blobs):
    X, y = blobs
    full = internal_scores(X, y)["silhouette"]
    first = internal_scores(X, y, sample_size=100, random_state=3)
    again = internal_scores(X, y, sample_size=100, random_state=3)
    assert first == again
    assert first["n_scored"] == 100  # 300 rows in three clusters of 100: each keeps a third of the sample
    assert first["silhouette"] == pytest.approx(full, abs=0.05)
    assert first["davies_bouldin"] == pytest.approx(metrics.davies_bouldin_score(X, y))  # never sampled


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([0, 0, 0, -1], "fewer than 2 clusters remain without outliers (found 1)"),
        ([-1, -1, -1, -1], "fewer than 2 clusters remain without outliers (found 0)"),
        ([0, 1, -1, -1], "every one of the 2 clustered rows is its own cluster"),
    ],
)
def test_internal_scores_are_nan_with_a_reason_when_undefined(labels, reason):
    scores = internal_scores(np.arange(8.0).reshape(4, 2), labels)
    assert all(math.isnan(scores[k]) for k in ("silhouette", "davies_bouldin", "calinski_harabasz"))
    assert scores["reason"] == reason
    assert scores["outlier_share"] == labels.count(-1) / 4


def test_dbcv_scores_separated_blobs_high_and_outliers_pull_it_down(blobs):
    X, y = blobs
    clean = dbcv(X, y)
    assert 0.5 < clean <= 1.0
    X_all, y_all = with_outliers(X, y, n=60)
    assert dbcv(X_all, y_all) < clean  # every outlier row weighs in with validity 0


def test_dbcv_samples_large_inputs_reproducibly(blobs):
    X, y = blobs
    first = dbcv(X, y, sample_size=60, random_state=1)
    assert first == dbcv(X, y, sample_size=60, random_state=1)
    assert 0.5 < first <= 1.0


def test_dbcv_is_nan_with_fewer_than_two_clusters_and_survives_singletons():
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    assert math.isnan(dbcv(X, [0, 0, 0, -1, -1, -1]))
    assert math.isnan(dbcv(X, [0, 0, 0, -1, -1, 1]))  # a one-point cluster has no spanning tree: noise
    assert 0.5 < dbcv(X, [0, 0, 0, 1, 1, 2]) <= 1.0


def test_silhouette_profile_matches_sklearn_and_leaves_outliers_out(blobs):
    X, y = blobs
    X_all, y_all = with_outliers(X, y)
    profile = silhouette_profile(X_all, y_all)
    assert list(profile.columns) == ["row", "cluster", "silhouette"]
    assert len(profile) == 300 and (y_all[profile["row"]] == profile["cluster"]).all()
    expected = metrics.silhouette_samples(X, y)
    kept = np.flatnonzero(y_all != -1)
    by_row = dict(zip(kept, expected))
    assert profile["silhouette"].to_numpy() == pytest.approx([by_row[r] for r in profile["row"]])
    for _, part in profile.groupby("cluster"):
        assert part["silhouette"].is_monotonic_decreasing
    assert profile["cluster"].is_monotonic_increasing


def test_per_cluster_silhouette_is_the_mean_of_each_cluster(blobs):
    X, y = blobs
    means = per_cluster_silhouette(silhouette_profile(X, y))
    expected = metrics.silhouette_samples(X, y)
    assert means.to_dict() == pytest.approx({c: expected[y == c].mean() for c in range(3)})


def test_silhouette_profile_is_empty_with_one_cluster():
    profile = silhouette_profile(np.zeros((3, 2)), [0, 0, -1])
    assert profile.empty and list(profile.columns) == ["row", "cluster", "silhouette"]


def test_external_scores_of_identical_labelings_are_one():
    truth = ["a", "a", "b", "b", "c", "c"]
    permuted = [2, 2, 0, 0, 1, 1]
    assert external_scores(truth, permuted) == pytest.approx(
        {k: 1.0 for k in ("v_measure", "homogeneity", "completeness", "nmi", "ari", "hungarian_accuracy")}
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # clusters x classes: cluster 0 = {a: 1, b: 3}, cluster 1 = {a: 2}; best match 1->a, 0->b: 5 of 6
        ([1, 1, 0, 0, 0, 0], 5 / 6),
        ([0, 0, -1, 1, 1, 1], 5 / 6),  # the outlier is never matched: wrong
        ([0, 1, 2, 3, 3, 3], 4 / 6),  # two classes, four clusters: only two clusters can be matched
        ([-1, -1, -1, -1, -1, -1], 0.0),
    ],
)
def test_hungarian_accuracy_on_known_confusions(labels, expected):
    truth = ["a", "a", "a", "b", "b", "b"]
    assert external_scores(truth, labels)["hungarian_accuracy"] == pytest.approx(expected)


def test_external_scores_count_outliers_as_a_group_of_their_own():
    truth = [0, 0, 0, 1, 1, 1]
    assert external_scores(truth, [-1, -1, -1, 5, 5, 5])["ari"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("truth", "labels", "match"),
    [
        ([0, 1, 1], [0, 1], r"'true_labels' has 3 entries but 'labels' has 2"),
        ([0], [0], r"at least 2 rows are needed to compare labelings, got 1"),
        ([[0, 1]], [0, 1], r"'true_labels' must be 1-D"),
        ([0, 1], ["x", "y"], r"'labels' must hold integer cluster labels"),
    ],
)
def test_external_scores_reject_bad_inputs(truth, labels, match):
    with pytest.raises(InputError, match=match) as caught:
        external_scores(truth, labels)
    assert "same order" in caught.value.hint


@pytest.mark.parametrize("score", [internal_scores, dbcv, silhouette_profile])
def test_every_array_score_rejects_mismatched_rows_and_bad_sample_size(score):
    with pytest.raises(InputError, match=r"'X' has 3 rows but 'labels' has 2 entries"):
        score(np.zeros((3, 2)), [0, 1])
    with pytest.raises(InputError, match=r"'X' must be 2-D"):
        score(np.zeros(3), [0, 1, 1])
    with pytest.raises(InputError, match=r"'sample_size' must be an int >= 2, got 1"):
        score(np.zeros((3, 2)), [0, 1, 1], sample_size=1)
