"""The clustering pipeline as plain functions: load, embed, fit, assess, summarise, write the assignments.

``ClusterFlow`` (Metaflow) and ``stackml cluster run`` call these in order; a notebook can too
(:func:`run_pipeline`). Nothing here knows about Metaflow, MLflow or the CLI.

Scores are computed where they mean something and can be compared across runs: silhouette, Davies-Bouldin and
Calinski-Harabasz in the space before the reduction (the MiniLM or TF-IDF vectors, or the standardised
columns), so an HDBSCAN run and a K-means run, or two reductions, compete on the same ground; DBCV in the
reduced space, where HDBSCAN measured its densities. Stability refits the clustering step (same settings: the
chosen ``k``, or ``min_cluster_size`` scaled to the resample) on bootstrap resamples of the reduced rows; the
embedding and the reduction are not refitted: it measures whether the clusters are reproducible given that
map.

Example:
    >>> from stackml.clustering.pipeline import ClusterConfig, run_pipeline
    >>> result = run_pipeline(frame, ClusterConfig(columns="spend,visits"))  # doctest: +SKIP
    >>> result.summary()["n_clusters"]  # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.checks import missing_columns_problem
from stackml.clustering.config import DEFAULT_TEXT_COLUMN, ClusterConfig
from stackml.clustering.quality import OUTLIER
from stackml.errors import InputError, raise_if_problems
from stackml.pipelines import Source

if TYPE_CHECKING:
    from stackml.clustering import Clusterer
    from stackml.clustering.result import ClusterResult
    from stackml.clustering.stability import StabilityResult
    from stackml.warehouse import Warehouse

__all__ = [
    "ClusterConfig",
    "assess",
    "assignments_table",
    "embed",
    "fit",
    "input_columns",
    "input_kind",
    "load",
    "run_pipeline",
    "split_copies",
    "summarise",
    "write_assignments",
]

Progress = Callable[
    [str, int, int, str], None
]  # (label, done, total, detail), as stackml.flows.step_progress
ID, LABEL = "id", "label"  # the loaded frame's id and known-class columns
SAME_AS = "same_as"  # with dedupe: the id of the first row with the same text
KEYWORDS, EXAMPLES = 8, 3  # per cluster
HOVER_CHARACTERS = 140
_SHOWN = 5


# -- the source ----------------------------------------------------------------------------------------------
def input_columns(config: ClusterConfig, columns: list[str]) -> tuple[str | None, list[str] | None]:
    """``(text_column, numeric_columns)``: exactly one is set. Texts: the named column, else ``text`` when
    there is one and no numeric columns are named; numeric: the named columns, else every other column
    (checked to be numeric when the rows are read)."""
    if config.columns:
        return None, list(config.columns)
    if config.text_column:
        return config.text_column, None
    if DEFAULT_TEXT_COLUMN in columns:
        return DEFAULT_TEXT_COLUMN, None
    roles = {config.id_column or ID, config.labels_column}
    return None, [c for c in columns if c not in roles]


def check_source(config: ClusterConfig, source: Source, warehouse: Warehouse | None = None) -> None:
    """The named columns exist in the source."""
    columns = source.columns(warehouse)
    text_column, numeric = input_columns(config, columns)
    wanted = [c for c in (config.id_column, config.labels_column, text_column) if c] + list(numeric or [])
    problem = missing_columns_problem(columns, wanted)
    if numeric == [] and not problem:
        problem = (
            f"there is no '{DEFAULT_TEXT_COLUMN}' column and no other column to cluster on "
            f"(columns: {columns})"
        )
    raise_if_problems(
        [problem] if problem else [],
        what=source.describe(),
        hint="Name the texts with --text-column, or the numeric columns with --columns a,b,c.",
    )


def load(config: ClusterConfig, source: Source, warehouse: Warehouse | None = None) -> pd.DataFrame:
    """Step 1: the rows to cluster as ``id``, then ``text`` or the numeric columns, then ``label`` (when a
    labels column is named), with every bad value named at once (empty or repeated texts or ids, NaN,
    constant columns, too few rows, ``k`` above the rows)."""
    check_source(config, source, warehouse)
    raw = source.read(warehouse)
    text_column, numeric = input_columns(config, list(raw.columns))
    what = source.describe()
    frame = pd.DataFrame(index=range(len(raw)))
    id_column = config.id_column or (ID if ID in raw.columns and ID not in (numeric or []) else None)
    problems = _id_problems(raw, id_column)
    frame[ID] = raw[id_column].to_numpy() if id_column else np.arange(len(raw))
    if text_column is not None:
        texts = raw[text_column]
        problems += _text_problems(texts, text_column, repeats_allowed=config.dedupe)
        frame[DEFAULT_TEXT_COLUMN] = texts.to_numpy(dtype=object)
        if config.dedupe:
            frame[SAME_AS] = _first_copy_ids(frame)
    else:
        from stackml.embeddings.numeric import fit_numeric

        try:
            fit_numeric(raw, numeric)  # names every missing, non-numeric, NaN and constant column at once
        except InputError as exc:
            problems.append(exc.message.rstrip("."))
        for column in numeric or []:
            frame[column] = raw[column].to_numpy()
    if config.labels_column:
        labels = raw[config.labels_column]
        if labels.isna().any():
            problems.append(
                f"the labels column '{config.labels_column}' has {int(labels.isna().sum())} empty value(s)"
            )
        frame[LABEL] = labels.astype(str).to_numpy()
    n = len(frame) if SAME_AS not in frame.columns else int((frame[SAME_AS] == frame[ID]).sum())
    if n < 3:
        problems.append(f"clustering needs at least 3 {'distinct ' if config.dedupe else ''}rows, got {n}")
    if config.k is not None and n < config.k:
        problems.append(f"k ({config.k}) is larger than the number of rows ({n})")
    if config.min_cluster_size is not None and n < config.min_cluster_size:
        problems.append(
            f"min_cluster_size ({config.min_cluster_size}) is larger than the number of rows ({n})"
        )
    raise_if_problems(
        problems,
        what=what,
        hint="Fix or drop those rows, or change the options; --dedupe clusters each distinct text once and "
        "gives its copies the same cluster.",
    )
    return frame


def _first_copy_ids(frame: pd.DataFrame) -> np.ndarray:
    """The id of the first row with the same text (ignoring case and surrounding spaces), for every row."""
    key = frame[DEFAULT_TEXT_COLUMN].map(lambda t: t.strip().lower() if isinstance(t, str) else t)
    first = key.groupby(key, sort=False).transform(lambda rows: rows.index[0])
    return frame[ID].to_numpy()[first.to_numpy(dtype=np.int64)]


def split_copies(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(distinct rows, copies)`` of a frame loaded with ``dedupe``: the rows to cluster, and ``id, same_as``
    for each copy of an earlier text (None when the frame was loaded without ``dedupe``)."""
    if SAME_AS not in frame.columns:
        return frame, None
    first = frame[SAME_AS] == frame[ID]
    copies = frame.loc[~first, [ID, SAME_AS]].reset_index(drop=True)
    return frame.loc[first].drop(columns=[SAME_AS]).reset_index(drop=True), copies


