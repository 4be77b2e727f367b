"""Validation and quoting of SQL identifiers that come from users (table and column names).

Table names are SQL identifiers, so they are case-insensitive: ``Sales`` and ``sales`` name one table. We
store and quote them in lowercase, as PostgreSQL folds unquoted names, so a table loaded as ``probe_Upper`` is
the table ``SELECT * FROM probe_Upper`` reads on every engine.
"""

from __future__ import annotations

import re

from stackml.errors import IdentifierError

# Letters, digits and underscores, starting with a letter or underscore; optionally one `schema.` prefix.
# 63 characters is PostgreSQL's limit, so a name valid here is valid on every engine we support.
_PART = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE_RE = re.compile(rf"^{_PART}(\.{_PART})?$")


def validate_table_name(name: object) -> str:
    """Return ``name`` when it is a safe table name (``sales`` or ``analytics.sales``), else raise.

    Example:
        >>> validate_table_name("analytics.sales")
        'analytics.sales'
    """
    if not isinstance(name, str) or not _TABLE_RE.match(name):
        raise IdentifierError(
            f"Table name {name!r} is not a valid identifier.",
            hint="Use letters, digits and underscores, starting with a letter or underscore, "
            "at most 63 characters, optionally with one schema prefix "
            "(e.g. 'sales_2024' or 'analytics.sales').",
        )
    return name


def fold_table_name(name: object) -> str:
    """The validated table name as it is stored: lowercase, as SQL folds an unquoted name.

    Example:
        >>> fold_table_name("Analytics.Sales")
        'analytics.sales'
    """
    return validate_table_name(name).lower()


def quote_table(name: str) -> str:
    """Validate, fold (see :func:`fold_table_name`) and double-quote a (schema-qualified) table name."""
    return ".".join(f'"{part}"' for part in fold_table_name(name).split("."))


def quote_column(name: str) -> str:
    """Double-quote any column name, escaping embedded quotes (column names come from file headers)."""
    return '"' + str(name).replace('"', '""') + '"'


def split_table(name: str) -> tuple[str | None, str]:
    """``'a.B'`` -> ``('a', 'b')``; ``'b'`` -> ``(None, 'b')`` (folded, see :func:`fold_table_name`)."""
    schema, _, table = fold_table_name(name).rpartition(".")
    return (schema or None), table
