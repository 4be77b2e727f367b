"""ClusterFlow end to end through the CLI: rows -> fit -> stability -> registry, assignments table and report,
then ``stackml cluster predict`` on the registered model; bad input exits 2 before any flow starts.

Two runs: numeric rows (PCA, the picture by PCA with --fast: no numba compile) and the default text path on
the bundled support messages (MiniLM, UMAP, HDBSCAN with min_cluster_size chosen from the data, outliers
moved)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

NUMERIC_MODEL, TEXT_MODEL = "segments", "themes"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def run_json(home: Path, *args: str) -> dict:
    proc = cli(home, "cluster", "run", *args, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cluster_home")
    X, y = make_blobs(n_samples=300, centers=3, n_features=3, random_state=4, cluster_std=0.7)
    frame = pd.DataFrame(X, columns=["spend", "visits", "tenure"])
    frame.assign(customer=np.arange(300) + 1, segment=y).to_csv(home / "customers.csv", index=False)
    return home


@pytest.fixture(scope="module")
def numeric(home: Path) -> dict:
    return run_json(
        home,
        "--data",
        str(home / "customers.csv"),
        "--id-column",
        "customer",
        "--labels-column",
        "segment",
        "--bootstraps",
        "5",
        "--fast",
        "--model-name",
        NUMERIC_MODEL,
    )


@pytest.fixture(scope="module")
def texts(home: Path) -> dict:
    from stackml.demo.nlp_demo import demo_file

    return run_json(
        home,
        "--data",
        str(demo_file("train")),
        "--labels-column",
        "label",
        "--bootstraps",
        "5",
        "--model-name",
        TEXT_MODEL,
    )


def test_numeric_rows_print_the_promised_summary(numeric: dict) -> None:
    assert numeric["n_clusters"] == 3 and numeric["outlier_share"] == 0
    assert numeric["external"]["v_measure"] > 0.95 and {"nmi", "ari"} <= set(numeric["external"])
    assert numeric["stability"]["mean"] > 0.9 and numeric["stability"]["min"] <= numeric["stability"]["mean"]
    assert 0.5 < numeric["silhouette"] <= 1
    assert numeric["registered"] and numeric["promoted"] is True and numeric["model_version"] == 1


def test_the_assignments_table_holds_every_row(numeric: dict, home: Path) -> None:
    from stackml.config import get_settings
    from stackml.warehouse import connect

    assert numeric["assignments_table"] == "segments_assignments"
    with connect(settings=get_settings(home=home), read_only=True) as wh:
        stored = wh.query("SELECT id, cluster, probability FROM segments_assignments ORDER BY id")
    assert stored["id"].tolist() == list(range(1, 301)) and stored["cluster"].nunique() == 3


def test_predict_places_new_rows_in_the_registered_clusters(numeric: dict, home: Path) -> None:
    rows = pd.read_csv(home / "customers.csv").head(5)
    rows[["spend", "visits", "tenure"]].to_csv(home / "new.csv", index=False)
    proc = cli(
        home, "cluster", "predict", "--model", NUMERIC_MODEL, "--data", str(home / "new.csv"), "--json"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    predictions = json.loads(proc.stdout)["predictions"]
    from stackml.config import get_settings
    from stackml.warehouse import connect

    with connect(settings=get_settings(home=home), read_only=True) as wh:
        known = wh.query("SELECT cluster FROM segments_assignments ORDER BY id LIMIT 5")["cluster"].tolist()
    assert [p["cluster"] for p in predictions] == known
    assert all(p["name"] and "sd" in p["keywords"] for p in predictions)


def test_the_report_shows_the_stability_table(numeric: dict) -> None:
    html = Path(numeric["report"]).read_text()
    assert "Stability" in html and "segments" in html


def test_the_default_text_path_finds_the_intents(texts: dict, home: Path) -> None:
    assert texts["input"] == "texts" and texts["algorithm"] == "hdbscan"
    assert texts["min_cluster_size"] >= 2 and texts["n_clusters"] >= 4
    assert texts["external"]["v_measure"] > 0.6, texts["external"]
    assert texts["outlier_share"] == 0 and texts["reassigned"] == texts["outliers_found"]
    assert all(c["keywords"] for c in texts["clusters"])
    proc = cli(
        home,
        "cluster",
        "predict",
        "--model",
        TEXT_MODEL,
        "--text",
        "I still have not received my refund",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [placed] = json.loads(proc.stdout)["predictions"]
    assert placed["cluster"] >= 0 and "refund" in placed["keywords"]


def test_the_steps_report_progress_for_the_bars(texts: dict, home: Path) -> None:
    from stackml.config import get_settings
    from stackml.flows import load_run

    run = load_run(f"ClusterFlow/{texts['run_id']}", get_settings(home=home))
    assert "progress: stability bootstraps 5/5" in run["assess"].task.stdout
    assert "compiles numba" in run["fit"].task.stdout


@pytest.mark.parametrize(
    ("rows", "extra", "fragment"),
    [
        ({"text": ["card late", "refund please", "Card late "]}, [], "repeats 1 text(s)"),
        (
            {"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]},
            ["--algorithm", "kmeans", "--k", "5"],
            "k (5) is larger",
        ),
        ({"a": [1.0, 2.0, 3.0]}, ["--k", "2"], "k applies to algorithm 'kmeans' only"),
        ({"a": [1.0, 2.0, 3.0]}, ["--columns", "a,b"], "missing columns ['b']"),
    ],
)
def test_bad_input_exits_2_before_the_flow_starts(
    home: Path, rows: dict, extra: list[str], fragment: str
) -> None:
    path = home / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    proc = cli(home, "cluster", "run", "--data", str(path), *extra)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in proc.stderr
