"""Result tables as a folder of Parquet or CSV files, written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.reports import write_table_files

TABLES = {
    "roas": pd.DataFrame({"roas": [1.8, 0.6]}, index=pd.Index(["tv", "search"], name="channel")),
    "contributions": pd.DataFrame({"week": pd.to_datetime(["2024-01-01", "2024-01-08"]), "tv": [10.0, None]}),
}


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_one_file_per_table_with_the_index_as_a_column(tmp_path: Path, file_format: str) -> None:
    folder = write_table_files(TABLES, tmp_path / "out", file_format=file_format)
    assert sorted(p.name for p in folder.iterdir()) == [f"contributions.{file_format}", f"roas.{file_format}"]
    read = pd.read_parquet if file_format == "parquet" else pd.read_csv
    roas = read(folder / f"roas.{file_format}")
    pd.testing.assert_frame_equal(roas, pd.DataFrame({"channel": ["tv", "search"], "roas": [1.8, 0.6]}))
    contributions = read(folder / f"contributions.{file_format}")
    if file_format == "csv":
        contributions["week"] = pd.to_datetime(contributions["week"])
    pd.testing.assert_frame_equal(contributions, TABLES["contributions"], check_dtype=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_an_earlier_export_is_replaced_whole(tmp_path: Path) -> None:
    folder = write_table_files(TABLES, tmp_path / "out", file_format="csv")
    write_table_files({"only": pd.DataFrame({"x": [1]})}, folder, file_format="csv")
    assert [p.name for p in folder.iterdir()] == ["only.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_of_other_things_or_a_file_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=r"holds other things than table files \(notes.txt\)"):
        write_table_files(TABLES, tmp_path / "work", file_format="csv")
    assert (tmp_path / "work" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("keep me too")
    with pytest.raises(InputError, match="is a file, not a folder"):
        write_table_files(TABLES, tmp_path / "file", file_format="parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "work"]


def test_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        write_table_files(
            {"a/b": pd.DataFrame({"x": [1]}), "t": "text"}, tmp_path / "out", file_format="xlsx"
        )
    message = str(caught.value)
    assert message.startswith("3 problem(s) with the table files")
    for fragment in ["'file_format' must be one of parquet, csv, got 'xlsx'", "'a/b' must be", "got str"]:
        assert fragment in message
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_earlier_export_and_no_temporary_folder(tmp_path: Path) -> None:
    folder = write_table_files(TABLES, tmp_path / "out", file_format="parquet")
    mixed = pd.DataFrame(
        {"m": [1, "one"]}
    )  # Parquet needs one type per column; the first table is written first
    with pytest.raises(InputError, match="Table 'z_mixed' cannot be written as Parquet"):
        write_table_files(
            {"a_fine": pd.DataFrame({"x": [1]}), "z_mixed": mixed}, folder, file_format="parquet"
        )
    assert sorted(p.name for p in folder.iterdir()) == ["contributions.parquet", "roas.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
