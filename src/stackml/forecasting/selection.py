"""Choosing between forecasts and attaching intervals, in one place for the front door,
the pipeline and the pyfunc.

- the interval column convention: :func:`interval_column` (``<alias>-lo-<level>`` / ``<alias>-hi-<level>``);
- mean ensembles: :func:`mean_ensemble`, the mean of member forecasts;
- per-model point forecasts joined into one wide frame: :func:`join_forecasts`;
- conformal half-widths per alias from backtest residuals: :func:`conformal_widths` (arrays), with
  :func:`backtest_residuals` bringing a backtest frame to those arrays; :func:`with_intervals` attaches them;
- the choice: :func:`choose` (the simplest candidate within noise of the lowest backtest OWA) giving a
  :class:`Choice`; :func:`backtest_coverage` scores the intervals on errors they were not calibrated on.

The maths of the intervals (quantiles, scales) is in :mod:`stackml.forecasting.conformal`.

Example:
    >>> import pandas as pd
    >>> interval_column("Theta", "lo", 97.5), interval_column("yhat", "hi", 80.0)
    ('Theta-lo-97.5', 'yhat-hi-80')
    >>> mean_ensemble([[1.0, 2.0], [3.0, 6.0]])
    array([2., 4.])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stackml.forecasting.conformal import conformal_half_widths, insample_scale

__all__ = [
    "MAX_MEMBER_OWA_RATIO",
    "Choice",
    "backtest_coverage",
    "choose",
    "conformal_widths",
    "interval_column",
    "backtest_residuals",
    "join_forecasts",
    "mean_ensemble",
    "owa_standard_errors",
    "with_intervals",
]

#: alias -> level -> half-widths ``(n_series, h)``
Widths = dict[str, dict[float, np.ndarray]]
_SIDES = ("lo", "hi")


# -- the interval column convention --------------------------------------------------------------------------
def interval_column(alias: str, side: str, level: float) -> str:
    """``<alias>-lo-<level>`` or ``<alias>-hi-<level>``, the level written with ``:g``
    (80.0 -> ``80``, 97.5 -> ``97.5``)."""
    if side not in _SIDES:
        raise ValueError(f"side must be 'lo' or 'hi', got {side!r}")
    return f"{alias}-{side}-{level:g}"


# -- ensembles -----------------------------------------------------------------------------------------------
def mean_ensemble(forecasts: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The mean of member forecasts: arrays (or columns) of one shape,
    stacked on a first axis and averaged."""
    return np.mean(np.stack([np.asarray(f, dtype=np.float64) for f in forecasts]), axis=0)


