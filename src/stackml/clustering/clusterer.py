"""``Clusterer``: the one front door to clustering, with scikit-learn's contract.

It owns the input: texts are embedded (:func:`stackml.embeddings.embed_texts`), numeric frames standardised
(:func:`stackml.embeddings.numeric_matrix`), 2-D arrays taken as already embedded. Then a reduction
(:mod:`stackml.clustering.reduction`) and an algorithm (:mod:`stackml.clustering.algorithms`), each a small
class found by name, see only NumPy arrays. ``predict`` repeats the same preparation on new rows and places
them without refitting.

Example:
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(n_samples=300, centers=3, random_state=0)
    >>> model = Clusterer("kmeans", k=3).fit(X)
    >>> model.n_clusters_, model.predict(X[:2]).tolist() == model.labels_[:2].tolist()
    (3, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stackml.checks import int_problem, is_int
from stackml.clustering.algorithms import ALGORITHMS, DEFAULT_K_RANGE, OUTLIER, make_algorithm
from stackml.clustering.reduction import REDUCTIONS, make_reduction
from stackml.errors import InputError, NotFittedError, raise_if_problems

__all__ = ["Clusterer", "DEFAULT_N_COMPONENTS", "TEXT_COLUMN"]

# Dimensions kept by each reduction when n_components is None. UMAP to 5 is BERTopic's default and what
# HDBSCAN needs on sentence embeddings: on BANKING77's 3,080 test texts (77 intents) the default Clusterer
# (MiniLM -> UMAP(5) -> HDBSCAN) reaches V-measure 0.80-0.82 over seeds 0-2 (0.79-0.81 with its 5-6%
# outliers left as -1; bench/results/clustering.md), while PCA to 5-20 dimensions gave 0.43-0.60 in our
# trials. PCA keeps 10: enough for the structure of numeric rows, few
# enough for densities to mean something.
DEFAULT_N_COMPONENTS = {"umap": 5, "pca": 10, "none": None}
#: how many fitted rows place a new row when the reduction is UMAP (see Clusterer.predict_proba)
PLACEMENT_NEIGHBOURS = 10
#: the most fitted rows per cluster kept for placing new rows
PLACEMENT_PER_CLUSTER = 200
TEXT_COLUMN = "text"  # the column a frame of texts is read from (the clustering input is `id, text`)
_SHOWN = 5  # positions named in an error before "and N more"

_FIT_HINT = (
    "Pass a list of at least 2 texts, a DataFrame of numeric columns (or a 'text' column), or a 2-D numeric "
    "array, and the options as documented in Clusterer."
)


class Clusterer:
    """Cluster texts or numeric rows: prepare, reduce, cluster; place new rows with :meth:`predict`.

    Args:
        algorithm: ``"hdbscan"`` (finds the number of clusters, marks outliers ``-1``) or ``"kmeans"``.
        k: K-means only: the number of clusters; ``None`` chooses it by silhouette over ``k_range``.
        k_range: K-means only: ``(lowest, highest)`` k tried when ``k`` is None, both included.
        embedding: texts only: ``"minilm"`` (sentence embeddings, the default) or ``"tfidf"`` (TF-IDF + SVD,
            no neural model, fitted to the training texts; :meth:`predict` maps new texts with the fitted
            vocabulary, so words it never saw add nothing).
        columns: numeric frames only: the columns to cluster on (default every numeric column). A single
            column of strings, or a frame's ``text`` column when ``columns`` is None, is read as texts.
        reduction: ``"auto"`` (UMAP for texts, PCA for numeric rows), ``"umap"``, ``"pca"``, or ``None``
            for none.
        n_components: dimensions kept by the reduction; ``None``: 5 for UMAP, 10 for PCA.
        min_cluster_size: HDBSCAN only: the smallest group called a cluster; ``None`` chooses it from the
            data by relative validity (see ``HDBSCANClustering._choose_min_cluster_size``).
        min_samples: HDBSCAN only: neighbours that make a core point; ``None`` is half of min_cluster_size.
        reassign_outliers: HDBSCAN only: move each outlier to the cluster with the nearest centre (in
            :meth:`predict` too); ``outliers_`` keeps which rows HDBSCAN left out. On by default: every row
            gets a cluster, and on 20 subsets of BANKING77 V-measure rose by up to 0.03 (never fell by more
            than 0.001) where HDBSCAN had left 0-11% of the texts out. Pass False to keep outliers as ``-1``
            (anomalies in numeric rows, say).
        random_state: seeds the embedding's SVD, the reduction and K-means.

    Attributes (after ``fit``):
        labels_: the cluster of each row, ``-1`` for an outlier.
        probabilities_: HDBSCAN's membership strength of each row in its cluster (0 for outliers, moved or
            not; K-means: 1.0).
        n_clusters_: clusters found (outliers not counted).
        outlier_share_: share of rows labelled ``-1`` (after any reassignment).
        outliers_: boolean mask of the rows HDBSCAN put in no cluster, moved or not (K-means: none).
        reassigned_: outliers moved to a cluster (0 unless ``reassign_outliers``).
        cluster_sizes_: ``{cluster: rows}``, outliers left out.
        min_cluster_size_, min_samples_: the values HDBSCAN used (None for K-means).
        min_cluster_size_scores_: ``{min_cluster_size: relative validity}`` when HDBSCAN chose the size.
        k_scores_: ``{k: silhouette}`` when K-means chose k, else ``{}``.
        embedding_: the rows before the reduction (embedded texts, standardised columns, or the array).
        reduced_: the rows the algorithm clustered.
        input_kind_: ``"texts"``, ``"numeric"`` (a frame) or ``"array"``.
        reduction_, n_components_: the reduction used and the dimensions it kept.
        columns_: the numeric columns used (numeric frames), or the text column (frames of texts).
    """

    def __init__(
        self,
        algorithm: str = "hdbscan",
        *,
        k: int | None = None,
        k_range: tuple[int, int] = DEFAULT_K_RANGE,
        embedding: str | None = None,
        columns: Sequence[str] | None = None,
        reduction: str | None = "auto",
        n_components: int | None = None,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        reassign_outliers: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.algorithm = algorithm
        self.k = k
        self.k_range = k_range
        self.embedding = embedding
        self.columns = columns
        self.reduction = reduction
        self.n_components = n_components
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.reassign_outliers = reassign_outliers
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------------- fit

    def fit(self, X: Any, y: Any = None, *, embedded: Any = None) -> Clusterer:
        """Embed or scale ``X``, reduce it, cluster it.

        Args:
            X: a list (or Series, or 1-D array) of texts; a DataFrame of numeric columns (or with a ``text``
                column); or a 2-D numeric array of rows already embedded.
            y: ignored (scikit-learn's signature).
            embedded: texts with ``embedding="minilm"`` only: their MiniLM vectors, one row per text, computed
                beforehand (from the warehouse's embedding cache, say); fit then skips the encoder, and
                ``predict`` still embeds new texts itself.

        Raises:
            InputError: listing every problem with the arguments and the shape of ``X`` at once.
        """
        problems = self._parameter_problems()
        kind, rows, column_problems = _read_input(X, self.columns)
        problems += column_problems
        if kind is not None:
            problems += self._fit_input_problems(kind, rows)
            if embedded is not None:
                problems += self._embedded_problems(kind, rows, embedded)
        raise_if_problems(problems, what="the Clusterer fit", hint=_FIT_HINT)

        self.input_kind_ = kind
        self.columns_ = None
        self.scaler_ = None
        self.text_model_ = None
        self.embedding_ = self._embed_fit(kind, rows, embedded)
        self.n_features_in_ = self.embedding_.shape[1]

        self.reduction_ = self._reduction_name()
        n_components = self.n_components or DEFAULT_N_COMPONENTS[self.reduction_]
        self.reducer_ = make_reduction(
            self.reduction_,
            n_components=n_components,
            random_state=self.random_state,
            metric="cosine" if kind == "texts" else "euclidean",
        )
        self.reduced_ = np.asarray(self.reducer_.fit_transform(self.embedding_), dtype=np.float64)
        self.n_components_ = self.reduced_.shape[1]

        self.algorithm_ = make_algorithm(self.algorithm, **self._algorithm_params()).fit(self.reduced_)
        self._learn_from(self.algorithm_)
        if self.reduction_ == "umap":
            self._keep_placement_rows()
        return self

    def _keep_placement_rows(self) -> None:
        """Up to :data:`PLACEMENT_PER_CLUSTER` fitted rows of each cluster (a seeded sample, in the space
        before the reduction, as float32) with their labels: what places new rows (see predict_proba), small
        enough to ship with a registered model (about 8 MB for 50 clusters of MiniLM vectors)."""
        rng = np.random.default_rng(self.random_state)
        keep = []
        for cluster in range(self.n_clusters_):
            members = np.flatnonzero(self.labels_ == cluster)
            if len(members) > PLACEMENT_PER_CLUSTER:
                members = np.sort(rng.choice(members, PLACEMENT_PER_CLUSTER, replace=False))
            keep.append(members)
        rows = np.concatenate(keep) if keep else np.array([], dtype=np.int64)
        self.placement_rows_ = self.embedding_[rows].astype(np.float32)
        self.placement_labels_ = self.labels_[rows]

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return ``labels_``."""
        return self.fit(X).labels_

    def _learn_from(self, fitted: Any) -> None:
        labels = fitted.labels_
        self.labels_ = labels
        self.probabilities_ = fitted.probabilities_
        self.n_clusters_ = fitted.n_clusters_
        self.outlier_share_ = float((labels == OUTLIER).mean())
        self.reassigned_ = getattr(fitted, "reassigned_", 0)
        self.outliers_ = getattr(fitted, "outliers_", np.zeros(labels.size, dtype=bool))
        self.min_cluster_size_scores_ = getattr(fitted, "size_scores_", {})
        self.min_cluster_size_ = getattr(fitted, "min_cluster_size_", None)
        self.min_samples_ = getattr(fitted, "min_samples_", None)
        self.k_scores_ = getattr(fitted, "k_scores_", {})
        counts = np.bincount(labels[labels != OUTLIER], minlength=self.n_clusters_)
        self.cluster_sizes_ = {cluster: int(rows) for cluster, rows in enumerate(counts)}

    def _reduction_name(self) -> str:
        if self.reduction is None:
            return "none"
        if self.reduction == "auto":
            # UMAP for text embeddings, where it lifts HDBSCAN from V-measure 0.4-0.6 to 0.8 on BANKING77;
            # PCA for numeric rows: linear, no numba compile, and it keeps what few columns say.
            return "umap" if self.input_kind_ == "texts" else "pca"
        return self.reduction

    def _algorithm_params(self) -> dict[str, Any]:
        if self.algorithm == "kmeans":
            return {"k": self.k, "k_range": tuple(self.k_range), "random_state": self.random_state}
        return {
            "min_cluster_size": self.min_cluster_size,
            "min_samples": self.min_samples,
            "reassign_outliers": bool(self.reassign_outliers),
            "random_state": self.random_state,
        }

    def _parameter_problems(self) -> list[str]:
        """Every problem with the constructor's arguments (scikit-learn validates in fit, not in __init__)."""
        from stackml.embeddings import TEXT_METHODS

        problems: list[str | None] = []
        if self.algorithm not in ALGORITHMS:
            problems.append(f"'algorithm' must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}")
        kmeans, hdbscan = self.algorithm == "kmeans", self.algorithm == "hdbscan"
        if self.reduction is not None and self.reduction not in ("auto", *REDUCTIONS):
            problems.append(
                f"'reduction' must be one of {['auto', *sorted(REDUCTIONS)]} or None, got {self.reduction!r}"
            )
        if self.embedding is not None and self.embedding not in TEXT_METHODS:
            problems.append(f"'embedding' must be one of {list(TEXT_METHODS)}, got {self.embedding!r}")
        if self.k is not None:
            problems.append(int_problem("k", self.k, low=2, extra=" (or None to choose it by silhouette)"))
            if hdbscan:
                problems.append(f"'k' applies to algorithm='kmeans' only, got k={self.k!r} with 'hdbscan'")
        problems.append(_k_range_problem(self.k_range))
        if self.n_components is not None:
            problems.append(int_problem("n_components", self.n_components, low=1))
        for name, low in (("min_cluster_size", 2), ("min_samples", 1)):
            value = getattr(self, name)
            if value is not None:
                problems.append(
                    int_problem(name, value, low=low, extra=" (or None to choose it from the data)")
                )
                if kmeans:
                    problems.append(
                        f"'{name}' applies to algorithm='hdbscan' only, got {value!r} with 'kmeans'"
                    )
        if not isinstance(self.reassign_outliers, (bool, np.bool_)):
            problems.append(f"'reassign_outliers' must be True or False, got {self.reassign_outliers!r}")
        if self.random_state is not None:
            problems.append(int_problem("random_state", self.random_state, low=0))
        return [p for p in problems if p]

    def _fit_input_problems(self, kind: str, rows: Any) -> list[str]:
        """Problems of the rows themselves and of options that do not fit their kind."""
        problems = _rows_problems(kind, rows, what="fit")
        n = len(rows)
        if n < 2:
            problems.append(f"fit needs at least 2 rows to cluster, got {n}")
        if kind != "texts" and self.embedding is not None:
            problems.append(
                f"'embedding' applies to texts only, got embedding={self.embedding!r} "
                f"with {_kind_words(kind)}"
            )
        if kind == "array" and self.columns is not None:
            problems.append(
                f"'columns' applies to DataFrames only, got columns={self.columns!r} with a 2-D array; "
                "select the columns of the array before fit"
            )
        if self.algorithm == "kmeans" and is_int(self.k) and 2 <= n < self.k:
            problems.append(f"'k' must be at most the number of rows ({n}), got {self.k}")
        if self.algorithm == "hdbscan" and is_int(self.min_cluster_size) and 2 <= n < self.min_cluster_size:
            problems.append(
                f"'min_cluster_size' must be at most the number of rows ({n}), got {self.min_cluster_size}"
            )
        return problems

    def _embedded_problems(self, kind: str, rows: Any, embedded: Any) -> list[str]:
        if kind != "texts" or (self.embedding or "minilm") != "minilm":
            return [
                "'embedded' applies to texts with embedding='minilm' only (TF-IDF is fitted to the texts); "
                f"got it with {_kind_words(kind)} and embedding={self.embedding!r}"
            ]
        vectors = np.asarray(embedded)
        if vectors.ndim != 2 or vectors.shape[0] != len(rows) or vectors.dtype.kind not in "fiu":
            return [
                "'embedded' must be a numeric (texts x dimensions) array with one row per text "
                f"({len(rows)}), "
                f"got shape {vectors.shape} of dtype {vectors.dtype}"
            ]
        if not np.isfinite(vectors).all():
            return ["'embedded' holds NaN or infinite values"]
        return []

    def _embed_fit(self, kind: str, rows: Any, embedded: Any = None) -> np.ndarray:
        from stackml.embeddings import embed_texts, numeric_matrix

        if kind == "texts":
            self.columns_ = rows.name if hasattr(rows, "name") and rows.name is not None else None
            texts = [str(t) for t in rows]
            if embedded is not None:
                return np.asarray(embedded, dtype=np.float64)
            if (self.embedding or "minilm") == "tfidf":
                from stackml.embeddings.lsa import fit_lsa

                vectors, self.text_model_ = fit_lsa(texts, random_state=self.random_state or 0)
                return np.asarray(vectors, dtype=np.float64)
            return np.asarray(embed_texts(texts, "minilm"), dtype=np.float64)
        if kind == "numeric":
            matrix, self.scaler_ = numeric_matrix(rows, None if self.columns is None else list(self.columns))
            self.columns_ = list(self.scaler_.columns)
            return np.asarray(matrix, dtype=np.float64)
        return np.array(rows, dtype=np.float64)

    # ------------------------------------------------------------------------------------------- predict

    def _check_fitted(self) -> None:
        if not hasattr(self, "algorithm_"):
            raise NotFittedError("This Clusterer is not fitted yet.", hint="Call fit(X) before predict.")

    def _prepared(self, X: Any) -> np.ndarray:
        """New rows checked and prepared as the training rows were (embedded, standardised), not reduced."""
        self._check_fitted()
        kind, rows, problems = _read_input(X, self.columns)
        if kind is not None:
            problems += _rows_problems(kind, rows, what="predict")
            if kind != self.input_kind_:
                problems.append(
                    f"the model was fitted on {_kind_words(self.input_kind_)}, got {_kind_words(kind)}"
                )
            elif len(rows) == 0:
                problems.append("there are no rows to place (got 0)")
        raise_if_problems(problems, what="the rows to predict", hint="Pass rows of the kind fit was given.")
        return self._embed_new(rows)

    def transform(self, X: Any) -> np.ndarray:
        """New rows prepared as the training rows were and mapped by the fitted reduction (the space the
        clusters live in; two UMAP dimensions make a picture)."""
        return self.reducer_.transform(self._prepared(X))

    def _embed_new(self, rows: Any) -> np.ndarray:
        if self.input_kind_ == "texts":
            return self._embed_new_texts([str(t) for t in rows])
        if self.input_kind_ == "numeric":
            return np.asarray(self.scaler_.transform(rows), dtype=np.float64)
        matrix = np.array(rows, dtype=np.float64)
        if matrix.shape[1] != self.n_features_in_:
            raise InputError(
                f"The rows to predict have {matrix.shape[1]} columns; the model was fitted on "
                f"{self.n_features_in_}.",
                hint="Embed new rows the way the training rows were embedded.",
            )
        return matrix

    def _embed_new_texts(self, texts: list[str]) -> np.ndarray:
        if self.text_model_ is not None:  # TF-IDF + SVD fitted on the training texts: the same space
            return np.asarray(self.text_model_.transform(texts), dtype=np.float64)
        # The encoder itself, not embed_texts: that asks for two texts, and serving may place one at a time.
        # MiniLM embeds each text on its own, so the vectors are the same either way.
        from stackml.embeddings.minilm import embed

        return np.asarray(embed(texts), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of each new row (``-1``: an outlier), without refitting: HDBSCAN's approximate
        prediction or the nearest K-means centre, after the same preparation and reduction as ``fit``;
        with a UMAP reduction, the vote of its nearest fitted rows (see :meth:`predict_proba`)."""
        labels, _ = self.predict_with_probabilities(X)
        return labels

    def predict_with_probabilities(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The cluster of each new row and its membership strength (HDBSCAN; 1.0 for K-means; with a UMAP
        reduction, the share of the nearest fitted rows that voted for it)."""
        self._check_fitted()
        if self._places_by_neighbours():
            shares = self._neighbour_votes(self._prepared(X))
            labels = np.where(shares.sum(axis=1) > 0, shares.argmax(axis=1), OUTLIER).astype(np.int64)
            return labels, shares.max(axis=1)
        return self.algorithm_.predict(self.transform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, n_clusters_)``: each row's membership in each cluster, columns in cluster order
        (HDBSCAN's soft membership vectors, a row summing to at most 1; K-means: one-hot).

        With a UMAP reduction a new row is placed by its :data:`PLACEMENT_NEIGHBOURS` nearest fitted rows in
        the space before the reduction (the embeddings, by the reduction's metric; up to
        :data:`PLACEMENT_PER_CLUSTER` kept per cluster): the share of them in each cluster. UMAP's own
        out-of-sample transform moves a new point unreliably on small data: on 60 texts of three topics it
        put "my new card is late" among the password texts, whose nearest fitted rows are all about
        cards."""
        self._check_fitted()
        if self._places_by_neighbours():
            return self._neighbour_votes(self._prepared(X))
        return self.algorithm_.membership(self.transform(X))

    def _places_by_neighbours(self) -> bool:
        # a model fitted before placement rows existed (a registered older version) keeps UMAP's transform
        return self.reduction_ == "umap" and getattr(self, "placement_rows_", None) is not None

    def _neighbour_votes(self, rows: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import NearestNeighbors

        k = min(PLACEMENT_NEIGHBOURS, len(self.placement_rows_))
        metric = "cosine" if self.input_kind_ == "texts" else "euclidean"
        # brute force over the kept rows, chunked by scikit-learn: memory stays flat in the batch size
        index = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(self.placement_rows_)
        neighbours = index.kneighbors(rows.astype(np.float32), return_distance=False)
        votes = self.placement_labels_[neighbours]
        shares = np.zeros((len(rows), self.n_clusters_))
        for cluster in range(self.n_clusters_):
            shares[:, cluster] = (votes == cluster).sum(axis=1) / k  # outlier neighbours vote for none
        return shares


# ----------------------------------------------------------------------------------------------- input


def _read_input(X: Any, columns: Any) -> tuple[str | None, Any, list[str]]:
    """``(kind, rows, problems)``: kind is ``"texts"`` (rows: a list or Series of texts), ``"numeric"``
    (rows: the DataFrame), ``"array"`` (rows: a 2-D array) or None when ``X`` cannot be read."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        text_column = _text_column(X, columns)
        if text_column is not None:
            return "texts", X[text_column], []
        return "numeric", X, []
    if isinstance(X, pd.Series):
        if _holds_text(X):
            return "texts", X, []
        return (
            None,
            None,
            [f"X is a numeric Series ({len(X)} values); pass a DataFrame (X.to_frame()) to cluster it"],
        )
    if isinstance(X, (str, bytes)):
        return None, None, [f"X is a single string ({X[:40]!r}); pass a list of texts"]
    if isinstance(X, np.ndarray):
        if X.ndim == 1 and X.dtype.kind in "OUS":
            return "texts", list(X), []
        if X.dtype.kind not in "biuf":
            return None, None, [f"X must be a numeric array or texts, got an array of dtype {X.dtype}"]
        if X.ndim != 2:
            return (
                None,
                None,
                [
                    f"X must be 2-D (rows x features), got shape {X.shape}"
                    + ("; use X.reshape(-1, 1) for one feature" if X.ndim == 1 else "")
                ],
            )
        return "array", X, []
    if isinstance(X, (list, tuple)):
        if all(isinstance(t, str) for t in X) and len(X) > 0:
            return "texts", list(X), []
        if len(X) == 0:
            return "texts", [], []  # reported as too few rows
        if any(isinstance(t, str) for t in X):
            return "texts", list(X), []  # the non-strings are reported with their positions
        try:
            array = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or non-numeric nested lists: say what was received
            return None, None, ["X is a list that is neither texts nor rows of numbers of equal length"]
        return _read_input(array, columns)
    return None, None, [f"X must be texts, a DataFrame or a 2-D numeric array, got {type(X).__name__}"]


def _text_column(frame: Any, columns: Any) -> Any:
    """The frame's column of texts to cluster, or None for numeric clustering: ``columns`` naming one column
    of strings, or the ``text`` column when ``columns`` is None."""
    if columns is None:
        name = TEXT_COLUMN if TEXT_COLUMN in frame.columns else None
    elif not isinstance(columns, str) and len(columns) == 1:
        name = columns[0]
    else:
        return None
    if name is None or name not in frame.columns:
        return None
    column = frame[name]
    return name if column.ndim == 1 and _holds_text(column) else None


def _holds_text(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_string_dtype(series.dtype) or (
        series.dtype == object and any(isinstance(v, str) for v in series)
    )


def _rows_problems(kind: str, rows: Any, *, what: str) -> list[str]:
    """Non-string or blank texts, non-finite array values; frames are checked by ``numeric_matrix``."""
    if kind == "texts":
        values = list(rows)
        not_str = [i for i, t in enumerate(values) if not isinstance(t, str)]
        blank = [i for i, t in enumerate(values) if isinstance(t, str) and not t.strip()]
        problems = []
        if not_str:
            kinds = sorted({type(values[i]).__name__ for i in not_str})
            problems.append(
                f"{what} got {len(not_str)} non-text value(s) ({', '.join(kinds)}) at {_at(not_str)}"
            )
        if blank:
            problems.append(f"{what} got {len(blank)} empty or blank text(s) at {_at(blank)}")
        return problems
    if kind == "array":
        finite = np.isfinite(rows)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=1)).tolist()
            return [
                f"{what} got {int(np.isnan(rows).sum())} NaN and {int(np.isinf(rows).sum())} "
                f"infinite value(s) in {len(bad)} row(s), at {_at(bad)}; fill or drop them first"
            ]
    return []


def _k_range_problem(k_range: Any) -> str | None:
    ok = (
        isinstance(k_range, (tuple, list))
        and len(k_range) == 2
        and all(is_int(v) for v in k_range)
        and 2 <= k_range[0] <= k_range[1]
    )
    return (
        None
        if ok
        else f"'k_range' must be (lowest, highest) ints with 2 <= lowest <= highest, got {k_range!r}"
    )


def _kind_words(kind: str | None) -> str:
    return {"texts": "texts", "numeric": "a numeric DataFrame", "array": "a 2-D numeric array"}.get(
        str(kind), "?"
    )


def _at(positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:_SHOWN]))
    more = len(positions) - _SHOWN
    return f"rows {shown}" + (f" and {more} more" if more > 0 else "")
