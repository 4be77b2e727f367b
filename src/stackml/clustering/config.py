"""The clustering pipeline's configuration: every setting of ``stackml cluster run`` with its one default.

The CLI takes its option defaults from these fields, ``ClusterFlow`` receives the configuration as one JSON
Parameter, and the step functions of :mod:`stackml.clustering.pipeline` take the object itself.

Example:
    >>> from stackml.clustering.config import ClusterConfig
    >>> ClusterConfig(columns="spend, visits", algorithm="kmeans", k=4).columns
    ('spend', 'visits')
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["ClusterConfig", "cluster_default", "PRIMARY_METRIC"]

#: versions are promoted on this (higher is better): each cluster's silhouette counts for as much as the
#: cluster reappears under resampling (stackml.clustering.stability.stability_weighted_silhouette)
PRIMARY_METRIC = "stability_weighted_silhouette"
DEFAULT_TEXT_COLUMN = "text"


class ClusterConfig(PipelineConfig):
    """What to cluster, how, and how hard to check it.

    Attributes:
        text_column: cluster the texts of this column; default ``text`` when the data has one and no
            ``columns`` are named.
        columns: cluster rows on these numeric columns (standardised) instead of texts.
        id_column: the column that identifies a row in the assignments table; default ``id`` when the data
            has one, else the row's position.
        dedupe: texts only: cluster each distinct text once (ignoring case and surrounding spaces) and give
            its copies the same cluster in the assignments; without it repeated texts are refused, since
            copies form tight clumps of their own.
        labels_column: known classes to score the clusters against (V-measure, NMI, ARI, Hungarian accuracy);
            never used to fit.
        algorithm: ``hdbscan`` (finds the number of clusters; outliers) or ``kmeans``.
        k: K-means only: the number of clusters; none: chosen by silhouette over ``k_min..k_max``.
        embedding: texts only: ``minilm`` sentence embeddings or ``tfidf`` (TF-IDF + SVD).
        reduction, n_components: ``auto`` (UMAP to 5 for texts, PCA to 10 for numeric rows), ``umap``,
            ``pca`` or ``none``, and the dimensions kept (none: the reduction's default).
        min_cluster_size: HDBSCAN's smallest cluster; none: chosen from the data.
        reassign_outliers: move HDBSCAN's outliers to the nearest cluster (the report says how many moved).
        n_boot: bootstrap resamples for the stability table (0 skips it; promotion then uses silhouette x 0).
        unstable_below: a cluster whose mean bootstrap Jaccard is under this is flagged unstable.
        fast: draw the 2-D picture with PCA instead of UMAP (no second UMAP fit).
        sample_size: the most rows silhouette and the picture use.
        random_state: seeds the embedding's SVD, the reductions, K-means and the bootstraps.
    """

    what = "the clustering configuration"
    hint = "See `stackml cluster run --help` for the options."

    text_column: str | None = None
    columns: Names = ()
    id_column: str | None = None
    labels_column: str | None = None
    dedupe: bool = False
    algorithm: Literal["hdbscan", "kmeans"] = "hdbscan"
    k: Annotated[Int | None, Field(ge=2, le=10_000)] = None
    k_min: Annotated[Int, Field(ge=2)] = 2
    k_max: Annotated[Int, Field(ge=2)] = 30
    embedding: Literal["minilm", "tfidf"] = "minilm"
    reduction: Literal["auto", "umap", "pca", "none"] = "auto"
    n_components: Annotated[Int | None, Field(ge=1, le=100)] = None
    min_cluster_size: Annotated[Int | None, Field(ge=2)] = None
    reassign_outliers: bool = True
    n_boot: Annotated[Int, Field(ge=0, le=200)] = 20
    unstable_below: Annotated[Float, Field(gt=0, le=1)] = 0.6
    fast: bool = False
    sample_size: Annotated[Int, Field(ge=100, le=100_000)] = 5000
    random_state: Annotated[Int, Field(ge=0)] = 0

    @field_validator("text_column", "id_column", "labels_column")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        problems = []
        if self.text_column and self.columns:
            problems.append(
                f"name either a text column or numeric columns, got text_column={self.text_column!r} and "
                f"columns={list(self.columns)}"
            )
        if self.algorithm == "hdbscan" and self.k is not None:
            problems.append(f"k applies to algorithm 'kmeans' only, got k={self.k} with 'hdbscan'")
        if self.algorithm == "kmeans" and self.min_cluster_size is not None:
            problems.append("min_cluster_size applies to algorithm 'hdbscan' only")
        if self.k_min > self.k_max:
            problems.append(f"k_min ({self.k_min}) is above k_max ({self.k_max})")
        roles = [c for c in (self.id_column, self.labels_column, self.text_column) if c]
        clash = sorted({c for c in roles + list(self.columns) if (roles + list(self.columns)).count(c) > 1})
        if clash:
            problems.append(f"column(s) {clash} named in two roles (id, labels, text, columns)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC

    def clusterer_params(self, *, texts: bool) -> dict[str, Any]:
        """The :class:`~stackml.clustering.Clusterer` arguments these settings mean (for texts or for
        numeric rows)."""
        params: dict[str, Any] = {
            "algorithm": self.algorithm,
            "reduction": None if self.reduction == "none" else self.reduction,
            "n_components": self.n_components,
            "reassign_outliers": self.reassign_outliers,
            "random_state": self.random_state,
        }
        if self.algorithm == "kmeans":
            params |= {"k": self.k, "k_range": (self.k_min, self.k_max)}
        else:
            params["min_cluster_size"] = self.min_cluster_size
        if texts:
            params["embedding"] = self.embedding
        return params


def cluster_default(field: str) -> Any:
    """The pipeline's default for ``field``."""
    from stackml.pipelines import default_of

    return default_of(ClusterConfig, field)