def _id_problems(raw: pd.DataFrame, column: str | None) -> list[str]:
    if column is None:
        return []
    ids = raw[column]
    problems = []
    if ids.isna().any():
        problems.append(f"the id column '{column}' has {int(ids.isna().sum())} empty value(s)")
    repeated = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(repeated):
        shown = ", ".join(map(repr, list(dict.fromkeys(repeated.tolist()))[:_SHOWN]))
        problems.append(f"the id column '{column}' repeats {repeated.nunique()} id(s): {shown}")
    return problems


def _text_problems(texts: pd.Series, column: str, *, repeats_allowed: bool = False) -> list[str]:
    """Missing, non-text, blank and (unless allowed) repeated texts, each with the first row positions."""
    values = texts.tolist()
    empty = [i for i, t in enumerate(values) if _is_missing(t) or (isinstance(t, str) and not t.strip())]
    not_text = [i for i, t in enumerate(values) if not _is_missing(t) and not isinstance(t, str)]
    problems = []
    for rows, words in ((empty, "empty or blank"), (not_text, "non-text")):
        if rows:
            problems.append(f"column '{column}' has {len(rows)} {words} value(s) at {_rows(rows)}")
    normalised = pd.Series([t.strip().lower() if isinstance(t, str) else None for t in values])
    repeated = normalised.duplicated(keep="first") & normalised.notna() & (normalised != "")
    if repeated.any() and not repeats_allowed:
        rows = np.flatnonzero(repeated).tolist()
        example = values[rows[0]]
        problems.append(
            f"column '{column}' repeats {len(rows)} text(s) (ignoring case and surrounding spaces) at "
            f"{_rows(rows)}, e.g. {str(example)[:60]!r}; copies form tight clumps that distort the clusters"
        )
    return problems


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _rows(positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:_SHOWN]))
    more = len(positions) - _SHOWN
    return f"rows {shown}" + (f" and {more} more" if more > 0 else "")


