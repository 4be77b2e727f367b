"""A feature service's reference: a seeded sample of the training set its model learned from, kept in the
warehouse, against which feature monitoring tests the drift and quality of the values served online.

One table per service, ``stackml_feature_ref_<service>``, holding the training set's feature columns
(``view__feature``); recording it again replaces it in one load (readers see the old sample or the new one).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError
from stackml.features.config import REFERENCE_ROWS

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = ["RecordedReference", "read_reference", "record_reference", "reference_table"]

_PREFIX = "stackml_feature_ref_"
_MAX_NAME = 63  # PostgreSQL cuts longer names


@dataclass(frozen=True)
class RecordedReference:
    """Where a service's reference went: the table, the rows kept and the rows they were drawn from."""

    service: str
    table: str
    rows: int
    of_rows: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_table(service: str) -> str:
    """The warehouse table holding ``service``'s reference (lowercase; a digest keeps long or mixed-case
    names apart).

    Example:
        >>> reference_table("churn")
        'stackml_feature_ref_churn'
    """
    name = f"{_PREFIX}{service}"
    if len(name) > _MAX_NAME or name != name.lower():
        name = f"{name[: _MAX_NAME - 9]}_{hashlib.sha256(service.encode()).hexdigest()[:8]}"
    return name.lower()


def record_reference(
    wh: Warehouse,
    service: str,
    frame: pd.DataFrame,
    columns: list[str],
    *,
    n_rows: int = REFERENCE_ROWS,
    random_state: int = 0,
) -> RecordedReference:
    """Keep ``columns`` of ``frame`` (a training set), at most ``n_rows`` rows drawn with ``random_state``,
    as ``service``'s reference, replacing the one before."""
    missing = [c for c in columns if c not in frame.columns]
    if missing or not columns:
        raise InputError(
            f"The reference of service '{service}' needs the feature columns {columns}; the frame lacks "
            f"{missing or columns} (it has {[str(c) for c in frame.columns]}).",
            hint="Pass the training set get_training_set returned for this service.",
        )
    if frame.empty:
        raise InputError(
            f"The training set of service '{service}' has no rows, so it cannot be its reference.",
            hint="Build the training set from entity rows first.",
        )
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise InputError(f"'n_rows' must be an int >= 1, got {n_rows!r}.", hint="e.g. n_rows=50000")
    kept = frame[columns]
    if len(kept) > n_rows:
        kept = kept.sample(n=n_rows, random_state=random_state).sort_index()
    table = reference_table(service)
    wh.ingest(kept.reset_index(drop=True), table, if_exists="replace")
    return RecordedReference(service, table, len(kept), len(frame))


def read_reference(wh: Warehouse, service: str) -> pd.DataFrame | None:
    """``service``'s reference, or None when none was recorded in this warehouse."""
    table = reference_table(service)
    if not wh.has_table(table):
        return None
    return wh.query(f"SELECT * FROM {table}")
