"""One placeholder style for every engine: ``?`` with a sequence, ``:name`` with a mapping.

DuckDB understands ``?`` and ``$name``; psycopg wants ``%s`` and ``%(name)s``; Spark SQL takes ``?`` and
``:name`` as they are. Users write one style and we rewrite it for the engine, skipping string literals,
quoted identifiers, comments and ``::`` casts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from stackml.errors import InputError

# Tokens we must not look inside, then placeholders. Order matters: literals first.
_TOKEN = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|::)"""
    r"""|(?P<named>(?<![:\w]):(?P<name>[A-Za-z_]\w*))"""
    r"""|(?P<qmark>\?)"""
    r"""|(?P<percent>%)""",
    re.S,
)

Params = Sequence[Any] | Mapping[str, Any] | None


def rewrite(sql: str, params: Params, style: str) -> tuple[str, Any]:
    """Rewrite ``sql`` placeholders for ``style`` ("duckdb", "psycopg" or "spark"); ``(sql, params)``."""
    if params is None:
        return sql, None
    named = isinstance(params, Mapping)
    if not named and (isinstance(params, (str, bytes)) or not isinstance(params, Sequence)):
        raise InputError(
            "Query parameters must be a sequence (for '?') or a mapping (for ':name'), "
            f"got {type(params).__name__}.",
            hint="Pass e.g. params=[42] with 'WHERE id = ?' or params={'id': 42} with 'WHERE id = :id'.",
        )
    used: list[str] = []

    def _sub(m: re.Match[str]) -> str:
        if m.group("skip"):
            # psycopg scans literals too, so a literal '%' must be doubled there as well.
            return m.group(0).replace("%", "%%") if style == "psycopg" else m.group(0)
        if m.group("percent"):
            return "%%" if style == "psycopg" else "%"
        if m.group("qmark"):
            if named:
                raise InputError(
                    "The query uses '?' placeholders but the parameters are a mapping.",
                    hint="Use ':name' placeholders with a mapping, or pass a list for '?'.",
                )
            return "%s" if style == "psycopg" else "?"
        name = m.group("name")
        if not named:
            raise InputError(
                f"The query uses the named placeholder ':{name}' but the parameters are a sequence.",
                hint="Pass a mapping such as {'" + name + "': ...} or use '?' placeholders.",
            )
        used.append(name)
        return {"psycopg": f"%({name})s", "spark": f":{name}"}.get(style, f"${name}")

    out = _TOKEN.sub(_sub, sql)
    if named:
        missing = sorted(set(used) - set(params))
        if missing:
            raise InputError(
                f"The query needs parameters {missing} that were not given (got {sorted(params)}).",
                hint="Add them to the params mapping.",
            )
        # DuckDB and Spark refuse a named parameter that the query does not use.
        return out, dict(params) if style == "psycopg" else {k: v for k, v in params.items() if k in used}
    return out, list(params)


# sqlglot rewrites placeholders into the target's own style (``%s`` for PostgreSQL), which ``rewrite`` would
# then escape. Before translating we swap each placeholder for a plain identifier sqlglot passes through, and
# back after.
_SENTINEL = re.compile(r'"?__stackml_(q|n)_(\w*?)__"?')


def protect_placeholders(sql: str) -> str:
    """Replace ``?`` and ``:name`` (outside literals) by identifiers that survive a sqlglot round trip."""

    def _sub(m: re.Match[str]) -> str:
        if m.group("qmark"):
            return "__stackml_q___"
        if m.group("named"):
            return f"__stackml_n_{m.group('name')}__"
        return m.group(0)

    return _TOKEN.sub(_sub, sql)


def restore_placeholders(sql: str) -> str:
    """Undo :func:`protect_placeholders` on translated SQL."""
    return _SENTINEL.sub(lambda m: "?" if m.group(1) == "q" else f":{m.group(2)}", sql)
