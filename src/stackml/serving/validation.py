"""Check JSON records against a model's MLflow input signature and turn them into a DataFrame.

Every problem in a request is collected before answering, so a client fixes its payload in one round:
a wrong type, a missing required column, a null where a value is required, or an unknown column.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Column",
    "Problem",
    "Validated",
    "columns_from_signature",
    "validate_records",
    "json_type",
    "shown",
    "clip_name",
]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# Largest magnitudes a float32 and a float64 column hold; beyond them a value would become infinite.
_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT64_MAX = sys.float_info.max
_SHOWN_CHARS = 40
_TIMESTAMP_YEARS = (1678, 2261)


@dataclass(frozen=True)
class Column:
    """One input column of a model signature.

    Attributes:
        name: column name.
        type: MLflow type name (``double``, ``long``, ``string``, ``boolean``, ``datetime``, ...,
            or ``array``/``object``/``map``/``any`` for nested types).
        required: whether every record must carry a non-null value.
    """

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request.

    Attributes:
        record: index of the record in ``records`` (None for a problem with the body itself).
        column: the column concerned, when there is one.
        kind: ``wrong_type``, ``missing_column``, ``null_value``, ``unknown_column``, ``feature_column``
            (see :mod:`stackml.serving.enrichment`) or ``invalid_body``.
        message: a sentence saying what was expected and what was received.
    """

    record: int | None
    column: str | None
    kind: str
    message: str


def columns_from_signature(schema: Any) -> list[Column] | None:
    """The columns of an MLflow input ``Schema``, or None when it is absent or tensor-based.

    Tensor signatures (``TensorSpec``) describe arrays, not named columns, so records cannot be
    checked against them; such models get their records as they come.
    """
    from mlflow.types import DataType

    if schema is None or not schema.inputs or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    columns = []
    for spec in schema.inputs:
        kind = spec.type
        # Array, Object, Map and AnyType are no DataType; their to_dict() names them under "type".
        type_name = kind.name if isinstance(kind, DataType) else str(kind.to_dict().get("type", "any"))
        columns.append(Column(spec.name, type_name, bool(getattr(spec, "required", True))))
    return columns


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a client would name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        # Python 3.11 reads every ISO 8601 form a JSON client sends, including a trailing 'Z'.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    # pandas holds nanosecond timestamps, which span the years 1677 to 2262 only.
    return _TIMESTAMP_YEARS[0] <= parsed.year <= _TIMESTAMP_YEARS[1]


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _finite_within(limit: float) -> Callable[[Any], bool]:
    """A check for a finite JSON number the column's float type holds (JSON parsers read 1e400 as inf)."""

    def check(value: Any) -> bool:
        kind = type(value)
        if kind is float:
            return math.isfinite(value) and abs(value) <= limit
        # An int too large for the column would overflow (10**400 cannot even become a float64).
        return kind is int and -limit <= value <= limit

    return check


def non_finite(value: Any) -> bool:
    """Whether a parsed JSON value holds NaN, an infinity or an integer no float can hold, at any depth."""
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is int:
        return not -_FLOAT64_MAX <= value <= _FLOAT64_MAX
    if kind is list:
        return any(non_finite(v) for v in value)
    if kind is dict:
        return any(non_finite(v) for v in value.values())
    return False


# type name -> (check, what a client must send); bool is excluded from numbers on purpose.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "boolean": (lambda v: type(v) is bool, "a JSON boolean"),
    "integer": (lambda v: type(v) is int and _INT32[0] <= v <= _INT32[1], "a JSON integer within 32 bits"),
    "long": (lambda v: type(v) is int and _INT64[0] <= v <= _INT64[1], "a JSON integer within 64 bits"),
    "float": (_finite_within(_FLOAT32_MAX), "a finite JSON number within the float32 range"),
    "double": (_finite_within(_FLOAT64_MAX), "a finite JSON number"),
    "string": (lambda v: type(v) is str, "a JSON string"),
    "binary": (_is_base64, "a base64-encoded JSON string"),
    "datetime": (_is_datetime, "an ISO 8601 date-time string"),
    "array": (lambda v: type(v) is list and not non_finite(v), "a JSON array of finite numbers"),
    "object": (lambda v: type(v) is dict and not non_finite(v), "a JSON object of finite numbers"),
    "map": (lambda v: type(v) is dict and not non_finite(v), "a JSON object of finite numbers"),
}
_ANY = (lambda v: not non_finite(v), "a JSON value without NaN or infinite numbers")


def clip_name(name: str) -> str:
    """A column name as a message shows it: a key may be megabytes long, so only its start."""
    return name if len(name) <= _SHOWN_CHARS else name[: _SHOWN_CHARS - 3] + "..."


def shown(value: Any) -> str:
    """A received value as a problem message shows it: as the client wrote it, cut to a few characters."""
    if type(value) is float and not math.isfinite(value):
        # As the client wrote it: Python's json reads NaN, Infinity, -Infinity and 1e400 alike.
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


