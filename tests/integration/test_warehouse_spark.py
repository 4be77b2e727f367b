"""What is particular to the Spark warehouse, on real Spark (the shared contract is in test_warehouse.py):
its URLs and missing pieces, DuckDB's dtypes and timestamps, SQL written once for three engines, atomic writes
in SQL, tables shared between processes, a quiet terminal, and path attribution that matches DuckDB's."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from stackml.errors import ConfigError, InputError, MissingDependencyError, TableExistsError
from stackml.warehouse import Warehouse, connect
from stackml.warehouse.spark_session import log_path

SQL_ONCE = """
WITH ranked AS (
  SELECT e.user_id, u.region, e.ts, e.amount,
         row_number() OVER (PARTITION BY e.user_id ORDER BY e.ts) AS nth,
         sum(e.amount) OVER (PARTITION BY e.user_id ORDER BY e.ts
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
  FROM events e JOIN users u ON u.user_id = e.user_id
)
SELECT region, date_trunc('day', ts) AS day, count(*) AS n, sum(amount) AS total,
       max(running) AS top_running, max(nth) AS max_nth
FROM ranked
WHERE ts >= TIMESTAMP '2024-01-01 00:00:00' AND ts < :until AND amount > :min
GROUP BY region, date_trunc('day', ts) ORDER BY region, day
"""


def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3, 3],
            "ts": pd.to_datetime(
                [
                    "2023-12-31 23:59:59",  # before the range
                    "2024-01-01 00:00:00",
                    "2024-01-01 18:30:00.250000",
                    "2024-01-02 09:00:00",
                    "2024-01-31 23:59:59.999999",
                    "2024-01-15 12:00:00",
                    "2024-02-01 00:00:00",  # after it
                ],
                format="ISO8601",
            ).astype("datetime64[us]"),
            "amount": [5.0, 1.5, 2.25, 10.0, 4.0, 7.0, 3.0],
        }
    )


def users() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1, 2, 3], "region": ["north", "south", "north"]})


@pytest.fixture
def spark_wh(spark_url: str) -> Iterator[Warehouse]:
    """The Spark warehouse of this test session's folder, emptied after the test."""
    with connect(spark_url) as wh:
        yield wh
        for table in wh.tables():
            wh.execute(f"DROP TABLE {table}")


# -- URLs and missing pieces (no Spark job; spark_url skips them where Spark cannot run) ---------------------
@pytest.mark.usefixtures("spark_url")
@pytest.mark.parametrize(
    ("url", "master", "folder"),
    [
        ("spark://local[2]?path={tmp}/wh", "local[2]", "{tmp}/wh"),
        ("spark://local[*]?path={tmp}/wh", "local[*]", "{tmp}/wh"),
        ("local[4]?path={tmp}/wh", "local[4]", "{tmp}/wh"),
        ("spark://local[2]", "local[2]", "{home}/spark-warehouse"),
    ],
)
def test_spark_urls_name_the_master_and_the_folder(
    tmp_path: Path, isolated_home: Path, url: str, master: str, folder: str
) -> None:
    with connect(url.format(tmp=tmp_path)) as wh:
        assert wh.dialect == "spark" and wh.master == master
        assert wh.path == Path(folder.format(tmp=tmp_path, home=isolated_home)) and wh.path.is_dir()


@pytest.mark.usefixtures("spark_url")
@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("spark://cluster.internal:7077", "Unsupported Spark master 'cluster.internal:7077'.*local mode"),
        ("spark://local[0]", "Unsupported Spark master 'local\\[0\\]'"),
        ("spark://local[2]?folder=/x", "Unsupported options .*'folder'"),
    ],
)
def test_other_spark_urls_are_refused_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, match: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match):
        connect(url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("spark_url")
def test_a_missing_java_or_pyspark_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"spark://local[2]?path={tmp_path / 'wh'}"
    with monkeypatch.context() as env:
        env.delenv("JAVA_HOME", raising=False)
        env.setenv("PATH", str(tmp_path))  # no java there
        with pytest.raises(MissingDependencyError, match=r"needs Java 17\+ and found none.*openjdk-17"):
            connect(url)
    with monkeypatch.context() as modules:
        modules.setitem(sys.modules, "pyspark", None)  # what Python does when the package is not installed
        with pytest.raises(MissingDependencyError, match=r"pip install 'stackml\[spark\]'"):
            connect(url)


# -- DuckDB's dtypes, no time-zone shifts ------------------------------------------------------------------
def test_query_gives_duckdbs_dtypes_and_timestamps_do_not_move(
    spark_wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame(
        {
            "k": [1, 2, 3],
            "small": pd.array([1, 2, 3], dtype="int32"),
            "maybe": pd.array([1, None, 3], dtype="Int64"),
            "x": [0.5, None, 2.0],
            "s": ["a", None, ""],
            "flag": [True, False, True],
            "maybe_flag": [True, None, False],
            # Microseconds, Spark's (and PostgreSQL's) precision; DuckDB would keep pandas' nanoseconds.
            "ts": pd.to_datetime(["2024-03-10 02:30:00.123456", "2024-11-03 01:30:00.000000", None]).astype(
                "datetime64[us]"
            ),
            "day": [dt.date(2024, 1, 1), dt.date(2024, 2, 29), None],
        }
    )
    sql = (
        "SELECT *, date_trunc('month', ts) AS month, ts + INTERVAL 1 DAY AS next_day, "
        "CAST(ts AS DATE) AS ts_day, ts = ? AS bound, CAST(1.25 AS DECIMAL(10, 2)) AS price "
        "FROM t ORDER BY k"
    )
    first = dt.datetime(2024, 3, 10, 2, 30, 0, 123456)  # bound as it is written, not moved to UTC
    duck = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    # A machine far from UTC: a conversion through the local time zone would move every timestamp.
    with monkeypatch.context() as env:
        env.setenv("TZ", "America/New_York")
        time.tzset()
        try:
            with connect(duck) as wh:
                wh.ingest(frame, "t")
                expected = wh.query(sql, [first])
            spark_wh.ingest(frame, "t")
            got = spark_wh.query(sql, [first], dialect="duckdb")
            pd.testing.assert_frame_equal(got, expected)
            assert str(got["ts"].iloc[0]) == "2024-03-10 02:30:00.123456"  # a DST gap in New York, not in UTC
            assert got["bound"].tolist()[:2] == [True, False]
            assert spark_wh.schema("t")["ts"] == "timestamp_ntz"
            with spark_wh.stream("SELECT ts FROM t WHERE k = 1") as rows:
                assert list(rows) == [[("2024-03-10T02:30:00.123456",)]]
        finally:
            env.undo()
            time.tzset()


# -- one SQL text, three engines ----------------------------------------------------------------------------
def test_sql_written_once_for_duckdb_runs_on_postgres_and_spark(
    postgres_url: str, spark_wh: Warehouse, tmp_path: Path
) -> None:
    params = {"min": 1.0, "until": dt.datetime(2024, 2, 1)}
    results = {}
    for url in (f"duckdb:///{tmp_path / 'wh.duckdb'}", postgres_url, spark_wh.url):
        with connect(url) as wh:
            for name, frame in (("events", events()), ("users", users())):
                wh.ingest(frame, name, if_exists="replace")
            results[wh.dialect] = wh.query(SQL_ONCE, params, dialect="duckdb")
    duck = results["duckdb"]
    assert duck["n"].tolist() == [2, 1, 1, 1] and duck["total"].tolist() == [3.75, 7.0, 10.0, 4.0]
    # The windows see the rows the filter then leaves out (user 1's touch of 2023, user 3's of February).
    assert duck["top_running"].tolist() == [8.75, 7.0, 10.0, 14.0]
    assert duck["max_nth"].tolist() == [3, 1, 1, 2]
    # The same values; the same kinds of dtype (Spark's row_number() is an int where DuckDB's is a bigint).
    pd.testing.assert_frame_equal(results["spark"], duck, check_dtype=False)
    assert [d.kind for d in results["spark"].dtypes] == [d.kind for d in duck.dtypes]
    pd.testing.assert_frame_equal(results["postgres"], duck, check_dtype=False)  # psycopg's own types


# -- writes in SQL are atomic folder swaps -------------------------------------------------------------------
def test_sql_writes_replace_whole_tables_and_failures_leave_them(spark_wh: Warehouse) -> None:
    wh = spark_wh
    wh.execute("CREATE TABLE sales AS SELECT id, id * 1.5 AS amount FROM range(3)")
    wh.execute("INSERT INTO sales VALUES (10, 2.5)")  # by position
    wh.execute("INSERT INTO sales (amount, id) SELECT 9.0, 11")  # by name
    assert wh.row_count("sales") == 5 and wh.query("SELECT sum(id) AS s FROM sales")["s"].iloc[0] == 24
    with pytest.raises(TableExistsError, match="'sales' already exists.*CREATE OR REPLACE"):
        wh.execute("CREATE TABLE sales AS SELECT 1 AS id")
    wh.execute("CREATE OR REPLACE TABLE sales AS SELECT * FROM sales WHERE id < 10")  # reads the old copy
    assert sorted(wh.query("SELECT id FROM sales")["id"]) == [0, 1, 2]
    with pytest.raises(InputError, match="The query failed: .*DIVIDE_BY_ZERO"):
        wh.execute("CREATE OR REPLACE TABLE sales AS SELECT id / (id - 1) AS id FROM sales")
    with pytest.raises(InputError, match="The query failed: .*DIVIDE_BY_ZERO"):
        wh.execute("INSERT INTO sales SELECT id / (id - 1), 0.0 FROM sales")
    for statement in (
        "DELETE FROM sales WHERE id = 0",
        "UPDATE sales SET id = 1",
        "ALTER TABLE sales ADD x INT",
    ):
        with pytest.raises(
            InputError, match="does not run (DELETE|UPDATE|ALTER) statements.*CREATE OR REPLACE"
        ):
            wh.execute(statement)
    assert wh.row_count("sales") == 3 and wh.tables() == ["sales"]
    assert not [p for p in wh.path.iterdir() if p.name.startswith(".")]  # no load left half-way
    # The folder is plain Parquet, one folder per load: any reader takes it.
    files = str(wh.path / "sales" / "*" / "*.parquet")
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0] == 3
    wh.execute("DROP TABLE sales")
    assert wh.tables() == [] and not (wh.path / "sales").exists()


# -- other processes -----------------------------------------------------------------------------------------
def test_tables_another_process_writes_or_replaces_are_seen(spark_wh: Warehouse, tmp_path: Path) -> None:
    wh = spark_wh
    wh.ingest(pd.DataFrame({"a": [1, 2]}), "shared")
    assert wh.query("SELECT sum(a) AS s FROM shared")["s"].iloc[0] == 3  # now in this session's catalog
    replacement = tmp_path / "replacement.csv"
    replacement.write_text("b,c\n10,x\n20,y\n30,z\n")
    command = ["ingest", str(replacement), "--table", "shared", "--if-exists", "replace", "-w", wh.url]
    env = {**os.environ, "STACKML_HOME": str(tmp_path / "home")}
    loaded = subprocess.run(
        [sys.executable, "-m", "stackml", *command], capture_output=True, text=True, env=env, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert wh.query("SELECT count(*) AS n, sum(b) AS s FROM shared").iloc[0].tolist() == [3, 60]
    assert list(wh.schema("shared")) == ["b", "c"]


def test_the_jvms_output_goes_to_its_log_file_not_the_terminal(spark_wh: Warehouse) -> None:
    with pytest.raises(InputError, match="The query failed: .*DIVIDE_BY_ZERO"):
        spark_wh.execute("CREATE TABLE t AS SELECT 1 / (id - 1) AS x FROM range(3)")  # a task fails
    log = log_path()
    assert log is not None and (log.parent.name, log.name) == ("logs", "spark.log")  # in a stackml home
    text = log.read_text()
    # The JVM's start-up lines and the failed task's stack trace, which Spark prints to stderr: a file
    # descriptor points at one file, so none of it reached the terminal.
    assert "log4j" in text and "DIVIDE_BY_ZERO" in text


# -- path attribution ----------------------------------------------------------------------------------------
def test_paths_from_touchpoints_on_spark_match_duckdb(spark_wh: Warehouse) -> None:
    from stackml.attribution.paths import paths_from_touchpoints
    from stackml.attribution.simulation import simulate_journeys

    touchpoints = simulate_journeys(300, seed=1).touchpoints
    with connect("duckdb:///:memory:") as duck:
        duck.ingest(touchpoints, "touchpoints")
        expected = paths_from_touchpoints(duck, "touchpoints")
    spark_wh.ingest(touchpoints, "touchpoints")
    got = paths_from_touchpoints(spark_wh, "touchpoints", out="journeys")

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        key = frame.assign(order=frame["path"].map(str) + frame["gaps"].map(str) + frame["value"].map(repr))
        return key.sort_values("order").drop(columns="order").reset_index(drop=True)

    assert len(got) == len(expected) > 100
    pd.testing.assert_frame_equal(ordered(got.frame), ordered(expected.frame))  # paths, counts, gaps, values
    assert spark_wh.row_count("journeys") == len(expected)
