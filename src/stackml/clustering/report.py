"""The clustering report: what was clustered and how, the 2-D picture, cluster sizes, the stability of each
cluster (its bootstrap Jaccard, unstable clusters flagged), the silhouette profile, what sets each cluster
apart, the agreement with known labels, how ``k`` or ``min_cluster_size`` was chosen, and the timings.

Example:
    >>> from stackml.clustering.report import cluster_report
    >>> path = cluster_report(result, run_id=run_id).write()  # doctest: +SKIP
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.clustering.quality import OUTLIER

if TYPE_CHECKING:
    from stackml.clustering.result import ClusterResult
    from stackml.reports import Report

__all__ = ["cluster_report", "hennig_reading", "stability_table"]

OUTLIER_COLOUR = "#9ca3af"
UNSTABLE_COLOUR = "#dc2626"
UNSTABLE_FLAG = "⚠\u00a0unstable"  # a no-break space keeps the flag on one line
EXAMPLE_CHARACTERS = 160
EXTERNAL_MEANING = {
    "v_measure": "harmonic mean of homogeneity and completeness",
    "homogeneity": "each cluster holds one class",
    "completeness": "each class falls in one cluster",
    "nmi": "normalised mutual information",
    "ari": "adjusted Rand index (0: chance, 1: identical)",
    "hungarian_accuracy": "share of rows right under the best one-to-one match of clusters to classes",
}


def hennig_reading(jaccard: float) -> str:
    """Hennig's (2007) reading of a cluster's mean bootstrap Jaccard."""
    if not math.isfinite(jaccard):
        return "not measured"
    if jaccard < 0.5:
        return "dissolved"
    if jaccard < 0.6:
        return "not to be trusted"
    if jaccard < 0.75:
        return "a pattern, membership doubtful"
    if jaccard <= 0.85:
        return "stable"
    return "highly stable"


def stability_table(result: ClusterResult) -> pd.DataFrame:
    """The report's stability table: one row per cluster, largest first, with its mean silhouette, mean
    bootstrap Jaccard (its sd, and the shares of bootstraps that dissolved and recovered it), Hennig's reading
    and a ``flag`` column that reads ``⚠ unstable`` for a cluster below ``config.unstable_below``."""
    table = result.cluster_table()[
        ["cluster", "name", "size", "share", "silhouette", "stability", "unstable"]
    ]
    if result.stability is not None:
        extra = result.stability.table.set_index("cluster")[
            ["sd_jaccard", "dissolved_share", "recovered_share"]
        ]
        table = table.join(extra, on="cluster")
    table.insert(len(table.columns), "reading", [hennig_reading(j) for j in table["stability"]])
    flags = table.pop("unstable")
    table.insert(2, "flag", np.where(flags, UNSTABLE_FLAG, ""))
    table["share"] = [f"{share:.1%}" for share in table["share"]]
    return table.rename(
        columns={
            "stability": "mean Jaccard",
            "sd_jaccard": "sd Jaccard",
            "dissolved_share": "dissolved",
            "recovered_share": "recovered",
        }
    )


def cluster_report(
    result: ClusterResult,
    *,
    title: str = "Clustering",
    run_id: str | None = None,
    registry_note: str | None = None,
) -> Report:
    """Build the report of one clustering run (nothing is written; call ``.write()``)."""
    from stackml.reports import Report

    report = Report(
        title=title, narrative=_narrative(result, registry_note), pipeline="cluster", run_id=run_id
    )
    report.add_metrics(_cards(result))
    colours = _colours(result)

    report.add_heading("The clusters")
    picture = result.picture
    if len(picture):
        report.add_figure(_picture_figure(picture, colours), caption=_picture_caption(result))
    if result.model.cluster_sizes_:
        caption = "Rows per cluster, largest first"
        if result.model.outlier_share_ > 0:
            caption += "; the rows left as outliers (-1) in grey"
        report.add_figure(_sizes_figure(result, colours), caption=caption)

    report.add_heading("Stability")
    threshold = result.config.unstable_below
    report.add_table(
        stability_table(result),
        caption="Each cluster, largest first: its share of the rows, mean silhouette and mean bootstrap "
        f"Jaccard with Hennig's reading; flagged unstable below {threshold:g}",
    )
    if result.stability is None:
        report.add_paragraph(
            "Stability was not measured (n_boot is 0): no cluster could be flagged unstable, and the "
            "stability-weighted silhouette is the plain size-weighted silhouette."
        )
    elif len(result.stability.per_boot.columns):
        report.add_figure(
            _jaccard_figure(result, colours),
            caption=f"Each cluster's Jaccard with its best match in each of {len(result.stability.per_boot)} "
            f"bootstrap refits; the dashed line is the threshold ({threshold:g}) under which a cluster "
            "is unstable",
        )

    report.add_heading("Silhouette profile")
    if len(result.silhouette_profile):
        report.add_figure(_silhouette_figure(result, colours), caption=_silhouette_caption(result))
    else:
        report.add_paragraph("No silhouette: fewer than two clusters remain without the outliers.")

    if result.model.input_kind_ == "texts":
        report.add_heading("Keywords and examples")
        report.add_table(
            _texts_table(result),
            caption="Each cluster's top keywords (class-based TF-IDF) and its texts nearest the centroid",
        )
    else:
        report.add_heading("Profiles")
        report.add_table(
            _profiles_table(result),
            caption="The features that set each cluster apart: effect is Cohen's d of the cluster against "
            "all other rows (positive: higher), with the cluster's and all rows' means",
        )

    if result.external is not None:
        report.add_heading("Agreement with the known labels")
        report.add_table(
            _external_table(result.external),
            caption="External scores of the clusters against the labels column (never used to fit); outliers "
            "count as one more cluster",
        )
    _add_selection(report, result)

    if result.seconds:
        report.add_heading("Timings")
        seconds = pd.DataFrame({"step": list(result.seconds), "seconds": list(result.seconds.values())})
        total = pd.DataFrame({"step": ["total"], "seconds": [sum(result.seconds.values())]})
        report.add_table(pd.concat([seconds, total], ignore_index=True), caption="Wall time of each step")
    return report


# -- words ---------------------------------------------------------------------------------------------------
def _number(value: Any, spec: str = ".3f") -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return format(float(value), spec)


def _what(result: ClusterResult) -> str:
    model, cfg = result.model, result.config
    if model.input_kind_ == "texts":
        how = "MiniLM sentence embeddings" if cfg.embedding == "minilm" else "TF-IDF + SVD"
        return f"{result.n_rows:,} texts, embedded with {how}"
    columns = list(model.columns_ or [])
    return f"{result.n_rows:,} rows on {len(columns)} standardised numeric columns ({', '.join(columns)})"


def _algorithm(result: ClusterResult) -> str:
    model, cfg = result.model, result.config
    reduced = f"reduced with {model.reduction_.upper()} to {model.n_components_} dimensions"
    if cfg.algorithm == "kmeans":
        how = "given" if cfg.k is not None else f"chosen by silhouette over {cfg.k_min}-{cfg.k_max}"
        return f"{reduced} and clustered by K-means with k = {model.n_clusters_} ({how})"
    how = "given" if cfg.min_cluster_size is not None else "chosen from the data by relative validity"
    return (
        f"{reduced} and clustered by HDBSCAN with min_cluster_size = {model.min_cluster_size_} ({how}), "
        f"which found {model.n_clusters_} cluster{'s' if model.n_clusters_ != 1 else ''}"
    )


def _outliers(result: ClusterResult) -> str:
    model, found = result.model, result.outliers_found
    if result.config.algorithm != "hdbscan":
        return ""
    if not found:
        return " HDBSCAN left no row out."
    text = f" HDBSCAN left {found:,} rows ({found / max(result.n_rows, 1):.1%}) in no cluster"
    if model.reassigned_:
        return (
            f"{text}; {model.reassigned_:,} of them were moved to the nearest cluster, so "
            f"{model.outlier_share_:.1%} of the rows remain outliers."
        )
    return f"{text}; they stay outliers (cluster -1), {model.outlier_share_:.1%} of the rows."


def _stability_words(result: ClusterResult) -> str:
    stable = result.stability
    if stable is None:
        return "Stability was not measured (no bootstrap ran), so no cluster is flagged unstable."
    if not len(stable.table):
        return "There is no cluster whose stability could be measured."
    unstable = stable.unstable_clusters
    words = (
        f"Over {len(stable.per_boot)} bootstrap refits, the clusters' mean Jaccard averages "
        f"{_number(stable.mean, '.2f')} (lowest {_number(stable.min, '.2f')}). "
    )
    if unstable:
        names = ", ".join(f"{c} ({result.names.get(c, f'cluster_{c}')})" for c in unstable)
        words += (
            f"{len(unstable)} of {len(stable.table)} clusters fall below {stable.threshold:g} and are "
            f"flagged unstable: {names}. "
        )
    else:
        words += f"No cluster falls below {stable.threshold:g}. "
    return words + (
        "Hennig's reading of a cluster's mean Jaccard: below 0.5 it dissolved, 0.6 to 0.75 it shows a "
        "pattern but its membership is doubtful, above 0.85 it is highly stable."
    )


def _narrative(result: ClusterResult, registry_note: str | None) -> str:
    internal = result.internal
    parts = [f"{_what(result)}, {_algorithm(result)}.{_outliers(result)}"]
    quality = (
        f"Silhouette {_number(internal.get('silhouette'))}, Davies-Bouldin "
        f"{_number(internal.get('davies_bouldin'))} (in the space before the reduction)"
    )
    if result.dbcv is not None:
        quality += f", DBCV {_number(result.dbcv)} (in the reduced space)"
    parts.append(f"{quality}; stability-weighted silhouette {_number(result.weighted_silhouette)}.")
    paragraphs = [" ".join(parts), _stability_words(result)]
    if result.external is not None:
        ext = result.external
        paragraphs.append(
            f"Against the known labels (column '{result.config.labels_column}'): V-measure "
            f"{_number(ext.get('v_measure'))}, NMI {_number(ext.get('nmi'))}, ARI {_number(ext.get('ari'))}, "
            f"Hungarian accuracy {_number(ext.get('hungarian_accuracy'), '.1%')}."
        )
    if registry_note:
        paragraphs.append(registry_note)
    return "\n\n".join(paragraphs)


def _cards(result: ClusterResult) -> dict[str, Any]:
    stable = result.stability
    cards: dict[str, Any] = {
        "rows": f"{result.n_rows:,}",
        "clusters": result.model.n_clusters_,
        "outlier share": f"{result.model.outlier_share_:.1%}",
        "silhouette": _number(result.internal.get("silhouette")),
        "stability mean / min": "not measured"
        if stable is None
        else f"{_number(stable.mean, '.2f')} / {_number(stable.min, '.2f')}",
        "stability-weighted silhouette": _number(result.weighted_silhouette),
    }
    if stable is not None:
        cards["unstable clusters"] = len(stable.unstable_clusters)
    if result.external is not None:
        cards["V-measure"] = _number(result.external.get("v_measure"))
    return cards


def _picture_caption(result: ClusterResult) -> str:
    picture = result.picture
    method = str(picture["method"].iloc[0]).upper() if "method" in picture else "a projection"
    caption = (
        f"The rows mapped to two dimensions by {method} from the space before the reduction, coloured by "
        "cluster, outliers (-1) in grey; hover a point for its text or values"
    )
    if len(picture) < result.n_rows:
        caption += (
            f". It shows a sample of {len(picture):,} of the {result.n_rows:,} rows, stratified by cluster"
        )
    return caption


def _silhouette_caption(result: ClusterResult) -> str:
    profile = result.silhouette_profile
    caption = (
        "Every clustered row's silhouette, sorted within its cluster (wider is better; below 0 the row sits "
        "nearer another cluster); the dashed line is the mean"
    )
    clustered = int((np.asarray(result.model.labels_) != OUTLIER).sum())
    if len(profile) < clustered:
        caption += (
            f". A sample of {len(profile):,} of the {clustered:,} clustered rows, stratified by cluster"
        )
    return caption


# -- tables --------------------------------------------------------------------------------------------------
def _short(text: str, limit: int = EXAMPLE_CHARACTERS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ordered(result: ClusterResult) -> list[int]:
    """Clusters largest first, as in the cluster table."""
    return [int(c) for c in result.cluster_table()["cluster"]]


def _texts_table(result: ClusterResult) -> pd.DataFrame:
    rows = [
        {
            "cluster": c,
            "name": result.names.get(c, f"cluster_{c}"),
            "keywords": ", ".join(result.keywords.get(c, [])),
            "examples": " | ".join(_short(t) for t in result.examples.get(c, [])),
        }
        for c in _ordered(result)
    ]
    return pd.DataFrame(rows, columns=["cluster", "name", "keywords", "examples"])


def _profiles_table(result: ClusterResult) -> pd.DataFrame:
    rows = [
        {"cluster": c, "name": result.names.get(c, f"cluster_{c}"), **entry}
        for c in _ordered(result)
        for entry in result.profiles.get(c, [])
    ]
    columns = ["cluster", "name", "feature", "effect", "cluster_mean", "overall_mean"]
    return pd.DataFrame(rows, columns=columns).rename(
        columns={"cluster_mean": "cluster mean", "overall_mean": "overall mean"}
    )


def _external_table(external: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": list(external),
            "value": [float(v) for v in external.values()],
            "meaning": [EXTERNAL_MEANING.get(k, "") for k in external],
        }
    )


def _add_selection(report: Report, result: ClusterResult) -> None:
    """The k-selection curve (K-means choosing k) and the min_cluster_size scores (HDBSCAN choosing it)."""
    model = result.model
    curves = []
    if model.k_scores_:
        curves.append(("k", "silhouette", model.k_scores_, model.n_clusters_, "Silhouette of each k tried"))
    if model.min_cluster_size_scores_:
        curves.append(
            (
                "min_cluster_size",
                "relative validity",
                model.min_cluster_size_scores_,
                model.min_cluster_size_,
                "HDBSCAN's relative validity of each min_cluster_size tried",
            )
        )
    if not curves:
        return
    report.add_heading("How the number of clusters was chosen")
    for x_title, y_title, scores, chosen, caption in curves:
        report.add_figure(
            _selection_figure(scores, chosen, x_title, y_title),
            caption=f"{caption}; the chosen one is marked",
        )


# -- figures -------------------------------------------------------------------------------------------------
def _colours(result: ClusterResult) -> dict[int, str]:
    """One colour per cluster (in label order, so the picture, bars and boxes agree), grey for outliers."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly + qualitative.D3 + qualitative.Set3
    colours = {int(c): palette[i % len(palette)] for i, c in enumerate(sorted(result.model.cluster_sizes_))}
    colours[OUTLIER] = OUTLIER_COLOUR
    return colours


