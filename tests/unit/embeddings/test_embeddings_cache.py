"""The warehouse cache of MiniLM vectors, on DuckDB and PostgreSQL: a cached text is never encoded again.

Each test uses texts of its own (a tag in every text), so the tests share one warehouse per engine and do
not depend on each other's order.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from stackml.embeddings import embed_texts, minilm
from stackml.embeddings.cache import TABLE, embed_cached, text_hash
from stackml.warehouse import Warehouse, connect

PHRASES = ["my card has not arrived", "reset my password", "top up failed", "refund is missing"]


def texts_for(tag: str) -> list[str]:
    return [f"{phrase} ({tag})" for phrase in PHRASES]


def cached_rows(warehouse: Warehouse) -> int:
    if not warehouse.has_table(TABLE):
        return 0
    sql = f"SELECT count(*) AS n FROM {TABLE} WHERE model = ?"
    return int(warehouse.query(sql, [minilm.MODEL_NAME]).iloc[0, 0])


def encoded_by(call: Callable[[], np.ndarray]) -> tuple[np.ndarray, int]:
    """The call's result and how many texts it ran through the encoder."""
    before = minilm.encoder_stats().texts
    result = call()
    return result, minilm.encoder_stats().texts - before


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('cache') / 'wh.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with connect(url) as wh:
        wh.execute(f"DROP TABLE IF EXISTS {TABLE}")
        yield wh
        wh.execute(f"DROP TABLE IF EXISTS {TABLE}")


def test_second_call_encodes_nothing(warehouse: Warehouse) -> None:
    texts = texts_for("second-call")
    rows_before = cached_rows(warehouse)
    first, encoded = encoded_by(lambda: embed_texts(texts, warehouse=warehouse))
    assert encoded == len(texts)
    assert cached_rows(warehouse) == rows_before + len(texts)
    np.testing.assert_allclose(first, embed_texts(texts), atol=2e-5)

    # Another order, with repeats: every vector comes from the cache, in the order asked for.
    order = [3, 0, 0, 2, 1, 3]
    again, encoded = encoded_by(lambda: embed_texts([texts[i] for i in order], warehouse=warehouse))
    assert encoded == 0
    assert cached_rows(warehouse) == rows_before + len(texts)
    np.testing.assert_array_equal(again, first[order])
    assert again.dtype == np.float32


def test_only_new_texts_are_encoded_and_written(warehouse: Warehouse) -> None:
    old, new = texts_for("partial-old"), texts_for("partial-new")[:2]
    embed_texts(old, warehouse=warehouse)
    rows_before = cached_rows(warehouse)
    mixed = [new[0], old[1], new[1], old[0], new[0]]
    result = embed_cached(
        list(dict.fromkeys(mixed)),
        warehouse,
        model=minilm.MODEL_NAME,
        dim=minilm.DIM,
        max_length=128,
        embed=minilm.embed,
    )
    assert (result.hits, result.embedded) == (2, 2)
    vectors, encoded = encoded_by(lambda: embed_texts(mixed, warehouse=warehouse))
    assert encoded == 0
    assert cached_rows(warehouse) == rows_before + 2
    np.testing.assert_allclose(vectors, embed_texts(mixed), atol=2e-5)


def test_another_window_is_another_entry(warehouse: Warehouse) -> None:
    texts = texts_for("window")
    embed_texts(texts, warehouse=warehouse)
    rows_before = cached_rows(warehouse)
    short, encoded = encoded_by(lambda: embed_texts(texts, warehouse=warehouse, max_length=4))
    assert encoded == len(texts)
    assert cached_rows(warehouse) == rows_before + len(texts)
    np.testing.assert_allclose(short, embed_texts(texts, max_length=4), atol=2e-5)
    _, encoded = encoded_by(lambda: embed_texts(texts, warehouse=warehouse, max_length=4))
    assert encoded == 0


def test_the_table_holds_float32_bytes_by_hash(warehouse: Warehouse) -> None:
    text = texts_for("layout")[0]
    vector = embed_texts([text, text], warehouse=warehouse)[0]
    row = warehouse.query(
        f"SELECT dim, vector FROM {TABLE} WHERE model = ? AND text_hash = ?",
        [minilm.MODEL_NAME, text_hash(text, 128)],
    )
    assert len(row) == 1 and int(row.dim[0]) == minilm.DIM
    np.testing.assert_array_equal(np.frombuffer(bytes(row.vector[0]), dtype="<f4"), vector)


def test_text_hash_covers_text_and_window() -> None:
    assert text_hash("hi", 128) == text_hash("hi", 128)
    assert len({text_hash("hi", 128), text_hash("hi", 64), text_hash("hi ", 128), text_hash("12:hi", 8)}) == 4
    # the window is a digits-and-colon prefix, so a text that starts like one cannot collide
    assert text_hash("8:hi", 12) != text_hash("hi", 128)


def test_a_read_only_warehouse_is_read_never_written(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'ro.duckdb'}"
    cached, fresh = texts_for("read-only-cached"), texts_for("read-only-fresh")[:1]
    with connect(url) as wh:
        embed_texts(cached, warehouse=wh)
    with connect(url, read_only=True) as wh:
        vectors, encoded = encoded_by(lambda: embed_texts(cached + fresh, warehouse=wh))
        assert encoded == 1
        assert cached_rows(wh) == len(cached)
    np.testing.assert_allclose(vectors, embed_texts(cached + fresh), atol=2e-5)


def test_a_call_served_from_the_cache_never_loads_the_model(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'warm.duckdb'}"
    texts = texts_for("warm")
    with connect(url) as wh:
        expected = embed_texts(texts, warehouse=wh)
    code = (
        "import sys, numpy as np\n"
        "from stackml.embeddings import embed_texts\n"
        "from stackml.warehouse import connect\n"
        f"wh = connect({url!r}); v = embed_texts({texts!r}, warehouse=wh); wh.close()\n"
        "np.save(sys.argv[1], v); print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.npy")], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), expected)


def test_a_damaged_row_is_encoded_again_and_repaired(warehouse: Warehouse) -> None:
    texts = texts_for("damaged")[:2]
    first = embed_texts(texts, warehouse=warehouse)
    update = f"UPDATE {TABLE} SET vector = ? WHERE model = ? AND text_hash = ?"
    warehouse.execute(update, [b"\x00\x01\x02", minilm.MODEL_NAME, text_hash(texts[0], 128)])
    again, encoded = encoded_by(lambda: embed_texts(texts, warehouse=warehouse))
    assert encoded == 1
    np.testing.assert_allclose(again, first, atol=2e-5)
    _, encoded = encoded_by(lambda: embed_texts(texts, warehouse=warehouse))
    assert encoded == 0
