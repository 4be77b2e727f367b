"""The body size limit and the request metrics, on a small real FastAPI app."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from stackml.serving.metrics import Metrics  # noqa: E402
from stackml.serving.middleware import BodySizeLimit, MetricsMiddleware, route_labels  # noqa: E402


@pytest.fixture()
def client_and_metrics():
    app = FastAPI()

    @app.post("/v1/models/{name}/predict")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    metrics = Metrics()
    app.add_middleware(BodySizeLimit, max_bytes=100)
    app.add_middleware(MetricsMiddleware, metrics=metrics, served=frozenset({"demand"}))
    with TestClient(app) as client:
        yield client, metrics


def test_route_labels_bound_the_model_label():
    served = {"demand"}
    assert route_labels("/v1/models/demand/predict", served) == ("demand", "predict")
    assert route_labels("/v1/models/demand/reload", served) == ("demand", "reload")
    assert route_labels("/v1/models/demand", served) == ("demand", "model")
    assert route_labels("/v1/models/whatever/predict", served) == ("_unknown", "predict")
    assert route_labels("/v1/models", served) == ("", "models")
    assert route_labels("/metrics", served) == ("", "metrics")
    assert route_labels("/docs", served) == ("", "other")
    # every feature service under one label: the path is the client's choice
    assert route_labels("/v1/features/churn", served) == ("", "features")
    assert route_labels("/v1/features/anything-at-all", served) == ("", "features")


def test_bodies_up_to_the_limit_pass(client_and_metrics):
    client, _ = client_and_metrics
    assert client.post("/v1/models/demand/predict", content=b"x" * 100).json() == {"bytes": 100}


def test_declared_length_over_the_limit_gets_413(client_and_metrics):
    client, metrics = client_and_metrics
    response = client.post("/v1/models/demand/predict", content=b"x" * 101)
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 100 bytes.", "problems": []}
    assert 'stackml_errors_total{model="demand",status="413"} 1' in metrics.render()


def test_streamed_body_over_the_limit_gets_413(client_and_metrics):
    client, _ = client_and_metrics

    def chunks():  # no Content-Length: the limit must count while reading
        for _ in range(5):
            yield b"y" * 30

    response = client.post("/v1/models/demand/predict", content=chunks())
    assert response.status_code == 413
    assert "larger than 100 bytes" in response.json()["detail"]


def test_a_malformed_content_length_is_refused(client_and_metrics):
    client, _ = client_and_metrics
    response = client.post("/v1/models/demand/predict", content=b"x", headers={"content-length": "-1"})
    assert response.status_code == 413
