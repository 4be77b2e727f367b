"""A small labelled support-message set, built from templates (no data file needed): four intents, with
paraphrases that share few words, so a model has to generalise a little."""

from __future__ import annotations

import itertools

import pytest

INTENTS = {
    "card_arrival": [
        "my card has not arrived yet",
        "when will my new card come",
        "still waiting for the card you sent",
        "the card never showed up in the post",
        "how long does delivery of a card take",
    ],
    "top_up": [
        "how do i add money to my account",
        "top up with my debit card failed",
        "can i load cash onto the balance",
        "the top-up is still pending",
        "put funds in my wallet",
    ],
    "refund": [
        "i want my money back for this order",
        "the merchant has not refunded me",
        "how long until a refund shows",
        "return the payment for the cancelled purchase",
        "a refund is missing from my statement",
    ],
    "password": [
        "i forgot my passcode",
        "reset the password of my login",
        "cannot sign in, password wrong",
        "change my app pin code",
        "locked out after too many password attempts",
    ],
}
OPENERS = ["", "hi, ", "please help: ", "urgent - ", "hello team, "]
CLOSERS = ["", " thanks", "?", " asap", "!!"]


def make_texts(openers: list[str], closers: list[str]) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, phrases in INTENTS.items():
        for phrase, opener, closer in itertools.product(phrases, openers, closers):
            texts.append(f"{opener}{phrase}{closer}")
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def train_set() -> tuple[list[str], list[str]]:
    return make_texts(OPENERS[:4], CLOSERS[:4])  # 4 x 5 x 4 x 4 = 320 texts


@pytest.fixture(scope="session")
def test_set() -> tuple[list[str], list[str]]:
    return make_texts(OPENERS[4:], CLOSERS[4:])  # openers and closers never seen in training


@pytest.fixture(scope="session")
def minilm(train_set):
    """One tiny fine-tune shared by the tests that need a transformer (two short epochs, a 12-token window
    that cuts the longer templates); ``minilm.epochs_reported`` holds what the progress callback got."""
    pytest.importorskip("transformers")
    from stackml.nlp import TextClassifier

    reported: list[tuple[int, dict]] = []
    clf = TextClassifier("minilm", epochs=2, max_length=12, batch_size=32, learning_rate=3e-4)
    clf.fit(*train_set, progress=lambda epoch, row: reported.append((epoch, row)))
    clf.epochs_reported = reported
    return clf
