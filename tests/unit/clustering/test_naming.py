"""Cluster keywords (c-TF-IDF against a plain-Python oracle), central examples, numeric profiles and names."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from stackml.clustering.naming import central_examples, cluster_name, ctfidf_keywords, numeric_profile
from stackml.errors import InputError

TOPICS = {
    0: ["card", "arrive", "delivery", "post"],
    1: ["refund", "payment", "money", "charge"],
    2: ["password", "login", "account", "reset"],
}
TEMPLATES = ["please help, my {a} and {b} today", "why is the {a} {b} so slow", "thanks, {a} {b} again"]


def templated_texts(n_per_topic: int = 12) -> tuple[list[str], list[int]]:
    """Texts of three topics sharing the same filler words; only the topic words tell them apart."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for topic, words in TOPICS.items():
        for i in range(n_per_topic):
            a, b = rng.choice(words, size=2, replace=False)
            texts.append(TEMPLATES[i % len(TEMPLATES)].format(a=a, b=b))
            labels.append(topic)
    return texts, labels


def oracle_ctfidf(texts: list[str], labels: list[int]) -> dict[int, dict[str, float]]:
    """c-TF-IDF from its definition, in plain Python: words of 2+ letters without stop words, and bigrams."""
    counts: dict[int, Counter] = {}
    for text, label in zip(texts, labels):
        words = [w for w in re.findall(r"\b\w\w+\b", text.lower()) if w not in ENGLISH_STOP_WORDS]
        terms = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        counts.setdefault(label, Counter()).update(terms)
    average = sum(sum(c.values()) for c in counts.values()) / len(counts)
    frequency = sum(counts.values(), Counter())
    return {
        label: {t: n / sum(c.values()) * math.log(1 + average / frequency[t]) for t, n in c.items()}
        for label, c in counts.items()
    }


def test_ctfidf_ranks_each_topics_own_words_first():
    texts, labels = templated_texts()
    keywords = ctfidf_keywords(texts, labels, top_n=4)
    assert set(keywords) == {0, 1, 2}
    for topic, words in TOPICS.items():
        # the topic's own words and bigrams of them; no shared filler word ("help", "slow", "thanks")
        assert len(keywords[topic]) == 4
        assert {w for keyword in keywords[topic] for w in keyword.split()} <= set(words)


def test_ctfidf_matches_the_plain_python_oracle():
    texts = [
        "apple apple banana",
        "apple cherry pie",
        "banana cherry",
        "banana bread and banana cake",
        "cherry pie",
        "noise words only here",
    ]
    labels = [0, 0, 1, 1, 2, -1]
    scores = oracle_ctfidf(texts, labels)
    keywords = ctfidf_keywords(texts, labels, top_n=3)
    for label in (0, 1, 2):
        ranked = sorted(scores[label], key=lambda t: (-round(scores[label][t], 12), t))
        assert keywords[label] == ranked[:3]


def test_ctfidf_skips_outliers_and_survives_empty_vocabularies():
    texts, labels = templated_texts(n_per_topic=3)
    labels[0] = -1
    assert -1 not in ctfidf_keywords(texts, labels)
    assert ctfidf_keywords(["the and", "of a", None], [0, 1, -1]) == {0: [], 1: []}


def test_central_examples_are_the_rows_nearest_the_centre():
    # cluster 0 on a line: centroid 0.1 / 6; nearest are 0.0, then 0.1, then -1/1 (1 is nearer by 1/30)
    line = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.1])
    X = np.column_stack([line, np.zeros(6)])
    X = np.vstack([X, [[50.0, 0.0]], [[100.0, 1.0], [101.0, 1.0]]])
    labels = [0, 0, 0, 0, 0, 0, -1, 1, 1]
    texts = pd.Series(["m2", "m1", "zero", "p1", "p2", "tenth", "far", "a", "b"], index=range(10, 19))
    assert central_examples(X, labels, texts, n=3, metric="euclidean") == {
        0: ["zero", "tenth", "p1"],
        1: ["a", "b"],
    }