def _label(result: ClusterResult, cluster: int) -> str:
    """``3 · refund card`` as plain text for plotly (which reads a few HTML tags in labels)."""
    if cluster == OUTLIER:
        return "-1 · outliers"
    return escape(f"{cluster} · {result.names.get(cluster, f'cluster_{cluster}')}", quote=False)


def _picture_figure(picture: pd.DataFrame, colours: dict[int, str]):
    import plotly.graph_objects as go

    method = str(picture["method"].iloc[0]).upper() if "method" in picture else ""
    figure = go.Figure()
    # outliers first, so the clusters are drawn over them
    for cluster in sorted(picture["cluster"].unique(), key=lambda c: (c != OUTLIER, c)):
        rows = picture[picture["cluster"] == cluster]
        name = (
            "-1 · outliers"
            if cluster == OUTLIER
            else escape(f"{cluster} · {rows['name'].iloc[0]}", quote=False)
        )
        figure.add_trace(
            go.Scattergl(
                x=rows["x"],
                y=rows["y"],
                mode="markers",
                name=name,
                text=[escape(str(h), quote=False) for h in rows["hover"]],
                hoverinfo="text+name",
                marker={"color": colours.get(int(cluster), OUTLIER_COLOUR), "size": 5, "opacity": 0.75},
            )
        )
    figure.update_layout(
        height=520,
        xaxis_title=f"{method} 1",
        yaxis_title=f"{method} 2",
        legend_title="cluster",
        hovermode="closest",
    )
    return figure


