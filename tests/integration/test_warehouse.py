"""The warehouse contract on real DuckDB and real PostgreSQL."""

from __future__ import annotations

import gzip
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
        assert types["id"] == "bigint" and types["day"] == "date" and types["name"] in ("varchar", "text")
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
    with pytest.raises(ConfigError, match="Unsupported warehouse URL 'mysql://x'"):
        connect("mysql://x")


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
