"""The CLI through a real subprocess: success paths and every bad input of the backbone issue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_checks import assert_clean_error, run_cli
from stackml.warehouse import connect


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text("id,region,amount\n1,north,10.5\n2,south,\n3,east,7.25\n")
    return path


@pytest.fixture
def wh_url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'cli.duckdb'}"


def test_help_is_fast_and_lists_commands() -> None:
    import resource

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    started, cpu_before = time.perf_counter(), children_cpu()
    proc = run_cli("--help")
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    assert proc.returncode == 0
    for command in ("ingest", "sql", "tables", "runs", "models", "demo", "export", "features"):
        assert command in proc.stdout
    # CPU seconds, not wall time: a JVM or a model starting on the other test worker slows the wall clock, not
    # the work `--help` does (about 0.5 s of CPU here; importing pandas, MLflow or Metaflow would add seconds)
    assert cpu < 1.5, (cpu, elapsed)
    assert elapsed < 15.0
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
    assert [r["metrics"] for r in runs if r["pipeline"] == "cli_test"] == [{"rmse": 0.5}]
    models = json.loads(run_cli("models", "--json").stdout)
    assert [(m["name"], m["version"]) for m in models] == [("cli_model", int(version.version))]
    assert (models[0]["aliases"], models[0]["metrics"]) == (["champion"], {"rmse": 0.5})
    table = run_cli("models", env={"COLUMNS": "200"})
    assert table.returncode == 0 and "cli_model" in table.stdout and "rmse=0.5" in table.stdout


def test_h_is_help_everywhere_and_flags_show_no_type() -> None:
    for command in (["runs"], ["models"], ["models", "promote"], ["forecast", "run"], ["mmm", "fit"]):
        proc = run_cli(*command, "-h", env={"COLUMNS": "200"})
        assert proc.returncode == 0 and "Show this message and exit" in proc.stdout, (command, proc.stderr)
        assert "<bool>" not in proc.stdout, command
    forecast = run_cli("forecast", "run", "-h", env={"COLUMNS": "200"}).stdout
    assert "--horizon" in forecast
    json_line = next(
        line for line in run_cli("runs", "-h", env={"COLUMNS": "200"}).stdout.splitlines() if "--json" in line
    )
    assert "<" not in json_line


def _register(name: str, metrics: list[float]) -> list[int]:
    """Versions of a real pyfunc model, each with its rmse, compared by the pipelines' promote."""
    import mlflow.pyfunc
    import pandas as pd

    from stackml import tracking
    from stackml.config import get_settings

    class AddOneModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return model_input[["x"]] + 1

    settings = get_settings()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    versions = []
    for rmse in metrics:
        with tracking.start_run("cli_test", data=frame, settings=settings):
            version = tracking.register_model(
                AddOneModel(), name, input_example=frame, metrics={"rmse": rmse}
            )
        tracking.promote(name, version.version, metric="rmse", higher_is_better=False, settings=settings)
        versions.append(int(version.version))
    return versions


def _champion(name: str) -> int:
    models = json.loads(run_cli("models", "--json").stdout)
    return next(m["version"] for m in models if m["name"] == name and "champion" in m["aliases"])


def test_models_rollback_and_promote_move_the_champion_with_who_and_why(isolated_home: Path) -> None:
    import getpass

    _register("cli_model", [1.0, 0.8, float("nan")])
    assert _champion("cli_model") == 2

    back = run_cli("models", "rollback", "cli_model", "--reason", "v2 drifts on new stores", "--json")
    assert back.returncode == 0, back.stderr
    move = json.loads(back.stdout)
    assert (move["version"], move["previous"], move["action"]) == (1, 2, "rollback")
    assert (move["by"], move["reason"]) == (getpass.getuser(), "v2 drifts on new stores")
    assert _champion("cli_model") == 1
    assert_clean_error(
        run_cli("models", "rollback", "cli_model", "--reason", "again"), "no earlier 'champion'", "v1"
    )

    again = run_cli("models", "promote", "cli_model", "2", "--reason", "drift fixed")
    assert again.returncode == 0 and "from v1 to v2" in again.stdout, again.stderr
    assert _champion("cli_model") == 2
    assert_clean_error(
        run_cli("models", "promote", "cli_model", "3", "--reason", "try"), "rmse=nan is not a finite number"
    )
    assert_clean_error(
        run_cli("models", "promote", "cli_model", "9", "--reason", "try"), "has no version 9", "[1, 2, 3]"
    )
    assert_clean_error(run_cli("models", "promote", "nope", "1", "--reason", "try"), "'nope' does not exist")
    no_reason = run_cli("models", "rollback", "cli_model")
    assert (
        no_reason.returncode == 2 and "--reason" in no_reason.stderr and "Traceback" not in no_reason.stderr
    )
    assert _champion("cli_model") == 2

    history = json.loads(run_cli("models", "history", "cli_model", "--json").stdout)
    assert [(h["action"], h["version"], h["by"]) for h in history][-2:] == [
        ("rollback", 1, getpass.getuser()),
        ("promote", 2, getpass.getuser()),
    ]


# --------------------------------------------------------------------------- Ctrl-C


