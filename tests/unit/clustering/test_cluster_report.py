"""The clustering report: every section for numeric rows and texts, unstable clusters flagged, outliers in
grey, no external section without labels, and the page written.

Real pipeline runs on small synthetic data (PCA pictures, no UMAP or MiniLM), shared per module.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("hdbscan")
pytest.importorskip("plotly")
from sklearn.datasets import make_blobs  # noqa: E402 - after the skip: sklearn comes with the cluster extra

from stackml.clustering.config import ClusterConfig  # noqa: E402
from stackml.clustering.pipeline import run_pipeline  # noqa: E402
from stackml.clustering.report import (  # noqa: E402
    OUTLIER_COLOUR,
    UNSTABLE_COLOUR,
    cluster_report,
    hennig_reading,
    stability_table,
)

COLUMNS = ["spend", "visits", "tenure"]
TOPICS = {
    "refund": [
        "I want my money back for the order",
        "please refund the payment on my card",
        "the refund has not arrived yet",
    ],
    "delivery": [
        "where is my parcel, the courier is late",
        "the package was delivered to the wrong address",
        "tracking shows no delivery update",
    ],
    "password": [
        "I cannot log in, reset my password",
        "the password reset link has expired",
        "my account is locked after login attempts",
    ],
}
ENDINGS = ["today", "this week", "again", "now", "please help", "urgently", "since monday", "for days"]


def figures(html: str) -> list[dict]:
    """The plotly specs embedded in a report page, in figure order."""
    found = re.findall(r'<script type="application/json" id="figure-(\d+)-data">(.*?)</script>', html, re.S)
    return [json.loads(spec) for _, spec in sorted(found, key=lambda f: int(f[0]))]


def values(array) -> list:
    """A trace's array as a list: plotly writes numeric arrays as ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


@pytest.fixture(scope="module")
def blob_frame() -> pd.DataFrame:
    """300 rows in three blobs and 12 scattered rows HDBSCAN leaves out, with their known class."""
    X, y = make_blobs(n_samples=300, centers=3, n_features=3, cluster_std=1.0, random_state=0)
    noise = np.random.default_rng(0).uniform(X.min(axis=0) - 4, X.max(axis=0) + 4, size=(12, 3))
    frame = pd.DataFrame(np.vstack([X, noise]), columns=COLUMNS)
    frame.insert(0, "id", range(len(frame)))
    frame["label"] = [f"segment {v}" for v in y] + ["noise"] * len(noise)
    return frame


@pytest.fixture(scope="module")
def numeric(blob_frame):
    """HDBSCAN, outliers moved, labels given, a picture of 150 of the 312 rows."""
    config = ClusterConfig(
        columns=COLUMNS, labels_column="label", fast=True, n_boot=5, sample_size=150, random_state=0
    )
    return run_pipeline(blob_frame, config)


@pytest.fixture(scope="module")
def kept(blob_frame):
    """HDBSCAN with its outliers kept, no bootstrap and no labels."""
    config = ClusterConfig(columns=COLUMNS, reassign_outliers=False, fast=True, n_boot=0)
    return run_pipeline(blob_frame.drop(columns="label"), config)


@pytest.fixture(scope="module")
def kmeans(blob_frame):
    """K-means choosing k by silhouette, no labels."""
    config = ClusterConfig(columns=COLUMNS, algorithm="kmeans", k_max=6, fast=True, n_boot=3)
    return run_pipeline(blob_frame.drop(columns="label"), config)


@pytest.fixture(scope="module")
def texts():
    """72 support texts on three topics, TF-IDF + PCA, no labels."""
    rows = [
        f"{templates[i % 3]} ({ENDINGS[i % len(ENDINGS)]} #{i})"
        for templates in TOPICS.values()
        for i in range(24)
    ]
    frame = pd.DataFrame({"id": range(len(rows)), "text": rows})
    config = ClusterConfig(embedding="tfidf", reduction="pca", fast=True, n_boot=5)
    return run_pipeline(frame, config)


def with_one_unstable(result):
    """A copy of ``result`` whose largest cluster's bootstrap Jaccard fell to 0.3: flagged unstable."""
    cluster = int(result.cluster_table()["cluster"].iloc[0])
    table = result.stability.table.copy()
    row = table["cluster"] == cluster
    table.loc[row, "mean_jaccard"] = 0.3
    table.loc[row, "unstable"] = True
    per_boot = result.stability.per_boot.copy()
    per_boot[cluster] = np.linspace(0.1, 0.5, len(per_boot))
    stability = dataclasses.replace(result.stability, table=table, per_boot=per_boot)
    return dataclasses.replace(result, stability=stability), cluster


