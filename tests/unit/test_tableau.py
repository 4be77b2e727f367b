"""Tableau extracts through the real Hyper API: every supported type there and back, bad input, atomicity."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hapi = pytest.importorskip("tableauhyperapi")

from stackml.errors import ConfigError, InputError, MissingDependencyError  # noqa: E402
from stackml.reports import Report, read_extract, write_extract, write_extract_beside  # noqa: E402

PARIS = "Europe/Paris"


def every_type() -> pd.DataFrame:
    """One column of each supported kind, with NULLs in every nullable form pandas has."""
    return pd.DataFrame(
        {
            "key": np.array([1, 2, 3], dtype="int64"),
            "small": np.array([7, -8, 9], dtype="int16"),
            "count": pd.array([10, None, 2**62], dtype="Int64"),
            "object_ints": pd.Series([1, None, 3], dtype=object),
            "x": [1.5, np.nan, -np.inf],
            "x32": np.array([0.5, 2.0, np.nan], dtype="float32"),
            "flag": [True, False, True],
            "maybe": pd.array([True, None, False], dtype="boolean"),
            "name": ["tv", None, "Café ☕ 東京 😀"],
            "string": pd.array(["a", pd.NA, "c"], dtype="string"),
            "arrow_string": pd.array(["ä", None, "c"], dtype="string[pyarrow]"),
            "channel": pd.Series(["search", None, "tv"], dtype="category"),
            "at": pd.to_datetime(["2024-01-01 10:00:00.123456789", None, "1969-12-31 23:59:59.9999995"]),
            "at_tz": pd.to_datetime(["2024-03-31 01:30:00", None, "2024-07-01 12:00:00"]).tz_localize(PARIS),
            "day": [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1)],
            "nothing": [None, None, None],
        }
    )


def expected_back() -> pd.DataFrame:
    """What comes back: 64-bit integers and doubles, nullable dtypes where NULLs are, microseconds, UTC."""
    return pd.DataFrame(
        {
            "key": np.array([1, 2, 3], dtype="int64"),
            "small": np.array([7, -8, 9], dtype="int64"),
            "count": pd.array([10, None, 2**62], dtype="Int64"),
            "object_ints": pd.array([1, None, 3], dtype="Int64"),
            "x": [1.5, np.nan, -np.inf],
            "x32": [0.5, 2.0, np.nan],
            "flag": [True, False, True],
            "maybe": pd.array([True, None, False], dtype="boolean"),
            "name": ["tv", None, "Café ☕ 東京 😀"],
            "string": ["a", None, "c"],
            "arrow_string": ["ä", None, "c"],
            "channel": ["search", None, "tv"],
            # Hyper keeps microseconds: finer parts are floored, before 1970 too
            "at": pd.to_datetime(["2024-01-01 10:00:00.123456", None, "1969-12-31 23:59:59.999999"]).astype(
                "datetime64[us]"
            ),
            "at_tz": pd.to_datetime(["2024-03-31 00:30:00", None, "2024-07-01 10:00:00"])
            .tz_localize("UTC")
            .astype("datetime64[us, UTC]"),
            "day": [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1)],
            "nothing": [None, None, None],
        }
    )


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extract of several tables, written once for the module (each write starts a Hyper server)."""
    by_channel = pd.DataFrame({"roas": [1.8, 0.6]}, index=pd.Index(["tv", "search"], name="channel"))
    tables = {
        "every_type": every_type(),
        "empty": every_type().iloc[:0],
        "roas": by_channel,
        "filtered": pd.DataFrame({"v": [1.0, 2.0, 3.0]}).iloc[[2, 0]],
    }
    return write_extract(tables, tmp_path_factory.mktemp("extract") / "out" / "results.hyper")


@pytest.fixture(scope="module")
def back(extract: Path) -> dict[str, pd.DataFrame]:
    return read_extract(extract)


