"""Bad input is refused with every problem named; the validation split keeps every class on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.nlp import TextClassifier
from stackml.nlp.data import check_labels, clean_texts, stratified_split, unseen_labels


def test_every_bad_text_is_named_at_once() -> None:
    texts = ["fine", "", "   ", None, float("nan"), 42, b"caf\xc3\xa9", b"\xff\xfe broken"]
    with pytest.raises(InputError) as info:
        clean_texts(texts)
    message = str(info.value)
    assert "3 problem(s) with the texts" in message
    assert "4 text(s) are empty or missing (rows 1, 2, 3, 4)" in message
    assert "1 text(s) are not strings but ['int'] (rows 5)" in message
    assert "1 text(s) are bytes that are not valid UTF-8 (rows 7)" in message
    assert clean_texts(["ok", b"caf\xc3\xa9"]) == ["ok", "café"]  # UTF-8 bytes are decoded
    with pytest.raises(InputError, match="a list of texts; got a single str"):
        clean_texts("just one")


def test_labels_need_two_classes_two_examples_each_and_one_per_text() -> None:
    with pytest.raises(InputError, match=r"only one class \('spam'\)"):
        check_labels(["a", "b"], ["spam", "spam"])
    with pytest.raises(InputError) as info:
        check_labels(["a", "b", "c", "d"], ["x", "x", "y"])
    assert "4 texts but 3 labels" in str(info.value) and "'y' (1)" in str(info.value)
    with pytest.raises(InputError, match=r"1 label\(s\) are missing \(rows 1\)"):
        check_labels(["a", "b", "c"], ["x", None, "x"])
    assert check_labels(["a", "b", "c", "d"], [1, 1, 2, 2]).tolist() == ["1", "1", "2", "2"]


def test_the_split_is_stratified_and_keeps_every_class_on_both_sides() -> None:
    labels = np.array(["a"] * 50 + ["b"] * 10 + ["c"] * 2)
    train, valid = stratified_split(labels, 0.2, seed=1)
    assert set(train) | set(valid) == set(range(62)) and not set(train) & set(valid)
    assert sorted(labels[valid].tolist()).count("a") == 10 and labels[valid].tolist().count("b") == 2
    assert labels[valid].tolist().count("c") == 1 and labels[train].tolist().count("c") == 1
    again = stratified_split(labels, 0.2, seed=1)
    assert all((x == y).all() for x, y in zip((train, valid), again))


def test_the_front_door_refuses_bad_settings_and_unfitted_use(train_set) -> None:
    texts, labels = train_set
    with pytest.raises(InputError, match=r"Unknown text model kind 'bert'; the kinds are"):
        TextClassifier("bert").fit(texts, labels)
    with pytest.raises(InputError, match=r"The 'tfidf' model has no parameter\(s\) \['epochs'\]"):
        TextClassifier("tfidf", epochs=3).fit(texts, labels)
    with pytest.raises(InputError, match=r"validation_share must be in \[0, 0.5\); got 0.7"):
        TextClassifier(validation_share=0.7).fit(texts, labels)
    with pytest.raises(NotFittedError):
        TextClassifier().predict(["hello"])
    assert unseen_labels(["a", "z", "z"], ["a", "b"]) == {"z": 2}
