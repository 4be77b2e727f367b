import pytest

from stackml.errors import IdentifierError, InputError
from stackml.warehouse import quote_column, quote_table, validate_table_name
from stackml.warehouse.params import rewrite


@pytest.mark.parametrize("name", ["sales", "_x", "Sales_2024", "analytics.sales", "a" * 63])
def test_valid_table_names(name: str) -> None:
    assert validate_table_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["x; drop table y", "", "1abc", "a-b", 'a"b', "a.b.c", "a" * 64, "sales ", "tab\tle", "ünï", None, 3],
)
def test_hostile_or_invalid_table_names_are_refused(name: object) -> None:
    with pytest.raises(IdentifierError, match="not a valid identifier"):
        validate_table_name(name)


def test_quoting() -> None:
    assert quote_table("analytics.sales") == '"analytics"."sales"'
    assert quote_column('we"ird col') == '"we""ird col"'


def test_rewrite_positional_and_named() -> None:
    assert rewrite("SELECT * FROM t WHERE a = ? AND b = ?", [1, 2], "psycopg") == (
        "SELECT * FROM t WHERE a = %s AND b = %s",
        [1, 2],
    )
    sql, params = rewrite("SELECT :a, :b::int, ':c', \"d?\" -- e ?\n", {"a": 1, "b": 2, "z": 3}, "duckdb")
    assert sql == "SELECT $a, $b::int, ':c', \"d?\" -- e ?\n"
    assert params == {"a": 1, "b": 2}


def test_rewrite_escapes_percent_for_psycopg_only_when_bound() -> None:
    assert rewrite("SELECT 5 % 2 WHERE s LIKE 'a%' AND x = ?", [1], "psycopg")[0] == (
        "SELECT 5 %% 2 WHERE s LIKE 'a%%' AND x = %s"
    )
    assert rewrite("SELECT 5 % 2", None, "psycopg") == ("SELECT 5 % 2", None)


@pytest.mark.parametrize(
    ("sql", "params", "match"),
    [
        ("SELECT ?", {"a": 1}, "'\\?' placeholders but the parameters are a mapping"),
        ("SELECT :a", [1], "named placeholder ':a' but the parameters are a sequence"),
        ("SELECT :a, :b", {"a": 1}, r"needs parameters \['b'\]"),
        ("SELECT ?", "abc", "must be a sequence"),
    ],
)
def test_rewrite_errors(sql: str, params: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        rewrite(sql, params, "duckdb")
