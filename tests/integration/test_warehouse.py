"""The warehouse contract on real DuckDB, real PostgreSQL and real Spark."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from stackml.errors import (
    ConfigError,
    ConnectionFailedError,
    IdentifierError,
    InputError,
    TableExistsError,
    TableNotFoundError,
)
from stackml.warehouse import connect

# Every test taking warehouse_url runs on each (see pytest_generate_tests in tests/conftest.py).
WAREHOUSE_ENGINES = ("duckdb", "postgres", "spark")
ROWS = 'id,name,amount,day\n1,alpha,1.5,2024-01-01\n2,beta,,2024-01-02\n3,"gam,ma",3.25,2024-01-03\n'


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text(ROWS)
    return path


def test_ingest_csv_query_tables_schema(warehouse_url: str, csv_file: Path) -> None:
    with connect(warehouse_url) as wh:
        result = wh.ingest(csv_file, "sales")
        assert (result.table, result.rows, result.mode) == ("sales", 3, "create")
        assert wh.tables() == ["sales"]
        types = {k: v.lower() for k, v in wh.schema("sales").items()}
        assert list(types) == ["id", "name", "amount", "day"]
        text_types = ("varchar", "text", "string")  # DuckDB, PostgreSQL, Spark
        assert types["id"] == "bigint" and types["day"] == "date" and types["name"] in text_types
        df = wh.query("SELECT id, name, amount FROM sales WHERE id >= ? ORDER BY id", [2])
        assert df["name"].tolist() == ["beta", "gam,ma"]
        assert pd.isna(df["amount"].iloc[0])  # an empty field is NULL
        named = wh.query("SELECT count(*) AS n FROM sales WHERE name LIKE 'a%' OR id = :id", {"id": 3})
        assert int(named["n"].iloc[0]) == 2


def test_values_are_bound_never_formatted(warehouse_url: str, csv_file: Path) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "sales")
        hostile = "x'; DROP TABLE sales; --"
        assert wh.query("SELECT * FROM sales WHERE name = ?", [hostile]).empty
        assert wh.has_table("sales")


def test_ingest_parquet_gzip_and_dataframe(warehouse_url: str, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "k": [1, 2, 3],
            "v": [0.5, None, 2.0],
            "s": ["", None, "z"],
            "ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00", None]),
            "flag": [True, False, None],
        }
    )
    parquet = tmp_path / "f.parquet"
    frame.to_parquet(parquet)
    gz = tmp_path / "f.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(ROWS)
    with connect(warehouse_url) as wh:
        assert wh.ingest(parquet, "from_parquet").rows == 3
        assert wh.ingest(gz, "from_gzip").rows == 3
        assert wh.ingest(frame, "from_frame").rows == 3
        back = wh.query("SELECT k, v, s, s IS NULL AS s_null, ts, flag FROM from_frame ORDER BY k")
        assert back["s"].iloc[0] == "" and back["s_null"].tolist() == [False, True, False]  # '' is not NULL
        assert pd.Timestamp(back["ts"].iloc[0]) == pd.Timestamp("2024-01-01 10:00")
        assert pd.isna(back["v"].iloc[1]) and bool(back["flag"].iloc[0]) is True
        assert wh.query("SELECT count(*) AS n FROM from_parquet")["n"].iloc[0] == 3


def test_if_exists_fail_replace_append(warehouse_url: str, csv_file: Path, tmp_path: Path) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "sales")
        with pytest.raises(TableExistsError, match="'sales' already exists.*--if-exists replace"):
            wh.ingest(csv_file, "sales")
        assert wh.ingest(csv_file, "sales", if_exists="append").mode == "append"
        assert wh.row_count("sales") == 6
        reordered = tmp_path / "reordered.csv"
        reordered.write_text("amount,id,name,day\n9.5,7,eta,2024-02-01\n")
        wh.ingest(reordered, "sales", if_exists="append")  # appended by column name, not position
        assert wh.query("SELECT amount FROM sales WHERE id = 7")["amount"].iloc[0] == 9.5
        replaced = wh.ingest(pd.DataFrame({"only": [1]}), "sales", if_exists="replace")
        assert replaced.mode == "replace" and wh.schema("sales").keys() == {"only"}
        assert wh.tables() == ["sales"]  # no staging table left behind


def test_failed_replace_leaves_old_table_untouched(
    warehouse_url: str, csv_file: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.csv"
    # The error sits past DuckDB's sample, so it surfaces mid-load, after rows have streamed.
    broken.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(60_000)) + "5,x,extra\n")
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "sales")
        with pytest.raises(
            InputError, match=r"Could not read .*broken.csv.*Expected Number of Columns: 2 Found: 3"
        ):
            wh.ingest(broken, "sales", if_exists="replace")
        assert wh.row_count("sales") == 3
        assert list(wh.schema("sales")) == ["id", "name", "amount", "day"]
        with pytest.raises(InputError, match="Could not read"):
            wh.ingest(broken, "fresh")
        assert wh.tables() == ["sales"]  # neither the new table nor a staging table exists


def test_failed_append_adds_nothing(warehouse_url: str, csv_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("unknown_column\n1\n")
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "sales")
        with pytest.raises(InputError, match="Loading into 'sales' failed"):
            wh.ingest(other, "sales", if_exists="append")
        assert wh.row_count("sales") == 3


def test_schema_qualified_tables(warehouse_url: str, csv_file: Path) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "analytics.sales")
        assert "analytics.sales" in wh.tables()
        assert wh.row_count("analytics.sales") == 3
        wh.ingest(csv_file, "analytics.sales", if_exists="replace")
        assert wh.row_count("analytics.sales") == 3


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("a,b\n1,x\n2,y,z\n", "Could not read '.*bad.csv'"),
        ('a,b\n1,"x\n2,y\n', "Could not read '.*bad.csv'"),
        ("", "'.*bad.csv' is empty"),
    ],
)
def test_malformed_csv(warehouse_url: str, tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with connect(warehouse_url) as wh:
        with pytest.raises(InputError, match=match):
            wh.ingest(path, "bad")
        assert not wh.has_table("bad")


def test_bad_sources_and_names(warehouse_url: str, tmp_path: Path) -> None:
    with connect(warehouse_url) as wh:
        with pytest.raises(InputError, match="File not found"):
            wh.ingest(tmp_path / "missing.csv", "t")
        with pytest.raises(InputError, match="Cannot tell the format"):
            (tmp_path / "data.xlsx").write_text("x")
            wh.ingest(tmp_path / "data.xlsx", "t")
        with pytest.raises(IdentifierError):
            wh.ingest(pd.DataFrame({"a": [1]}), "x; drop table y")
        with pytest.raises(InputError, match="if_exists must be one of"):
            wh.ingest(pd.DataFrame({"a": [1]}), "t", if_exists="overwrite")  # type: ignore[arg-type]
        with pytest.raises(TableNotFoundError, match="'nope' does not exist"):
            wh.schema("nope")
        with pytest.raises(KeyError):
            wh.row_count("nope")
        with pytest.raises(InputError, match="The query failed"):
            wh.query("SELEC 1")
        assert wh.tables() == []


def test_sql_written_once_translated_by_sqlglot(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(pd.DataFrame({"d": pd.to_datetime(["2024-03-05", "2024-03-20"]), "y": [1.0, 2.0]}), "t")
        df = wh.query(
            "SELECT date_trunc('month', d) AS m, sum(y) AS total FROM t GROUP BY 1", dialect="duckdb"
        )
        assert df["total"].tolist() == [3.0]


def test_unreachable_postgres_and_bad_url() -> None:
    with pytest.raises(
        ConnectionFailedError,
        match="Cannot connect to PostgreSQL at postgresql://postgres:\\*\\*\\*@127.0.0.1:1",
    ):
        connect("postgresql://postgres:secret@127.0.0.1:1/test")
    with pytest.raises(ConfigError, match="Unsupported warehouse URL scheme 'mysql:' in 'mysql://x'"):
        connect("mysql://x")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://user:secret@host/x.db", r"scheme 'mysql:' in 'mysql://user:\*\*\*@host/x.db'"),
        ("sqlite:wh.duckdb", "scheme 'sqlite:'"),
        ("file:///tmp/wh.duckdb", "scheme 'file:'"),
        ("wh.sqlite", "Unsupported warehouse URL 'wh.sqlite'"),
    ],
)
def test_unknown_schemes_are_refused_before_anything_is_created(
    url: str, match: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match) as info:
        connect(url)
    assert "secret" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_default_warehouse_is_duckdb_in_home(isolated_home: Path) -> None:
    with connect() as wh:
        wh.ingest(pd.DataFrame({"a": [1]}), "t")
    assert (isolated_home / "warehouse.duckdb").is_file()


def test_duckdb_file_locked_by_another_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(ConnectionFailedError, match="Cannot open the DuckDB warehouse"):
            connect(f"duckdb:///{db}")
    finally:
        holder.kill()


def test_translated_sql_keeps_bound_parameters(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(pd.DataFrame({"d": pd.to_datetime(["2024-03-05", "2024-04-20"]), "s": ["a%b", "c"]}), "t")
        sql = (
            "SELECT date_trunc('month', d) AS m, s FROM t "
            "WHERE s LIKE '%\\%%' ESCAPE '\\' OR s = ? ORDER BY d"
        )
        assert wh.query(sql, ["c"], dialect="duckdb")["s"].tolist() == ["a%b", "c"]
        named = "SELECT count(*) AS n FROM t WHERE s = :x OR strftime(d, '%Y') = :year"
        assert int(wh.query(named, {"x": "zz", "year": "2024"}, dialect="duckdb")["n"].iloc[0]) == 2


# -- issue 18: exact streamed results, read-only, table name case, duplicate columns, reader errors ----------
def test_stream_returns_exact_values_in_batches(warehouse_url: str) -> None:
    if warehouse_url.startswith("duckdb"):
        sql = (
            "SELECT range AS i, range * 1e-12 AS tiny, INTERVAL 3 DAY AS span, "
            "TIMESTAMP '2024-01-01 10:00:00.123456' AS ts, CAST(1.10 AS DECIMAL(10, 2)) AS price "
            "FROM range(5)"
        )
    elif warehouse_url.startswith("spark"):
        sql = (
            "SELECT id AS i, id * 1e-12 AS tiny, INTERVAL 3 DAY AS span, "
            "TIMESTAMP '2024-01-01 10:00:00.123456' AS ts, CAST(1.10 AS DECIMAL(10, 2)) AS price "
            "FROM range(5)"
        )
    else:
        sql = (
            "SELECT i, i * 1e-12::float8 AS tiny, INTERVAL '3 days' AS span, "
            "TIMESTAMP '2024-01-01 10:00:00.123456' AS ts, 1.10::numeric(10, 2) AS price "
            "FROM generate_series(0, 4) AS i"
        )
    connect(warehouse_url).close()  # read-only opens only an existing DuckDB file
    with connect(warehouse_url, read_only=True) as wh, wh.stream(sql, batch_rows=2) as rows:
        assert rows.columns == ["i", "tiny", "span", "ts", "price"]
        batches = list(rows)
    assert [len(b) for b in batches] in ([2, 2, 1], [5])  # DuckDB may hand over more rows per batch
    first = batches[0][1]
    assert first[1] == 1e-12 and first[3] == "2024-01-01T10:00:00.123456"
    span = "INTERVAL '3' DAY" if warehouse_url.startswith("spark") else "3 days"  # the engine's own text
    assert first[2] == span
    assert first[4] == Decimal("1.10")


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE sales",
        "INSERT INTO sales (id) VALUES (9)",
        "SELECT 1; DELETE FROM sales",
        "DELETE FROM sales",
    ],
)
def test_read_only_warehouse_refuses_writes(warehouse_url: str, csv_file: Path, statement: str) -> None:
    with connect(warehouse_url) as wh:
        wh.ingest(csv_file, "sales")
    with connect(warehouse_url, read_only=True) as wh:
        with pytest.raises(InputError, match="--write|one at a time"):
            with wh.stream(statement) as rows:
                list(rows)
        with pytest.raises(InputError):
            wh.execute(statement)
    with connect(warehouse_url) as wh:
        assert wh.row_count("sales") == 3


@pytest.mark.parametrize("sql", ["", "  ", "-- nothing", "/* nothing */"])
def test_empty_queries_are_refused(warehouse_url: str, sql: str) -> None:
    with connect(warehouse_url) as wh:
        with pytest.raises(InputError, match="holds no SQL statement"):
            with wh.stream(sql):
                pass
        if sql.strip():
            return
        with pytest.raises(InputError, match="holds no SQL statement"):
            wh.query(sql)


def test_table_names_are_folded_to_lowercase(warehouse_url: str, csv_file: Path) -> None:
    with connect(warehouse_url) as wh:
        assert wh.ingest(csv_file, "probe_Upper").table == "probe_upper"
        assert wh.tables() == ["probe_upper"]
        for name in ("probe_Upper", "PROBE_UPPER", "probe_upper"):
            assert wh.has_table(name) and wh.row_count(name) == 3 and list(wh.schema(name))[0] == "id"
        assert int(wh.query("SELECT count(*) AS n FROM probe_Upper")["n"].iloc[0]) == 3
        with pytest.raises(TableExistsError):
            wh.ingest(csv_file, "PROBE_upper")
        assert wh.ingest(csv_file, "Probe_Upper", if_exists="append").rows == 3
        wh.ingest(csv_file, "Analytics.Sales")
        assert "analytics.sales" in wh.tables() and wh.row_count("ANALYTICS.sales") == 3


def test_duplicate_column_names_are_refused(warehouse_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("x,X,y\n1,2,3\n")
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    parquet = tmp_path / "dup.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([[1], [2]], names=["k", "k"]), parquet)
    with connect(warehouse_url) as wh:
        with pytest.raises(
            InputError, match=r"dup.csv': the header has columns named more than once .*\['x'\]"
        ):
            wh.ingest(csv, "t")
        with pytest.raises(InputError, match=r"The DataFrame has columns named more than once .*\['a'\]"):
            wh.ingest(frame, "t")
        with pytest.raises(InputError, match=r"the Parquet file has columns named more than once .*\['k'\]"):
            wh.ingest(parquet, "t")
        assert wh.tables() == []


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("semi.csv", b"a;b\n1;2\n", r"its header 'a;b' is separated by semicolons, not commas"),
        ("tabs.csv", b"a\tb\n1\t2\n", r"separated by tabs, not commas.*\.tsv"),
        ("commas.tsv", b"a,b\n1,2\n", r"separated by commas, not tabs"),
        ("latin.csv", b"a,b\n1,caf\xe9\n", r"line 2 is not UTF-8 text.*iconv"),
        ("fake.parquet", b"a,b\n1,2\n", r"not a Parquet file .*PAR1.*name it \*\.csv"),
        ("zeros.parquet", b"\x00" * 64, r"not a Parquet file(?!.*name it).*df\.to_parquet"),
        ("fake.csv.gz", b"a,b\n1,2\n", r"name ends in \.gz but it is not gzip-compressed"),
        ("fields.csv", b"a,b\n1,2\n3,4,5\n", r"line 3 has 3 fields but the header has 2"),
    ],
)
def test_reader_errors_are_one_line_in_our_words(
    warehouse_url: str, tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with connect(warehouse_url) as wh:
        with pytest.raises(InputError, match=match) as info:
            wh.ingest(path, "bad")
        text = str(info.value)
        assert "\n" not in text and "Possible" not in text and "LINE 1" not in text and len(text) < 400
        if name.endswith(".parquet"):
            assert "comma-separated" not in text  # no CSV advice for a Parquet file
        assert not wh.has_table("bad")


def test_a_bounded_cache_lowers_duckdbs_memory_limit_inside_the_block_only(tmp_path: Path) -> None:
    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        wh.execute("CREATE TABLE t AS SELECT range AS x FROM range(300000)")
        before = wh.query("SELECT current_setting('memory_limit') AS m").iloc[0, 0]
        with wh.bounded_cache(64):
            inside = wh.query("SELECT current_setting('memory_limit') AS m").iloc[0, 0]
        assert (
            inside == "61.0 MiB"
            and wh.query("SELECT current_setting('memory_limit') AS m").iloc[0, 0] == before
        )
        # Restored even when the block fails with a stream open on the connection.
        with (
            pytest.raises(RuntimeError),
            wh.bounded_cache(64),
            wh.stream("SELECT x FROM t", batch_rows=1000) as rows,
        ):
            next(iter(rows))
            raise RuntimeError("the block failed")
        assert wh.query("SELECT current_setting('memory_limit') AS m").iloc[0, 0] == before
        with wh.bounded_cache(10**9):  # never raised above the current limit
            assert wh.query("SELECT current_setting('memory_limit') AS m").iloc[0, 0] == before
