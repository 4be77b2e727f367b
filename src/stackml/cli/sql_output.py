"""How ``stackml sql`` prints a result: a JSON array written batch by batch, or a table of the first rows.

JSON keeps every value exact: integers and decimals with all their digits, floats in their shortest exact form
(``1e-12``), timestamps and intervals as the engine's text (``2024-01-01T10:00:00.123456``, ``3 days``). NaN
and infinities become ``null`` (JSON has no such numbers), bytes a ``"\\x..."`` hex string. The array is
spooled to a temporary file (memory stays flat) and copied to stdout only when the whole result has been
read, so a query that fails half-way prints nothing on stdout.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any
from uuid import UUID

from stackml.errors import InputError

if TYPE_CHECKING:
    from stackml.warehouse import Rows

#: JSON beyond this many bytes goes to a temporary file instead of memory
_SPOOL_BYTES = 16 << 20


def json_value(value: Any) -> str:
    """One value as JSON text, exactly (see the module docstring)."""
    encode = _ENCODERS.get(type(value))
    if encode is not None:
        return encode(value)
    if isinstance(value, (datetime, date, time)):
        return encode_basestring(value.isoformat())
    if isinstance(value, timedelta):
        return encode_basestring(str(value))
    return encode_basestring(str(value))


def _float(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"


def _decimal(value: Decimal) -> str:
    return str(value) if value.is_finite() else "null"


def _bytes(value: bytes | bytearray | memoryview) -> str:
    return encode_basestring("\\x" + bytes(value).hex())


def _list(value: list[Any] | tuple[Any, ...]) -> str:
    return "[" + ", ".join(json_value(v) for v in value) + "]"


def _dict(value: dict[Any, Any]) -> str:
    return "{" + ", ".join(f"{encode_basestring(str(k))}: {json_value(v)}" for k, v in value.items()) + "}"


_ENCODERS: dict[type, Callable[[Any], str]] = {
    type(None): lambda v: "null",
    bool: lambda v: "true" if v else "false",
    int: str,
    float: _float,
    Decimal: _decimal,
    str: encode_basestring,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    UUID: lambda v: encode_basestring(str(v)),
    list: _list,
    tuple: _list,
    dict: _dict,
}


def write_json(rows: Rows) -> None:
    """Print ``rows`` as a JSON array of row objects on stdout, once all of them have been read."""
    repeated = sorted({c for c in rows.columns if rows.columns.count(c) > 1})
    if repeated:
        raise InputError(
            f"The query returns more than one column named {repeated}, which a JSON object cannot hold.",
            hint="Name the columns apart with AS, e.g. SELECT a.id AS a_id, b.id AS b_id.",
        )
    keys = [encode_basestring(c) + ": " for c in rows.columns]
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8") as spool:
        first = True
        spool.write("[")
        for batch in rows:
            for row in batch:
                spool.write(
                    ("\n  {" if first else ",\n  {")
                    + ", ".join(k + json_value(v) for k, v in zip(keys, row))
                    + "}"
                )
                first = False
        spool.write("]\n" if first else "\n]\n")
        spool.seek(0)
        try:
            shutil.copyfileobj(spool, sys.stdout, 1 << 20)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader (e.g. `| head`) has had enough; not an error of ours
            sys.stderr.close()


def text_value(value: Any) -> str:
    """One value as the table shows it: empty for null, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json_value(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return json.loads(_bytes(value))
    return repr(value) if isinstance(value, float) else str(value)


def print_rows(rows: Rows, *, max_rows: int) -> None:
    """A table of the first ``max_rows`` rows, and how many more there are (counted, not kept)."""
    from rich.table import Table

    from stackml.cli.output import console

    shown: list[tuple[Any, ...]] = []
    total = 0
    for batch in rows:
        total += len(batch)
        shown.extend(batch[: max(max_rows - len(shown), 0)])
    out = console()
    if not rows.columns:
        out.print("[dim]Done (the statement returns no rows).[/dim]")
        return
    table = Table(show_lines=False, header_style="bold")
    for column in rows.columns:
        table.add_column(column, overflow="fold")
    for row in shown:
        table.add_row(*[text_value(v) for v in row])
    out.print(table)
    if total > len(shown):
        out.print(f"[dim]... {total - len(shown):,} more rows (use --json for all of them)[/dim]")
    elif total == 0:
        out.print("[dim](no rows)[/dim]")
