"""Spark SQL scripts taken apart: statements, which of them only read, and the table writes we run ourselves.

``spark.sql`` runs one statement, and Spark can only append files to a Parquet table in place, which a reader
could see half done. So a script is split into statements (on sqlglot's tokens, so a ``;`` inside a string or
a comment does not split), and the statements that write a table (``CREATE TABLE ... AS``, ``INSERT INTO``,
``DROP TABLE``) are read here and carried out by the warehouse on its folders, atomically; statements that
would change a table in place (``DELETE``, ``UPDATE``, ``ALTER``, ...) are refused with the way round them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackml.errors import IdentifierError, InputError
from stackml.warehouse.identifiers import fold_table_name

__all__ = ["READ_WORDS", "Statement", "split_statements"]

#: first words of statements that only read
READ_WORDS = ("SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
# Statements that would change a table in place, or load files behind the warehouse's back.
_REFUSED_WORDS = ("DELETE", "UPDATE", "MERGE", "ALTER", "TRUNCATE", "LOAD", "REPLACE", "COPY")
_QUERY_WORDS = ("SELECT", "WITH", "VALUES", "TABLE", "FROM", "(")
_UNSUPPORTED_HINT = (
    "Tables on Spark are Parquet folders, which are rewritten, not changed in place: write the rows to keep "
    "with CREATE OR REPLACE TABLE name AS SELECT ..., add rows with INSERT INTO name SELECT ..., or remove "
    "a table with DROP TABLE name."
)


@dataclass(frozen=True)
class Statement:
    """One statement of a script.

    Attributes:
        text: the statement as written.
        kind: ``read``; ``create``, ``insert`` or ``drop`` (run on the folders); ``invalid`` (a statement we
            do not run; ``error`` says why, raised when it would run, so that a read-only warehouse can refuse
            it as a write first); or ``other`` (anything else: settings, caches, temporary views, or text
            Spark will not parse, which it runs or refuses itself).
        word: its first word, upper case.
        table: the table a create, insert or drop names (folded to lowercase).
        query: the query whose rows a create or insert writes.
        columns: the columns an insert names, in order (empty: by position).
        replace: ``CREATE OR REPLACE``.
        if_exists: ``IF NOT EXISTS`` on a create, ``IF EXISTS`` on a drop.
    """

    text: str
    kind: str
    word: str
    table: str | None = None
    query: str | None = None
    columns: tuple[str, ...] = ()
    replace: bool = False
    if_exists: bool = False
    error: InputError | None = field(default=None, compare=False)


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql``, classified; a comment-only script yields none."""
    import sqlglot
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.tokenize(sql, read="spark")
    except sqlglot.errors.TokenError as exc:
        raise InputError(f"The query failed: cannot read the SQL ({exc}).", hint="Check the SQL.") from exc
    groups: list[list] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            groups.append([])
        else:
            groups[-1].append(token)
    return [_statement(sql, group) for group in groups if group]


def _statement(sql: str, tokens: list) -> Statement:
    text = sql[tokens[0].start : tokens[-1].end + 1]
    words = [t.text.upper() for t in tokens] + ["", "", ""]  # padding: look-aheads never run off the end
    word = next((w for w in words if w != "("), "")
    try:
        return _classified(sql, text, tokens, words, word)
    except InputError as exc:
        return Statement(text, "invalid", word, error=exc)


def _classified(sql: str, text: str, tokens: list, words: list[str], word: str) -> Statement:
    if word == "FROM" and any(t.token_type.name == "INSERT" for t in tokens):  # Hive's FROM t INSERT INTO u
        raise _unsupported(text, "FROM ... INSERT")
    if word in READ_WORDS:
        return Statement(text, "read", word)
    if word in _REFUSED_WORDS:
        raise _unsupported(text, word)
    if word == "CREATE":
        return _create(sql, text, tokens, words)
    if word == "INSERT":
        return _insert(sql, text, tokens, words)
    if word == "DROP":
        if words[1] == "TABLE":
            if_exists = words[2:4] == ["IF", "EXISTS"]
            table, _ = _table_name(tokens, 4 if if_exists else 2, text)
            return Statement(text, "drop", word, table=table, if_exists=if_exists)
        if words[1] not in ("VIEW", "TEMPORARY", "TEMP"):  # only temporary views exist: we create no others
            raise _unsupported(text, f"DROP {words[1]}")
    return Statement(text, "other", word)


def _create(sql: str, text: str, tokens: list, words: list[str]) -> Statement:
    i = 1
    replace = words[1:3] == ["OR", "REPLACE"]
    i += 2 if replace else 0
    if words[i] in ("TEMP", "TEMPORARY") and words[i + 1] == "VIEW":
        return Statement(text, "other", "CREATE")
    if words[i] != "TABLE":
        raise _unsupported(text, "CREATE " + words[i])
    i += 1
    if_exists = words[i : i + 3] == ["IF", "NOT", "EXISTS"]
    table, i = _table_name(tokens, i + 3 if if_exists else i, text)
    if words[i] == "USING":
        if words[i + 1] != "PARQUET":
            raise InputError(
                f"Tables on Spark are Parquet, not {tokens[i + 1].text if i + 1 < len(tokens) else '?'}: "
                f"{_short(text)}",
                hint="Leave out USING, or write USING parquet.",
            )
        i += 2
    if words[i] != "AS" or i + 1 >= len(tokens):
        raise InputError(
            f"CREATE TABLE on Spark needs the query that fills the table (CREATE TABLE name AS SELECT ...), "
            f"got: {_short(text)}",
            hint="Write CREATE TABLE name AS SELECT ...; a table's columns come from its query.",
        )
    query = sql[tokens[i + 1].start : tokens[-1].end + 1]
    return Statement(text, "create", "CREATE", table=table, query=query, replace=replace, if_exists=if_exists)


def _insert(sql: str, text: str, tokens: list, words: list[str]) -> Statement:
    if words[1] != "INTO":
        raise _unsupported(text, "INSERT " + words[1])
    i = 3 if words[2] == "TABLE" else 2
    table, i = _table_name(tokens, i, text)
    columns: list[str] = []
    if words[i] == "(" and words[i + 1] not in _QUERY_WORDS:
        i += 1
        while i < len(tokens) and words[i] != ")":
            if words[i] != ",":
                columns.append(tokens[i].text)
            i += 1
        i += 1
    if i >= len(tokens) or words[i] not in _QUERY_WORDS:
        raise InputError(
            f"INSERT INTO on Spark takes a query or VALUES after the table, got: {_short(text)}",
            hint="Write INSERT INTO name [(columns)] SELECT ... or VALUES (...).",
        )
    query = sql[tokens[i].start : tokens[-1].end + 1]
    return Statement(text, "insert", "INSERT", table=table, query=query, columns=tuple(columns))


def _table_name(tokens: list, i: int, text: str) -> tuple[str, int]:
    """The (maybe schema-qualified) table name starting at token ``i``, and the index after it."""
    parts = [tokens[i].text] if i < len(tokens) else []
    i += 1
    if i + 1 < len(tokens) and tokens[i].text == ".":
        parts.append(tokens[i + 1].text)
        i += 2
    try:
        return fold_table_name(".".join(parts)), i
    except IdentifierError as exc:
        raise IdentifierError(f"{exc.message} (in: {_short(text)})", hint=exc.hint) from exc


def _unsupported(text: str, word: str) -> InputError:
    return InputError(
        f"The Spark warehouse does not run {word.strip()} statements: {_short(text)}", hint=_UNSUPPORTED_HINT
    )


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 80 else flat[:77] + "..."
