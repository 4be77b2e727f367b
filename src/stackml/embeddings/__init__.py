"""Embeddings shared by NLP and clustering: sentence vectors (MiniLM), LSA vectors (TF-IDF + SVD) and
standardised numeric rows.

Importing this package is cheap: torch, transformers and scikit-learn load on the first call that needs them.

Example:
    >>> from stackml.embeddings import embed_texts
    >>> embed_texts(["card not arrived", "card arrived late", "reset my password"], "tfidf").shape
    (3, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from stackml.checks import int_problem
from stackml.embeddings import minilm
from stackml.embeddings.numeric import NumericScaler, fit_numeric
from stackml.errors import raise_if_problems

if TYPE_CHECKING:
    import pandas as pd

    from stackml.warehouse import Warehouse

__all__ = ["TEXT_METHODS", "NumericScaler", "embed_texts", "numeric_matrix"]

#: text embedding methods, the default first
TEXT_METHODS = ("minilm", "tfidf")
_SHOWN_ROWS = 5  # row positions named in an error before "and N more"


def embed_texts(
    texts: list[str],
    method: str = "minilm",
    *,
    n_components: int = 128,
    batch_size: int = 64,
    max_length: int = 128,
    warehouse: Warehouse | None = None,
    random_state: int = 0,
) -> np.ndarray:
    """Dense vectors of ``texts``, one unit-length row per text, in order.

    Args:
        texts: at least 2 non-blank strings.
        method: ``"minilm"``, sentence embeddings of all-MiniLM-L6-v2 (384 dimensions; needs no fitting, so
            vectors of new texts are comparable with old ones), or ``"tfidf"``, TF-IDF reduced by truncated
            SVD (LSA; fitted on these texts, at most ``n_components`` dimensions).
        n_components: the most LSA dimensions (``"tfidf"`` only).
        batch_size: texts per forward pass (``"minilm"`` only).
        max_length: tokens read per text, longer texts are cut (``"minilm"`` only; at most 512).
        warehouse: with ``"minilm"``, a warehouse whose ``embedding_cache`` table keeps vectors by content
            hash, so a text is encoded once across calls (a read-only warehouse is read, never written).
        random_state: seed of the SVD (``"tfidf"`` only).

    Returns:
        ``(len(texts), d)`` float32; repeated texts get the same row.

    Raises:
        InputError: listing every problem with the arguments at once.

    Example:
        >>> vectors = embed_texts(["where is my card", "my card has not come", "reset my password"])
        >>> vectors.shape, bool(vectors[0] @ vectors[1] > vectors[0] @ vectors[2])
        ((3, 384), True)
    """
    _check_embed_arguments(texts, method, n_components, batch_size, max_length, warehouse, random_state)
    texts = list(texts)
    if method == "tfidf":
        from stackml.embeddings.lsa import lsa_embed

        return lsa_embed(texts, n_components=n_components, random_state=random_state)
    # Repeats are encoded once: vectors of the distinct texts, then one row per input text.
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}

    def encode(batch: list[str]) -> np.ndarray:
        return minilm.embed(batch, batch_size=batch_size, max_length=max_length)

    if warehouse is None:
        vectors = encode(unique)
    else:
        from stackml.embeddings.cache import embed_cached

        # The size is a constant so that a call served wholly from the cache never loads the model.
        vectors = embed_cached(
            unique, warehouse, model=minilm.MODEL_NAME, dim=minilm.DIM, max_length=max_length, embed=encode
        ).vectors
    return vectors[[position[t] for t in texts]]


def numeric_matrix(frame: pd.DataFrame, columns: list[str] | None = None) -> tuple[np.ndarray, NumericScaler]:
    """Standardised numeric rows (mean 0, standard deviation 1 per column) and the scaler that repeats the
    scaling on new rows.

    Args:
        frame: the rows.
        columns: the columns to use, in order; default every numeric column (booleans excluded).

    Returns:
        ``(len(frame), len(columns))`` float64 and a :class:`NumericScaler` whose ``transform(frame)`` scales
        new rows with these means and deviations.

    Raises:
        InputError: naming every missing, non-numeric and constant column, the NaN and inf counts of each
            column, and too few rows, at once.

    Example:
        >>> import pandas as pd
        >>> x, scaler = numeric_matrix(pd.DataFrame({"spend": [1.0, 3.0], "visits": [5, 7]}))
        >>> x.tolist(), scaler.columns
        ([[-1.0, -1.0], [1.0, 1.0]], ('spend', 'visits'))
    """
    return fit_numeric(frame, columns)


def _check_embed_arguments(
    texts: Any,
    method: Any,
    n_components: Any,
    batch_size: Any,
    max_length: Any,
    warehouse: Any,
    random_state: Any,
) -> None:
    """Every problem with the arguments of :func:`embed_texts`, raised together."""
    problems = _texts_problems(texts)
    if method not in TEXT_METHODS:
        problems.append(f"'method' must be one of {list(TEXT_METHODS)}, got {method!r}")
    problems += [
        int_problem("n_components", n_components, low=1),
        int_problem("batch_size", batch_size, low=1),
        int_problem("random_state", random_state, low=0),
    ]
    if int_problem("max_length", max_length, low=1) or max_length > minilm.MAX_POSITIONS:
        problems.append(
            f"'max_length' must be an int in [1, {minilm.MAX_POSITIONS}] (the model's window), "
            f"got {max_length!r}"
        )
    if warehouse is not None:
        from stackml.warehouse import Warehouse

        if not isinstance(warehouse, Warehouse):
            problems.append(
                f"'warehouse' must be a Warehouse from stackml.warehouse.connect(...) or None, "
                f"got {type(warehouse).__name__}"
            )
    raise_if_problems(
        [p for p in problems if p],
        what="the embed_texts call",
        hint="Pass a list of at least 2 non-empty strings and the options as documented in embed_texts.",
    )


def _texts_problems(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        return [
            f"'texts' must be a list of strings, got {type(texts).__name__}"
            + (" (convert a column with .tolist())" if hasattr(texts, "tolist") else "")
        ]
    problems = []
    not_str = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if not_str:
        kinds = sorted({type(texts[i]).__name__ for i in not_str})
        problems.append(
            f"'texts' holds {len(not_str)} non-string value(s) ({', '.join(kinds)}) at rows {_rows(not_str)}"
        )
    blank = [i for i, t in enumerate(texts) if isinstance(t, str) and not t.strip()]
    if blank:
        problems.append(f"'texts' holds {len(blank)} empty or blank text(s) at rows {_rows(blank)}")
    if len(texts) < 2:
        problems.append(f"'texts' must hold at least 2 texts to embed and compare, got {len(texts)}")
    return problems


def _rows(positions: list[int]) -> str:
    """The first few row positions, and how many more."""
    shown = ", ".join(map(str, positions[:_SHOWN_ROWS]))
    more = len(positions) - _SHOWN_ROWS
    return f"{shown} and {more} more" if more > 0 else shown
