"""Online features in the prediction service: ``POST /v1/features/{service}`` and the enrichment of a
model's records by entity key, against real DuckDB, PostgreSQL (the online store) and MLflow stores.

The module builds one world: a feature repo, orders in a DuckDB warehouse, the repo applied and materialised
into a PostgreSQL database of its own, and two models trained on the training set of service ``churn``:
``churn_sk`` (scikit-learn, enriched with ``--enrich``) and ``scorer`` (a pyfunc registered with
``register_model(..., feature_service="churn")``, enriched by its tag). Each test builds its own app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from databases import new_database

pytest.importorskip("mlflow")
pytest.importorskip("fastapi")
pytest.importorskip("sklearn")
pytest.importorskip("psycopg_pool")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from stackml.config import Settings, get_settings  # noqa: E402
from stackml.errors import InputError, RegistryError  # noqa: E402
from stackml.features import FeatureStore  # noqa: E402
from stackml.serving import ServingOptions, create_app  # noqa: E402
from stackml.tracking import FEATURE_SERVICE_TAG, configure, register_model  # noqa: E402
from stackml.warehouse import connect  # noqa: E402

REPO = """
entities: [{name: customer, join_keys: [customer_id]}]
sources: [{name: orders, table: orders, timestamp_field: event_timestamp}]
feature_views:
  - name: customer_orders
    entities: [customer]
    source: orders
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
  - name: recent
    entities: [customer]
    source: orders
    ttl: 1d
    features: [{name: last_amount, expr: amount}]
services:
  - {name: churn, features: ["customer_orders"]}
  - {name: fresh, features: ["recent:last_amount"]}
"""
NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
# customer -> (days ago, amount) of each order; the newest wins. Customer 3 last ordered 10 days ago, older
# than view `recent`'s TTL of one day: online it has `customer_orders` values but no `recent` one.
ORDERS = {
    1: [(9, 40.0), (2, 150.0)],
    2: [(5, 20.0), (3, 35.0)],
    3: [(10, 320.0)],
    4: [(4, 80.0), (0.5, 95.0)],
}
CHURN = ["customer_orders__amount", "customer_orders__big"]
JSON = {"content-type": "application/json"}


class Scorer(mlflow.pyfunc.PythonModel):
    """amount / 10, plus 100 for a big order: a model whose answers show the features it was given."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> list[float]:
        return (
            model_input["customer_orders__amount"] / 10 + 100 * model_input["customer_orders__big"]
        ).tolist()


@dataclass(frozen=True)
class World:
    repo: Path
    warehouse: str
    online: str
    registry_home: Path
    tracking_uri: str
    model: LinearRegression

    def settings(self, tmp_path: Path, **overrides: Any) -> Settings:
        return get_settings(home=tmp_path / "serve-home", tracking_uri=self.tracking_uri, **overrides)

    def options(self, tmp_path: Path, **overrides: Any) -> ServingOptions:
        fields = {"spill_dir": tmp_path / "spill", "features_repo": self.repo, "online_url": self.online}
        return ServingOptions(**{**fields, **overrides})

    def online_values(self, service: str, customers: list[int]) -> dict[str, list[Any]]:
        return FeatureStore(self.repo, online=self.online).get_online_features(
            service, [{"customer_id": c} for c in customers]
        )


@pytest.fixture(scope="module")
def online_db(postgres_url: str) -> Iterator[str]:
    with new_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, online_db: str) -> World:
    root = tmp_path_factory.mktemp("serving-features")
    repo = root / "feature_repo"
    repo.mkdir()
    (repo / "features.yaml").write_text(REPO)
    warehouse = f"duckdb:///{root / 'features.duckdb'}"
    rows = [
        {"customer_id": c, "event_timestamp": NOW - timedelta(days=d), "amount": a}
        for c, orders in ORDERS.items()
        for d, a in orders
    ]
    with connect(warehouse) as wh:
        wh.ingest(pd.DataFrame(rows), "orders", if_exists="replace")
    store = FeatureStore(repo, warehouse=warehouse, online=online_db)
    store.apply()
    store.materialize()

    # Train on the offline path: the training set of service churn, its feature columns only.
    entities = pd.DataFrame({"customer_id": list(ORDERS), "event_timestamp": [NOW] * len(ORDERS)})
    train = store.get_training_set(entities, "churn")
    features = train[CHURN]
    model = LinearRegression().fit(features, [1.0, 0.0, 1.0, 0.0])
    settings = get_settings(home=root / "registry")
    configure(settings)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(features, model.predict(features)),
            input_example=features.head(2),
            pip_requirements=["scikit-learn"],
            # skops, the default, imports every estimator (torch included) to save and to load: seconds.
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            registered_model_name="churn_sk",
        )
    register_model(
        Scorer(), "scorer", input_example=features.head(2), feature_service="churn", settings=settings
    )
    for name in ("churn_sk", "scorer"):
        configure(settings).set_registered_model_alias(name, "champion", "1")
    return World(repo, warehouse, online_db, settings.home, settings.tracking_uri, model)


