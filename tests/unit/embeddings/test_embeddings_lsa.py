"""TF-IDF + SVD (LSA) vectors: the dimension rule, unit rows, determinism and what the words say."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stackml.embeddings import embed_texts
from stackml.embeddings.lsa import lsa_dims, min_df_for
from stackml.errors import InputError

TOPICS = {
    "card": ["card not arrived", "new card delivery late", "card never came in the post"],
    "password": ["reset my password", "forgot password for login", "password locked after attempts"],
    "refund": ["refund missing from statement", "merchant refund not received", "waiting on a refund"],
}
OPENERS = ["", "hello, ", "urgent: "]
TEXTS = [
    opener + phrase for phrases in TOPICS.values() for phrase, opener in itertools.product(phrases, OPENERS)
]


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return embed_texts(TEXTS, "tfidf", n_components=8, random_state=3)


def test_shape_dtype_and_unit_rows(vectors: np.ndarray) -> None:
    assert vectors.shape == (len(TEXTS), 8)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_seed_same_vectors(vectors: np.ndarray) -> None:
    np.testing.assert_array_equal(embed_texts(TEXTS, "tfidf", n_components=8, random_state=3), vectors)


def test_texts_of_a_topic_are_closer_than_texts_of_others(vectors: np.ndarray) -> None:
    topic = np.repeat(np.arange(len(TOPICS)), len(TEXTS) // len(TOPICS))
    similarity = vectors @ vectors.T
    same = similarity[topic[:, None] == topic[None, :]].mean()
    other = similarity[topic[:, None] != topic[None, :]].mean()
    assert same > other + 0.3


def test_dimensions_are_capped_by_terms_and_texts() -> None:
    assert embed_texts(["card not arrived", "card arrived late"], "tfidf").shape == (2, 1)  # n - 1
    assert embed_texts(TEXTS, "tfidf", n_components=500).shape[1] < len(TEXTS)
    assert lsa_dims(128, n_features=5, n_texts=100) == 4
    assert lsa_dims(128, n_features=900, n_texts=50) == 49
    assert lsa_dims(16, n_features=900, n_texts=50) == 16


def test_min_df_grows_slowly_with_the_corpus() -> None:
    assert [min_df_for(n) for n in (2, 49, 50, 3999, 6000, 10_000, 10**6)] == [1, 1, 2, 2, 3, 5, 5]


def test_a_corpus_of_stop_words_is_refused() -> None:
    with pytest.raises(InputError, match=r"hold 0 distinct word\(s\) once English stop words are removed"):
        embed_texts(["it is what it is", "and then there were none"], "tfidf")


def test_rare_terms_are_kept_when_the_bar_would_leave_too_few() -> None:
    # 60 texts ask for min_df=2, but every content word appears once: keep them rather than fail
    texts = [f"word{i} other{i}" for i in range(60)]
    assert embed_texts(texts, "tfidf", n_components=4).shape == (60, 4)