# -- embedding and fitting -----------------------------------------------------------------------------------
def input_kind(frame: pd.DataFrame) -> str:
    """``"texts"`` for a loaded frame with a ``text`` column (see :func:`load`), else ``"numeric"``."""
    return (
        "texts"
        if DEFAULT_TEXT_COLUMN in frame.columns and frame[DEFAULT_TEXT_COLUMN].dtype == object
        else "numeric"
    )


def embed(
    config: ClusterConfig, frame: pd.DataFrame, warehouse: Warehouse | None = None
) -> np.ndarray | None:
    """Step 2: the MiniLM vectors of the texts, through the warehouse's embedding cache when a warehouse is
    given (a text is encoded once across runs); None for numeric rows and TF-IDF (fitted inside the
    Clusterer)."""
    if input_kind(frame) != "texts" or config.embedding != "minilm":
        return None
    from stackml.embeddings import embed_texts

    return embed_texts(frame[DEFAULT_TEXT_COLUMN].tolist(), "minilm", warehouse=warehouse)


def fit(config: ClusterConfig, frame: pd.DataFrame, vectors: np.ndarray | None = None) -> Clusterer:
    """Step 3: the fitted :class:`~stackml.clustering.Clusterer` (reduction and algorithm)."""
    from stackml.clustering import Clusterer

    texts = input_kind(frame) == "texts"
    model = Clusterer(**config.clusterer_params(texts=texts))
    if texts:
        return model.fit(frame[DEFAULT_TEXT_COLUMN].tolist(), embedded=vectors)
    return model.fit(frame[list(config.columns) or _numeric_of(frame)])


def _numeric_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (ID, LABEL)]


# -- assessing -----------------------------------------------------------------------------------------------
def refit_function(model: Clusterer) -> Callable[[np.ndarray], np.ndarray]:
    """The clustering step alone, with the settings the fit chose held (``k`` for K-means;
    ``min_cluster_size`` and ``min_samples`` for HDBSCAN, scaled by the share of rows the resample kept):
    what the bootstrap re-runs on resampled rows.

    A bootstrap keeps each drawn row once, about 63% of them. HDBSCAN's sizes count rows, so held at their
    full-data values they ask a resampled cluster for 1.6 times its share of points, and clusters near the
    chosen size dissolve for that reason alone: on BANKING77 texts (3,000 to 50,000) the fixed sizes gave a
    mean Jaccard of 0.53-0.71 with 23-58 clusters under 0.6; scaled, 0.92-0.96 with 0-1 under 0.6
    (bench/results/clustering.md).
    """
    from stackml.clustering.algorithms import make_algorithm

    n_rows = len(model.labels_)
    if model.algorithm == "kmeans":
        params = {"k": model.n_clusters_, "random_state": model.random_state}

        def refit(rows: np.ndarray) -> np.ndarray:
            return make_algorithm("kmeans", **params).fit(rows).labels_

        return refit

    def refit_hdbscan(rows: np.ndarray) -> np.ndarray:
        share = len(rows) / n_rows
        size = max(2, round(model.min_cluster_size_ * share))
        samples = max(1, min(size, round(model.min_samples_ * share)))
        algorithm = make_algorithm(
            "hdbscan",
            min_cluster_size=size,
            min_samples=samples,
            reassign_outliers=bool(model.reassign_outliers),
            random_state=model.random_state,
        )
        return algorithm.fit(rows).labels_

    return refit_hdbscan


def stability(
    config: ClusterConfig, model: Clusterer, *, progress: Progress | None = None
) -> StabilityResult | None:
    """The bootstrap stability of each cluster (None when ``n_boot`` is 0)."""
    from stackml.clustering.stability import bootstrap_stability

    if config.n_boot == 0:
        return None
    report = None
    if progress is not None:
        report = lambda done, total: progress("stability bootstraps", done, total, "")  # noqa: E731
    return bootstrap_stability(
        model.reduced_,
        model.labels_,
        refit_function(model),
        n_boot=config.n_boot,
        random_state=config.random_state,
        progress=report,
        threshold=config.unstable_below,
    )


