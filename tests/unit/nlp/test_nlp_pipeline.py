"""The pipeline's steps on the templated texts: choosing, the fast variants of a fine-tuned transformer and
which one is served, the registered pyfunc's output, and the report."""

from __future__ import annotations

import pandas as pd
import pytest

from stackml.nlp.config import NLPConfig
from stackml.nlp.pipeline import choose, speed_up, summarise


@pytest.fixture(scope="module")
def frame(train_set) -> pd.DataFrame:
    return pd.DataFrame({"text": train_set[0], "label": train_set[1]})


@pytest.fixture(scope="module")
def tfidf(train_set):
    from stackml.nlp import TextClassifier

    return TextClassifier("tfidf").fit(*train_set)


def test_the_choice_is_the_best_validation_macro_f1_and_the_cheaper_kind_on_a_tie(tfidf) -> None:
    class Scored:
        def __init__(self, f1: float) -> None:
            self.validation_scores_ = {"macro_f1": f1, "accuracy": f1}

    assert choose({"minilm": Scored(0.9), "tfidf": Scored(0.8)}) == "minilm"
    assert choose({"minilm": Scored(0.9), "tfidf": Scored(0.9)}) == "tfidf"
    assert choose({"tfidf": tfidf}) == "tfidf"


@pytest.mark.slow
def test_a_fine_tuned_transformer_gets_onnx_variants_and_int8_is_served_when_it_keeps_accuracy(
    minilm, frame, test_set
) -> None:
    pytest.importorskip("onnxruntime")
    config = NLPConfig(models="minilm", max_length=12)
    predictors, latency, serving = speed_up(minilm, frame, config)
    assert set(predictors) == set(latency) == {"model", "onnx-fp32", "onnx-int8"}
    for numbers in latency.values():
        assert 0 < numbers["p50_ms"] <= numbers["p99_ms"] and 0 <= numbers["val_accuracy"] <= 1
    int8_ok = latency["onnx-int8"]["val_accuracy"] >= latency["model"]["val_accuracy"] - config.max_int8_loss
    assert serving == ("onnx-int8" if int8_ok else "model")
    strict = config.replace(max_int8_loss=0.0)
    if latency["onnx-int8"]["val_accuracy"] < latency["model"]["val_accuracy"]:
        assert speed_up(minilm, frame, strict)[2] == "model"

    test = pd.DataFrame({"text": test_set[0], "label": test_set[1]})
    result = summarise({"minilm": minilm}, {}, frame, config, test=test, speed=(predictors, latency, serving))
    models = result.models(frame)
    assert [m.name_suffix for m in models] == ["", "-fp32" if serving == "onnx-int8" else "-int8"]
    out = models[0].python_model.predict(None, pd.DataFrame({"text": ["my card never came", "forgot pin"]}))
    assert list(out.columns) == [
        "label",
        "probability",
        "label_2",
        "probability_2",
        "label_3",
        "probability_3",
    ]
    assert (out["probability"] >= out["probability_2"]).all()
    summary = result.summary()
    assert summary["inference"]["variant"] == serving and summary["scored_on"] == "test"
    assert summary["epochs"]["minilm"] == len(result.classifiers["minilm"].history_) >= 1
    assert summary["fit_seconds"]["minilm"] > 0
    assert result.metrics()["onnx-int8_p50_ms"] > 0

    from stackml.nlp.report import nlp_report

    html = nlp_report(result).to_html()
    for text in ("Learning curves", "Inference speed", "Per class (test set)", "12 tokens were cut"):
        assert text in html


@pytest.mark.slow
def test_a_transformer_that_was_not_chosen_is_measured_but_not_served(tfidf, minilm, frame) -> None:
    pytest.importorskip("onnxruntime")
    predictors, latency, serving = speed_up(tfidf, frame, NLPConfig(), transformer=minilm)
    assert set(predictors) == {"model"} and serving == "model"
    assert set(latency) == {"model", "minilm", "minilm-onnx-fp32", "minilm-onnx-int8"}
    assert latency["minilm-onnx-int8"]["p50_ms"] > 0


def test_train_progress_counts_trials_of_a_search_and_epochs_of_a_fit() -> None:
    from stackml.nlp.pipeline import train_progress

    seen: list[tuple] = []
    report = train_progress(NLPConfig(trials=3, epochs=4), lambda *args: seen.append(args))
    report("tfidf", 7, {"value": 0.8, "best_value": 0.8123456})  # trial numbers of a resumed study
    report("tfidf", 8, {"value": float("nan"), "best_value": float("nan")})
    report("minilm", 1, {"epoch": 1.0, "val_accuracy": 0.5})
    assert seen == [
        ("tfidf trials", 1, 3, "best 0.8123"),
        ("tfidf trials", 2, 3, ""),
        ("minilm epochs", 1, 4, "validation accuracy 0.500"),
    ]


@pytest.mark.slow
def test_the_int8_variant_is_registered_and_answers_over_http(minilm, frame, train_set) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stackml import tracking
    from stackml.config import get_settings
    from stackml.pipelines import publish
    from stackml.serving import create_app

    config = NLPConfig(models="minilm", max_length=12, max_int8_loss=1.0)  # int8 served whatever it loses
    speed = speed_up(minilm, frame, config)
    assert speed[2] == "onnx-int8"
    # explicit settings: tracking keeps the last explicit ones, which an earlier test may have set elsewhere
    settings = get_settings()
    result = summarise({"minilm": minilm}, {}, frame, config, speed=speed)
    published = publish(result, frame, model_name="tickets", settings=settings)
    assert published.model_version is not None
    assert tracking.load_model("tickets-fp32@champion", settings=settings) is not None  # the torch model

    app = create_app(settings, models=["tickets"], reload_interval_s=0)
    records = [{"text": "my card never came"}, {"text": "i forgot my pin"}]
    with TestClient(app) as client:
        response = client.post("/v1/models/tickets/predict", json={"records": records})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and {p["label"] for p in predictions} <= set(train_set[1])
    assert all(0 < p["probability"] <= 1 and p["probability"] >= p["probability_2"] for p in predictions)
