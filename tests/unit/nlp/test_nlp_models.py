"""Each model kind learns the templated intents and honours the front door's contract. The transformer kinds
use tiny settings (one short epoch, short windows): these test the plumbing, bench/nlp.py the accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.errors import InputError
from stackml.nlp import TextClassifier

pytest.importorskip("sklearn")


def _contract(clf: TextClassifier, texts: list[str]) -> None:
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (clf.predict(texts) == clf.classes_[proba.argmax(axis=1)]).all()
    top = clf.predict_top_k(texts[:2], k=3)
    assert len(top) == 2 and [len(t) for t in top] == [3, 3]
    assert all(t[0][1] >= t[1][1] >= t[2][1] for t in top)
    assert top[0][0][0] == clf.predict(texts[:1])[0]


@pytest.fixture(scope="module")
def tfidf(train_set) -> TextClassifier:
    return TextClassifier("tfidf").fit(*train_set)


def test_tfidf_learns_the_intents_and_keeps_the_contract(tfidf, test_set) -> None:
    texts, labels = test_set
    assert list(tfidf.classes_) == ["card_arrival", "password", "refund", "top_up"]
    assert tfidf.validation_scores_["accuracy"] >= 0.9
    assert tfidf.evaluate(texts, labels)["accuracy"] >= 0.9
    assert set(tfidf.evaluate(texts, labels)) == {"accuracy", "macro_f1"}
    _contract(tfidf, texts)
    assert len(tfidf.history_) == 1 and tfidf.truncated_ == 0


def test_a_test_label_never_seen_in_training_is_refused(tfidf, test_set) -> None:
    texts, labels = test_set
    with pytest.raises(InputError, match=r"1 label\(s\) the model was not trained on: 'fraud' \(2\)"):
        tfidf.evaluate(texts[:4], [*labels[:2], "fraud", "fraud"])


def test_class_weights_balance_a_rare_class(train_set) -> None:
    texts, labels = train_set
    keep = [i for i, label in enumerate(labels) if label != "refund" or i % 16 == 0]  # refund: 5 of 80
    clf = TextClassifier("tfidf").fit([texts[i] for i in keep], [labels[i] for i in keep])
    refund = [t for t, label in zip(*train_set) if label == "refund"]
    assert (clf.predict(refund) == "refund").mean() >= 0.8


@pytest.mark.slow
def test_embed_linear_learns_the_intents(train_set, test_set) -> None:
    pytest.importorskip("transformers")
    clf = TextClassifier("embed-linear").fit(*train_set)
    assert clf.evaluate(*test_set)["accuracy"] >= 0.9
    _contract(clf, test_set[0])


@pytest.mark.slow
def test_minilm_fine_tunes_reports_each_epoch_and_counts_cut_texts(minilm, test_set) -> None:
    clf = minilm
    assert [e for e, _ in clf.epochs_reported] == [1, 2] and [r["epoch"] for r in clf.history_] == [1.0, 2.0]
    assert {"train_loss", "val_loss", "val_accuracy", "seconds"} <= set(clf.history_[0])
    assert clf.truncated_ > 0  # a 12-token window cuts the longer templates
    assert clf.evaluate(*test_set)["accuracy"] >= 0.8
    _contract(clf, test_set[0])
