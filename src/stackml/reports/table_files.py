"""Result tables as files: one Parquet or CSV file per table in a folder that appears whole or not at all."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from stackml._folders import replace_folder
from stackml.errors import ConfigError, InputError, raise_if_problems
from stackml.reports._files import TEMP_SUFFIX
from stackml.reports._frames import table_problems

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_FILE_FORMATS", "write_table_files"]

TABLE_FILE_FORMATS = ("parquet", "csv")


def write_table_files(tables: Mapping[str, pd.DataFrame], folder: Path | str, *, file_format: str) -> Path:
    """Write each table to ``<folder>/<name>.<file_format>``, atomically: the folder is complete or not there.

    The files are written into a temporary folder next to ``folder``, which is then renamed into place. An
    existing ``folder`` is replaced only when it holds nothing but ``.parquet`` and ``.csv`` files (an earlier
    export), so a mistyped path never deletes other work. A named index or one of labels or dates becomes
    leading columns, as in :func:`write_extract`.

    Args:
        tables: table name -> DataFrame; names are 1-100 letters, digits, ``_``, ``.`` or ``-``.
        folder: where the files go; its parent is created if missing.
        file_format: ``"parquet"`` or ``"csv"`` (UTF-8, a header line, no index column).

    Returns:
        The folder written.

    Raises:
        InputError: every problem with the format, the names and the frames at once, or a ``folder`` that is a
            file or holds other files.
    """
    frames, problems = table_problems(tables, "write_table_files")
    if file_format not in TABLE_FILE_FORMATS:
        problems.insert(
            0, f"'file_format' must be one of {', '.join(TABLE_FILE_FORMATS)}, got {file_format!r}"
        )
    target = Path(folder).expanduser()
    if problem := _replace_problem(target):
        problems.append(problem)
    raise_if_problems(problems, what=f"the table files for '{target}'")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise ConfigError(
            f"Cannot write the table files to '{target}': {exc}.", hint="Pass a folder in a writable place."
        ) from exc
    try:
        for name, df in frames.items():
            _write_file(df, tmp / f"{name}.{file_format}", name)
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_file(df: pd.DataFrame, path: Path, name: str) -> None:
    import pyarrow as pa

    if path.suffix == ".csv":
        df.to_csv(path, index=False)
        return
    try:
        df.to_parquet(path, index=False)
    except (
        pa.ArrowException,
        TypeError,
        ValueError,
    ) as exc:  # a column Parquet cannot type, e.g. mixed values
        raise InputError(
            f"Table '{name}' cannot be written as Parquet: {exc}",
            hint="Give each column one type (e.g. .astype(str)), or export with file_format='csv'.",
        ) from exc


def _replace_problem(target: Path) -> str | None:
    """Why ``target`` may not be replaced by a folder of table files, or ``None``."""
    if not target.exists():
        return None
    if not target.is_dir():
        return f"'{target}' is a file, not a folder"
    others = sorted(
        p.name for p in target.iterdir() if not (p.is_file() and p.suffix in {".parquet", ".csv"})
    )
    if others:
        return f"the folder '{target}' holds other things than table files ({', '.join(others[:5])})"
    return None
