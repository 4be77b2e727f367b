"""Reductions before clustering, small classes found by name: ``"pca"``, ``"umap"`` and ``"none"``.

Density and distance lose their meaning in hundreds of dimensions, so the rows are reduced to a few before
HDBSCAN or K-means sees them. Each class learns its map in :meth:`fit_transform` and applies the same map to
new rows in :meth:`transform`, so ``Clusterer.predict`` places new rows in the space the clusters were found
in. ``"none"`` is the no-op stand-in that skips the stage (BERTopic's ``BaseDimensionalityReduction``).

Example:
    >>> import numpy as np
    >>> reducer = make_reduction("pca", n_components=2, random_state=0)
    >>> reducer.fit_transform(np.random.default_rng(0).normal(size=(20, 6))).shape
    (20, 2)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from stackml._deps import require
from stackml.errors import InputError

__all__ = ["REDUCTIONS", "NoReduction", "PCAReduction", "UMAPReduction", "make_reduction"]


class NoReduction:
    """Keep the rows as they are (the stand-in that skips the stage)."""

    name: ClassVar[str] = "none"

    def __init__(
        self, n_components: int | None = None, random_state: int | None = 0, metric: str = ""
    ) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        self.n_components_ = X.shape[1]
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X


class PCAReduction:
    """Principal components: linear, fast, the same map for new rows; keeps ``min(n_components, d, n - 1)``.

    Args:
        n_components: the most dimensions to keep.
        random_state: seed of the randomised solver used on large inputs.
        metric: unused (PCA is Euclidean); accepted so that every reduction takes the same arguments.
    """

    name: ClassVar[str] = "pca"

    def __init__(self, n_components: int = 10, random_state: int | None = 0, metric: str = "") -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        decomposition = require("sklearn.decomposition", extra="cluster")
        self.n_components_ = max(1, min(self.n_components, X.shape[1], X.shape[0] - 1))
        self.model_ = decomposition.PCA(n_components=self.n_components_, random_state=self.random_state)
        return self.model_.fit_transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.model_.transform(X)


class UMAPReduction:
    """UMAP: a non-linear map that keeps each row's neighbours together, which is what HDBSCAN needs on
    sentence embeddings (BERTopic's pipeline: 5 dimensions, 15 neighbours, ``min_dist=0``, cosine).

    ``min_dist=0`` packs neighbours tightly, so dense regions stay dense for HDBSCAN (the picture is for the
    clustering, not for the eye). The first call in a process compiles numba code (30-150 s on 2 cores).

    Args:
        n_components: dimensions of the map (at most ``n - 2``: UMAP's spectral start needs more rows).
        random_state: seed; a seed makes UMAP single-threaded and repeatable.
        metric: distance between input rows: ``"cosine"`` for text embeddings, ``"euclidean"`` otherwise.
        n_neighbors: the neighbourhood UMAP keeps (at most ``n - 1``).
    """

    name: ClassVar[str] = "umap"

    def __init__(
        self,
        n_components: int = 5,
        random_state: int | None = 0,
        metric: str = "euclidean",
        n_neighbors: int = 15,
    ) -> None:
        self.n_components = n_components
        self.random_state = random_state
        self.metric = metric
        self.n_neighbors = n_neighbors

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        umap = require("umap", extra="cluster")
        n = X.shape[0]
        if n < 4:
            raise InputError(
                f"reduction='umap' needs at least 4 rows to build a neighbour graph, got {n}.",
                hint="Use reduction='pca' or reduction='none' on so few rows.",
            )
        self.n_components_ = max(1, min(self.n_components, n - 2))
        self.model_ = umap.UMAP(
            n_components=self.n_components_,
            n_neighbors=max(2, min(self.n_neighbors, n - 1)),
            min_dist=0.0,
            metric=self.metric,
            random_state=self.random_state,
            # A fixed seed forces one thread anyway; saying so silences UMAP's warning about it.
            n_jobs=1 if self.random_state is not None else -1,
        )
        return np.asarray(self.model_.fit_transform(X), dtype=np.float64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.transform(X), dtype=np.float64)


REDUCTIONS: dict[str, type[Any]] = {cls.name: cls for cls in (PCAReduction, UMAPReduction, NoReduction)}


def make_reduction(
    name: str, *, n_components: int, random_state: int | None = 0, metric: str = "euclidean"
) -> Any:
    """The reduction called ``name``, unfitted.

    Raises:
        InputError: ``name`` is not one of :data:`REDUCTIONS`.
    """
    if name not in REDUCTIONS:
        raise InputError(
            f"Unknown reduction {name!r}.", hint=f"Use one of {sorted(REDUCTIONS)} (or None for 'none')."
        )
    return REDUCTIONS[name](n_components=n_components, random_state=random_state, metric=metric)