def test_central_examples_by_cosine_ignore_vector_length():
    # Three directions near 45 degrees: the long vector on the centre direction is nearest by angle
    X = np.array([[10.0, 10.0], [1.0, 0.8], [0.8, 1.0], [1.0, 0.0]])
    texts = ["long, on the diagonal", "near", "near too", "off"]
    assert central_examples(X, [0, 0, 0, 0], texts, n=1) == {0: ["long, on the diagonal"]}
    assert central_examples(X, [0, 0, 0, 0], texts, n=1, metric="euclidean") == {0: ["near"]}


def test_numeric_profile_finds_the_one_shifted_feature():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    labels = np.repeat([0, 1, 2], 100)
    frame.loc[labels == 1, "c"] += 3.0
    frame["name"] = "ignored text"
    profile = numeric_profile(frame, labels, top_n=2)
    top = profile[1][0]
    assert top["feature"] == "c" and top["effect"] > 2.5
    assert top["cluster_mean"] == pytest.approx(frame.loc[labels == 1, "c"].mean())
    assert top["overall_mean"] == pytest.approx(frame["c"].mean())
    assert (
        profile[0][0]["feature"] == "c" and profile[0][0]["effect"] < 0
    )  # lower than the rest, with cluster 1
    assert set(profile[0][0]) == {"feature", "effect", "cluster_mean", "overall_mean"}


def test_numeric_profile_effect_is_cohens_d_by_hand():
    # cluster [1, 3] vs rest [4, 6, 8, 10]: means 2 and 7, variances 2 and 20/3,
    # pooled variance (1 * 2 + 3 * 20/3) / 4 = 5.5, so d = -5 / sqrt(5.5); the constant column has no effect
    frame = pd.DataFrame({"x": [1.0, 3.0, 4.0, 6.0, 8.0, 10.0], "flat": 1.0})
    profile = numeric_profile(frame, [0, 0, 1, 1, 1, -1], top_n=3)
    assert [d["feature"] for d in profile[0]] == ["x"]
    assert profile[0][0]["effect"] == pytest.approx(-5 / math.sqrt(5.5))
    assert -1 not in profile


def test_numeric_profile_uses_the_overall_sd_when_both_groups_are_constant():
    profile = numeric_profile(np.array([[0.0], [0.0], [1.0], [1.0]]), [0, 0, 1, 1])
    assert profile[1][0]["feature"] == "x0"
    assert profile[1][0]["effect"] == pytest.approx(1 / np.std([0, 0, 1, 1], ddof=1))


@pytest.mark.parametrize(
    ("keywords", "name"),
    [
        (["card", "arrive", "delivery", "late"], "card_arrive_delivery"),
        (["card arrive", "card", "delivery"], "card_arrive_delivery"),
        (["Top-Up", "fee"], "top_up_fee"),
        ([], "unnamed"),
    ],
)
def test_cluster_name(keywords, name):
    assert cluster_name(keywords) == name


def test_bad_inputs_are_reported_with_the_parameter_named():
    with pytest.raises(InputError, match=r"the input has 2 rows but 'labels' has 3 entries"):
        ctfidf_keywords(["a b", "c d"], [0, 1, 1])
    with pytest.raises(InputError, match=r"'top_n' must be an int >= 1, got 0"):
        ctfidf_keywords(["a b", "c d"], [0, 1], top_n=0)
    with pytest.raises(
        InputError, match=r"'texts' has 1 entries but 'labels' has 2[\s\S]*'metric' must be one of"
    ):
        central_examples(np.zeros((2, 2)), [0, 1], ["a"], metric="manhattan")
    with pytest.raises(InputError, match=r"the input has 2 rows but 'labels' has 1 entries"):
        numeric_profile(pd.DataFrame({"x": [1.0, 2.0]}), [0])
    with pytest.raises(InputError, match=r"'frame' has no numeric columns \(it has \['t'\]\)"):
        numeric_profile(pd.DataFrame({"t": ["a", "b"]}), [0, 1])