# -- numeric rows --------------------------------------------------------------------------------------------
def test_the_numeric_report_tells_what_was_clustered_and_how(numeric) -> None:
    report = cluster_report(
        numeric, title="Segments", run_id="run-7", registry_note="Registered as segments v3."
    )
    model = numeric.model
    assert report.pipeline == "cluster" and report.run_id == "run-7" and report.title == "Segments"
    narrative = report.narrative
    for text in (
        "312 rows on 3 standardised numeric columns (spend, visits, tenure)",
        f"HDBSCAN with min_cluster_size = {model.min_cluster_size_} (chosen from the data by relative",
        f"which found {model.n_clusters_} clusters",
        f"HDBSCAN left {numeric.outliers_found} rows",
        f"{model.reassigned_} of them were moved to the nearest cluster",
        f"Over 5 bootstrap refits, the clusters' mean Jaccard averages {numeric.stability.mean:.2f}",
        "below 0.5 it dissolved, 0.6 to 0.75 it shows a pattern but its membership is doubtful, above 0.85",
        f"V-measure {numeric.external['v_measure']:.3f}",
        "Registered as segments v3.",
    ):
        assert text in narrative, text
    assert numeric.outliers_found > 0 and model.reassigned_ == numeric.outliers_found


def test_the_numeric_report_has_every_section(numeric) -> None:
    html = cluster_report(numeric).to_html()
    for text in (
        "The clusters",
        "Stability",
        "Silhouette profile",
        "Profiles",
        "Cohen&#x27;s d",
        "Agreement with the known labels",
        "hungarian_accuracy",
        "How the number of clusters was chosen",
        "relative validity of each min_cluster_size tried",
        "Timings",
        "It shows a sample of 150 of the 312 rows, stratified by cluster",  # the picture's caption
        "The rows mapped to two dimensions by PCA",
    ):
        assert text in html, text
    for card in ("rows", "clusters", "outlier share", "silhouette", "stability mean / min", "V-measure"):
        assert f'<div class="metric-label">{card}</div>' in html
    assert '<div class="metric-label">stability-weighted silhouette</div>' in html
    for profile in numeric.profiles.values():
        assert all(p["feature"] in html for p in profile)


def test_the_figures_are_the_picture_sizes_jaccard_silhouette_and_selection(numeric) -> None:
    specs = figures(cluster_report(numeric).to_html())
    assert len(specs) == 5
    picture, sizes, jaccard, silhouette, selection = specs
    # one WebGL trace per cluster, hover text showing the values and the cluster's name
    assert {t["type"] for t in picture["data"]} == {"scattergl"}
    assert sum(len(values(t["x"])) for t in picture["data"]) == len(numeric.picture) == 150
    assert len(picture["data"]) == numeric.model.n_clusters_
    first = picture["data"][0]
    assert first["hoverinfo"] == "text+name" and first["text"][0].startswith("spend=")
    assert first["name"] == f"0 · {numeric.names[0]}"
    assert picture["layout"]["xaxis"]["title"]["text"] == "PCA 1"
    # the sizes, with the cluster names, largest first
    assert sizes["data"][0]["type"] == "bar"
    assert values(sizes["data"][0]["x"]) == sorted(numeric.model.cluster_sizes_.values(), reverse=True)
    assert all(" · " in label for label in sizes["data"][0]["y"])
    # one box of bootstrap Jaccards per cluster, and the threshold line
    assert [t["type"] for t in jaccard["data"]] == ["box"] * numeric.model.n_clusters_
    assert [s["y0"] for s in jaccard["layout"]["shapes"]] == [0.6]
    # the silhouette profile: one filled shape per cluster and the mean line
    assert len(silhouette["data"]) == numeric.silhouette_profile["cluster"].nunique()
    mean = numeric.silhouette_profile["silhouette"].mean()
    assert silhouette["layout"]["shapes"][0]["x0"] == pytest.approx(mean)
    assert selection["layout"]["xaxis"]["title"]["text"] == "min_cluster_size"


def test_the_stability_table_has_one_row_per_cluster_with_hennigs_reading(numeric) -> None:
    table = stability_table(numeric)
    assert len(table) == numeric.model.n_clusters_
    assert list(table.columns[:6]) == ["cluster", "name", "flag", "size", "share", "silhouette"]
    assert {"mean Jaccard", "sd Jaccard", "dissolved", "recovered", "reading"} <= set(table.columns)
    assert (table["flag"] == "").all()  # well-separated blobs: nothing flagged
    assert table["size"].tolist() == sorted(table["size"], reverse=True)


