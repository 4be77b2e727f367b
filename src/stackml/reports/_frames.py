"""What every export of result tables checks first: table and column names, and which index is data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_NAME_RULE", "index_is_data", "table_problems"]

# Names become Hyper table names and file names (`<name>.csv`): nothing that leaves a folder or needs quoting.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TABLE_NAME_RULE = "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"


def index_is_data(df: pd.DataFrame) -> bool:
    """Whether the index holds data (a named index, or one of labels or dates) rather than row numbers.

    Unnamed integer labels are row numbers, often left over from filtering, and mean nothing to a reader.
    """
    import pandas as pd

    return any(n is not None for n in df.index.names) or not pd.api.types.is_integer_dtype(df.index)


def table_problems(tables: Any, what: str) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables with a data index moved into leading columns, and every problem of names and frames.

    Names must follow :data:`TABLE_NAME_RULE` and differ other than in case (they become file names, and
    some file systems ignore case); each value must be a DataFrame with at least one column, and column
    names must be unique, non-empty text (no NUL character, which SQL cannot quote).
    """
    import pandas as pd

    if not isinstance(tables, Mapping) or not tables:
        got = type(tables).__name__ if not isinstance(tables, Mapping) else "an empty mapping"
        return {}, [f"{what} needs a non-empty mapping of table name to DataFrame, got {got}"]
    frames: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, df in tables.items():
        if not isinstance(name, str) or not _TABLE_NAME.match(name):
            problems.append(f"table name {name!r} must be {TABLE_NAME_RULE}")
        elif name.lower() in seen:
            problems.append(f"table names {seen[name.lower()]!r} and {name!r} differ only in case")
        else:
            seen[name.lower()] = name
        if not isinstance(df, pd.DataFrame):
            problems.append(f"table {name!r} must be a pandas DataFrame, got {type(df).__name__}")
            continue
        frame = df.reset_index() if index_is_data(df) else df
        problems += _column_problems(name, frame)
        frames[str(name)] = frame
    return frames, problems


def _column_problems(name: Any, df: pd.DataFrame) -> list[str]:
    if df.shape[1] == 0:
        return [f"table {name!r} has no columns"]
    problems = []
    bad = [c for c in df.columns if not isinstance(c, str) or not c or "\x00" in c]
    if bad:
        problems.append(f"table {name!r} has column names that are not non-empty text without NUL: {bad!r}")
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        problems.append(f"table {name!r} repeats the column names {repeated}")
    return problems