def app_for(world: World, tmp_path: Path, models: list[str], **overrides: Any) -> Any:
    settings_overrides = overrides.pop("settings", {})
    return create_app(
        world.settings(tmp_path, **settings_overrides),
        models=models,
        reload_interval_s=0,
        options=world.options(tmp_path, **overrides),
    )


@pytest.fixture()
def client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    app = app_for(world, tmp_path, ["churn_sk", "scorer"], enrich={"churn_sk": "churn"})
    with TestClient(app) as c:
        yield c


def read(client: Any, service: str, entities: Any, **kwargs: Any) -> Any:
    return client.post(f"/v1/features/{service}", json={"entities": entities}, **kwargs)


def predict(client: Any, name: str, records: list[dict[str, Any]]) -> Any:
    return client.post(f"/v1/models/{name}/predict", json={"records": records})


# -- POST /v1/features/{service} -----------------------------------------------------------------------------
def test_features_endpoint_answers_each_entity_in_order(client: TestClient) -> None:
    response = read(client, "churn", [{"customer_id": 4}, {"customer_id": 99}, {"customer_id": 1}])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "churn"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["features"] == [
        {"customer_id": 4, "customer_orders__amount": 95.0, "customer_orders__big": False},
        {"customer_id": 99, "customer_orders__amount": None, "customer_orders__big": None},  # never seen
        {"customer_id": 1, "customer_orders__amount": 150.0, "customer_orders__big": True},
    ]
    # Customer 3's newest order is older than view recent's TTL: no value; customer 4's is fresh.
    fresh = read(client, "fresh", [{"customer_id": 3}, {"customer_id": 4}]).json()["features"]
    assert fresh == [
        {"customer_id": 3, "recent__last_amount": None},
        {"customer_id": 4, "recent__last_amount": 95.0},
    ]


def test_features_endpoint_names_every_problem(client: TestClient) -> None:
    unknown = read(client, "nope", [{"customer_id": 1}])
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == (
        "Feature service 'nope' is not served here: the feature definitions have no service 'nope' "
        "(services: churn, fresh)."
    )

    bad = read(
        client,
        "churn",
        [{}, {"customer_id": 1.5}, {"customer_id": True}, {"customer_id": None}, {"customer_id": 1, "x": 2}],
    )
    assert bad.status_code == 422
    assert [(p["record"], p["column"], p["kind"]) for p in bad.json()["problems"]] == [
        (0, "customer_id", "missing_column"),
        (1, "customer_id", "wrong_type"),
        (2, "customer_id", "wrong_type"),
        (3, "customer_id", "null_value"),
        (4, "x", "unknown_column"),
    ]
    messages = [p["message"] for p in bad.json()["problems"]]
    assert messages[0] == "entity 0: join key 'customer_id' of feature service 'churn' is missing."
    assert messages[1] == "entity 1: join key 'customer_id' must be a JSON string or integer; got number 1.5."
    assert messages[4] == "entity 4: unknown field 'x'; feature service 'churn' is read by: customer_id."

    # A string the key column (bigint) cannot hold is refused by PostgreSQL, and said so.
    text = read(client, "churn", [{"customer_id": "abc"}])
    assert text.status_code == 422
    assert "bigint" in text.json()["detail"] and text.json()["problems"][0]["kind"] == "wrong_type"

    sent = read(client, "churn", [{"customer_id": 1, "customer_orders__amount": 5.0}])
    assert sent.status_code == 422 and sent.json()["problems"][0]["kind"] == "feature_column"

    assert read(client, "churn", []).status_code == 422
    assert client.post("/v1/features/churn", content=b'{"entities": [{"customer_id": 1}]}').status_code == 415
    assert client.post("/v1/features/churn", content=b"{", headers=JSON).status_code == 422


def test_features_endpoint_keeps_the_body_limits(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path, ["scorer"], max_records=2, max_body_bytes=200)
    with TestClient(app) as c:
        assert read(c, "churn", [{"customer_id": 1}] * 2).status_code == 200
        too_many = read(c, "churn", [{"customer_id": 1}] * 3)
        assert too_many.status_code == 422
        assert too_many.json()["problems"][0]["message"].startswith(
            "entities: List should have at most 2 items"
        )
        assert read(c, "churn", [{"customer_id": "1" * 300}]).status_code == 413