@pytest.mark.parametrize(
    ("jaccard", "reading"),
    [
        (0.2, "dissolved"),
        (0.55, "not to be trusted"),
        (0.6, "a pattern, membership doubtful"),
        (0.8, "stable"),
        (0.9, "highly stable"),
        (float("nan"), "not measured"),
    ],
)
def test_hennigs_reading(jaccard, reading) -> None:
    assert hennig_reading(jaccard) == reading


def test_an_unstable_cluster_is_flagged_in_the_table_the_narrative_and_its_box(numeric) -> None:
    shaken, cluster = with_one_unstable(numeric)
    table = stability_table(shaken)
    flagged = table.loc[table["flag"] != "", "cluster"].tolist()
    assert flagged == [cluster]
    assert "unstable" in table.loc[table["cluster"] == cluster, "flag"].item()
    assert table.loc[table["cluster"] == cluster, "reading"].item() == "dissolved"

    report = cluster_report(shaken)
    assert (
        f"1 of {numeric.model.n_clusters_} clusters fall below 0.6 and are flagged unstable: {cluster} ("
        in (report.narrative)
    )
    html = report.to_html()
    assert "⚠\u00a0unstable</td>" in html
    boxes = figures(html)[2]["data"]
    red = [b["name"] for b in boxes if b["marker"]["color"] == UNSTABLE_COLOUR]
    assert red == [f"{cluster} · {numeric.names[cluster]} ⚠"]


# -- outliers kept, no bootstrap, K-means --------------------------------------------------------------------
def test_kept_outliers_are_grey_and_an_unmeasured_stability_is_said(kept) -> None:
    report = cluster_report(kept)
    assert "they stay outliers (cluster -1)" in report.narrative
    assert "Stability was not measured" in report.narrative
    html = report.to_html()
    assert "Stability was not measured (n_boot is 0)" in html
    assert "bootstrap refits; the dashed line" not in html  # no Jaccard figure
    assert '<div class="metric-value">not measured</div>' in html
    picture, sizes = figures(html)[:2]
    grey = [t for t in picture["data"] if t["marker"]["color"] == OUTLIER_COLOUR]
    assert [t["name"] for t in grey] == ["-1 · outliers"]
    assert picture["data"][0] is grey[0]  # drawn first, under the clusters
    assert sizes["data"][0]["y"][-1] == "-1 · outliers"
    assert values(sizes["data"][0]["x"])[-1] == int((kept.model.labels_ == -1).sum()) > 0
    assert "the rows left as outliers (-1) in grey" in html


def test_kmeans_shows_its_k_curve_and_no_external_section_without_labels(kmeans) -> None:
    report = cluster_report(kmeans)
    assert f"K-means with k = {kmeans.model.n_clusters_} (chosen by silhouette over 2-6)" in report.narrative
    assert "HDBSCAN" not in report.narrative and "known labels" not in report.narrative
    html = report.to_html()
    assert "Agreement with the known labels" not in html and "V-measure" not in html
    selection = figures(html)[-1]
    assert values(selection["data"][0]["x"]) == sorted(kmeans.model.k_scores_)
    assert selection["data"][1]["name"] == f"chosen: {kmeans.model.n_clusters_}"


# -- texts ---------------------------------------------------------------------------------------------------
def test_the_text_report_shows_keywords_examples_and_hover_texts(texts) -> None:
    report = cluster_report(texts)
    assert report.narrative.startswith("72 texts, embedded with TF-IDF + SVD, reduced with PCA")
    html = report.to_html()
    assert "Keywords and examples" in html and "Profiles" not in html
    assert "Agreement with the known labels" not in html
    for cluster, words in texts.keywords.items():
        assert ", ".join(words) in html, cluster
    example = texts.examples[0][0]
    assert example in html
    picture = figures(html)[0]
    hovers = [h for trace in picture["data"] for h in trace["text"]]
    assert len(hovers) == texts.n_rows == 72  # every row fits in the picture: no sample caption
    assert "shows a sample" not in html
    assert any(h.startswith("I want my money back") for h in hovers)


def test_the_report_is_written_as_one_html_page(texts, tmp_path) -> None:
    path = cluster_report(texts, title="Support themes").write(tmp_path)
    assert path.exists() and path.suffix == ".html" and path.parent == tmp_path
    page = path.read_text(encoding="utf-8")
    assert "Support themes" in page and 'class="plotly-figure"' in page
    assert (tmp_path / "index.html").exists()
    meta = json.loads(next(tmp_path.glob("*.meta.json")).read_text())
    assert meta["pipeline"] == "cluster" and meta["figures"] >= 4 and meta["tables"] >= 3
