"""`stackml sql` and the loaders' errors through a real subprocess (issue 18, items 11-13)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from cli_checks import assert_clean_error as clean_error
from cli_checks import run_cli
from stackml.warehouse import connect

PYTHON_STACKML = [sys.executable, "-m", "stackml"]

# these commands print nothing on stdout when they fail
assert_clean_error = partial(clean_error, empty_stdout=True)


@pytest.fixture
def wh_url(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'sql.duckdb'}"
    with connect(url) as wh:
        wh.execute("CREATE TABLE sales AS SELECT range AS id, range * 1.5 AS amount FROM range(3)")
    return url


# -- item 11 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "/* only a comment */"])
def test_an_empty_query_exits_2(wh_url: str, query: str) -> None:
    assert_clean_error(run_cli("sql", query, "-w", wh_url), "holds no SQL statement", "stackml sql")


def test_unknown_url_schemes_are_refused_and_create_nothing(tmp_path: Path) -> None:
    line = assert_clean_error(
        run_cli("sql", "SELECT 1", "-w", "mysql://user:secret@host/x.db", cwd=tmp_path),
        "Unsupported warehouse URL scheme 'mysql:'",
        "user:***@host",
        "postgresql://",
    )
    assert "secret" not in line
    assert list(tmp_path.iterdir()) == []  # no folder named after the URL, password and all
    assert_clean_error(run_cli("tables", "-w", "sqlite:x.db", cwd=tmp_path), "scheme 'sqlite:'")
    assert list(tmp_path.iterdir()) == []


def test_sql_json_keeps_every_value_exact(wh_url: str) -> None:
    query = (
        "SELECT 1e-12 AS tiny, INTERVAL 3 DAY AS days, INTERVAL '1 month 2 hours' AS mixed, "
        "TIMESTAMP '2024-01-01 10:00:00.123456' AS ts, "
        "CAST('2024-01-01 10:00:00.123456789' AS TIMESTAMP_NS) AS ts_ns, "
        "CAST('12345678901234567890' AS HUGEINT) AS huge, CAST(1.10 AS DECIMAL(10, 2)) AS price, "
        "CAST('nan' AS DOUBLE) AS nan, DATE '2024-02-29' AS day, [0.1, 1e-12] AS list, NULL AS nothing"
    )
    proc = run_cli("sql", query, "-w", wh_url, "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout, parse_float=Decimal)
    assert row == {
        "tiny": Decimal("1e-12"),
        "days": "3 days",
        "mixed": "1 month 02:00:00",
        "ts": "2024-01-01T10:00:00.123456",
        "ts_ns": "2024-01-01T10:00:00.123456789",
        "huge": 12345678901234567890,
        "price": Decimal("1.10"),
        "nan": None,
        "day": "2024-02-29",
        "list": [Decimal("0.1"), Decimal("1e-12")],
        "nothing": None,
    }
    assert json.loads(run_cli("sql", "SELECT * FROM sales WHERE id > 5", "-w", wh_url, "--json").stdout) == []


# Runs the command given as JSON with stdout to a file and prints its peak RSS in KiB. A process started from
# this (big) test process would count our memory too: Linux keeps the peak across fork and exec.
_PEAK_RSS = """
import json, os, subprocess, sys
command, out = json.loads(sys.argv[1]), sys.argv[2]
with open(out, "w") as stdout:
    pid = subprocess.Popen(command, stdout=stdout).pid
    _, status, usage = os.wait4(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "max_rss_kib": usage.ru_maxrss}))
