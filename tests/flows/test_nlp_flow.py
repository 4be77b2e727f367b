"""NLPFlow end to end through the CLI: labelled texts -> search -> train -> choose -> registry -> report, then
``stackml nlp predict`` and the prediction service on the registered model; bad input exits 2 before any flow
starts. The TF-IDF kind keeps it quick; the transformer kinds are tested in tests/unit/nlp."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "nlp"))
_spec = importlib.util.spec_from_file_location(
    "nlp_texts", Path(__file__).resolve().parents[1] / "unit" / "nlp" / "conftest.py"
)
texts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(texts)

MODEL = "nlp-train"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("nlp_home")
    train_texts, train_labels = texts.make_texts(texts.OPENERS[:4], texts.CLOSERS[:4])
    test_texts, test_labels = texts.make_texts(texts.OPENERS[4:], texts.CLOSERS[4:])
    pd.DataFrame({"message": train_texts, "intent": train_labels}).to_csv(home / "train.csv", index=False)
    pd.DataFrame({"message": test_texts, "intent": test_labels}).to_csv(home / "test.csv", index=False)
    return home


def train_args(home: Path) -> list[str]:
    return [
        "nlp",
        "train",
        "--data",
        str(home / "train.csv"),
        "--text-column",
        "message",
        "--label-column",
        "intent",
    ]


@pytest.fixture(scope="module")
def trained(home: Path) -> dict:
    proc = cli(
        home,
        *train_args(home),
        "--test",
        str(home / "test.csv"),
        "--models",
        "tfidf",
        "--trials",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_train_prints_test_scores_the_choice_and_the_latency(trained: dict) -> None:
    assert trained["scored_on"] == "test" and trained["best"] == "tfidf"
    assert set(trained["models"]["tfidf"]) == {"accuracy", "macro_f1"}
    assert trained["models"]["tfidf"]["accuracy"] >= 0.9
    assert trained["searched"] == {"tfidf": 2}
    inference = trained["inference"]
    assert inference["variant"] == "model" and 0 < inference["p50_ms"] <= inference["p99_ms"]


def test_train_registers_promotes_and_reports(trained: dict, home: Path) -> None:
    assert trained["model_name"] == MODEL and trained["model_version"] == 1 and trained["promoted"] is True
    html = Path(trained["report"]).read_text()
    for text in ("Models compared", "Per class (test set)", "Hyper-parameter search", "Inference speed"):
        assert text in html
    models = json.loads(cli(home, "models", "--json").stdout)
    assert [(m["name"], m["aliases"]) for m in models] == [(MODEL, ["champion"])]


def test_predict_classifies_with_the_registered_model(trained: dict, home: Path) -> None:
    proc = cli(
        home,
        "nlp",
        "predict",
        "--model",
        MODEL,
        "--text",
        "my card never came",
        "--text",
        "forgot pin",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    predictions = json.loads(proc.stdout)["predictions"]
    assert [p["label"] for p in predictions] == ["card_arrival", "password"]
    assert all(1 >= p["probability"] >= p["probability_2"] >= p["probability_3"] >= 0 for p in predictions)


def test_the_prediction_service_serves_it(trained: dict, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stackml.config import get_settings
    from stackml.serving import create_app

    monkeypatch.setenv("STACKML_HOME", str(home))
    app = create_app(get_settings(home=home), models=[MODEL], reload_interval_s=0)
    with TestClient(app) as client:
        response = client.post(f"/v1/models/{MODEL}/predict", json={"records": [{"text": "i want a refund"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"][0]["label"] == "refund" and 0 < body["predictions"][0]["probability"] <= 1


@pytest.mark.parametrize(
    ("rows", "extra", "fragment"),
    [
        (
            {"message": ["a", "b", "", "c"], "intent": ["x", "x", "y", "y"]},
            [],
            "1 text(s) are empty or missing",
        ),
        ({"message": ["a", "b"], "intent": ["x", "x"]}, [], "only one class ('x')"),
        ({"text": ["a", "b"], "intent": ["x", "y"]}, [], "missing columns ['message']"),
        (
            {"message": ["a", "b", "c", "d"], "intent": ["x", "x", "y", "y"]},
            ["--models", "bert"],
            "unknown model kind",
        ),
    ],
)
def test_bad_input_exits_2_before_the_flow_starts(
    home: Path, rows: dict, extra: list[str], fragment: str
) -> None:
    path = home / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    args = [a if a != str(home / "train.csv") else str(path) for a in train_args(home)]
    proc = cli(home, *args, *extra)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr


def test_a_test_label_unseen_in_training_exits_2(home: Path) -> None:
    path = home / "test_unseen.csv"
    pd.DataFrame({"message": ["my card", "fraud!"], "intent": ["card_arrival", "fraud"]}).to_csv(
        path, index=False
    )
    proc = cli(home, *train_args(home), "--test", str(path))
    assert proc.returncode == 2 and "1 label(s) the training data does not: 'fraud' (1)" in proc.stderr


def test_the_train_step_reports_each_trial_for_the_progress_bar(trained: dict, home: Path) -> None:
    from stackml.config import get_settings
    from stackml.flows import load_run

    log = load_run(f"NLPFlow/{trained['run_id']}", get_settings(home=home))["train"].task.stdout
    assert "progress: tfidf trials 1/2 | best " in log and "progress: tfidf trials 2/2" in log
