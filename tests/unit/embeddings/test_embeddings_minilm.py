"""MiniLM sentence embeddings: sentence-transformers' vectors, in input order, batched by length."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.embeddings import embed_texts, minilm

TEXTS = [
    "my card has not arrived yet",
    "when will my new card come?",
    "reset the password of my login",
    "hi",
    "Überweisung fehlgeschlagen, bitte helfen 🙏",
    # longer than the 128-token window, so truncation is compared too
    " ".join(["the top-up with my debit card failed again and the money is still pending"] * 12),
]


@pytest.fixture(scope="module")
def ours() -> np.ndarray:
    return embed_texts(TEXTS)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """What sentence-transformers computes from the same packaged checkpoint, with our window."""
    minilm.quiet_transformers()  # offline before sentence-transformers imports the hub client
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm.model_path()), device="cpu")
    model.max_seq_length = minilm.DEFAULT_MAX_LENGTH
    return model.encode(TEXTS, batch_size=4, convert_to_numpy=True)


def test_matches_sentence_transformers(ours: np.ndarray, reference: np.ndarray) -> None:
    assert minilm.token_lengths(minilm.load_tokenizer(), TEXTS[-1:])[0] > minilm.DEFAULT_MAX_LENGTH
    assert ours.shape == reference.shape == (len(TEXTS), minilm.DIM)
    assert ours.dtype == np.float32
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 1 - 1e-4, cosine
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batch_size_and_order_do_not_change_vectors(ours: np.ndarray) -> None:
    # batches of 2 pad differently from one batch of 6; the mask keeps padding out of the mean
    order = [5, 3, 0, 4, 2, 1]
    shuffled = embed_texts([TEXTS[i] for i in order], batch_size=2)
    np.testing.assert_allclose(shuffled, ours[order], atol=2e-5)


def test_repeats_are_encoded_once(ours: np.ndarray) -> None:
    before = minilm.encoder_stats()
    vectors = embed_texts([TEXTS[0], TEXTS[3], TEXTS[0], TEXTS[0], TEXTS[3]])
    after = minilm.encoder_stats()
    assert after.texts - before.texts == 2
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[[0, 1]], ours[[0, 3]], atol=2e-5)


def test_a_shorter_window_changes_long_texts_only(ours: np.ndarray) -> None:
    cut = embed_texts([TEXTS[0], TEXTS[-1]], max_length=16)
    np.testing.assert_allclose(cut[0], ours[0], atol=2e-5)
    assert float(cut[1] @ ours[-1]) < 0.999


def test_paraphrases_are_closer_than_other_topics(ours: np.ndarray) -> None:
    assert ours[0] @ ours[1] > ours[0] @ ours[2] + 0.1


def test_length_batches_pad_each_batch_to_its_own_longest_text() -> None:
    lengths = np.array([50, 3, 40, 4, 5, 41])
    batches = [b.tolist() for b in minilm.length_batches(lengths, 2)]
    assert batches == [[1, 3], [4, 2], [5, 0]]
    tokenizer = minilm.load_tokenizer()
    texts = ["a b c d e f g h i j k l", "hi", "a b c d e f g h i j k l m", "yo"]
    widths = [
        minilm.encode(tokenizer, [texts[i] for i in rows], 128)["input_ids"].shape[1]
        for rows in minilm.length_batches(minilm.token_lengths(tokenizer, texts), 2)
    ]
    assert widths == [3, 15]  # [CLS] word [SEP]; 13 words + 2 special tokens


def test_uses_every_core() -> None:
    import os

    import torch

    minilm.use_all_threads()
    assert torch.get_num_threads() == os.cpu_count()