"""


def _peak_rss_kib(command: list[str], out: Path) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, json.dumps(command), str(out)], capture_output=True, text=True
    )
    result = json.loads(proc.stdout)
    assert result["code"] == 0, proc.stderr
    return result["max_rss_kib"]


def test_sql_json_streams_in_flat_memory(wh_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    query = "SELECT range AS id, range * 1.5 AS v, 'name_' || range AS s FROM range({})"
    small = _peak_rss_kib([*PYTHON_STACKML, "sql", query.format(100_000), "-w", wh_url, "--json"], out)
    large = _peak_rss_kib([*PYTHON_STACKML, "sql", query.format(1_000_000), "-w", wh_url, "--json"], out)
    assert out.stat().st_size > 50e6
    # ten times the rows, about the same memory (the whole frame and its JSON took 1.3 GB before)
    assert large < small + 100 * 1024 and large < 400 * 1024, (small, large)
    with out.open() as fh:
        assert fh.readline() == "[\n" and fh.readline() == '  {"id": 0, "v": 0.0, "s": "name_0"},\n'


def test_sql_json_refuses_repeated_column_names(wh_url: str) -> None:
    assert_clean_error(
        run_cli("sql", "SELECT 1 AS x, 2 AS x", "-w", wh_url, "--json"),
        "more than one column named ['x']",
        "AS",
    )


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE sales",
        "INSERT INTO sales VALUES (9, 9.0)",
        "SELECT 1; DELETE FROM sales",
        "CREATE TABLE other AS SELECT 1 AS x",
        "COPY sales TO 'copy.csv'",
    ],
)
def test_sql_is_read_only_without_write(wh_url: str, statement: str, tmp_path: Path) -> None:
    assert_clean_error(run_cli("sql", statement, "-w", wh_url, cwd=tmp_path), "did not run", "--write")
    with connect(wh_url) as wh:
        assert wh.tables() == ["sales"] and wh.row_count("sales") == 3
    assert not (tmp_path / "copy.csv").exists()


def test_sql_write_runs_statements(wh_url: str) -> None:
    proc = run_cli("sql", "INSERT INTO sales VALUES (9, 9.0)", "-w", wh_url, "--write")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("sql", "DROP TABLE sales", "-w", wh_url, "--write")
    assert proc.returncode == 0, proc.stderr
    with connect(wh_url) as wh:
        assert wh.tables() == []


def test_sql_table_view_counts_the_rows_it_leaves_out(wh_url: str) -> None:
    proc = run_cli("sql", "SELECT * FROM range(120)", "-w", wh_url, "--max-rows", "5")
    assert proc.returncode == 0, proc.stderr
    assert "115 more rows (use --json for all of them)" in proc.stdout


def test_sql_on_a_missing_duckdb_file_creates_nothing(tmp_path: Path) -> None:
    assert_clean_error(
        run_cli("sql", "SELECT 1", "-w", str(tmp_path / "nowhere.duckdb")),
        "no DuckDB warehouse",
        "stackml ingest",
    )
    assert not (tmp_path / "nowhere.duckdb").exists()


@pytest.mark.parametrize("command", [["tables"], ["tables", "--json"], ["schema", "sales"]])
def test_tables_and_schema_in_a_fresh_home_create_no_warehouse(
    isolated_home: Path, command: list[str]
) -> None:
    # Looking must not create an empty DuckDB file: the missing warehouse is named, with how to make one.
    assert_clean_error(run_cli(*command), "no DuckDB warehouse", "warehouse.duckdb", "stackml ingest")
    assert not (isolated_home / "warehouse.duckdb").exists()


@pytest.mark.postgres
def test_sql_on_postgres_is_read_only_and_exact(postgres_url: str) -> None:
    with connect(postgres_url) as wh:
        wh.execute("DROP TABLE IF EXISTS cli_ro")
        wh.execute("CREATE TABLE cli_ro AS SELECT 1 AS id")
    try:
        for statement in (
            "DROP TABLE cli_ro",
            "SELECT 1; COMMIT; DROP TABLE cli_ro",
            "INSERT INTO cli_ro VALUES (2)",
        ):
            assert_clean_error(run_cli("sql", statement, "-w", postgres_url), "--write")
        query = (
            "SELECT 1e-12::float8 AS tiny, INTERVAL '3 days' AS days, "
            "TIMESTAMP '2024-01-01 10:00:00.123456' AS ts"
        )
        proc = run_cli("sql", query, "-w", postgres_url, "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [
            {"tiny": 1e-12, "days": "3 days", "ts": "2024-01-01T10:00:00.123456"}
        ]
        with connect(postgres_url) as wh:
            assert wh.row_count("cli_ro") == 1
        # with --write a query streams the same exact values, and a statement runs
        proc = run_cli("sql", query, "-w", postgres_url, "--json", "--write")
        assert proc.returncode == 0 and json.loads(proc.stdout)[0]["tiny"] == 1e-12, proc.stderr
        assert run_cli("sql", "INSERT INTO cli_ro VALUES (2)", "-w", postgres_url, "--write").returncode == 0
        with connect(postgres_url) as wh:
            assert wh.row_count("cli_ro") == 2
    finally:
        with connect(postgres_url) as wh:
            wh.execute("DROP TABLE IF EXISTS cli_ro")


# -- item 12 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "fragments", "absent"),
    [
        ("dup.csv", b"x,x\n1,2\n", ["columns named more than once", "['x']", "Rename"], []),
        ("semi.csv", b"a;b\n1,5;2\n", ["separated by semicolons, not commas", ".tsv"], ["sniff"]),
        ("latin.csv", b"a,b\n1,caf\xe9\n", ["line 2 is not UTF-8", "iconv"], ["Possible Solution"]),
        ("fake.parquet", b"a,b\n1,2\n", ["not a Parquet file", "name it *.csv"], ["comma-separated"]),
        ("fake.csv.gz", b"a,b\n1,2\n", ["not gzip-compressed", "Rename it without .gz"], ["LINE 1"]),
    ],
    ids=["duplicate-columns", "wrong-delimiter", "not-utf8", "fake-parquet", "fake-gzip"],
)
def test_ingest_explains_bad_files_in_one_line(
    wh_url: str, tmp_path: Path, name: str, content: bytes, fragments: list[str], absent: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    line = assert_clean_error(
        run_cli("ingest", str(path), "-t", "bad", "-w", wh_url), "Could not read", *fragments
    )
    for text in absent:
        assert text not in line
    assert len(line) < 400
    with connect(wh_url) as wh:
        assert wh.tables() == ["sales"]


def test_non_utf8_bytes_far_into_a_file_are_explained(wh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(30_000)) + b"7,caf\xe9\n")
    line = assert_clean_error(run_cli("ingest", str(path), "-t", "late", "-w", wh_url), "not UTF-8", "iconv")
    assert "Possible Solution" not in line and "file = " not in line


@pytest.mark.postgres
def test_mixed_case_table_names_work_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    path = tmp_path / "probe.csv"
    path.write_text("id\n1\n2\n")
    try:
        proc = run_cli("ingest", str(path), "-t", "probe_Upper", "-w", postgres_url)
        assert proc.returncode == 0, proc.stderr
        assert "'probe_upper'" in proc.stdout
        for query in ("SELECT count(*) AS n FROM probe_Upper", 'SELECT count(*) AS n FROM "probe_upper"'):
            proc = run_cli("sql", query, "-w", postgres_url, "--json")
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout) == [{"n": 2}]
        assert json.loads(run_cli("schema", "PROBE_UPPER", "-w", postgres_url, "--json").stdout) == {
            "id": "bigint"
        }
    finally:
        with connect(postgres_url) as wh:
            wh.execute("DROP TABLE IF EXISTS probe_upper")


# -- item 13 -------------------------------------------------------------------------------------------------
def _forecast_data(path: Path) -> Path:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=60), "y": np.arange(60.0)}
    )
    frame.loc[5, "y"] = np.nan
    frame.drop(index=[20, 40]).to_csv(path, index=False)
    return path


def test_forecast_data_problems_are_one_line_before_the_flow(tmp_path: Path, isolated_home: Path) -> None:
    data = _forecast_data(tmp_path / "holes.csv")
    line = assert_clean_error(
        run_cli("forecast", "run", "--data", str(data), "--horizon", "7", "--no-register"),
        "problem(s) with the input frame",
        "'y' has missing or infinite values",
        "--freq D",
    )
    assert 'File "' not in line and "resume" not in line and len(line) < 600
    assert not (isolated_home / ".metaflow").exists()  # no flow was started
    line = assert_clean_error(
        run_cli("forecast", "run", "--data", str(data), "--horizon", "7", "--freq", "D", "--no-register"),
        "gaps in the time index",
        "add the missing rows to the data",
    )
    assert not (isolated_home / ".metaflow").exists()


def test_mmm_data_problems_are_one_line_before_the_flow(tmp_path: Path, isolated_home: Path) -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "date": pd.date_range("2023-01-02", periods=60, freq="W-MON"),
            "tv": np.r_[-1.0, np.full(59, 100.0)],
            "search": 50.0,
            "revenue": 1000.0,
        }
    )
    frame.loc[3, "search"] = np.nan
    path = tmp_path / "mmm.csv"
    frame.to_csv(path, index=False)
    line = assert_clean_error(
        run_cli("mmm", "fit", "--data", str(path), "--channels", "tv,search", "--no-register"),
        "2 problem(s) with the model frame",
        "negative spend",
        "'search' has 1 missing",
    )
    assert 'File "' not in line and "resume" not in line
    assert not (isolated_home / ".metaflow").exists()


def test_a_step_failing_on_bad_input_gives_one_line_without_the_resume_command(
    tmp_path: Path, isolated_home: Path
) -> None:
    import numpy as np
    import pandas as pd

    # The holdout's series match the training data (checked before the flow); its dates do not, which only
    # the flow's 'choose' step finds when it scores the forecasts: our InputError from inside a step.
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.DataFrame(
        {"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=60), "y": np.arange(60.0)}
    ).to_csv(train, index=False)
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2025-01-01", periods=7), "y": 1.0}).to_csv(
        test, index=False
    )
    args = ["--data", str(train), "--test", str(test), "--horizon", "7", "--models", "naive", "--no-register"]
    line = assert_clean_error(
        run_cli("forecast", "run", *args, "--json"),
        "The holdout covers 0 of the 7 forecast points.",
        "Give the next 7 values of every series in the test file",
    )
    assert (isolated_home / ".metaflow" / "ForecastFlow").is_dir()  # the flow ran and failed in a step
    assert 'File "' not in line and "resume" not in line and "Flow" not in line


def test_a_failed_flow_prints_its_resume_command_on_a_line_of_its_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from stackml.errors import FlowFailedError

    cli_main = importlib.import_module("stackml.cli.main")  # the module; the package exports its main()

    command = "USERNAME=me python /x/forecast_flow.py resume --origin-run-id 7"
    error = FlowFailedError(
        "Flow ForecastFlow (run 7) failed in step 'choose' (task ForecastFlow/7/choose/3):\n"
        "    ConnectionError: warehouse went away",
        hint=f"Fix the cause, then resume ForecastFlow/7 from the failed step with:\n    {command}\n"
        "Also set STACKML_POSTGRES_URL as for the original run (left out: it holds a password).",
    )
    error.resume_command = command

    class Failing:
        def main(self, **_: object) -> None:
            raise error

    monkeypatch.setattr(cli_main, "_command", Failing)
    with pytest.raises(SystemExit) as caught:
        cli_main.main(["forecast", "run"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "Error: Flow ForecastFlow (run 7) failed in step 'choose' (task ForecastFlow/7/choose/3): "
        "ConnectionError: warehouse went away "
        "Fix the cause, then resume ForecastFlow/7 from the failed step with:",
        f"    {command}",
        "Also set STACKML_POSTGRES_URL as for the original run (left out: it holds a password).",
    ]
