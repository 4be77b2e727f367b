"""The clustering pipeline's steps: load (every bad row named), fit, assess, summarise; the assignments table
on DuckDB and PostgreSQL; the registered pyfunc placing new rows and texts, served over HTTP. Numeric rows
with PCA and TF-IDF texts keep it quick (no numba compile, no MiniLM); the flow test covers the defaults."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from stackml.clustering.pipeline import (
    ClusterConfig,
    assignments_table,
    input_columns,
    load,
    run_pipeline,
    write_assignments,
)
from stackml.errors import InputError
from stackml.pipelines import Source

TOPICS = {
    "card": ["my card has not arrived yet", "when will my new card be delivered", "card delivery is late"],
    "refund": ["i want a refund for this purchase", "please refund my payment", "refund the wrong charge"],
    "pin": ["i forgot my pin code", "how do i reset my pin", "my pin is blocked after three tries"],
}


def blobs_frame(n: int = 400, centers: int = 4, seed: int = 1) -> pd.DataFrame:
    X, y = make_blobs(n_samples=n, centers=centers, n_features=4, random_state=seed, cluster_std=0.8)
    frame = pd.DataFrame(X, columns=["spend", "visits", "tenure", "basket"])
    return frame.assign(customer=np.arange(n) + 1000, segment=[f"s{v}" for v in y])


def topic_frame(per_topic: int = 15) -> pd.DataFrame:
    rows = []
    for topic, templates in TOPICS.items():
        for i in range(per_topic):
            rows.append({"text": f"{templates[i % 3]} (case {i})", "topic": topic})
    return pd.DataFrame(rows).assign(id=lambda f: [f"t{i}" for i in range(len(f))])


@pytest.fixture(scope="module")
def numeric(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cluster") / "customers.csv"
    blobs_frame().to_csv(path, index=False)
    config = ClusterConfig(id_column="customer", labels_column="segment", n_boot=8, fast=True)
    frame = load(config, Source.of(path))
    return frame, run_pipeline(frame, config)


@pytest.fixture(scope="module")
def texts():
    # K-means with k = 3: HDBSCAN rightly splits the nine templates apart (V-measure 0.67 against 3 topics)
    config = ClusterConfig(
        labels_column="topic",
        embedding="tfidf",
        algorithm="kmeans",
        k=3,
        reduction="pca",
        n_boot=5,
        fast=True,
    )
    frame = load(config, _source(topic_frame()))
    return frame, run_pipeline(frame, config)


def _source(frame: pd.DataFrame):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "texts.csv"
    frame.to_csv(path, index=False)
    return Source.of(path)


# -- load ----------------------------------------------------------------------------------------------------
def test_the_input_columns_default_to_text_else_every_other_column() -> None:
    assert input_columns(ClusterConfig(), ["id", "text", "label"]) == ("text", None)
    assert input_columns(ClusterConfig(labels_column="seg"), ["id", "a", "b", "seg"]) == (None, ["a", "b"])
    assert input_columns(ClusterConfig(columns="a"), ["text", "a", "b"]) == (None, ["a"])
    assert input_columns(ClusterConfig(text_column="body"), ["body", "a"]) == ("body", None)


def test_load_keeps_ids_labels_and_the_chosen_columns(numeric) -> None:
    frame, _ = numeric
    assert frame.columns.tolist() == ["id", "spend", "visits", "tenure", "basket", "label"]
    assert frame["id"].iloc[0] == 1000 and frame["label"].iloc[0].startswith("s")


@pytest.mark.parametrize(
    ("rows", "config", "fragments"),
    [
        (
            {"text": ["a b", "", "c d", None, "A B "], "id": [1, 2, 3, 4, 5]},
            {},
            ["column 'text' has 2 empty or blank value(s) at rows 1, 3", "repeats 1 text(s)"],
        ),
        ({"text": ["x y", "y z", "z w"], "id": [1, 1, 2]}, {}, ["the id column 'id' repeats 1 id(s): 1"]),
        ({"text": ["only one row"]}, {}, ["clustering needs at least 3 rows, got 1"]),
        (
            {"a": [1.0, 2.0, float("nan"), 4.0], "b": [1.0, 1.0, 1.0, 1.0]},
            {},
            ["column 'a' holds 1 NaN value(s)", "constant columns ['b']"],
        ),
        (
            {"a": [1.0, 2.0, 3.0, 4.0], "b": [4.0, 1.0, 2.0, 3.0]},
            {"algorithm": "kmeans", "k": 9},
            ["k (9) is larger than the number of rows (4)"],
        ),
        ({"a": [1.0, 2.0, 3.0]}, {"columns": "a,zz"}, ["missing columns ['zz']"]),
        ({"a": ["x", "y", "z"], "b": [1.0, 2.0, 3.0]}, {"columns": "a,b"}, ["non-numeric columns: 'a'"]),
    ],
)
def test_bad_input_is_named_row_by_row(rows: dict, config: dict, fragments: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        load(ClusterConfig(**config), _source(pd.DataFrame(rows)))
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_contradictory_options_are_refused_at_once() -> None:
    with pytest.raises(InputError) as caught:
        ClusterConfig(text_column="body", columns="a,b", k=5, k_min=9, k_max=4)
    message = str(caught.value)
    assert "name either a text column or numeric columns" in message
    assert "k applies to algorithm 'kmeans' only" in message and "k_min (9) is above k_max (4)" in message


# -- numeric rows --------------------------------------------------------------------------------------------
def test_numeric_rows_find_the_segments_with_stable_clusters(numeric) -> None:
    _, result = numeric
    summary = result.summary()
    assert summary["n_clusters"] == 4 and summary["input"] == "numeric"
    assert summary["external"]["v_measure"] > 0.95 and summary["external"]["hungarian_accuracy"] > 0.97
    assert summary["stability"]["mean"] > 0.9 and summary["stability"]["unstable"] == []
    assert 0.5 < summary["silhouette"] <= 1 and summary["dbcv"] is not None
    # the promoted number: silhouette x stability, never above the silhouette itself
    assert 0 < result.weighted_silhouette <= result.internal["silhouette"] + 1e-9
    assert result.metrics()["stability_weighted_silhouette"] == pytest.approx(result.weighted_silhouette)
    names = [c["name"] for c in summary["clusters"]]
    assert len(set(names)) == 4 and all(("high" in n or "low" in n) for n in names)


def test_the_picture_and_tables_cover_every_cluster(numeric) -> None:
    frame, result = numeric
    picture = result.picture
    assert len(picture) == len(frame) and set(picture["method"]) == {"pca"}
    assert set(picture["cluster"]) == set(result.model.cluster_sizes_)
    assert picture["hover"].iloc[0].startswith("spend=")
    table = result.cluster_table()
    assert table["size"].sum() == len(frame) - int((result.model.labels_ == -1).sum())
    assert table["size"].is_monotonic_decreasing and "profile" in table.columns


def test_a_run_without_bootstraps_says_stability_was_not_measured(numeric) -> None:
    frame, _ = numeric
    result = run_pipeline(frame, ClusterConfig(columns="spend,visits", n_boot=0, fast=True))
    assert result.stability is None and result.summary()["stability"]["mean"] is None
    assert math.isfinite(result.weighted_silhouette)  # the silhouette alone, size-weighted


def test_kmeans_with_k_given_keeps_every_row(numeric) -> None:
    frame, _ = numeric
    config = ClusterConfig(algorithm="kmeans", k=4, labels_column="label", n_boot=3, fast=True)
    result = run_pipeline(frame.drop(columns=["label"]).assign(label=frame["label"]), config)
    summary = result.summary()
    assert summary["k"] == 4 and summary["outlier_share"] == 0 and summary["dbcv"] is None
    assert summary["external"]["ari"] > 0.95


# -- texts ---------------------------------------------------------------------------------------------------
def test_texts_are_named_by_their_keywords_and_central_examples(texts) -> None:
    frame, result = texts
    summary = result.summary()
    assert summary["input"] == "texts" and summary["external"]["v_measure"] > 0.9
    table = result.cluster_table()
    assert {"keywords", "examples"} <= set(table.columns)
    keywords = " ".join(table["keywords"])
    for word in ("card", "refund", "pin"):
        assert word in keywords
    assert result.picture["hover"].str.contains("case").all()


def test_dedupe_clusters_each_text_once_and_gives_copies_its_cluster() -> None:
    frame = topic_frame()
    copies = frame.head(4).assign(id=["c0", "c1", "c2", "c3"], text=lambda f: f["text"].str.upper() + "  ")
    source = _source(pd.concat([frame, copies], ignore_index=True))
    config = ClusterConfig(embedding="tfidf", algorithm="kmeans", k=3, reduction="pca", n_boot=2, fast=True)
    with pytest.raises(InputError, match=r"repeats 4 text\(s\).*--dedupe clusters each distinct text once"):
        load(config, source)
    result = run_pipeline(load(config.replace(dedupe=True), source), config.replace(dedupe=True))
    assert result.n_rows == len(frame) and result.summary()["copies"] == 4
    table = result.assignments().set_index("id")
    assert len(table) == len(frame) + 4
    for copy, first in zip(["c0", "c1", "c2", "c3"], frame["id"].head(4)):
        assert table.loc[copy].tolist() == table.loc[first].tolist()


# -- the assignments table -----------------------------------------------------------------------------------
def test_the_assignments_table_name_is_a_safe_identifier() -> None:
    assert assignments_table("cluster-tickets") == "cluster_tickets_assignments"
    assert assignments_table("7 Segments!") == "c_7_segments_assignments"


@pytest.mark.postgres
def test_assignments_are_written_and_replaced_on_duckdb_and_postgres(numeric, warehouse_url: str) -> None:
    from stackml.warehouse import connect

    frame, result = numeric
    with connect(warehouse_url) as wh:
        table = write_assignments(result, wh, "customers")
        table = write_assignments(result, wh, "customers")  # a second run replaces it
        stored = wh.query(f"SELECT id, cluster, probability, outlier FROM {table} ORDER BY id")
    assert table == "customers_assignments" and len(stored) == len(frame)
    assert stored["id"].tolist() == sorted(frame["id"].tolist())
    by_id = dict(zip(frame["id"], result.model.labels_))
    assert [by_id[i] for i in stored["id"]] == stored["cluster"].tolist()
    assert stored["probability"].between(0, 1).all()


# -- the registered model ------------------------------------------------------------------------------------
def test_the_registered_model_places_new_rows_and_is_served(numeric, tmp_path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stackml import tracking
    from stackml.config import get_settings
    from stackml.pipelines import publish
    from stackml.serving import create_app

    frame, result = numeric
    settings = get_settings(home=tmp_path / "home")
    published = publish(result, frame, model_name="segments", settings=settings)
    assert published.model_version == 1 and published.promotion.promoted
    loaded = tracking.load_model("segments@champion", settings=settings)
    columns = ["spend", "visits", "tenure", "basket"]
    placed = loaded.predict(frame[columns].head(20))
    assert placed["cluster"].tolist() == result.model.labels_[:20].tolist()
    assert set(placed.columns) == {"cluster", "probability", "name", "keywords"}
    assert placed["keywords"].str.contains(" sd").all()

    app = create_app(settings, models=["segments"], reload_interval_s=0)
    records = frame[columns].head(2).to_dict("records")
    with TestClient(app) as client:
        response = client.post("/v1/models/segments/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()["predictions"]
    assert [p["cluster"] for p in body] == result.model.labels_[:2].tolist()


def test_the_text_model_places_a_single_new_text_with_its_topic(texts) -> None:
    frame, result = texts
    model = result.models(frame)[0].python_model
    placed = model.predict(None, pd.DataFrame({"text": ["please refund my payment today"]}))
    refund_cluster = result.model.labels_[frame.index[frame["label"] == "refund"][0]]
    assert placed["cluster"].tolist() == [refund_cluster] and "refund" in placed["keywords"].iloc[0]
    with pytest.raises(InputError, match="The input has no 'text' column"):
        model.predict(None, pd.DataFrame({"body": ["x"]}))
