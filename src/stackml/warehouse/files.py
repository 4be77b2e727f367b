"""Checks on the start of a source file, before any engine reads it: compression, encoding, delimiter, header.

DuckDB would otherwise load a semicolon file as one column, rename a repeated ``x`` to ``x_1``, or answer a
wrong file with a page of reader internals. Each check raises one :class:`~stackml.errors.InputError` that
says what is wrong with the file and how to fix it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from stackml.errors import InputError

__all__ = [
    "FIX_CSV",
    "csv_delimiter",
    "diagnose_csv",
    "duplicated_names_problem",
    "inspect_file",
    "is_parquet",
    "not_gzip",
    "not_parquet",
    "not_utf8",
]

#: how much of a file's start :func:`inspect_file` reads: its header and first lines
_HEAD_BYTES = 1 << 16
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes", ",": "commas"}
FIX_CSV = (
    "Fix the file (a comma-separated UTF-8 file with one header row and the same number of fields on every "
    "line), or convert it to Parquet."
)


def duplicated_names_problem(names: list[str]) -> str | None:
    """``"columns named more than once: ['x']"`` when two names are equal ignoring case (SQL does not tell
    them apart), else ``None``."""
    seen: dict[str, str] = {}
    duplicated = []
    for name in names:
        key = name.lower()
        if key in seen and seen[key] not in duplicated:
            duplicated.append(seen[key])
        seen.setdefault(key, name)
    return f"columns named more than once (ignoring case): {duplicated}" if duplicated else None


def inspect_file(path: Path, fmt: str) -> None:
    """Check the start of a CSV or Parquet file before any engine reads it, so a wrong file fails in one line.

    A ``.gz`` name must hold a gzip stream, a CSV header must be UTF-8, use the delimiter of its extension
    (commas, tabs for ``.tsv``) and name each column once; a Parquet file must carry the Parquet marker and
    name each column once. DuckDB would otherwise load a semicolon file as one column, rename a repeated
    ``x`` to ``x_1``, or answer with a page of reader internals.
    """
    if fmt == "parquet":
        _inspect_parquet(path)
        return
    head = _head_bytes(path)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut in two by the end of the chunk
            line = head[: exc.start].count(b"\n") + 1
            raise not_utf8(path, line) from exc
        text = head[: exc.start].decode("utf-8")
    delimiter = csv_delimiter(path)
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    if len(header) == 1:
        wrong = _other_delimiter(header[0], delimiter)
        if wrong:
            raise InputError(
                f"Could not read '{path}': its header {header[0][:80]!r} is separated by {wrong}, "
                f"not {_OTHER_DELIMITERS[delimiter]}.",
                hint="Save it with commas as a .csv file, or with tabs as a .tsv file.",
            )
    problem = duplicated_names_problem(header)
    if problem:
        raise InputError(
            f"Could not read '{path}': the header has {problem}.",
            hint="Rename the columns in the header so that each name is unique.",
        )


def csv_delimiter(path: str | Path) -> str:
    """Tab for ``.tsv`` files, comma otherwise."""
    return "\t" if ".tsv" in [s.lower() for s in Path(path).suffixes] else ","


def _other_delimiter(field: str, delimiter: str) -> str | None:
    for candidate, name in _OTHER_DELIMITERS.items():
        if candidate != delimiter and candidate in field:
            return name
    return None


def _head_bytes(path: Path) -> bytes:
    """The first bytes of ``path``, decompressed when its name ends in ``.gz``."""
    if path.suffix.lower() != ".gz":
        with path.open("rb") as fh:
            return fh.read(_HEAD_BYTES)
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise not_gzip(path) from exc


def _inspect_parquet(path: Path) -> None:
    with path.open("rb") as fh:
        start = fh.read(4)
        fh.seek(max(path.stat().st_size - 4, 0))
        end = fh.read(4)
    if start != b"PAR1" or end != b"PAR1":
        raise not_parquet(path)
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged footer
        raise not_parquet(path, f"its footer cannot be read ({' '.join(str(exc).split())[:120]})") from exc
    problem = duplicated_names_problem(names)
    if problem:
        raise InputError(
            f"Could not read '{path}': the Parquet file has {problem}.",
            hint="Write it again with unique column names.",
        )


def not_parquet(
    path: Path, why: str = "it does not start and end with the Parquet marker 'PAR1'"
) -> InputError:
    looks_like_text = False
    with path.open("rb") as fh:
        head = fh.read(4096)
    try:
        looks_like_text = head.decode("utf-8").isprintable() or "\n" in head.decode("utf-8")
    except UnicodeDecodeError:
        pass
    hint = (
        "It looks like text: if it is a CSV file, name it *.csv; otherwise write it again as Parquet "
        "(pandas: df.to_parquet(path))."
        if looks_like_text
        else "Write it again as Parquet (pandas: df.to_parquet(path)), or check that the copy is complete."
    )
    return InputError(f"Could not read '{path}': it is not a Parquet file ({why}).", hint=hint)


def not_gzip(path: Path) -> InputError:
    return InputError(
        f"Could not read '{path}': its name ends in .gz but it is not gzip-compressed.",
        hint=f"Rename it without .gz if it is plain text, or compress it with `gzip {path.with_suffix('')}`.",
    )


def not_utf8(path: object, line: int | None) -> InputError:
    where = f"line {line}" if line else "a line"
    return InputError(
        f"Could not read '{path}': {where} is not UTF-8 text (the file is in another encoding, "
        "e.g. Latin-1 or Windows-1252).",
        hint=f"Save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 '{path}' > utf8.csv`.",
    )


def is_parquet(path: Path) -> bool:
    return any(s.lower() in (".parquet", ".pq") for s in path.suffixes)


def diagnose_csv(path: Path) -> str | None:
    """What is wrong with the first lines of a CSV file that DuckDB's sniffer rejected, in words."""
    try:
        head = _head_bytes(path)
    except InputError:
        return None
    if len(head) == _HEAD_BYTES:
        head = head.rsplit(b"\n", 1)[0]  # whole lines only
    text = head.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(path), strict=True)
    try:
        header = next(reader)
        for row in reader:
            if row and len(row) != len(header):
                return (
                    f"line {reader.line_num:,} has {len(row)} fields but the header has {len(header)} "
                    f"(Expected Number of Columns: {len(header)} Found: {len(row)})"
                )
    except csv.Error as exc:
        return f"line {reader.line_num:,} is malformed ({exc}; a quote is probably not closed)"
    if text.count('"') % 2:
        return "a quoted field is never closed (an odd number of '\"')"
    return None