def _forecast_data(tmp_path: Path) -> Path:
    from stackml.forecasting import generate_series

    path = tmp_path / "shop.csv"
    generate_series(
        n_series=3, freq="D", min_length=60, max_length=70, season_length=7, random_state=5
    ).to_csv(path, index=False)
    return path


def _start_forecast(home: Path, data: Path) -> subprocess.Popen[str]:
    """`stackml forecast run` in a process group of its own: a SIGINT to the group is a terminal's Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env["STACKML_HOME"] = str(home)
    argv = ["forecast", "run", "--data", str(data), "--horizon", "7", "--season", "7", "--models", "snaive"]
    return subprocess.Popen(
        [sys.executable, "-m", "stackml", *argv, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_as_a_terminal_starts_it,
    )


def _as_a_terminal_starts_it() -> None:
    """A shell starts its foreground job with Ctrl-C's default action, whatever the shell itself does. A test
    worker is no shell: in the full pytest-xdist run the command once ran to the end, exit 0 and nothing on
    stderr, after the SIGINT (an ignored or blocked SIGINT inherited from the worker would do that; alone the
    test passed every time)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _ctrl_c_when(proc: subprocess.Popen[str], ready, timeout: float = 240) -> tuple[str, str]:
    """Send SIGINT to the process group once ``ready()`` holds, then wait for the command to end."""
    import signal

    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, ("ended before the interrupt", proc.communicate())
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.02)
    status = Path(f"/proc/{proc.pid}/status")
    masks = (
        [ln for ln in status.read_text().splitlines() if ln.startswith(("SigBlk", "SigIgn"))]
        if status.exists()
        else []
    )
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    # what the command's SIGINT looked like, should it not stop: for the assertion messages
    return (
        stdout,
        stderr
        if proc.returncode
        else f"{stderr}\n(exit {proc.returncode}; {masks}; stdout {stdout[-300:]!r})",
    )


def _count(db: Path, sql: str) -> int:
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:  # no such table yet, or locked by the writer: not yet
        return 0


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.slow
def test_ctrl_c_while_registering_kills_the_run_and_leaves_no_half_made_version(
    tmp_path: Path, isolated_home: Path
) -> None:
    data = _forecast_data(tmp_path)
    proc = _start_forecast(isolated_home, data)
    db = isolated_home / "mlflow.db"
    _, stderr = _ctrl_c_when(proc, lambda: _count(db, "SELECT count(*) FROM model_versions") > 0)

    assert proc.returncode == 130, stderr
    line = _one_line(stderr)
    assert line.startswith("Interrupted: Flow ForecastFlow") and "in step 'publish'" in line, line
    resume = line.split("from that step with: ", 1)[1]
    assert "resume --origin-run-id" in resume

    runs = run_cli("runs", "--json")
    assert runs.returncode == 0, runs.stderr
    statuses = [r["status"] for r in json.loads(runs.stdout)]
    assert statuses and "RUNNING" not in statuses and set(statuses) <= {"KILLED", "FINISHED"}, statuses
    models = run_cli("models", "--json")
    assert models.returncode == 0, models.stderr
    # Either the interrupt removed the version it cut short, or the promotion had finished: never half.
    assert all(m["aliases"] == ["champion"] for m in json.loads(models.stdout)), models.stdout

    resumed = subprocess.run(resume, shell=True, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    registered = json.loads(run_cli("models", "--json").stdout)
    assert len([m for m in registered if m["aliases"] == ["champion"]]) == 1


@pytest.mark.slow
def test_ctrl_c_while_the_first_run_creates_the_store_leaves_a_usable_home(
    tmp_path: Path, isolated_home: Path
) -> None:
    data = _forecast_data(tmp_path)
    proc = _start_forecast(isolated_home, data)

    def store_started() -> bool:
        return isolated_home.is_dir() and any("mlflow.db" in p.name for p in isolated_home.iterdir())

    _, stderr = _ctrl_c_when(proc, store_started)
    assert proc.returncode == 130, stderr
    assert _one_line(stderr).startswith("Interrupted")
    for command in ("runs", "models"):
        listed = run_cli(command, "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], (command, listed.stderr)
    assert [p.name for p in isolated_home.iterdir() if p.name.endswith(".partial")] == []


def test_serve_options_reach_their_parameters() -> None:
    """-w is the warehouse everywhere; --workers and the request caps parse into their own parameters."""
    import typer

    from stackml.cli.main import app

    serve = typer.main.get_command(app).commands["serve"]
    args = ["-w", "duckdb:///x.duckdb", "--workers", "3", "--max-records", "50", "--publish-examples"]
    params = serve.make_context("serve", args).params
    assert params["warehouse"] == "duckdb:///x.duckdb" and params["workers"] == 3
    assert params["max_records"] == 50 and params["publish_examples"] is True
    # one short name, one meaning: --workers does not also claim -w (help showed it, -w set the warehouse)
    claimed = {name: p.name for p in serve.params for name in p.opts}
    assert (
        claimed["-w"] == "warehouse" and "-w" not in next(p for p in serve.params if p.name == "workers").opts
    )
