"""The prediction service against a real MLflow store, real DuckDB and PostgreSQL warehouses and real HTTP.

Tiny pyfunc models are registered once for the module (creating the MLflow schema is the slow part). Each
test builds its own app, with its own home for spill files, reading that store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("fastapi")

import httpx  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from stackml.config import Settings, get_settings  # noqa: E402
from stackml.errors import RegistryError  # noqa: E402
from stackml.serving import ServingOptions, create_app  # noqa: E402
from stackml.serving.app import SWITCH_INTERVAL_S  # noqa: E402
from stackml.tracking import configure, register_model  # noqa: E402
from stackml.warehouse import connect  # noqa: E402

# Per operation and generation mode; derandomized, so every run sends the same requests
# (STACKML_TEST_FUZZ_EXAMPLES raises it for a longer search by hand).
FUZZ_EXAMPLES = int(os.environ.get("STACKML_TEST_FUZZ_EXAMPLES", "40"))
ADDER_EXAMPLE = pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]})
TYPED_EXAMPLE = pd.DataFrame(
    {
        "n": pd.Series([1, 2], dtype="int64"),
        "small": pd.Series([3, 4], dtype="int32"),
        "flag": [True, False],
        "when": pd.to_datetime(["2024-01-01", "2024-06-30"]),
        "label": ["p", "q"],
    }
)


ODD_NAME = "odd\nname"


# -- models --------------------------------------------------------------------------------------------------
class Adder(mlflow.pyfunc.PythonModel):
    """y = x + k, plus 1 for group 'a': a model whose version shows in its answers."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"y": model_input["x"] + self.k + (model_input["g"] == "a")})


class Typed(mlflow.pyfunc.PythonModel):
    """Reads every column, so a wrongly typed frame would fail here."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "total": model_input["n"] + model_input["small"] + model_input["flag"].astype(int),
                "month": model_input["when"].dt.month,
                "label": model_input["label"].str.upper(),
            }
        )


class Fragile(mlflow.pyfunc.PythonModel):
    """Fails on negative input, as a model with a bug would."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> list[float]:
        if (model_input["x"] < 0).any():
            raise ValueError("negative x is not supported")
        return (model_input["x"] * 2).tolist()


@dataclass(frozen=True)
class Registry:
    """The module's MLflow store, and an empty copy of it (schema only)."""

    home: Path
    tracking_uri: str
    empty_home: Path

    def settings(self, tmp_path: Path, warehouse_url: str | None = None, **overrides: Any) -> Settings:
        """Settings reading this store, with their own home (spill files, DuckDB) under ``tmp_path``."""
        return get_settings(
            home=tmp_path / "serve-home",
            tracking_uri=self.tracking_uri,
            warehouse_url=warehouse_url,
            **overrides,
        )

    def set_alias(self, name: str, alias: str, version: int | None) -> None:
        client = configure(get_settings(home=self.home))
        if version is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, str(version))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """adder v1/v2 (aliases champion and live -> v1), typed and fragile (champion -> v1); adder v3 whose
    artifacts are gone; and two champions that cannot be served: ghost (artifacts gone) and a name with a
    newline."""
    import cloudpickle

    # By value, so that a server in another process (the CLI test) can load them without importing this file.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root = tmp_path_factory.mktemp("serving")
    settings = get_settings(home=root / "registry")
    client = configure(settings)
    empty = root / "empty"
    empty.mkdir()
    shutil.copyfile(settings.home / "mlflow.db", empty / "mlflow.db")
    for k in (1.0, 2.0):
        register_model(Adder(k), "adder", input_example=ADDER_EXAMPLE, settings=settings)
    register_model(Typed(), "typed", input_example=TYPED_EXAMPLE, settings=settings)
    register_model(Fragile(), "fragile", input_example=ADDER_EXAMPLE[["x"]], settings=settings)
    register_model(Adder(3.0), "adder", input_example=ADDER_EXAMPLE, settings=settings)
    register_model(Adder(1.0), "ghost", input_example=ADDER_EXAMPLE, settings=settings)
    register_model(Adder(1.0), ODD_NAME, input_example=ADDER_EXAMPLE, settings=settings)
    for name, version in (("adder", "3"), ("ghost", "1")):  # deleted artifacts: these cannot load
        shutil.rmtree(client.get_model_version_download_uri(name, version).removeprefix("file://"))
    for name, alias in [
        ("adder", "champion"),
        ("adder", "live"),
        ("typed", "champion"),
        ("fragile", "champion"),
        ("ghost", "champion"),
        (ODD_NAME, "champion"),
    ]:
        client.set_registered_model_alias(name, alias, "1")
    return Registry(settings.home, settings.tracking_uri, empty)


def options(tmp_path: Path, **overrides: Any) -> ServingOptions:
    return ServingOptions(spill_dir=tmp_path / "spill", **overrides)