def test_every_supported_type_survives_the_round_trip(back: dict[str, pd.DataFrame]) -> None:
    # tiny tables come back in the order written; a Hyper table has no order, so sort by the key anyway
    got = back["every_type"].sort_values("key", ignore_index=True)
    pd.testing.assert_frame_equal(got, expected_back())


def test_several_tables_in_one_file_in_the_extract_schema_with_explicit_types(extract: Path) -> None:
    with hapi.HyperProcess(
        hapi.Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(extract.parent)}
    ) as hyper:
        with hapi.Connection(hyper.endpoint, str(extract)) as conn:
            names = sorted(t.name.unescaped for t in conn.catalog.get_table_names("Extract"))
            definition = conn.catalog.get_table_definition(hapi.TableName("Extract", "every_type"))
    assert names == ["empty", "every_type", "filtered", "roas"]
    types = {c.name.unescaped: str(c.type) for c in definition.columns}
    assert types == {
        "key": "BIG_INT",
        "small": "BIG_INT",
        "count": "BIG_INT",
        "object_ints": "BIG_INT",
        "x": "DOUBLE",
        "x32": "DOUBLE",
        "flag": "BOOL",
        "maybe": "BOOL",
        "name": "TEXT",
        "string": "TEXT",
        "arrow_string": "TEXT",
        "channel": "TEXT",
        "at": "TIMESTAMP",
        "at_tz": "TIMESTAMP_TZ",
        "day": "DATE",
        "nothing": "TEXT",
    }
    assert {c.nullability for c in definition.columns} == {hapi.NULLABLE}


def test_an_empty_table_keeps_its_columns(back: dict[str, pd.DataFrame]) -> None:
    empty = back["empty"]
    assert empty.empty and list(empty.columns) == list(every_type().columns)
    assert empty["at_tz"].dtype == "datetime64[us, UTC]" and empty["key"].dtype == "int64"