def join_forecasts(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Join per-model point forecasts (``unique_id, ds, <alias>``, same series and steps)
    into one wide frame."""
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.merge(frame, on=["unique_id", "ds"], how="inner", validate="one_to_one")
    return joined


# -- conformal intervals -------------------------------------------------------------------------------------
def conformal_widths(
    residuals: Mapping[str, np.ndarray], scales: np.ndarray, levels: Sequence[float]
) -> Widths:
    """Conformal half-widths ``alias -> level -> (n_series, h)`` from each alias' backtest residuals.

    Args:
        residuals: alias -> ``y - yhat`` of the backtest, shape ``(n_windows, n_series, h)``.
        scales: per-series in-sample scale, shape ``(n_series,)`` (see
            :func:`~stackml.forecasting.conformal.insample_scale`).
        levels: coverages in percent.
    """
    return {
        alias: {level: conformal_half_widths(r, scales, level) for level in levels}
        for alias, r in residuals.items()
    }


def backtest_residuals(
    backtest: pd.DataFrame,
    train: pd.DataFrame,
    ids: Sequence[Any],
    *,
    horizon: int,
    season_length: int,
    aliases: Sequence[str],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Residuals ``alias -> (n_windows, n_series, h)`` of a long backtest frame and the series' scales.

    Series are in the order of ``ids``; window ``w`` of a series is its ``w``-th backtest window (windows
    counted back from each series' last one), as in the front door's own backtest. Scales come from ``train``.
    """
    ids = [str(i) for i in ids]
    position = {i: k for k, i in enumerate(ids)}
    history = train.assign(unique_id=train["unique_id"].astype(str)).groupby("unique_id", sort=False)["y"]
    scales = np.array([insample_scale(history.get_group(i).to_numpy(), season_length) for i in ids])
    cv = backtest.assign(unique_id=backtest["unique_id"].astype(str))
    cv = cv[cv["unique_id"].isin(position)].sort_values(["unique_id", "cutoff", "ds"])
    series = cv["unique_id"].map(position).to_numpy(dtype=np.int64)
    # 1 for each series' last window, 2 for the one before...
    back = (
        cv.groupby("unique_id", sort=False)["cutoff"]
        .rank(method="dense", ascending=False)
        .to_numpy(dtype=np.int64)
    )
    step = cv.groupby(["unique_id", "cutoff"], sort=False).cumcount().to_numpy(dtype=np.int64)
    n_windows = int(back.max()) if len(cv) else 1
    residuals = {}
    for alias in aliases:
        r = np.zeros((n_windows, len(ids), horizon))
        r[n_windows - back, series, step] = (cv["y"] - cv[alias]).to_numpy(dtype=np.float64)
        residuals[alias] = r
    return residuals, scales


def backtest_coverage(
    residuals: Mapping[str, np.ndarray], scales: np.ndarray, levels: Sequence[float]
) -> dict[str, dict[float, float]]:
    """How often the conformal intervals held on backtest errors they were not calibrated on.

    With several windows, each window is scored with widths from the other windows; with one window, the
    series are split in two halves and each half is scored with widths pooled from the other (one window
    always pools across series). This is the coverage to expect on new data when no holdout is given.

    Returns:
        alias -> level -> share of backtest points inside the interval.
    """
    from stackml.forecasting.conformal import conformal_half_widths

    out: dict[str, dict[float, float]] = {}
    for alias, r in residuals.items():
        n_windows, n_series, _ = r.shape
        out[alias] = {}
        for level in levels:
            inside: list[np.ndarray] = []
            if n_windows >= 2:
                for w in range(n_windows):
                    others = np.delete(r, w, axis=0)
                    inside.append(np.abs(r[w]) <= conformal_half_widths(others, scales, level))
            elif n_series >= 2:
                halves = (np.arange(0, n_series, 2), np.arange(1, n_series, 2))
                for fit, score in (halves, halves[::-1]):
                    widths = conformal_half_widths(r[:, fit], scales[fit], level)
                    per_scale = widths[0] / scales[fit][0]  # one window: a pooled quantile per step
                    inside.append(np.abs(r[0, score]) <= per_scale[None, :] * scales[score][:, None])
            scored = np.concatenate([x.ravel() for x in inside]) if inside else np.array([np.nan])
            out[alias][level] = float(np.mean(scored))
    return out


def with_intervals(forecasts: pd.DataFrame, widths: Mapping[str, Mapping[float, np.ndarray]]) -> pd.DataFrame:
    """``forecasts`` with interval columns after each alias of ``widths``: ``-lo-`` from the widest level in,
    then ``-hi-`` outwards (see :func:`interval_column`).

    Rows are ``h`` per series, series in the order of the widths' rows.
    """
    added: dict[str, np.ndarray] = {}
    order: list[str] = []
    for column in forecasts.columns:
        order.append(column)
        by_level = widths.get(column, {})
        if not by_level:
            continue
        mean = forecasts[column].to_numpy(dtype=np.float64)
        for side, levels in (("lo", sorted(by_level, reverse=True)), ("hi", sorted(by_level))):
            for level in levels:
                name = interval_column(column, side, level)
                width = np.asarray(by_level[level]).ravel()
                added[name] = mean - width if side == "lo" else mean + width
                order.append(name)
    if not added:
        return forecasts.copy()
    return pd.concat([forecasts, pd.DataFrame(added, index=forecasts.index)], axis=1)[order]


# -- the choice ----------------------------------------------------------------------------------------------
#: an ensemble is considered only when its worst member's backtest OWA is within this factor of its best
#: member's: a mean with a much worse member wins on a backtest by luck more often than on new data
MAX_MEMBER_OWA_RATIO = 1.25


@dataclass(frozen=True)
class Choice:
    """The chosen configuration: one model, or the mean of several; ``why`` says how it was chosen."""

    alias: str
    members: tuple[str, ...] = field(default=())  # model names when the choice is an ensemble
    why: str = ""

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


def owa_standard_errors(by_series: pd.DataFrame, scores: pd.DataFrame, best: str) -> dict[str, float]:
    """Standard error of each candidate's OWA difference to ``best``, from paired per-series errors.

    OWA is ``0.5 (sMAPE / sMAPE_ref + MASE / MASE_ref)`` over the whole set, so the difference between two
    candidates is the mean over series of ``d_i = 0.5 (ds_i / sMAPE_ref + dm_i / MASE_ref)``; its standard
    error is ``std(d) / sqrt(n)``. Pairing by series removes what all models share (a hard series is hard for
    all), so the test sees only how they differ.
    """
    reference = _reference_scores(scores)
    wide = by_series.pivot_table(index="unique_id", columns="model", values=["smape", "mase"])
    if reference is None or best not in wide["smape"]:
        return {}
    s_ref, m_ref = reference
    out: dict[str, float] = {}
    for model in wide["smape"].columns:
        d_smape = (wide["smape"][model] - wide["smape"][best]) / s_ref
        d_mase = (wide["mase"][model] - wide["mase"][best]) / m_ref
        d = (0.5 * (d_smape + d_mase)).dropna()
        out[str(model)] = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.inf
    return out


def _reference_scores(scores: pd.DataFrame) -> tuple[float, float] | None:
    """The OWA reference's sMAPE and MASE: the row whose OWA is 1 (the reference scores itself)."""
    if "owa" not in scores:
        return None
    rows = scores[np.isclose(scores["owa"].astype(float), 1.0)]
    for _, row in rows.iterrows():
        if float(row["smape"]) > 0 and float(row["mase"]) > 0:
            return float(row["smape"]), float(row["mase"])
    return None


def choose(
    scores: pd.DataFrame,
    ensembles: Mapping[str, Sequence[str]],
    alias_to_name: Mapping[str, str],
    by_series: pd.DataFrame | None = None,
) -> Choice:
    """The simplest candidate whose backtest OWA is within noise of the best.

    1. Ensembles whose members disagree (worst member's OWA more than :data:`MAX_MEMBER_OWA_RATIO` times the
       best member's) are set aside.
    2. The best remaining candidate by OWA (MASE when OWA is missing) is found.
    3. With per-series errors (``by_series``), every candidate within one standard error of the best (see
       :func:`owa_standard_errors`) counts as equally good, and the simplest of those wins: single models
       before ensembles, smaller ensembles before larger, then the lower OWA. An ensemble that wins by less
       than noise thus gives way to its best member.

    Args:
        scores: one row per candidate alias (``model``) with ``owa`` (or ``mase``), ``smape``, ``mase``.
        ensembles: ensemble alias -> member aliases.
        alias_to_name: alias -> model name, to name an ensemble's members.
        by_series: per ``(model, unique_id)`` backtest ``smape`` and ``mase``.
    """
    key = scores["owa"] if "owa" in scores and scores["owa"].notna().any() else scores["mase"]
    table = scores.assign(
        _key=key.astype(float).fillna(np.inf),
        _size=scores["model"].map(lambda a: len(ensembles.get(a, (a,)))),
    )
    by_alias = table.set_index("model")["_key"]
    disagree = [
        a
        for a, members in ensembles.items()
        if a in by_alias
        and max(by_alias[m] for m in members) > MAX_MEMBER_OWA_RATIO * min(by_alias[m] for m in members)
    ]
    table = table[~table["model"].isin(disagree)]
    ranked = table.sort_values(["_key", "_size", "model"])
    best = str(ranked["model"].iloc[0])
    chosen, why = best, "the lowest backtest OWA"
    if by_series is not None and len(by_series) and np.isfinite(ranked["_key"].iloc[0]):
        errors = owa_standard_errors(by_series, scores, best)
        if errors:
            gap = ranked["_key"] - ranked["_key"].iloc[0]
            near = ranked[gap <= ranked["model"].map(lambda a: errors.get(a, 0.0))]
            simplest = near.sort_values(["_size", "_key", "model"])
            chosen = str(simplest["model"].iloc[0])
            if chosen != best:
                why = (
                    f"within one standard error of the best ({best}, OWA {ranked['_key'].iloc[0]:.3f}) "
                    "and simpler"
                )
    if disagree:
        why += f"; set aside for members that disagree: {', '.join(disagree)}"
    if chosen in ensembles:
        return Choice(alias=chosen, members=tuple(alias_to_name[a] for a in ensembles[chosen]), why=why)
    return Choice(alias=chosen, why=why)
