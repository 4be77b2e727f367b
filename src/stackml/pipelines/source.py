"""Where a pipeline's data come from: a file or a warehouse table, exactly one of them.

Files (CSV, TSV, Parquet, optionally compressed) are read by the warehouse's strict reader
(:func:`stackml.warehouse.read_file`), the same one ``stackml ingest`` uses, so a malformed file fails the
same way everywhere. Tables are read from the warehouse the caller passes.

Example:
    >>> from stackml.pipelines import Source
    >>> Source.of(table="sales").default_model_name("forecast")
    'forecast-sales'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = ["Source"]


@dataclass(frozen=True)
class Source:
    """A data file (``path``) or a warehouse table (``table``); build it with :meth:`of`."""

    path: Path | None = None
    table: str | None = None

    @classmethod
    def of(cls, data: str | Path | None = None, table: str | None = None) -> Source:
        """Check that exactly one of ``data`` and ``table`` is given, that the file exists, and the table
        name.

        Empty strings count as not given, so a flow's ``""`` Parameter defaults map back to ``None``.
        """
        data = data or None
        table = table or None
        if (data is None) == (table is None):
            got = "both" if data is not None else "neither"
            raise InputError(
                f"Give exactly one of a data file or a warehouse table; got {got}.",
                hint="Use --data PATH or --table NAME.",
            )
        if table is not None:
            from stackml.warehouse import validate_table_name

            validate_table_name(table)
            return cls(table=table)
        path = Path(data).expanduser()  # type: ignore[arg-type]
        if not path.is_file():
            what = (
                f"Data file '{data}' is a folder, not a file."
                if path.is_dir()
                else f"Data file not found: '{data}'."
            )
            raise InputError(what, hint="Check the path; it is resolved from the current folder.")
        return cls(path=path.resolve())

    @property
    def name(self) -> str:
        """The dataset's name: the table, or the file name without its extensions."""
        return self.table if self.table is not None else self.path.name.split(".")[0]  # type: ignore[union-attr]

    def default_model_name(self, prefix: str) -> str:
        """``<prefix>-<dataset>``: one registered model per dataset, so champions compare like with like."""
        stem = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "data"
        return f"{prefix}-{stem}"

    def describe(self) -> str:
        """How messages name the source: ``the table 'x'`` or ``the data file '/p/x.csv'``."""
        return f"the table '{self.table}'" if self.table is not None else f"the data file '{self.path}'"

    def columns(self, warehouse: Warehouse | None = None) -> list[str]:
        """The source's column names, without reading its rows."""
        if self.table is not None:
            return list(self._warehouse(warehouse).schema(self.table))  # names the known tables when missing
        from stackml.warehouse import file_columns

        return file_columns(self.path)  # type: ignore[arg-type]

    def read(self, warehouse: Warehouse | None = None) -> pd.DataFrame:
        """Every row of the source as a DataFrame."""
        if self.table is not None:
            from stackml.warehouse import quote_table

            wh = self._warehouse(warehouse)
            wh.require_table(self.table)
            return wh.query(f"SELECT * FROM {quote_table(self.table)}")
        from stackml.warehouse import read_file

        return read_file(self.path)  # type: ignore[arg-type]

    def check(self, warehouse: Warehouse | None = None) -> None:
        """Fail now when the table does not exist (files were checked by :meth:`of`)."""
        if self.table is not None:
            self._warehouse(warehouse).require_table(self.table)

    def as_parameters(self) -> dict[str, str]:
        """The flow Parameters ``data`` and ``table`` (empty for the one not given)."""
        return {"data": str(self.path) if self.path else "", "table": self.table or ""}

    def _warehouse(self, warehouse: Warehouse | None) -> Any:
        if warehouse is None:
            raise InputError(
                f"Reading the table '{self.table}' needs a warehouse.", hint="Pass warehouse=connect(url)."
            )
        return warehouse