def test_a_named_index_becomes_a_column_and_row_numbers_are_dropped(back: dict[str, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(
        back["roas"], pd.DataFrame({"channel": ["tv", "search"], "roas": [1.8, 0.6]})
    )
    pd.testing.assert_frame_equal(back["filtered"], pd.DataFrame({"v": [3.0, 1.0]}))


def test_every_bad_table_and_column_is_named_at_once_and_nothing_is_written(tmp_path: Path) -> None:
    bad = pd.DataFrame(
        {
            "paths": [["tv", "search"], ["tv"]],
            "params": [{"a": 1}, {"b": 2}],
            "mixed": [1, "one"],
            "price": [decimal.Decimal("1.5"), decimal.Decimal("2")],
            "raw": [b"\x00", b"\x01"],
            "wait": pd.to_timedelta([1, 2], unit="s"),
            "huge": np.array([2**64 - 1, 1], dtype="uint64"),
        }
    )
    tables = {"bad": bad, "../up": pd.DataFrame({"x": [1]}), "BAD": pd.DataFrame({"x": [1]}), "l": [1, 2]}
    with pytest.raises(InputError) as caught:
        write_extract(tables, tmp_path / "out.parquet")
    message = str(caught.value)
    for fragment in [
        "11 problem(s) with the tables of the Tableau extract 'out.parquet'",
        "the path must end in .hyper",
        "column 'paths' of table 'bad' holds lists; turn them into text (.map(json.dumps))",
        "column 'params' of table 'bad' holds dicts",
        "column 'mixed' of table 'bad' holds values of several kinds (int, str); convert it to one",
        "column 'price' of table 'bad' holds decimals; convert it with .astype(float)",
        "column 'raw' of table 'bad' holds bytes",
        "column 'wait' of table 'bad' holds time spans; convert them to a number, e.g. .dt.total_seconds()",
        "column 'huge' of table 'bad' holds integers beyond the 64-bit range",
        "table name '../up' must be 1-100 letters",
        "table names 'bad' and 'BAD' differ only in case",
        "table 'l' must be a pandas DataFrame, got list",
        "A Tableau extract holds numbers, booleans, text, dates and timestamps",
    ]:
        assert fragment in message, fragment
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("tables", "fragment"),
    [
        ({}, "needs a non-empty mapping of table name to DataFrame, got an empty mapping"),
        ({"t": pd.DataFrame(index=[0, 1])}, "table 't' has no columns"),
        ({"t": pd.DataFrame([[1, 2]], columns=["a", "a"])}, "repeats the column names ['a']"),
        (
            {"t": pd.DataFrame({0: [1], "a\x00b": [2]})},
            "column names that are not non-empty text without NUL",
        ),
    ],
)
def test_bad_names_and_shapes(tmp_path: Path, tables: dict, fragment: str) -> None:
    with pytest.raises(InputError, match="problem") as caught:
        write_extract(tables, tmp_path / "x.hyper")
    assert fragment in str(caught.value)


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    """A file-size limit makes hyperd's writes fail as on a full disk, in a process of its own."""
    target = tmp_path / "results.hyper"
    target.write_text("the previous extract")
    code = textwrap.dedent(
        f"""
        import resource, signal
        import pandas as pd
        from stackml.reports import write_extract
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (32_000, 32_000))  # a Hyper file takes 64 KiB at least
        write_extract({{"t": pd.DataFrame({{"x": range(10)}})}}, {str(target)!r})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode != 0
    assert "ConfigError: Could not write the Tableau extract" in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.hyper"]
    assert target.read_text() == "the previous extract"


def test_a_write_replaces_the_file_whole_and_leaves_no_hyperd_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = write_extract({"a": pd.DataFrame({"x": [1]})}, "first.hyper")
    write_extract({"b": pd.DataFrame({"y": ["z"]})}, target)
    assert list(read_extract(target)) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.hyper"]  # no hyperd*.log, no temporary file


def test_read_extract_refuses_what_is_not_an_extract(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="There is no Tableau extract at"):
        read_extract(tmp_path / "missing.hyper")
    (tmp_path / "text.hyper").write_text("not a database")
    with pytest.raises(InputError, match="Hyper could not read"):
        read_extract(tmp_path / "text.hyper")


def test_an_extract_beside_a_report(tmp_path: Path) -> None:
    report = Report("MMM", "ROAS by channel.", pipeline="mmm").write(tmp_path)
    path = write_extract_beside(report, {"roas": pd.DataFrame({"channel": ["tv"], "roas": [1.8]})})
    assert path == report.with_suffix(".hyper") and path.parent == tmp_path
    assert read_extract(path)["roas"].to_dict("list") == {"channel": ["tv"], "roas": [1.8]}


def test_without_the_hyper_api_extracts_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tableauhyperapi", None)  # how Python marks a module as not importable
    with pytest.raises(MissingDependencyError, match=r"pip install 'stackml\[tableau\]'"):
        write_extract({"t": pd.DataFrame({"x": [1]})}, tmp_path / "x.hyper")
    with pytest.raises(MissingDependencyError, match="tableauhyperapi"):
        read_extract(tmp_path / "x.hyper")
    with caplog.at_level(logging.INFO, logger="stackml.reports.tableau"):
        assert write_extract_beside(tmp_path / "r.html", {"t": pd.DataFrame({"x": [1]})}) is None
    assert [r.getMessage() for r in caplog.records] == [
        'No Tableau extract next to r.html: pip install "stackml[tableau]" writes one.'
    ]
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_place_is_a_config_error_and_a_folder_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="Cannot write the Tableau extract"):
        write_extract({"t": pd.DataFrame({"x": [1]})}, tmp_path / "file" / "x.hyper")
    (tmp_path / "folder.hyper").mkdir()
    with pytest.raises(InputError, match="is a folder; pass the path of a .hyper file"):
        write_extract({"t": pd.DataFrame({"x": [1]})}, tmp_path / "folder.hyper")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.hyper"]