def assess(
    config: ClusterConfig,
    model: Clusterer,
    frame: pd.DataFrame,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Step 4: stability, internal and external scores, names and the 2-D picture of one fitted model."""
    from stackml.clustering import quality

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    stable = stability(config, model, progress=progress)
    seconds["stability"] = time.perf_counter() - started

    started = time.perf_counter()
    labels, space = model.labels_, model.embedding_
    internal = quality.internal_scores(space, labels, sample_size=config.sample_size, random_state=0)
    profile = quality.silhouette_profile(space, labels, sample_size=config.sample_size, random_state=0)
    dbcv = None
    if config.algorithm == "hdbscan" and model.n_clusters_ >= 2:
        # HDBSCAN's own labels (outliers as -1, before any reassignment) in the space it clustered
        hdbscan_labels = np.where(model.outliers_, OUTLIER, labels)
        dbcv = quality.dbcv(model.reduced_, hdbscan_labels, random_state=0)
    external = None
    if LABEL in frame.columns:
        external = quality.external_scores(frame[LABEL].to_numpy(), labels)
    seconds["quality"] = time.perf_counter() - started

    started = time.perf_counter()
    names = name_clusters(config, model, frame)
    seconds["naming"] = time.perf_counter() - started

    started = time.perf_counter()
    if progress is not None:
        method = "PCA" if config.fast else "UMAP (its first run in a process compiles numba, cached on disk)"
        progress("2-D picture", 0, 1, method)
    picture = picture_frame(config, model, frame, names["names"])
    seconds["picture"] = time.perf_counter() - started
    if progress is not None:
        progress("2-D picture", 1, 1, str(picture["method"].iloc[0]).upper() if len(picture) else "")
    return {
        "stability": stable,
        "internal": internal,
        "silhouette_profile": profile,
        "dbcv": dbcv,
        "external": external,
        **names,
        "picture": picture,
        "seconds": seconds,
    }


def name_clusters(config: ClusterConfig, model: Clusterer, frame: pd.DataFrame) -> dict[str, Any]:
    """``keywords`` (c-TF-IDF, texts), ``examples`` (the most central texts), ``profiles`` (the numeric
    features that set each cluster apart) and a short ``names`` entry for every cluster."""
    from stackml.clustering.naming import central_examples, cluster_name, ctfidf_keywords, numeric_profile

    labels = model.labels_
    clusters = sorted(model.cluster_sizes_)
    keywords: dict[int, list[str]] = {}
    examples: dict[int, list[str]] = {}
    profiles: dict[int, list[dict]] = {}
    if model.input_kind_ == "texts":
        texts = frame[DEFAULT_TEXT_COLUMN].tolist()
        keywords = ctfidf_keywords(texts, labels, top_n=KEYWORDS)
        examples = central_examples(model.embedding_, labels, texts, n=EXAMPLES)
        names = {c: cluster_name(keywords.get(c, []), fallback=f"cluster_{c}") for c in clusters}
    else:
        profiles = numeric_profile(frame[list(model.columns_)], labels)
        names = {c: _profile_name(profiles.get(c, []), c) for c in clusters}
    return {"keywords": keywords, "examples": examples, "profiles": profiles, "names": _unique(names)}


def _profile_name(profile: list[dict], cluster: int) -> str:
    """``"spend high, visits low"`` from the two strongest features (``cluster_3`` when none stands out)."""
    words = [
        f"{p['feature']} {'high' if p['effect'] > 0 else 'low'}"
        for p in profile[:2]
        if abs(p["effect"]) >= 0.5
    ]
    return ", ".join(words) or f"cluster_{cluster}"


def _unique(names: dict[int, str]) -> dict[int, str]:
    """Two clusters with the same keywords get their number appended, so a name picks out one cluster."""
    counts = pd.Series(list(names.values())).value_counts()
    return {c: (f"{n} ({c})" if counts[n] > 1 else n) for c, n in names.items()}


def picture_frame(
    config: ClusterConfig, model: Clusterer, frame: pd.DataFrame, names: dict[int, str]
) -> pd.DataFrame:
    """``row, x, y, cluster, name, hover`` for the report's scatter: up to ``sample_size`` rows (stratified by
    cluster), mapped to two dimensions by UMAP (PCA with ``fast``, or when the rows are few) from the space
    before the reduction."""
    from stackml.clustering.quality import _stratified_sample
    from stackml.clustering.reduction import make_reduction

    labels = model.labels_
    rows = np.sort(_stratified_sample(labels, config.sample_size, np.random.default_rng(config.random_state)))
    space = model.embedding_[rows]
    method = "pca" if config.fast or len(rows) < 30 or space.shape[1] <= 2 else "umap"
    if space.shape[1] <= 2:
        xy = np.column_stack([space[:, 0], space[:, 1] if space.shape[1] > 1 else np.zeros(len(rows))])
    else:
        metric = "cosine" if model.input_kind_ == "texts" else "euclidean"
        xy = make_reduction(
            method, n_components=2, random_state=config.random_state, metric=metric
        ).fit_transform(space)
    chosen = labels[rows]
    if model.input_kind_ == "texts":
        hover = [_shorten(t) for t in frame[DEFAULT_TEXT_COLUMN].iloc[rows]]
    else:
        shown = list(model.columns_)[:6]
        hover = [
            ", ".join(f"{c}={_short_number(v)}" for c, v in zip(shown, values))
            for values in frame[shown].iloc[rows].itertuples(index=False)
        ]
    return pd.DataFrame(
        {
            "row": rows,
            "id": frame[ID].iloc[rows].to_numpy(),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "cluster": chosen,
            "name": [names.get(int(c), "outlier") for c in chosen],
            "hover": hover,
        }
    ).assign(method=method)


def _shorten(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= HOVER_CHARACTERS else text[: HOVER_CHARACTERS - 1] + "…"


def _short_number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


# -- the result ----------------------------------------------------------------------------------------------
def summarise(
    config: ClusterConfig,
    model: Clusterer,
    frame: pd.DataFrame,
    assessed: dict[str, Any],
    *,
    seconds: dict[str, float] | None = None,
    copies: pd.DataFrame | None = None,
) -> ClusterResult:
    """Gather what the report, the registry and the CLI need (``copies``: see :func:`split_copies`)."""
    from stackml.clustering.result import ClusterResult

    return ClusterResult(
        config=config,
        model=model,
        frame=frame,
        stability=assessed["stability"],
        internal=assessed["internal"],
        silhouette_profile=assessed["silhouette_profile"],
        dbcv=assessed["dbcv"],
        external=assessed["external"],
        keywords=assessed["keywords"],
        examples=assessed["examples"],
        profiles=assessed["profiles"],
        names=assessed["names"],
        picture=assessed["picture"],
        seconds={**(seconds or {}), **assessed["seconds"]},
        copies=copies,
    )


def run_pipeline(
    frame: pd.DataFrame,
    config: ClusterConfig,
    *,
    vectors: np.ndarray | None = None,
    progress: Progress | None = None,
) -> ClusterResult:
    """Steps 2-4 in one process on a loaded frame (see :func:`load`): embed (unless ``vectors`` are given,
    one row per distinct row), fit, assess, summarise. Publishing, the assignments and the report attach
    from outside, as in ``ClusterFlow``."""
    frame, copies = split_copies(frame)
    started = time.perf_counter()
    if vectors is None:
        vectors = embed(config, frame)
    embedded = time.perf_counter()
    model = fit(config, frame, vectors)
    fitted = time.perf_counter()
    assessed = assess(config, model, frame, progress=progress)
    seconds = {"embed": embedded - started, "fit": fitted - embedded}
    return summarise(config, model, frame, assessed, seconds=seconds, copies=copies)


# -- the assignments -----------------------------------------------------------------------------------------
def assignments_table(model_name: str) -> str:
    """``<model name>_assignments`` as a warehouse table name (anything but letters, digits and ``_``
    becomes ``_``)."""
    stem = re.sub(r"[^0-9a-zA-Z_]+", "_", model_name).strip("_").lower() or "clusters"
    if stem[0].isdigit():
        stem = f"c_{stem}"
    return f"{stem}_assignments"


def write_assignments(result: ClusterResult, warehouse: Warehouse, model_name: str) -> str:
    """Replace ``<model name>_assignments (id, cluster, probability, outlier)`` in one transaction (a failed
    write leaves the old table); returns the table's name."""
    table = assignments_table(model_name)
    warehouse.ingest(result.assignments(), table, if_exists="replace")
    return table
