"""The CLI through a real subprocess: success paths and every bad input of the backbone issue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackml.warehouse import connect


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit code 2, one line on stderr, no traceback, and the fragments in that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text("id,region,amount\n1,north,10.5\n2,south,\n3,east,7.25\n")
    return path


@pytest.fixture
def wh_url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'cli.duckdb'}"


def test_help_is_fast_and_lists_commands() -> None:
    started = time.perf_counter()
    proc = run_cli("--help")
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0
    for command in ("ingest", "sql", "tables", "runs", "models", "demo"):
        assert command in proc.stdout
    assert elapsed < 3.0  # about 0.2 s here; generous for a loaded CI machine
    # The start-up path must not import the heavy libraries.
    probe_code = (
        "import sys, stackml.cli; "
        "print(sorted(m for m in ('pandas','duckdb','mlflow','metaflow','plotly','psycopg') "
        "if m in sys.modules))"
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            probe_code,
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "[]", probe.stdout


@pytest.mark.parametrize(
    "command", [["ingest"], ["sql"], ["tables"], ["schema"], ["serve"], ["forecast", "run"], ["mmm", "fit"]]
)
def test_every_command_that_touches_the_warehouse_takes_the_warehouse_option(command: list[str]) -> None:
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0 and "--warehouse" in proc.stdout and "-w" in proc.stdout


def test_pipeline_options_default_to_the_config_classes() -> None:
    """A default is typed once, in the configuration class; the CLI shows that value."""
    from stackml.forecasting.config import ForecastConfig
    from stackml.mmm.config import MMMConfig
    from stackml.pipelines import default_of

    mmm = run_cli("mmm", "fit", "--help").stdout
    for option, field in (("--draws", "draws"), ("--max-rhat", "max_rhat"), ("--min-ess", "min_ess")):
        shown = mmm.split(option, 1)[1].split("[default: ", 1)[1].split("]", 1)[0]
        assert float(shown) == default_of(MMMConfig, field)
    # wide enough that rich neither wraps nor cuts the default list
    forecast = run_cli("forecast", "run", "--help", env={"COLUMNS": "250"}).stdout
    shown = forecast.split("--models", 1)[1].split("[default: ", 1)[1].split("]", 1)[0]
    assert shown == ",".join(default_of(ForecastConfig, "models"))


def test_ingest_sql_tables_schema_roundtrip(csv_file: Path, wh_url: str) -> None:
    proc = run_cli("ingest", str(csv_file), "--table", "sales", "--warehouse", wh_url)
    assert proc.returncode == 0, proc.stderr
    assert "Created 'sales': 3 rows" in proc.stdout
    proc = run_cli("sql", "SELECT id, region, amount FROM sales ORDER BY id", "--warehouse", wh_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {"id": 1, "region": "north", "amount": 10.5},
        {"id": 2, "region": "south", "amount": None},
        {"id": 3, "region": "east", "amount": 7.25},
    ]
    table = run_cli("sql", "SELECT * FROM sales", "--warehouse", wh_url)
    assert table.returncode == 0 and "north" in table.stdout
    listed = json.loads(run_cli("tables", "--warehouse", wh_url, "--json").stdout)
    assert listed == [{"table": "sales", "rows": 3, "columns": 3}]
    columns = json.loads(run_cli("schema", "sales", "--warehouse", wh_url, "--json").stdout)
    assert columns == {"id": "BIGINT", "region": "VARCHAR", "amount": "DOUBLE"}
    appended = run_cli(
        "ingest", str(csv_file), "-t", "sales", "--if-exists", "append", "-w", wh_url, "--json"
    )
    assert json.loads(appended.stdout)["mode"] == "append"
    assert json.loads(run_cli("tables", "-w", wh_url, "--json").stdout)[0]["rows"] == 6


def test_default_warehouse_needs_no_configuration(csv_file: Path, isolated_home: Path) -> None:
    proc = run_cli("ingest", str(csv_file), "--table", "sales")
    assert proc.returncode == 0, proc.stderr
    assert (isolated_home / "warehouse.duckdb").is_file()


def _unchanged(wh_url: str) -> list[tuple]:
    with connect(wh_url) as wh:
        return [(t, wh.row_count(t), tuple(wh.schema(t))) for t in wh.tables()]


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (
            lambda tmp, csv: ["ingest", str(tmp / "missing.csv"), "--table", "t"],
            ["File not found", "missing.csv"],
        ),
        (
            lambda tmp, csv: ["ingest", str(_write(tmp / "bad.csv", "a,b\n1,2\n3,4,5\n")), "--table", "t"],
            ["Could not read", "bad.csv", "Fix the file"],
        ),
        (
            lambda tmp, csv: ["ingest", str(csv), "--table", "x; drop table y"],
            ["'x; drop table y' is not a valid identifier", "letters, digits and underscores"],
        ),
        (
            lambda tmp, csv: ["ingest", str(csv), "--table", "existing"],
            ["'existing' already exists", "--if-exists replace"],
        ),
        (
            lambda tmp, csv: ["ingest", str(csv), "--table", "t", "--if-exists", "overwrite"],
            ["--if-exists must be one of fail, replace, append", "overwrite"],
        ),
        (
            lambda tmp, csv: ["ingest", str(_write(tmp / "x.xlsx", "x")), "--table", "t"],
            ["Cannot tell the format", "x.xlsx"],
        ),
        (lambda tmp, csv: ["sql", "SELECT * FROM nowhere"], ["The query failed", "nowhere"]),
        (lambda tmp, csv: ["schema", "nowhere"], ["'nowhere' does not exist", "stackml ingest"]),
    ],
    ids=[
        "missing-file",
        "malformed-csv",
        "hostile-name",
        "exists",
        "bad-if-exists",
        "unknown-format",
        "bad-sql",
        "no-table",
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    tmp_path: Path, csv_file: Path, wh_url: str, make_args, fragments: list[str]
) -> None:
    with connect(wh_url) as wh:
        wh.ingest(csv_file, "existing")
    before = _unchanged(wh_url)
    proc = run_cli(*make_args(tmp_path, csv_file), "--warehouse", wh_url)
    assert_clean_error(proc, "Error:", *fragments)
    assert _unchanged(wh_url) == before


def test_unreachable_database_exits_2(csv_file: Path) -> None:
    proc = run_cli(
        "ingest", str(csv_file), "--table", "t", "--warehouse", "postgresql://postgres@127.0.0.1:1/test"
    )
    assert_clean_error(proc, "Cannot connect to PostgreSQL", "Check that the server is running")
    proc = run_cli("tables", "--warehouse", "oracle://nope")
    assert_clean_error(proc, "Unsupported warehouse URL")


def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    (tmp_path / "stackml.yaml").write_text("no_such_key: 1\n")
    proc = run_cli("tables", cwd=tmp_path)
    assert_clean_error(proc, "Invalid stackml settings", "no_such_key")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_cli("--debug", "ingest", str(tmp_path / "missing.csv"), "--table", "t")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_usage_errors_exit_2() -> None:
    proc = run_cli("ingest")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.postgres
def test_ingest_into_postgres(csv_file: Path, postgres_url: str) -> None:
    proc = run_cli("ingest", str(csv_file), "--table", "cli_sales", "--warehouse", postgres_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == 3
    rows = json.loads(
        run_cli("sql", "SELECT region FROM cli_sales ORDER BY id", "-w", postgres_url, "--json").stdout
    )
    assert [r["region"] for r in rows] == ["north", "south", "east"]
    proc = run_cli("ingest", str(csv_file), "--table", "cli_sales", "--warehouse", postgres_url)
    assert_clean_error(proc, "'cli_sales' already exists")


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("stackml ")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_runs_and_models_list_the_registry(isolated_home: Path) -> None:
    import pandas as pd

    from stackml import tracking
    from stackml.config import get_settings

    empty = run_cli("models", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []

    import mlflow.pyfunc

    class AddOneModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return model_input[["x"]] + 1

    settings = get_settings()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with tracking.start_run("cli_test", data=frame, settings=settings):
        tracking.log_metrics({"rmse": 0.5})
        version = tracking.register_model(AddOneModel(), "cli_model", input_example=frame)
    tracking.promote("cli_model", version.version, metric="rmse", higher_is_better=False, settings=settings)

    runs = json.loads(run_cli("runs", "--json").stdout)
    assert any(r["pipeline"] == "cli_test" and "rmse=0.5" in r["metrics"] for r in runs)
    models = json.loads(run_cli("models", "--json").stdout)
    assert [(m["name"], str(m["version"])) for m in models] == [("cli_model", str(version.version))]
    assert "champion" in str(models[0]["aliases"])
    table = run_cli("models")
    assert table.returncode == 0 and "cli_model" in table.stdout
