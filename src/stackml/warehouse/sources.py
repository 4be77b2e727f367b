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
from stackml.warehouse.files import (
    FIX_CSV,
    csv_delimiter,
    diagnose_csv,
    is_parquet,
    not_gzip,
    not_parquet,
    not_utf8,
)

if TYPE_CHECKING:
    import pandas as pd


def csv_options(path: str | Path) -> str:
    """The read_csv options we use for ``path`` (tab-delimited for .tsv, comma otherwise)."""
    delim = "\\t" if csv_delimiter(path) == "\t" else ","
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
    """Turn DuckDB's multi-paragraph reader error into one line that says what broke, where, and the fix."""
    text = str(exc)
    line_match = re.search(r"CSV Error on Line: (\d+)", text)
    line = int(line_match.group(1)) if line_match else None
    at = f"line {line:,}" if line else "a line"
    path = Path(str(source)) if isinstance(source, (str, Path)) else None
    if "not a GZIP stream" in text and path is not None:
        return not_gzip(path)
    if path is not None and is_parquet(path) and re.search(r"[Pp]arquet|magic bytes", text):
        return not_parquet(path, " ".join(text.splitlines()[0].split(": ", 1)[-1].split())[:160])
    if "not utf-8 encoded" in text or "Invalid unicode" in text:
        return not_utf8(source, line)
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if fields:
        return InputError(
            f"Could not read '{source}': {at} has {fields.group(2)} fields but the header has "
            f"{fields.group(1)} (Expected Number of Columns: {fields.group(1)} Found: {fields.group(2)}).",
            hint=FIX_CSV,
        )
    conversion = re.search(r'converting column "(.*?)"\. Could not convert string "(.*?)" to \'(\w+)\'', text)
    if conversion:
        column, value, kind = conversion.groups()
        return InputError(
            f"Could not read '{source}': {at} has {value!r} in column '{column}', which holds {kind} values "
            "in the rows before it.",
            hint="Fix that value, or quote the column's values so that it is read as text.",
        )
    if "Error when sniffing file" in text and path is not None:
        found = diagnose_csv(path)
        if found:
            return InputError(f"Could not read '{source}': {found}.", hint=FIX_CSV)
    head = text.split("Possible fix", 1)[0].split("\n\n", 1)[0]
    head = re.sub(r"\s*\n\s*", " | ", head.strip()).strip(" |")
    head = re.sub(r"^(Invalid Input|Conversion|IO) Error: ", "", head)
    return InputError(f"Could not read '{source}': {head[:300]}", hint=FIX_CSV)


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
