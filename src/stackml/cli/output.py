"""Printing helpers shared by the commands: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def frame_to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN -> null, timestamps -> ISO 8601, numpy scalars -> Python."""
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_frame(df: pd.DataFrame, *, title: str | None = None, max_rows: int = 50) -> None:
    """A Rich table of the first ``max_rows`` rows, with a note when rows were left out."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in df.columns:
        table.add_column(str(column), overflow="fold")
    for row in df.head(max_rows).itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    out = console()
    out.print(table)
    if len(df) > max_rows:
        out.print(f"[dim]... {len(df) - max_rows} more rows (use --json for all of them)[/dim]")
    elif df.empty:
        out.print("[dim](no rows)[/dim]")


def _cell(value: Any) -> str:
    """A table cell: metrics ``{"rmse": 1.2}`` as ``rmse=1.2``, lists ``["a", "b"]`` as ``a, b``."""
    if isinstance(value, dict):
        return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if _is_missing(value) else str(value)


def _is_missing(value: Any) -> bool:
    try:
        return value is None or value != value  # NaN is the one value not equal to itself
    except (TypeError, ValueError):
        return False