@pytest.fixture()
def client(registry: Registry, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        registry.settings(tmp_path),
        models=["adder", "typed", "fragile"],
        reload_interval_s=0,
        options=options(tmp_path),
    )
    with TestClient(app) as c:
        yield c


JSON = {"content-type": "application/json"}


def predict(client: Any, name: str, records: list[dict[str, Any]], **kwargs: Any) -> Any:
    return client.post(f"/v1/models/{name}/predict", json={"records": records}, **kwargs)


# -- predictions and validation ------------------------------------------------------------------------------
def test_predict_answers_with_the_model_version_and_a_request_id(client: TestClient) -> None:
    response = predict(client, "adder", [{"x": 1.5, "g": "a"}, {"x": 2, "g": "b"}])

    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == [{"y": 3.5}, {"y": 3.0}]
    assert body["model"] == {"name": "adder", "version": 1}
    assert response.headers["x-request-id"] == body["request_id"]

    typed = predict(
        client, "typed", [{"n": 1, "small": 2, "flag": True, "when": "2024-03-05T10:00:00", "label": "z"}]
    )
    assert typed.json()["predictions"] == [{"total": 4, "month": 3, "label": "Z"}]
    assert predict(client, "fragile", [{"x": 2.5}]).json()["predictions"] == [5.0]


def test_the_service_shortens_the_gil_switch_interval_while_it_runs_and_restores_it(
    registry: Registry, tmp_path: Path
) -> None:
    # The log writer's bursts would otherwise hold the event loop up to 5 ms each (bench/serving.py).
    before = sys.getswitchinterval()
    app = create_app(
        registry.settings(tmp_path), models=["adder"], reload_interval_s=0, options=options(tmp_path)
    )
    with TestClient(app) as c:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert predict(c, "adder", [{"x": 1.0, "g": "a"}]).status_code == 200
    assert sys.getswitchinterval() == pytest.approx(before)


def test_a_client_request_id_is_kept_and_a_malformed_one_replaced(client: TestClient) -> None:
    mine = predict(client, "adder", [{"x": 1.0, "g": "a"}], headers={"X-Request-ID": "order-42.a"})
    assert mine.json()["request_id"] == "order-42.a"
    odd = predict(client, "adder", [{"x": 1.0, "g": "a"}], headers={"X-Request-ID": "no spaces/please"})
    assert odd.json()["request_id"] != "no spaces/please" and len(odd.json()["request_id"]) == 32


