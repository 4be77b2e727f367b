"""Shared fixtures: an isolated stackml home per test, a throwaway PostgreSQL database and Spark folder per
session, and ``warehouse_url``, which runs a test on each warehouse engine.

Service-backed tests skip with a reason when the service is missing, unless the matching STACKML_REQUIRE_*
variable is set (CI sets them), in which case a missing service fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own STACKML_HOME and no stray STACKML_* settings from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("STACKML_") and not name.startswith(("STACKML_TEST_", "STACKML_REQUIRE_")):
            monkeypatch.delenv(name)
    home = tmp_path / "stackml-home"
    monkeypatch.setenv("STACKML_HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return home


def require_or_skip(variable: str, reason: str) -> None:
    """Skip with ``reason``, or fail when ``variable`` says the service is mandatory here."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1 makes this mandatory)")
    pytest.skip(reason)


def _admin_url() -> str:
    return os.environ.get("STACKML_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (one per xdist worker), dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        require_or_skip(
            "STACKML_REQUIRE_POSTGRES", "psycopg is not installed (pip install 'stackml[postgres]')"
        )
    admin = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        require_or_skip("STACKML_REQUIRE_POSTGRES", f"PostgreSQL is not reachable at {admin}: {exc}")
    name = f"stackml_test_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, for tests whose state lives in fixed schemas (the online
    feature store); dropped afterwards."""
    from databases import new_database

    with new_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server (STACKML_TEST_REDIS_URL); tests name their streams uniquely, so they share it."""
    try:
        import redis
    except ImportError:
        require_or_skip("STACKML_REQUIRE_REDIS", "redis is not installed (pip install 'stackml[stream]')")
    url = os.environ.get("STACKML_TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.RedisError as exc:
        require_or_skip("STACKML_REQUIRE_REDIS", f"Redis is not reachable at {url}: {exc}")
    return url


@pytest.fixture(scope="session")
def spark_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Spark warehouse in a folder of this test session. Each xdist worker is its own process, so it gets
    its own folder and its own Spark session (no UI, no fixed ports), started by the first test needing it."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        require_or_skip("STACKML_REQUIRE_SPARK", "pyspark is not installed (pip install 'stackml[spark]')")
    from stackml.errors import MissingDependencyError
    from stackml.warehouse.spark_session import require_java

    try:
        require_java()
    except MissingDependencyError as exc:
        require_or_skip("STACKML_REQUIRE_SPARK", str(exc))
    return f"spark://local[2]?path={tmp_path_factory.mktemp('spark-warehouse')}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that takes ``warehouse_url`` on every engine its module lists in ``WAREHOUSE_ENGINES``
    (default DuckDB and PostgreSQL; Spark's start-up costs seconds, so its modules ask for it)."""
    if "warehouse_url" in metafunc.fixturenames:
        engines = getattr(metafunc.module, "WAREHOUSE_ENGINES", ("duckdb", "postgres"))
        metafunc.parametrize("warehouse_url", engines, indirect=True)


@pytest.fixture
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on each engine (see pytest_generate_tests); tables are dropped between tests."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'wh.duckdb'}"
        return
    url = request.getfixturevalue(f"{request.param}_url")
    yield url
    from stackml.warehouse import connect

    with connect(url) as wh:
        for table in wh.tables():
            wh.execute(
                f"DROP TABLE IF EXISTS {'.'.join(chr(34) + p + chr(34) for p in table.split('.'))}"
                + (" CASCADE" if request.param == "postgres" else "")
            )
        if request.param != "postgres":
            return
        for schema in wh.query(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
            "AND nspname NOT IN ('public', 'information_schema')"
        )["nspname"]:
            wh.execute(f'DROP SCHEMA "{schema}" CASCADE')
