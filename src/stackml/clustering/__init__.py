"""Clustering: texts or numeric rows -> embedding -> reduction -> HDBSCAN / K-means, behind one front door.

:class:`Clusterer` takes a list of texts (embedded with MiniLM or TF-IDF), a DataFrame of numeric columns
(standardised) or a 2-D array of rows already embedded; reduces them (UMAP for texts, PCA for numbers); and
clusters them with HDBSCAN (the number of clusters found from the data, outliers labelled ``-1``) or K-means
(``k`` given, or chosen by silhouette). Importing this package is cheap: scikit-learn, hdbscan, umap and torch
load on the first call that needs them.

Example:
    >>> import numpy as np
    >>> from stackml.clustering import Clusterer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 0.3, (30, 2)), rng.normal(5, 0.3, (30, 2))])
    >>> model = Clusterer("hdbscan").fit(X)
    >>> model.n_clusters_, model.predict([[5.1, 4.9]]).tolist()
    (2, [1])
"""

from __future__ import annotations

from typing import Any

__all__ = ["Clusterer"]


def __getattr__(name: str) -> Any:
    # Clusterer loads on first use: the CLI imports this package's configuration at start-up, and the
    # clusterer's modules import pandas and scikit-learn's helpers.
    if name == "Clusterer":
        from stackml.clustering.clusterer import Clusterer

        return Clusterer
    raise AttributeError(f"module 'stackml.clustering' has no attribute {name!r}")