def test_features_endpoint_is_behind_the_token(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path, ["scorer"], settings={"api_token": "s3cret"})
    with TestClient(app) as c:
        assert read(c, "churn", [{"customer_id": 1}]).status_code == 401
        assert (
            read(c, "churn", [{"customer_id": 1}], headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        ok = read(c, "churn", [{"customer_id": 1}], headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_an_online_store_without_the_views_answers_503(
    world: World, tmp_path: Path, postgres_url: str
) -> None:
    with (
        new_database(postgres_url) as empty_store,
        TestClient(
            app_for(world, tmp_path, ["scorer"], online_url=empty_store)  # nothing materialised there
        ) as c,
    ):
        empty = read(c, "churn", [{"customer_id": 1}])
        assert empty.status_code == 503
        assert empty.json()["detail"].startswith(
            "Feature service 'churn' cannot be read now: 1 problem(s) with the online feature store:"
        )
        assert "view 'customer_orders' has not been materialised" in empty.json()["detail"]
        # The failure is remembered for a few seconds: a client retrying at once is not held up by a new try.
        assert predict(c, "scorer", [{"customer_id": 1}]).status_code == 503


def test_definitions_and_the_online_store_default_to_the_settings(world: World, tmp_path: Path) -> None:
    # No features_repo: the service reads the version `apply` registered, before its log opens the file; no
    # online_url: the settings' postgres_url (STACKML_POSTGRES_URL).
    defaults = {"warehouse_url": world.warehouse, "postgres_url": world.online}
    app = app_for(world, tmp_path, ["scorer"], features_repo=None, online_url=None, settings=defaults)
    with TestClient(app) as c:
        features = read(c, "churn", [{"customer_id": 1}]).json()["features"]
        assert features[0]["customer_orders__amount"] == 150.0
        assert predict(c, "scorer", [{"customer_id": 1}]).json()["predictions"] == [115.0]


def test_without_any_definitions_the_endpoint_says_why(world: World, tmp_path: Path) -> None:
    app = create_app(
        world.settings(tmp_path),
        models=["churn_sk"],
        reload_interval_s=0,
        options=ServingOptions(spill_dir=tmp_path / "spill"),
    )
    with TestClient(app) as c:
        answer = read(c, "churn", [{"customer_id": 1}])
        assert answer.status_code == 404
        assert (
            "there are no feature services to read: the feature definitions registered in the"
            in (answer.json()["detail"])
        )


# -- enrichment ----------------------------------------------------------------------------------------------
def test_an_enriched_prediction_equals_the_model_on_the_online_features(
    world: World, client: TestClient
) -> None:
    customers = [1, 2, 3, 4]
    online = world.online_values("churn", customers)
    expected = world.model.predict(pd.DataFrame({c: online[c] for c in CHURN})).tolist()

    # --enrich (churn_sk) and the version's tag (scorer): records carry the entity key only.
    answer = predict(client, "churn_sk", [{"customer_id": c} for c in customers])
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(expected, rel=1e-12)
    scored = predict(client, "scorer", [{"customer_id": c} for c in customers]).json()["predictions"]
    assert scored == [115.0, 3.5, 132.0, 9.5]

    described = client.get("/v1/models").json()["models"]
    assert {m["name"]: m["feature_service"] for m in described} == {"churn_sk": "churn", "scorer": "churn"}


def test_enrichment_refuses_feature_columns_and_explains_missing_values(client: TestClient) -> None:
    sent = predict(client, "scorer", [{"customer_id": 1, "customer_orders__amount": 1e6}])
    assert sent.status_code == 422
    assert sent.json()["problems"] == [
        {
            "record": 0,
            "column": "customer_orders__amount",
            "kind": "feature_column",
            "message": "record 0: column 'customer_orders__amount' is read from feature service 'churn' by "
            "customer_id; leave it out of the record.",
        }
    ]
    missing = predict(client, "scorer", [{"customer_id": 1}, {"id": 2}])
    assert missing.status_code == 422
    assert [(p["record"], p["kind"]) for p in missing.json()["problems"]] == [(1, "missing_column")]

    # A customer the store has never seen: the signature's check says which feature is null, and why.
    unseen = predict(client, "churn_sk", [{"customer_id": 1}, {"customer_id": 99}])
    assert unseen.status_code == 422
    problems = unseen.json()["problems"]
    assert [(p["record"], p["column"], p["kind"]) for p in problems] == [
        (1, "customer_orders__amount", "null_value"),
        (1, "customer_orders__big", "null_value"),
    ]
    assert problems[0]["message"] == (
        "record 1: required column 'customer_orders__amount' (double) is null (feature service 'churn' has "
        "no value for this entity: it was never materialised, or its newest value is older than the view's "
        "TTL)."
    )


def test_the_prediction_log_keeps_the_keys_and_the_features(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path, ["scorer"])
    with TestClient(app) as c:
        assert predict(c, "scorer", [{"customer_id": 4}]).status_code == 200
    with connect(f"duckdb:///{tmp_path / 'serve-home' / 'warehouse.duckdb'}") as wh:
        inputs = wh.query("SELECT inputs FROM prediction_log")["inputs"].tolist()
    assert [json.loads(i) for i in inputs] == [
        {"customer_id": 4, "customer_orders__amount": 95.0, "customer_orders__big": False}
    ]


def test_a_model_the_service_cannot_enrich_is_not_served(world: World, tmp_path: Path) -> None:
    with pytest.raises(
        RegistryError, match=r"'churn_sk@champion' v1 takes feature service 'nope' \(--enrich\), "
    ):
        app_for(world, tmp_path, ["churn_sk"], enrich={"churn_sk": "nope"})
    # Trained on service churn, told to read service fresh: its signature does not take fresh's column.
    with pytest.raises(
        RegistryError, match=r"does not take the service's column\(s\) \['recent__last_amount'\]"
    ):
        app_for(world, tmp_path, ["churn_sk"], enrich={"churn_sk": "fresh"})
    # --enrich wins over the version's tag (scorer's names churn).
    with pytest.raises(
        RegistryError, match=r"'scorer@champion' v1 takes feature service 'fresh' \(--enrich\)"
    ):
        app_for(world, tmp_path, ["scorer"], enrich={"scorer": "fresh"})
    with pytest.raises(
        RegistryError, match="its stackml.feature_service tag.*no online store to read it from"
    ):
        app_for(world, tmp_path, ["scorer"], online_url=None)
    with pytest.raises(
        InputError, match=r"--enrich names model\(s\) this service does not serve: \['other'\]"
    ):
        app_for(world, tmp_path, ["scorer"], enrich={"other": "churn"})


def test_register_model_records_the_feature_service_as_a_tag(world: World) -> None:
    client = configure(get_settings(home=world.registry_home))
    assert client.get_model_version("scorer", "1").tags[FEATURE_SERVICE_TAG] == "churn"
    assert FEATURE_SERVICE_TAG not in client.get_model_version("churn_sk", "1").tags


def test_workers_serve_the_definitions_their_parent_read(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackml.serving.workers import WORKER_CONFIG_ENV, app_from_environment, worker_config

    parent = app_for(world, tmp_path, ["churn_sk"], enrich={"churn_sk": "churn"})
    options = parent.state.options
    config = worker_config(parent.state.cache.specs.values(), 0, None, options, parent.state.features)
    (world.repo / "features.yaml").rename(world.repo / "moved.txt")  # the worker must not read the repo
    try:
        monkeypatch.setenv(WORKER_CONFIG_ENV, config)
        monkeypatch.setenv("STACKML_HOME", str(tmp_path / "serve-home"))
        monkeypatch.setenv("STACKML_TRACKING_URI", world.tracking_uri)
        worker = app_from_environment()
    finally:
        (world.repo / "moved.txt").rename(world.repo / "features.yaml")
    assert worker.state.options == options
    assert worker.state.features.definitions == parent.state.features.definitions
    with TestClient(worker) as c:
        assert predict(c, "churn_sk", [{"customer_id": 1}]).status_code == 200


def test_cli_passes_the_feature_options_to_the_service(world: World, tmp_path: Path) -> None:
    env = {**os.environ, "STACKML_HOME": str(tmp_path / "home"), "STACKML_TRACKING_URI": world.tracking_uri}
    # --features-repo and --enrich reach the service, which refuses the model: --online is no PostgreSQL.
    proc = subprocess.run(
        [sys.executable, "-m", "stackml", "serve", "--models", "churn_sk", "--features-repo", str(world.repo)]
        + ["--enrich", "churn_sk=churn", "--online", f"duckdb:///{tmp_path / 'x.duckdb'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    refused = "'churn_sk@champion' v1 takes feature service 'churn' (--enrich), but there is no online store"
    assert refused in proc.stderr


def test_fuzzing_the_features_endpoint_finds_no_server_error(world: World, tmp_path: Path) -> None:
    """Schemathesis sends valid and invalid random requests; every answer is documented and none is a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    app = app_for(world, tmp_path, ["scorer"])
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)["/v1/features/{service}"]["POST"]
    statuses: set[int] = set()
    with TestClient(app):
        for mode in GenerationMode:

            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                statuses.add(case.call_and_validate(checks=checks).status_code)

            fuzz()
    assert 422 in statuses and not any(status >= 500 for status in statuses), statuses
