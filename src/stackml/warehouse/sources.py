"""Reading ingest sources with DuckDB's parallel readers, shared by every engine.

DuckDB's CSV sniffer is generous: left alone it will guess a different delimiter or skip "bad" leading rows,
which silently loads the wrong data. We fix the dialect (RFC 4180, header row, no skipped rows, strict) and
let DuckDB detect only the column types, so a malformed file fails loudly with the line that broke it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from stackml.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def csv_options(path: str | Path) -> str:
    """The read_csv options we use for ``path`` (tab-delimited for .tsv, comma otherwise)."""
    delim = "\\t" if ".tsv" in [s.lower() for s in Path(path).suffixes] else ","
    return (
        f"delim=E'{delim}', header=true, quote='\"', escape='\"', skip=0, "
        "strict_mode=true, null_padding=false, sample_size=20480"
    )


def select_source(fmt: str, path: str | Path) -> str:
    """``SELECT * FROM read_csv/read_parquet(?)`` for a file, the path left as a bound parameter."""
    if fmt == "parquet":
        return "SELECT * FROM read_parquet(?)"
    return f"SELECT * FROM read_csv(?, {csv_options(path)})"


def explain_read_error(exc: Exception, source: object) -> InputError:
    """Turn DuckDB's multi-paragraph reader error into one line that says what broke and where."""
    text = str(exc)
    head = text.split("Possible fix", 1)[0]
    head = re.sub(r"\s*\n\s*", " | ", head.strip()).strip(" |")
    head = re.sub(r"^(Invalid Input|Conversion|IO) Error: ", "", head)
    return InputError(
        f"Could not read '{source}': {head[:400]}",
        hint="Fix the file (a comma-separated UTF-8 file with one header row and the same number of fields "
        "on every line), or convert it to Parquet.",
    )


def read_file(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, read with the same strict reader as ``ingest``.

    Every pipeline reads its ``--data`` file here, so a malformed file gives the same one-line error as
    ``stackml ingest`` and ``.pq``, ``.csv.gz`` and ``.tsv`` work everywhere.
    """
    import duckdb

    from stackml.warehouse.base import source_format

    fmt = source_format(path)  # checks that the file exists, is not empty and has a known extension
    con = duckdb.connect(":memory:")
    try:
        frame = con.execute(select_source(fmt, path), [str(path)]).df()
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        raise explain_read_error(exc, path) from exc
    finally:
        con.close()
    # DuckDB hands timestamps over in microseconds; pandas code (and frames made by pandas) expect
    # nanoseconds.
    for column in frame.columns:
        dtype = frame[column].dtype
        if dtype.kind == "M" and getattr(dtype, "tz", None) is None and str(dtype) != "datetime64[ns]":
            frame[column] = frame[column].astype("datetime64[ns]")
    return frame


def file_columns(path: str | Path) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows (for early checks)."""
    import duckdb

    from stackml.warehouse.base import source_format

    fmt = source_format(path)
    con = duckdb.connect(":memory:")
    try:
        return [d[0] for d in con.execute(f"DESCRIBE {select_source(fmt, path)}", [str(path)]).fetchall()]
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        raise explain_read_error(exc, path) from exc
    finally:
        con.close()
