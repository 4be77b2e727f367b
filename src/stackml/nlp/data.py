"""Texts and labels in: cleaned, checked, and split for validation.

Every problem of the input is listed at once (empty texts, bytes that are not UTF-8, a single class, labels
and texts of different lengths), in the format the rest of stackml uses, before any model is touched.

Example:
    >>> texts = clean_texts(["top up failed", b"card arrived"])
    >>> texts
    ['top up failed', 'card arrived']
    >>> train, valid = stratified_split(["a", "a", "b", "b", "a", "b"], 0.34, seed=0)
    >>> sorted(train.tolist() + valid.tolist())
    [0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from stackml.errors import InputError, raise_if_problems

__all__ = ["check_labels", "clean_texts", "stratified_split", "unseen_labels"]

_SHOWN = 5  # rows named in a message before "and N more"


def _rows(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:_SHOWN])
    more = f" and {len(indices) - _SHOWN} more" if len(indices) > _SHOWN else ""
    return f"{shown}{more}"


def text_problems(texts: Sequence[Any]) -> tuple[list[str], list[str]]:
    """``(cleaned texts, problems)``: bytes decoded as UTF-8, surrounding whitespace kept as given.

    A text is a problem when it is missing (None, NaN), empty or only whitespace, not a string, or bytes
    that do not decode as UTF-8; each kind of problem is reported once, with the rows (0-based) it hit.
    """
    cleaned: list[str] = []
    empty, not_text, not_utf8 = [], [], []
    for i, value in enumerate(texts):
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                not_utf8.append(i)
                cleaned.append("")
                continue
        if value is None or (isinstance(value, float) and np.isnan(value)):
            empty.append(i)
            cleaned.append("")
            continue
        if not isinstance(value, str):
            not_text.append(i)
            cleaned.append("")
            continue
        if not value.strip():
            empty.append(i)
        cleaned.append(value)
    problems = []
    if empty:
        problems.append(f"{len(empty)} text(s) are empty or missing (rows {_rows(empty)})")
    if not_text:
        kinds = sorted({type(texts[i]).__name__ for i in not_text})
        problems.append(f"{len(not_text)} text(s) are not strings but {kinds} (rows {_rows(not_text)})")
    if not_utf8:
        problems.append(
            f"{len(not_utf8)} text(s) are bytes that are not valid UTF-8 (rows {_rows(not_utf8)})"
        )
    return cleaned, problems


def clean_texts(texts: Any, *, what: str = "the texts") -> list[str]:
    """The texts as a list of non-empty strings, or an :class:`InputError` naming every bad row."""
    if isinstance(texts, (str, bytes)):
        raise InputError(
            f"{what} must be a list of texts; got a single {type(texts).__name__} ({texts[:40]!r}).",
            hint="Wrap a single text in a list: [text].",
        )
    cleaned, problems = text_problems(list(texts))
    raise_if_problems(
        problems,
        what=what,
        hint="Drop or fill the rows named (every text must be non-empty UTF-8), then run again.",
    )
    return cleaned


def check_labels(texts: Sequence[str], labels: Sequence[Any], *, min_per_class: int = 2) -> np.ndarray:
    """Labels as an array after checking they fit the texts and can train a classifier.

    At least two classes are needed, and ``min_per_class`` examples of each, so a stratified validation
    split keeps every class on both sides.
    """
    labels = np.asarray(list(labels), dtype=object)
    problems = []
    if len(labels) != len(texts):
        problems.append(f"{len(texts)} texts but {len(labels)} labels; each text needs one label")
    missing = [i for i, v in enumerate(labels) if v is None or (isinstance(v, float) and np.isnan(v))]
    if missing:
        problems.append(f"{len(missing)} label(s) are missing (rows {_rows(missing)})")
    counts = Counter(str(v) for i, v in enumerate(labels) if i not in set(missing))
    if len(counts) < 2:
        problems.append(
            f"only one class ({next(iter(counts), 'none')!r}); a classifier needs at least two labels"
        )
    rare = sorted(c for c, n in counts.items() if n < min_per_class)
    if rare and len(counts) >= 2:
        listed = ", ".join(f"{c!r} ({counts[c]})" for c in rare[:_SHOWN])
        more = f" and {len(rare) - _SHOWN} more" if len(rare) > _SHOWN else ""
        problems.append(f"{len(rare)} class(es) have fewer than {min_per_class} examples: {listed}{more}")
    raise_if_problems(
        problems,
        what="the labels",
        hint="Give every class at least two examples (one for training, one for validation), or merge "
        "rare classes into a broader one.",
    )
    return np.asarray([str(v) for v in labels], dtype=object)


def stratified_split(
    labels: Sequence[Any], share: float, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)``: about ``share`` of each class to validation, at least one row of
    each class on both sides (every class needs two rows)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=object)
    train, valid = [], []
    for value in sorted(set(labels.tolist()), key=str):
        rows = np.flatnonzero(labels == value)
        rng.shuffle(rows)
        n_valid = min(max(1, round(share * len(rows))), len(rows) - 1)
        valid.extend(rows[:n_valid].tolist())
        train.extend(rows[n_valid:].tolist())
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(valid, dtype=int))


def unseen_labels(labels: Sequence[Any], classes: Sequence[str]) -> dict[str, int]:
    """Labels (as strings) not among ``classes``, with how often each occurs."""
    known = set(classes)
    return dict(sorted(Counter(str(v) for v in labels if str(v) not in known).items()))