class Validated(NamedTuple):
    """The outcome of :func:`validate_records`.

    Attributes:
        frame: the model's input (None when there are problems).
        problems: every problem found; empty when the records are valid.
        exact: True when every column of ``frame`` already has the dtype MLflow's schema enforcement
            would give it (no nulls, no nested values), so that enforcement would change nothing.
    """

    frame: pd.DataFrame | None
    problems: list[Problem]
    exact: bool


def validate_records(records: Sequence[Any], columns: Sequence[Column] | None) -> Validated:
    """Check ``records`` against ``columns`` and build the model's input frame.

    Args:
        records: the request's records, each a mapping of column name to value.
        columns: the signature's columns; None accepts any records as they are.

    Returns:
        ``(frame, [], exact)`` when the records are valid, with columns in signature order and values
        cast to the signature's types; ``(None, problems, False)`` listing every problem otherwise.

    Example:
        >>> frame, problems, exact = validate_records([{"x": "a"}], [Column("x", "double")])
        >>> problems[0].message
        "record 0: column 'x' must be a finite JSON number (double); got string 'a'."
    """
    import pandas as pd

    problems: list[Problem] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                Problem(
                    i, None, "invalid_body", f"record {i} must be a JSON object; got {json_type(record)}."
                )
            )
    if problems:
        return Validated(None, problems, False)
    if columns is None:
        for i, record in enumerate(records):
            for key, value in record.items():
                if non_finite(value):
                    problems.append(
                        Problem(
                            i,
                            clip_name(key),
                            "wrong_type",
                            f"record {i}: column '{clip_name(key)}' must hold finite numbers only; "
                            f"got {json_type(value)} {shown(value)}.",
                        )
                    )
        if problems:
            return Validated(None, problems, False)
        return Validated(pd.DataFrame.from_records(list(records)), [], False)

    known = {c.name for c in columns}
    names = ", ".join(c.name for c in columns)
    checks = [(c, *_CHECKS.get(c.type, _ANY)) for c in columns]
    for i, record in enumerate(records):
        for column, check, expected in checks:
            value = record.get(column.name, _MISSING)
            if value is _MISSING or value is None:
                if column.required:
                    kind, said = (
                        ("missing_column", "is missing") if value is _MISSING else ("null_value", "is null")
                    )
                    problems.append(
                        Problem(
                            i,
                            column.name,
                            kind,
                            f"record {i}: required column '{column.name}' ({column.type}) {said}.",
                        )
                    )
                continue
            if not check(value):
                problems.append(
                    Problem(
                        i,
                        column.name,
                        "wrong_type",
                        f"record {i}: column '{column.name}' must be {expected} ({column.type}); "
                        f"got {json_type(value)} {shown(value)}.",
                    )
                )
        if len(record) > len(known) or any(key not in known for key in record):
            for key in record:
                if key not in known:
                    # A key may be megabytes long: the reply shows its start only.
                    problems.append(
                        Problem(
                            i,
                            clip_name(key),
                            "unknown_column",
                            f"record {i}: unknown column '{clip_name(key)}'; the model takes: {names}.",
                        )
                    )
    if problems:
        return Validated(None, problems, False)
    frame, exact = _frame(records, columns)
    return Validated(frame, [], exact)


class _Missing:
    __slots__ = ()


_MISSING = _Missing()

_NUMPY_DTYPES = {
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "boolean": "bool",
}


def _frame(records: Sequence[dict[str, Any]], columns: Sequence[Column]) -> tuple[pd.DataFrame, bool]:
    """Build the frame column by column (far cheaper than from_records for the usual small request).

    Returns:
        The frame, and whether every column got exactly the signature's dtype.
    """
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    exact = True
    for column in columns:
        values = [record.get(column.name) for record in records]
        has_null = None in values
        dtype = _NUMPY_DTYPES.get(column.type)
        exact = exact and not has_null and column.type in _EXACT_TYPES
        if dtype is not None and not has_null:
            data[column.name] = np.asarray(values, dtype=dtype)
        elif column.type in ("float", "double"):
            data[column.name] = np.asarray([math.nan if v is None else v for v in values], dtype=dtype)
        elif column.type == "datetime":
            data[column.name] = series = _datetimes(values)
            exact = exact and series.dt.tz is None
        elif column.type == "binary":
            data[column.name] = _objects([None if v is None else base64.b64decode(v) for v in values])
        else:
            # Strings, nullable integers and booleans, and nested values stay Python objects.
            data[column.name] = _objects(values)
    return pd.DataFrame(data), exact


_EXACT_TYPES = frozenset({*_NUMPY_DTYPES, "string", "datetime", "binary"})


def _objects(values: list[Any]) -> Any:
    """An object array filled one by one: np.asarray would turn equal-length lists into a 2-D array."""
    import numpy as np

    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


def _datetimes(values: list[Any]) -> pd.Series:
    """Naive timestamps when no value names an offset, else UTC (pandas refuses to mix the two)."""
    import pandas as pd

    aware = any(v is not None and datetime.fromisoformat(v).tzinfo is not None for v in values)
    return pd.Series(pd.to_datetime(values, format="ISO8601", utc=aware))