def _sizes_figure(result: ClusterResult, colours: dict[int, str]):
    import plotly.graph_objects as go

    clusters = _ordered(result)
    sizes = [result.model.cluster_sizes_[c] for c in clusters]
    remaining = int((np.asarray(result.model.labels_) == OUTLIER).sum())
    if remaining:
        clusters, sizes = [*clusters, OUTLIER], [*sizes, remaining]
    figure = go.Figure(
        go.Bar(
            x=sizes,
            y=[_label(result, c) for c in clusters],
            orientation="h",
            marker={"color": [colours.get(c, OUTLIER_COLOUR) for c in clusters]},
            text=sizes,
            textposition="auto",
        )
    )
    figure.update_layout(
        height=min(200 + 24 * len(clusters), 1200),
        xaxis_title="rows",
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return figure


def _jaccard_figure(result: ClusterResult, colours: dict[int, str]):
    import plotly.graph_objects as go

    stable = result.stability
    unstable = set(stable.unstable_clusters)
    figure = go.Figure()
    for cluster in _ordered(result):
        if cluster not in stable.per_boot.columns:
            continue
        colour = UNSTABLE_COLOUR if cluster in unstable else colours.get(cluster, OUTLIER_COLOUR)
        label = _label(result, cluster) + (" ⚠" if cluster in unstable else "")
        figure.add_trace(
            go.Box(
                y=stable.per_boot[cluster],
                name=label,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": colour, "size": 4},
                line={"color": colour},
            )
        )
    figure.add_hline(
        y=stable.threshold,
        line={"dash": "dash", "color": UNSTABLE_COLOUR},
        annotation_text=f"unstable below {stable.threshold:g}",
        annotation_position="bottom right",
    )
    figure.update_layout(height=420, yaxis={"title": "Jaccard", "range": [0, 1.05]}, showlegend=False)
    return figure


def _silhouette_figure(result: ClusterResult, colours: dict[int, str]):
    """The classic picture: per cluster, its rows' silhouettes as a filled knife, largest first, with a gap
    between clusters."""
    import plotly.graph_objects as go

    profile = result.silhouette_profile
    figure = go.Figure()
    position, gap = 0, max(len(profile) // 50, 2)
    ticks, labels = [], []
    for cluster, rows in profile.groupby("cluster", sort=True):
        values = np.sort(rows["silhouette"].to_numpy())[::-1]
        y = np.arange(position, position + values.size)
        figure.add_trace(
            go.Scatter(
                x=np.concatenate([[0.0], values, [0.0]]),
                y=np.concatenate([[y[0]], y, [y[-1]]]),
                mode="lines",
                fill="toself",
                line={"width": 0.5, "color": colours.get(int(cluster), OUTLIER_COLOUR)},
                name=_label(result, int(cluster)),
                hoverinfo="name",
            )
        )
        ticks.append(position + values.size / 2)
        labels.append(str(cluster))
        position += values.size + gap
    mean = float(profile["silhouette"].mean())
    figure.add_vline(
        x=mean,
        line={"dash": "dash", "color": "#334155"},
        annotation_text=f"mean {mean:.3f}",
        annotation_position="top",
    )
    figure.update_layout(
        height=min(300 + 24 * len(ticks), 900),
        xaxis={"title": "silhouette", "range": [min(-0.1, float(profile["silhouette"].min())), 1]},
        yaxis={
            "title": "cluster",
            "tickvals": ticks,
            "ticktext": labels,
            "autorange": "reversed",
            "showgrid": False,
        },
        showlegend=False,
    )
    return figure


def _selection_figure(scores: dict, chosen: Any, x_title: str, y_title: str):
    import plotly.graph_objects as go

    xs = sorted(scores)
    figure = go.Figure(go.Scatter(x=xs, y=[scores[x] for x in xs], mode="lines+markers", name=y_title))
    if chosen in scores:
        figure.add_trace(
            go.Scatter(
                x=[chosen],
                y=[scores[chosen]],
                mode="markers",
                marker={"size": 14, "symbol": "star", "color": UNSTABLE_COLOUR},
                name=f"chosen: {chosen}",
            )
        )
    ticks = {"tickmode": "array", "tickvals": xs} if len(xs) <= 30 else {}
    figure.update_layout(height=340, xaxis={"title": x_title, **ticks}, yaxis_title=y_title)
    return figure
