"""The public surface of stackml.embeddings: its names, cheap import, and every bad argument of embed_texts
named at once, through both methods."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import stackml.embeddings as embeddings
from stackml.embeddings import TEXT_METHODS, embed_texts
from stackml.errors import InputError

GOOD = ["my card has not arrived", "reset my password"]


def test_public_names() -> None:
    assert TEXT_METHODS == ("minilm", "tfidf")
    assert {"embed_texts", "numeric_matrix", "TEXT_METHODS"} <= set(embeddings.__all__)


def test_import_loads_no_heavy_library() -> None:
    heavy = ["torch", "transformers", "sklearn", "pandas", "sentence_transformers", "duckdb"]
    code = f"import sys, stackml.embeddings; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("method", TEXT_METHODS)
@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ("one string", r"'texts' must be a list of strings, got str"),
        (
            pd.Series(GOOD),
            r"'texts' must be a list of strings, got Series \(convert a column with \.tolist\(\)\)",
        ),
        (["ok", 3, None, "fine"], r"'texts' holds 2 non-string value\(s\) \(NoneType, int\) at rows 1, 2"),
        (
            ["a", "", " ", "b", "\n", "", "", "", "c"],
            r"holds 6 empty or blank text\(s\) at rows 1, 2, 4, 5, 6 and 1 more",
        ),
        (["only one"], r"'texts' must hold at least 2 texts to embed and compare, got 1"),
        ([], r"'texts' must hold at least 2 texts to embed and compare, got 0"),
    ],
)
def test_bad_texts(texts: object, match: str, method: str) -> None:
    with pytest.raises(InputError, match=match):
        embed_texts(texts, method)  # type: ignore[arg-type]


def test_every_bad_argument_at_once() -> None:
    with pytest.raises(InputError) as caught:
        embed_texts(
            ["fine", ""],
            "bert",
            n_components=0,
            batch_size=True,
            max_length=1000,
            warehouse="duckdb:///x.duckdb",  # type: ignore[arg-type]
            random_state=-1,
        )
    message = str(caught.value)
    assert message.startswith("7 problem(s) with the embed_texts call:")
    for expected in [
        "'texts' holds 1 empty or blank text(s) at rows 1",
        "'method' must be one of ['minilm', 'tfidf'], got 'bert'",
        "'n_components' must be an int >= 1, got 0",
        "'batch_size' must be an int >= 1, got True",
        "'max_length' must be an int in [1, 512] (the model's window), got 1000",
        "'warehouse' must be a Warehouse from stackml.warehouse.connect(...) or None, got str",
        "'random_state' must be an int >= 0, got -1",
    ]:
        assert expected in message
    assert caught.value.hint and "at least 2 non-empty strings" in caught.value.hint


def test_a_tuple_of_texts_is_accepted() -> None:
    assert embed_texts(tuple(GOOD), "tfidf").shape == (2, 1)  # type: ignore[arg-type]
