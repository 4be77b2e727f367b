"""One clustering run's result: what the report, the registry and the CLI read, and how it is published.

:class:`ClusterResult` implements :class:`stackml.pipelines.Publishable`. Its primary metric is the
stability-weighted silhouette (higher is better), measured in the space before the reduction, so runs with
different algorithms and reductions compete; two versions are compared only when they clustered the same rows
in the same space (same data, input columns and embedding).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.clustering.quality import per_cluster_silhouette
from stackml.pipelines import ModelToRegister, finite_metrics

if TYPE_CHECKING:
    from stackml.clustering import Clusterer
    from stackml.clustering.config import ClusterConfig
    from stackml.clustering.stability import StabilityResult

__all__ = ["ClusterResult"]


@dataclass
class ClusterResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: ClusterConfig
    model: Clusterer
    frame: pd.DataFrame  # id, text or the numeric columns, label (when given)
    stability: StabilityResult | None
    internal: dict[str, Any]  # quality.internal_scores in the space before the reduction
    silhouette_profile: pd.DataFrame
    dbcv: float | None
    external: dict[str, float] | None
    keywords: dict[int, list[str]]
    examples: dict[int, list[str]]
    profiles: dict[int, list[dict]]
    names: dict[int, str]
    picture: pd.DataFrame  # row, id, x, y, cluster, name, hover, method
    seconds: dict[str, float] = field(default_factory=dict)
    copies: pd.DataFrame | None = None  # id, same_as: rows whose text repeats an earlier row's (dedupe)

    pipeline = "cluster"
    higher_is_better = True
    passed = True  # no gate: the champion comparison keeps a worse clustering out

    @property
    def primary_metric(self) -> str:
        return self.config.primary_metric

    def failed_gates(self) -> list[str]:
        return []

    # -- derived numbers -------------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def silhouettes(self) -> pd.Series:
        """The mean silhouette of each cluster (from the profile's sample)."""
        return per_cluster_silhouette(self.silhouette_profile)

    @property
    def weighted_silhouette(self) -> float:
        """Silhouette x stability, size-weighted (silhouette alone when no bootstrap ran: then every cluster
        counts as stable, and the report says stability was not measured)."""
        from stackml.clustering.stability import stability_weighted_silhouette

        silhouettes = self.silhouettes
        if self.stability is None:
            sizes = pd.Series(self.model.cluster_sizes_, dtype=float)
            both = silhouettes.index.intersection(sizes.index)
            if not len(both) or sizes[both].sum() <= 0:
                return math.nan
            return float((silhouettes[both] * sizes[both]).sum() / sizes[both].sum())
        return stability_weighted_silhouette(silhouettes, self.stability)

    @property
    def outliers_found(self) -> int:
        """Rows HDBSCAN put in no cluster, moved afterwards or not."""
        return int(np.asarray(self.model.outliers_).sum())

    def cluster_table(self) -> pd.DataFrame:
        """One row per cluster, largest first: ``cluster, name, size, share, silhouette, stability,
        unstable, keywords, examples`` (texts) or ``profile`` (numeric rows)."""
        sizes = self.model.cluster_sizes_
        silhouettes = self.silhouettes
        jaccard, unstable = {}, {}
        if self.stability is not None:
            table = self.stability.table.set_index("cluster")
            jaccard = table["mean_jaccard"].to_dict()
            unstable = table["unstable"].to_dict()
        rows = []
        for cluster, size in sizes.items():
            row = {
                "cluster": cluster,
                "name": self.names.get(cluster, f"cluster_{cluster}"),
                "size": size,
                "share": size / max(self.n_rows, 1),
                "silhouette": float(silhouettes.get(cluster, math.nan)),
                "stability": float(jaccard.get(cluster, math.nan)),
                "unstable": bool(unstable.get(cluster, False)),
            }
            if self.model.input_kind_ == "texts":
                row["keywords"] = ", ".join(self.keywords.get(cluster, []))
                row["examples"] = " | ".join(self.examples.get(cluster, []))
            else:
                row["profile"] = "; ".join(
                    f"{p['feature']} {p['effect']:+.2f} sd" for p in self.profiles.get(cluster, [])
                )
            rows.append(row)
        columns = ["cluster", "name", "size", "share", "silhouette", "stability", "unstable"]
        frame = pd.DataFrame(
            rows,
            columns=columns
            + (["keywords", "examples"] if self.model.input_kind_ == "texts" else ["profile"]),
        )
        return frame.sort_values(["size", "cluster"], ascending=[False, True], ignore_index=True)

    def assignments(self) -> pd.DataFrame:
        """``id, cluster, probability, outlier``: every row's cluster (``-1``: an outlier), HDBSCAN's
        membership strength (1.0 for K-means), and whether HDBSCAN left it out (moved afterwards or not); a
        copy of an earlier text (``dedupe``) gets that text's row, under its own id."""
        clustered = pd.DataFrame(
            {
                "id": self.frame["id"].to_numpy(),
                "cluster": np.asarray(self.model.labels_, dtype=np.int64),
                "probability": np.asarray(self.model.probabilities_, dtype=np.float64),
                "outlier": np.asarray(self.model.outliers_, dtype=bool),
            }
        )
        if self.copies is None or not len(self.copies):
            return clustered
        copied = self.copies.merge(clustered, left_on="same_as", right_on="id", suffixes=("", "_first"))
        copied = copied.drop(columns=["same_as", "id_first"])
        return pd.concat([clustered, copied[clustered.columns]], ignore_index=True)

    # -- the publish protocol --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        cfg, model = self.config, self.model
        params = {
            k: ",".join(v) if isinstance(v, tuple) else ("" if v is None else v)
            for k, v in cfg.model_dump().items()
        }
        params |= {
            "input_kind": self.model.input_kind_,
            "reduction_used": model.reduction_,
            "n_components_used": model.n_components_,
            "min_cluster_size_used": model.min_cluster_size_ or "",
            "min_samples_used": model.min_samples_ or "",
        }
        return params

    def metrics(self) -> dict[str, float]:
        internal = self.internal
        metrics: dict[str, Any] = {
            "stability_weighted_silhouette": self.weighted_silhouette,
            "n_clusters": self.model.n_clusters_,
            "n_rows": self.n_rows,
            "outlier_share": self.model.outlier_share_,
            "outliers_found_share": self.outliers_found / max(self.n_rows, 1),
            "reassigned": self.model.reassigned_,
            "silhouette": internal["silhouette"],
            "davies_bouldin": internal["davies_bouldin"],
            "calinski_harabasz": internal["calinski_harabasz"],
            "dbcv": self.dbcv,
        }
        if self.stability is not None:
            metrics |= {
                "stability_mean": self.stability.mean,
                "stability_min": self.stability.min,
                "unstable_clusters": len(self.stability.unstable_clusters),
            }
        if self.external is not None:
            metrics |= {f"external_{k}": v for k, v in self.external.items()}
        metrics |= {f"seconds_{k}": v for k, v in self.seconds.items()}
        return finite_metrics(metrics)

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"clusters": self.cluster_table(), "assignments": self.assignments()}
        if self.stability is not None:
            tables["stability"] = self.stability.table
        return tables

    def comparison_key(self, frame: pd.DataFrame) -> str:
        """Same rows, same input columns, same embedding: the silhouettes live in the same space."""
        from stackml.tracking import data_fingerprint

        cfg = self.config
        space = cfg.embedding if self.model.input_kind_ == "texts" else ",".join(self.model.columns_ or [])
        key = json.dumps(
            [data_fingerprint(frame), self.model.input_kind_, space, cfg.sample_size, cfg.primary_metric],
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The clustering as a pyfunc that places new texts or rows (see
        :mod:`stackml.clustering.registry_model`)."""
        from stackml.clustering.registry_model import model_to_register

        return [model_to_register(self.model, self.names, self.cluster_words(), self.example_input())]

    def cluster_words(self) -> dict[int, str]:
        """What describes each cluster in one string: its keywords (texts) or its distinctive features."""
        if self.model.input_kind_ == "texts":
            return {c: ", ".join(words) for c, words in self.keywords.items()}
        return {
            c: "; ".join(f"{p['feature']} {p['effect']:+.2f} sd" for p in profile)
            for c, profile in self.profiles.items()
        }

    def example_input(self, n: int = 2) -> pd.DataFrame:
        """The first rows as the registered model takes them."""
        if self.model.input_kind_ == "texts":
            return pd.DataFrame({"text": self.frame["text"].head(n).tolist()})
        return self.frame[list(self.model.columns_)].head(n).reset_index(drop=True)

    # -- what the CLI prints ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """``{"n_clusters", "outlier_share", "silhouette", "stability": {"mean", "min"}, "external": {...}}``
        and more: the outliers HDBSCAN found and how many moved, the unstable clusters, every cluster's name,
        size and stability."""
        stable = self.stability
        summary: dict[str, Any] = {
            "n_clusters": int(self.model.n_clusters_),
            "outlier_share": _round(self.model.outlier_share_),
            "outliers_found": self.outliers_found,
            "reassigned": int(self.model.reassigned_),
            "silhouette": _round(self.internal["silhouette"]),
            "stability": {
                "mean": None if stable is None else _round(stable.mean),
                "min": None if stable is None else _round(stable.min),
                "unstable": [] if stable is None else stable.unstable_clusters,
                "bootstraps": self.config.n_boot,
            },
            "stability_weighted_silhouette": _round(self.weighted_silhouette),
            "davies_bouldin": _round(self.internal["davies_bouldin"]),
            "calinski_harabasz": _round(self.internal["calinski_harabasz"]),
            "dbcv": _round(self.dbcv),
            "algorithm": self.config.algorithm,
            "k": self.model.n_clusters_ if self.config.algorithm == "kmeans" else None,
            "min_cluster_size": self.model.min_cluster_size_,
            "n_rows": self.n_rows,
            "copies": 0 if self.copies is None else len(self.copies),
            "input": self.model.input_kind_,
            "clusters": [
                {k: (_round(v) if isinstance(v, float) else v) for k, v in row.items() if k != "examples"}
                for row in self.cluster_table().to_dict("records")
            ],
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }
        if self.external is not None:
            summary["external"] = {k: _round(v) for k, v in self.external.items()}
        return summary


def _round(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if not math.isfinite(number) else round(number, digits)