def test_422_lists_every_problem_in_every_record(client: TestClient) -> None:
    response = predict(
        client, "adder", [{"x": "one", "g": "a", "colour": "red"}, {"g": None}, {"x": 1.0, "g": "b"}]
    )

    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "4 problem(s) in the records for model 'adder' v1."
    assert [(p["record"], p["column"], p["kind"]) for p in body["problems"]] == [
        (0, "x", "wrong_type"),
        (0, "colour", "unknown_column"),
        (1, "x", "missing_column"),
        (1, "g", "null_value"),
    ]
    assert (
        body["problems"][0]["message"]
        == "record 0: column 'x' must be a finite JSON number (double); got string 'one'."
    )

    typed = predict(client, "typed", [{"n": 1.5, "small": 2**40, "flag": "yes", "when": "soon", "label": 3}])
    assert {p["column"] for p in typed.json()["problems"]} == {"n", "small", "flag", "when", "label"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "records: Field required"),
        ({"records": []}, "records: List should have at least 1 item"),
        ({"records": [1]}, "records.0: Input should be a valid dictionary"),
        ({"records": [{"x": 1.0, "g": "a"}], "extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_malformed_bodies_get_422_in_the_same_format(client: TestClient, body: Any, fragment: str) -> None:
    response = client.post("/v1/models/adder/predict", json=body)
    assert response.status_code == 422
    assert any(fragment in p["message"] for p in response.json()["problems"]), response.json()


def test_not_json_at_all_is_a_422_too(client: TestClient) -> None:
    response = client.post(
        "/v1/models/adder/predict", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["kind"] == "invalid_body"


def test_unknown_models_get_404_everywhere(client: TestClient) -> None:
    for response in (
        predict(client, "nope", [{"x": 1.0}]),
        client.post("/v1/models/nope/reload"),
        client.get("/v1/models/nope"),
    ):
        assert response.status_code == 404
        assert (
            response.json()["detail"]
            == "Model 'nope' is not served here; served models: adder, fragile, typed."
        )


def test_a_failing_model_gives_500_and_the_service_goes_on(client: TestClient) -> None:
    response = predict(client, "fragile", [{"x": -1.0}])
    assert response.status_code == 500
    assert (
        response.json()["detail"]
        == "The model 'fragile' v1 failed to predict: ValueError: negative x is not supported"
    )
    assert predict(client, "fragile", [{"x": 1.0}]).status_code == 200


def test_examples_are_published_only_when_asked(registry: Registry, tmp_path: Path) -> None:
    app = create_app(
        registry.settings(tmp_path),
        models=["adder"],
        reload_interval_s=0,
        options=options(tmp_path, publish_examples=True),
    )
    with TestClient(app) as c:
        rows = [{"x": 1.0, "g": "a"}, {"x": 2.0, "g": "b"}]
        assert c.get("/v1/models/adder").json()["example"] == rows
        body = c.get("/openapi.json").json()["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]
        assert body["content"]["application/json"]["examples"]["adder"]["value"] == {"records": rows}


def test_models_listing_shows_versions_and_schemas(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}

    assert sorted(models) == ["adder", "fragile", "typed"]
    adder = models["adder"]
    assert (adder["alias"], adder["version"]) == ("champion", 1)
    assert adder["input_schema"] == [
        {"type": "double", "name": "x", "required": True},
        {"type": "string", "name": "g", "required": True},
    ]
    assert adder["output_schema"] == [{"type": "double", "name": "y", "required": True}]
    assert adder["example"] is None  # training rows are published only when asked
    assert client.get("/v1/models/typed").json()["input_schema"][3] == {
        "type": "datetime",
        "name": "when",
        "required": True,
    }


# -- limits, auth, metrics, health ---------------------------------------------------------------------------
def test_bodies_over_the_limit_get_413(registry: Registry, tmp_path: Path) -> None:
    app = create_app(
        registry.settings(tmp_path),
        models=["adder"],
        reload_interval_s=0,
        options=options(tmp_path, max_body_bytes=300, max_records=3),
    )
    with TestClient(app) as c:
        assert predict(c, "adder", [{"x": 1.0, "g": "a"}] * 3).status_code == 200
        too_big = predict(c, "adder", [{"x": 1.0, "g": "a", "pad": "p" * 400}])
        assert too_big.status_code == 413
        assert too_big.json()["detail"] == "The request body is larger than 300 bytes."
        too_many = predict(c, "adder", [{"x": 1.0, "g": "a"}] * 4)
        assert too_many.status_code == 422 and "at most 3 items" in too_many.json()["problems"][0]["message"]


def test_bearer_token_guards_every_model_and_metrics_endpoint(registry: Registry, tmp_path: Path) -> None:
    settings = registry.settings(tmp_path, api_token="s3cret")
    with TestClient(
        create_app(settings, models=["adder"], reload_interval_s=0, options=options(tmp_path))
    ) as c:
        calls = [
            lambda **kw: predict(c, "adder", [{"x": 1.0, "g": "a"}], **kw),
            lambda **kw: c.get("/v1/models", **kw),
            lambda **kw: c.get("/v1/models/adder", **kw),
            lambda **kw: c.post("/v1/models/adder/reload", **kw),
            lambda **kw: c.get("/metrics", **kw),
            lambda **kw: c.get("/ready", **kw),
            lambda **kw: c.get("/openapi.json", **kw),
            lambda **kw: c.get("/docs", **kw),
        ]
        for call in calls:
            missing = call()
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            assert call(headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert call(headers={"Authorization": "Bearer s3cret"}).status_code == 200
        # Liveness stays open for probes without a token, and tells nothing.
        live = c.get("/health")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        spec = c.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert "401" in spec["paths"]["/v1/models/{name}/predict"]["post"]["responses"]


def test_bearer_token_from_the_environment(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKML_API_TOKEN", "from-env")
    with TestClient(
        create_app(
            registry.settings(tmp_path), models=["adder"], reload_interval_s=0, options=options(tmp_path)
        )
    ) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_metrics_count_requests_latency_and_errors_per_model(client: TestClient) -> None:
    for _ in range(3):
        predict(client, "adder", [{"x": 1.0, "g": "a"}, {"x": 2.0, "g": "b"}])
    predict(client, "adder", [{"x": "bad"}])
    predict(client, "fragile", [{"x": -1.0}])
    predict(client, "ghost", [{"x": 1.0}])

    response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['stackml_requests_total{model="adder",endpoint="predict",status="200"}'] == 3
    assert samples['stackml_errors_total{model="adder",status="422"}'] == 1
    assert samples['stackml_errors_total{model="fragile",status="500"}'] == 1
    assert samples['stackml_errors_total{model="_unknown",status="404"}'] == 1
    assert samples['stackml_request_duration_seconds_count{model="adder",endpoint="predict"}'] == 4
    assert samples['stackml_request_duration_seconds_bucket{model="adder",endpoint="predict",le="+Inf"}'] == 4
    assert samples['stackml_predicted_records_total{model="adder",version="1"}'] == 6
    assert samples['stackml_model_version{model="adder",alias="champion"}'] == 1
    assert samples["stackml_prediction_log_warehouse_ok"] in (0, 1)


def test_ready_probes_the_registry_and_the_warehouse(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body["status"] == "ok"
    assert body["registry"] == {
        "ok": True,
        "detail": "adder@champion=v1, typed@champion=v1, fragile@champion=v1",
    }
    assert body["warehouse"]["ok"] and body["warehouse"]["detail"].startswith("duckdb:///")
    assert body["models"] == {m: {"alias": "champion", "version": 1} for m in ("adder", "fragile", "typed")}
    assert body["unavailable"] == {} and body["refresh_errors"] == {}


def test_ready_probes_at_most_once_per_period_however_often_it_is_called(
    registry: Registry, tmp_path: Path
) -> None:
    app = create_app(
        registry.settings(tmp_path),
        models=["adder"],
        reload_interval_s=0,
        options=options(tmp_path, ready_cache_s=60),
    )
    calls = []
    probe = app.state.cache.probe
    app.state.readiness._probes["registry"] = lambda: (calls.append(1), probe())[1]
    with TestClient(app) as c:
        bodies = [c.get("/ready").json() for _ in range(50)]
    assert len(calls) == 1 and {b["status"] for b in bodies} == {"ok"}


def test_an_unreachable_warehouse_degrades_health_but_not_predictions(
    registry: Registry, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there
    settings = registry.settings(tmp_path, warehouse_url=f"postgresql://postgres@127.0.0.1:{closed}/nowhere")
    app = create_app(settings, models=["adder"], reload_interval_s=0, options=options(tmp_path))
    with TestClient(app) as c:
        assert predict(c, "adder", [{"x": 1.0, "g": "a"}]).status_code == 200
        assert app.state.prediction_log.flush()
        body = c.get("/ready").json()
        assert body["status"] == "degraded"
        assert not body["warehouse"]["ok"] and "Cannot connect to PostgreSQL" in body["warehouse"]["detail"]
        assert body["registry"]["ok"]
        assert body["prediction_log"]["spilled_rows"] == 1 and body["prediction_log"]["spill_files"] == 1


def test_create_app_names_every_model_it_cannot_serve(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(
        RegistryError, match=r"'nobody@champion' does not resolve.*'adder@nosuch' does not resolve"
    ):
        create_app(
            registry.settings(tmp_path), models=["nobody", "adder@nosuch", "typed"], options=options(tmp_path)
        )


# -- reload --------------------------------------------------------------------------------------------------
def test_reload_swaps_in_the_version_the_alias_points_to(registry: Registry, tmp_path: Path) -> None:
    registry.set_alias("adder", "live", 1)
    app = create_app(
        registry.settings(tmp_path), models=["adder@live"], reload_interval_s=0, options=options(tmp_path)
    )
    try:
        with TestClient(app) as c:
            assert predict(c, "adder", [{"x": 0.0, "g": "b"}]).json()["predictions"] == [{"y": 1.0}]
            registry.set_alias("adder", "live", 2)
            # No periodic refresh here: still v1 until asked.
            assert predict(c, "adder", [{"x": 0.0, "g": "b"}]).json()["model"]["version"] == 1
            assert c.post("/v1/models/adder/reload").json() == {
                "name": "adder",
                "alias": "live",
                "previous_version": 1,
                "version": 2,
                "changed": True,
            }
            answer = predict(c, "adder", [{"x": 0.0, "g": "b"}]).json()
            assert (answer["predictions"], answer["model"]["version"]) == ([{"y": 2.0}], 2)
            assert c.post("/v1/models/adder/reload").json()["changed"] is False
            assert 'stackml_model_version{model="adder",alias="live"} 2' in c.get("/metrics").text

            registry.set_alias("adder", "live", None)  # the alias is deleted: stop serving the model
            gone = c.post("/v1/models/adder/reload")
            assert gone.status_code == 409 and "'adder@live' does not resolve" in gone.json()["detail"]
            refused = predict(c, "adder", [{"x": 0.0, "g": "b"}])
            assert refused.status_code == 503
            assert refused.json()["detail"].startswith(
                "Model 'adder' is not available: 'adder@live' does not"
            )
            ready = c.get("/ready").json()
            assert ready["status"] == "unavailable" and "adder" in ready["unavailable"]

            registry.set_alias("adder", "live", 1)  # set again: served again
            assert c.post("/v1/models/adder/reload").json()["version"] == 1
            assert predict(c, "adder", [{"x": 0.0, "g": "b"}]).status_code == 200
    finally:
        registry.set_alias("adder", "live", 1)


def test_periodic_refresh_swaps_under_load_without_a_failed_request(
    registry: Registry, tmp_path: Path, warehouse_url: str
) -> None:
    """Four clients call a real uvicorn server while the alias moves; every answer is a 200, each client sees
    v1 then v2 and never back, and the prediction log holds exactly the answered requests."""
    registry.set_alias("adder", "live", 1)
    app = create_app(
        registry.settings(tmp_path, warehouse_url=warehouse_url),
        models=["adder@live"],
        reload_interval_s=0.2,
        options=options(tmp_path, log_flush_interval_s=0.2),
    )
    answers: list[list[tuple[int, int, str]]] = [[] for _ in range(4)]
    stop = threading.Event()

    def hammer(out: list[tuple[int, int, str]]) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                r = http.post("/v1/models/adder/predict", json={"records": [{"x": 0.0, "g": "b"}]})
                version = r.json()["model"]["version"] if r.status_code == 200 else -1
                out.append((r.status_code, version, r.headers.get("x-request-id", "")))

    try:
        with live_server(app) as base:
            threads = [threading.Thread(target=hammer, args=(out,)) for out in answers]
            for t in threads:
                t.start()
            time.sleep(0.5)
            registry.set_alias("adder", "live", 2)
            deadline = time.monotonic() + 15
            while not any(v == 2 for out in answers for _, v, _ in out[-3:]) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            stop.set()
            for t in threads:
                t.join()
    finally:
        registry.set_alias("adder", "live", 1)

    flat = [a for out in answers for a in out]
    assert {status for status, _, _ in flat} == {200}
    for out in answers:
        versions = [v for _, v, _ in out]
        assert versions == sorted(versions), "a client went back to the old version"
    assert {1, 2} <= {v for _, v, _ in flat}
    with connect(warehouse_url) as wh:  # the server has shut down gracefully, so the log is complete
        logged = wh.query("SELECT request_id, model_version FROM prediction_log")
    assert len(logged) == len(flat)
    assert dict(zip(logged.request_id, logged.model_version)) == {rid: v for _, v, rid in flat}


# -- the prediction log --------------------------------------------------------------------------------------
def test_every_prediction_is_logged_and_shutdown_flushes(
    registry: Registry, tmp_path: Path, warehouse_url: str
) -> None:
    # Batches would wait a minute: only the graceful shutdown can have written these rows.
    app = create_app(
        registry.settings(tmp_path, warehouse_url=warehouse_url),
        models=["adder", "typed"],
        reload_interval_s=0,
        options=options(tmp_path, log_flush_interval_s=60, log_batch_size=10_000),
    )
    sent = []
    with TestClient(app) as c:
        for i in range(5):
            r = predict(c, "adder", [{"x": float(i), "g": "a"}, {"x": -1.0, "g": "b"}])
            sent.append(r.json())
        typed = predict(
            c, "typed", [{"n": 1, "small": 2, "flag": False, "when": "2024-02-01T00:00:00", "label": "k"}]
        )
        assert app.state.prediction_log.stats().written_rows == 0

    with connect(warehouse_url) as wh:
        log = wh.query("SELECT * FROM prediction_log ORDER BY logged_at, request_id, row_index")
    assert len(log) == 11
    first = log[log.request_id == sent[0]["request_id"]].sort_values("row_index")
    assert [json.loads(v) for v in first.inputs] == [{"x": 0.0, "g": "a"}, {"x": -1.0, "g": "b"}]
    assert [json.loads(v) for v in first.outputs] == sent[0]["predictions"]
    assert (
        set(first.model_name) == {"adder"}
        and set(first.model_version) == {1}
        and set(first.model_alias) == {"champion"}
    )
    row = log[log.request_id == typed.json()["request_id"]].iloc[0]
    assert json.loads(row.outputs) == {"total": 3, "month": 2, "label": "K"}
    assert pd.Timestamp(row.logged_at).tzinfo is not None


HOLD_DUCKDB = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"
)


@contextmanager
def warehouse_down(warehouse_url: str) -> Iterator[tuple[str, Any]]:
    """A warehouse URL that cannot be used yet, and a function that brings it up.

    DuckDB: another process holds the file (DuckDB admits one). PostgreSQL: the database does not exist yet.
    """
    if warehouse_url.startswith("duckdb"):
        path = warehouse_url.removeprefix("duckdb:///")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_DUCKDB, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "held"

        def bring_up() -> None:
            holder.stdin.close()
            holder.wait(30)

        try:
            yield warehouse_url, bring_up
        finally:
            if holder.poll() is None:
                holder.kill()
        return
    import psycopg

    base, _, name = warehouse_url.rpartition("/")
    late = f"{name}_late_{uuid.uuid4().hex[:6]}"
    admin = psycopg.connect(warehouse_url, autocommit=True)
    try:
        yield f"{base}/{late}", lambda: admin.execute(f'CREATE DATABASE "{late}"')
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{late}" WITH (FORCE)')
        admin.close()


def test_warehouse_outage_spills_and_replays_every_row_once(
    registry: Registry, tmp_path: Path, warehouse_url: str
) -> None:
    with warehouse_down(warehouse_url) as (url, bring_up):
        app = create_app(
            registry.settings(tmp_path, warehouse_url=url),
            models=["adder"],
            reload_interval_s=0,
            options=options(tmp_path, log_retry_interval_s=0.1, ready_cache_s=0),
        )
        plog = app.state.prediction_log
        with TestClient(app) as c:
            ids = [predict(c, "adder", [{"x": float(i), "g": "b"}]).json()["request_id"] for i in range(6)]
            assert plog.flush()
            health = c.get("/ready").json()
            assert health["status"] == "degraded" and health["prediction_log"]["spilled_rows"] == 6

            bring_up()
            ids += [predict(c, "adder", [{"x": 9.0, "g": "b"}]).json()["request_id"] for _ in range(2)]
            assert plog.flush()
            health = c.get("/ready").json()
            assert health["status"] == "ok"
            assert (
                health["prediction_log"]["replayed_rows"] == 6
                and health["prediction_log"]["spill_files"] == 0
            )
        with connect(url) as wh:
            logged = wh.query("SELECT request_id FROM prediction_log").request_id.tolist()
    assert sorted(logged) == sorted(ids)


# -- the API document ----------------------------------------------------------------------------------------
def test_openapi_document_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    predict_op = spec["paths"]["/v1/models/{name}/predict"]["post"]
    name = next(p for p in predict_op["parameters"] if p["name"] == "name")
    assert name["schema"]["enum"] == ["adder", "fragile", "typed"]
    body_schema = predict_op["requestBody"]["content"]["application/json"]
    assert "examples" not in body_schema  # training rows are not published unless asked
    assert body_schema["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert set(predict_op["responses"]) == {"200", "400", "404", "413", "415", "422", "500", "503"}
    components = spec["components"]["schemas"]
    assert components["PredictRequest"]["properties"]["records"]["maxItems"] == 1_000
    assert set(components["PredictResponse"]["required"]) == {"predictions", "model", "request_id"}
    assert "HTTPValidationError" not in components  # 422s use our own ErrorResponse
    assert set(spec["paths"]) == {
        "/health",
        "/ready",
        "/v1/models",
        "/v1/models/{name}",
        "/v1/models/{name}/predict",
        "/v1/models/{name}/reload",
        "/v1/features/{service}",
        "/metrics",
    }


def test_fuzzing_the_api_finds_no_server_error(registry: Registry, tmp_path: Path) -> None:
    """Schemathesis sends the document's examples, then valid and invalid random requests for every operation,
    and checks that no answer is a 5xx and that every answer matches the document (status, type, schema)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    app = create_app(
        registry.settings(tmp_path),
        models=["adder", "typed"],
        reload_interval_s=0,
        options=options(tmp_path, publish_examples=True),
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    ran: dict[str, int] = {}
    with TestClient(app):
        predict_op = schema["/v1/models/{name}/predict"]["POST"]
        for name, example in predict_op.definition.raw["requestBody"]["content"]["application/json"][
            "examples"
        ].items():
            response = predict_op.Case(
                path_parameters={"name": name}, body=example["value"]
            ).call_and_validate(checks=checks)
            assert response.status_code == 200, response.text
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in GenerationMode:

                @settings(
                    max_examples=FUZZ_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def fuzz(case: Any) -> None:
                    ran[case.operation.label] = ran.get(case.operation.label, 0) + 1
                    case.call_and_validate(checks=checks)

                try:
                    fuzz()
                except Unsatisfiable:
                    assert (
                        mode is GenerationMode.NEGATIVE
                    )  # an operation without inputs has no invalid request
    assert ran["POST /v1/models/{name}/predict"] >= 60, ran
    assert len(ran) == 8  # every operation, /v1/features/{service} included


def test_an_alias_moved_to_a_version_that_cannot_load_degrades_ready(
    registry: Registry, tmp_path: Path
) -> None:
    registry.set_alias("adder", "live", 1)
    app = create_app(
        registry.settings(tmp_path),
        models=["adder@live"],
        reload_interval_s=0.1,
        options=options(tmp_path, ready_cache_s=0),
    )
    try:
        with TestClient(app) as c:
            assert c.get("/ready").json()["status"] == "ok"
            registry.set_alias("adder", "live", 3)  # v3's artifacts are gone
            assert wait_for(lambda: c.get("/v1/models/adder").json()["last_refresh_error"])
            assert (
                "'adder@live' v3 cannot be loaded" in c.get("/v1/models/adder").json()["last_refresh_error"]
            )
            ready = c.get("/ready").json()
            assert ready["status"] == "degraded" and "v3 cannot be loaded" in ready["refresh_errors"]["adder"]
            assert 'stackml_model_refresh_failing{model="adder"} 1' in c.get("/metrics").text
            assert predict(c, "adder", [{"x": 0.0, "g": "b"}]).json()["model"]["version"] == 1
            registry.set_alias("adder", "live", 1)
            assert wait_for(lambda: c.get("/v1/models/adder").json()["last_refresh_error"] is None)
            assert c.get("/ready").json()["status"] == "ok"
    finally:
        registry.set_alias("adder", "live", 1)


# -- over real HTTP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_non_finite_numbers_get_422_naming_the_column(
    registry: Registry, tmp_path: Path, number: str
) -> None:
    app = create_app(
        registry.settings(tmp_path), models=["adder"], reload_interval_s=0, options=options(tmp_path)
    )
    body = '{"records": [{"x": 1.0, "g": "a"}, {"x": %s, "g": "b"}]}' % number
    with live_server(app) as base:
        r = httpx.post(f"{base}/v1/models/adder/predict", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert [(p["record"], p["column"], p["kind"]) for p in r.json()["problems"]] == [(1, "x", "wrong_type")]
    assert "must be a finite JSON number (double)" in r.json()["problems"][0]["message"]


def test_415_without_a_json_content_type_and_capped_422_answers(registry: Registry, tmp_path: Path) -> None:
    app = create_app(
        registry.settings(tmp_path),
        models=["adder"],
        reload_interval_s=0,
        options=options(tmp_path, max_records=5000, max_body_bytes=4 << 20),
    )
    with live_server(app) as base, httpx.Client(base_url=base) as http:
        body = json.dumps({"records": [{"x": 1.0, "g": "a"}]}).encode()
        missing = http.post("/v1/models/adder/predict", content=body)
        assert missing.status_code == 415
        assert missing.json()["detail"] == (
            "The body must be JSON, sent with 'Content-Type: application/json'; got no Content-Type header."
        )
        text = http.post("/v1/models/adder/predict", content=body, headers={"content-type": "text/plain"})
        assert text.status_code == 415 and "got 'text/plain'" in text.json()["detail"]

        bad = [{"x": "no", "g": 1, "k" * 100: 1}] * 5000  # 15,000 problems in a 0.7 MB body
        r = http.post("/v1/models/adder/predict", json={"records": bad})
        assert r.status_code == 422 and len(r.content) < 40_000
        assert r.json()["detail"].startswith(
            "15000 problem(s) in the records for model 'adder' v1. The first 100"
        )
        assert len(r.json()["problems"]) == 100
        too_many = http.post("/v1/models/adder/predict", json={"records": [{"x": 1.0, "g": "a"}] * 5001})
        assert (
            too_many.status_code == 422 and "at most 5000 items" in too_many.json()["problems"][0]["message"]
        )


def test_a_heavy_client_does_not_stall_the_others(registry: Registry, tmp_path: Path) -> None:
    """Large requests are parsed, validated, predicted and encoded off the event loop: small requests sent
    meanwhile are answered in a fraction of the time one large request takes."""
    app = create_app(
        registry.settings(tmp_path),
        models=["adder"],
        reload_interval_s=0,
        options=options(tmp_path, max_records=100_000, max_body_bytes=16 << 20),
    )
    heavy_body = json.dumps({"records": [{"x": float(i), "g": "a"} for i in range(60_000)]})
    heavy_s: list[float] = []
    light_s: list[float] = []
    done = threading.Event()
    with live_server(app) as base:

        def heavy() -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(3):
                    started = time.perf_counter()
                    r = http.post("/v1/models/adder/predict", content=heavy_body, headers=JSON)
                    heavy_s.append(time.perf_counter() - started)
                    assert r.status_code == 200
            done.set()

        thread = threading.Thread(target=heavy)
        thread.start()
        with httpx.Client(base_url=base, timeout=60) as http:
            while not done.is_set():
                started = time.perf_counter()
                assert predict(http, "adder", [{"x": 1.0, "g": "a"}]).status_code == 200
                light_s.append(time.perf_counter() - started)
        thread.join()
    # on the event loop, each small request would wait for a whole large one: a few of them in all, each about
    # as slow as a large one. Off the loop they keep flowing; a C call holding the GIL (parsing a large body)
    # can still delay one now and then, so the typical one is judged, not the slowest
    assert len(light_s) >= 20, (len(light_s), heavy_s)
    assert statistics.median(light_s) < min(heavy_s) / 4, (statistics.median(light_s), heavy_s)


# -- the command line ----------------------------------------------------------------------------------------
def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in lines[0], lines[0]


def test_cli_rejects_a_malformed_models_option(tmp_path: Path) -> None:
    proc = run_cli("serve", "--models", "demand,a b", env={"STACKML_HOME": str(tmp_path)})
    assert_clean_error(proc, "Model specs must be 'name' or 'name@alias'")


def test_cli_without_any_champion_says_what_to_do(registry: Registry, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(registry.empty_home / "mlflow.db", home / "mlflow.db")
    proc = run_cli("serve", env={"STACKML_HOME": str(home)})
    assert_clean_error(proc, "No registered model has a 'champion' alias to serve (registered models: none).")


@contextmanager
def cli_server(registry: Registry, tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``stackml serve`` in its own process on a free port, with a DuckDB warehouse under ``tmp_path``."""
    port = free_port()
    env = {
        **os.environ,
        "STACKML_HOME": str(tmp_path / "home"),
        "STACKML_TRACKING_URI": registry.tracking_uri,
        "STACKML_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'served.duckdb'}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "stackml", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: server.poll() is not None or _reachable(f"{base}/health"), timeout=120)
        assert server.poll() is None, server.stderr.read()
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=60)


def logged_request_ids(tmp_path: Path) -> list[str]:
    with connect(f"duckdb:///{tmp_path / 'served.duckdb'}") as wh:
        return wh.query("SELECT request_id FROM prediction_log").request_id.tolist()


def test_cli_serves_every_servable_champion_with_workers_until_sigterm(
    registry: Registry, tmp_path: Path
) -> None:
    """Default mode with two broken champions, two workers, JSON logs, listening on every address."""
    args = ("--workers", "2", "--host", "0.0.0.0", "--log-format", "json", "--reload-interval", "0")
    with cli_server(registry, tmp_path, *args) as (server, base):
        with httpx.Client(base_url=base) as http:
            served = {m["name"] for m in http.get("/v1/models").json()["models"]}
            assert served == {"adder", "typed", "fragile"}  # every model with a champion that loads
            ready = http.get("/ready").json()
            assert set(ready["unavailable"]) == {"ghost", ODD_NAME}
            assert "'ghost@champion' v1 cannot be loaded" in ready["unavailable"]["ghost"]
            assert ready["status"] == "degraded"
            ids = []
            for i in range(40):  # new connections: both workers answer some
                r = httpx.post(
                    f"{base}/v1/models/adder/predict", json={"records": [{"x": float(i), "g": "a"}]}
                )
                assert r.status_code == 200
                ids.append(r.json()["request_id"])
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=120)
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    assert "Serving adder@champion v1, fragile@champion v1, typed@champion v1" in stderr
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert all({"ts", "level", "logger", "pid", "message"} <= set(e) for e in events)
    assert any(e["level"] == "WARNING" and "without STACKML_API_TOKEN" in e["message"] for e in events)
    assert any(
        e["level"] == "ERROR" and e["message"].startswith("Not serving ghost@champion: ") for e in events
    )
    workers = {e["pid"] for e in events if e.get("event") == "worker"}
    assert len(workers) == 2
    assert sorted(logged_request_ids(tmp_path)) == sorted(ids)  # every answered request, once


def hammer(base: str, clients: int, stop: threading.Event) -> list[list[tuple[str, str]]]:
    """Clients on kept-alive connections predicting until ``stop`` or until the server refuses them; each
    outcome is ("ok", request id) or (error class, "")."""
    outcomes: list[list[tuple[str, str]]] = [[] for _ in range(clients)]

    def run(out: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/models/adder/predict", json={"records": [{"x": 1.0, "g": "a"}]})
                except httpx.ConnectError:  # refused: nothing was sent, a client may retry elsewhere
                    out.append(("ConnectError", ""))
                    return
                except httpx.HTTPError as exc:
                    out.append((type(exc).__name__, ""))
                    continue
                out.append(
                    ("ok", r.json()["request_id"]) if r.status_code == 200 else (str(r.status_code), "")
                )

    threads = [threading.Thread(target=run, args=(out,)) for out in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_answers_every_request_sent_on_kept_alive_connections(
    registry: Registry, tmp_path: Path, workers: str
) -> None:
    args = ("--workers", workers, "--models", "adder", "--drain-seconds", "1")
    with cli_server(registry, tmp_path, *args) as (server, base):
        stop = threading.Event()
        signaller = threading.Timer(1.5, server.send_signal, args=(signal.SIGTERM,))
        signaller.start()
        outcomes = hammer(base, 8, stop)
        _, stderr = server.communicate(timeout=120)
    flat = [o for out in outcomes for o in out]
    failures = [kind for kind, _ in flat if kind not in ("ok", "ConnectError")]
    assert failures == [], failures  # no request was reset or left unanswered
    assert "SIGTERM: draining for 1 s" in stderr
    answered = [rid for kind, rid in flat if kind == "ok"]
    assert len(answered) > 50 and sorted(logged_request_ids(tmp_path)) == sorted(answered)


def test_sigkill_loses_no_answered_prediction(registry: Registry, tmp_path: Path) -> None:
    """The writer would wait a minute for its batch: only the journal can keep these rows."""
    with cli_server(registry, tmp_path, "--workers", "1", "--models", "adder") as (server, base):
        stop = threading.Event()
        killer = threading.Timer(2.0, lambda: (server.send_signal(signal.SIGKILL), stop.set()))
        killer.start()
        outcomes = hammer(base, 4, stop)
        server.wait(60)
    answered = [rid for out in outcomes for kind, rid in out if kind == "ok"]
    assert server.returncode == -signal.SIGKILL and len(answered) > 20
    settings = registry.settings(tmp_path, warehouse_url=f"duckdb:///{tmp_path / 'served.duckdb'}")
    from stackml.serving.app import prediction_log

    replay = prediction_log(settings, ServingOptions(spill_dir=tmp_path / "home" / "serving" / "spill"))
    replay.start()
    assert replay.flush()
    replay.close()
    assert set(answered) <= set(logged_request_ids(tmp_path))


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- helpers -------------------------------------------------------------------------------------------------
def wait_for(condition: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port; a graceful stop on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
