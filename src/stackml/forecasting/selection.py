"""Choosing between forecasts and attaching intervals, in one place for the front door,
the pipeline and the pyfunc.

- the interval column convention: :func:`interval_column` (``<alias>-lo-<level>`` / ``<alias>-hi-<level>``);
- mean ensembles: :func:`mean_ensemble`, the mean of member forecasts;
- per-model point forecasts joined into one wide frame: :func:`join_forecasts`;
- conformal half-widths per alias from backtest residuals: :func:`conformal_widths` (arrays), with
  :func:`interval_widths` bringing a backtest frame to those arrays; :func:`with_intervals` attaches them;
- the choice: :func:`choose` (lowest backtest OWA, ties to the simpler model) giving a :class:`Choice`.

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
    "Choice",
    "choose",
    "conformal_widths",
    "interval_column",
    "interval_widths",
    "join_forecasts",
    "mean_ensemble",
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


def interval_widths(
    backtest: pd.DataFrame,
    train: pd.DataFrame,
    ids: Sequence[Any],
    *,
    horizon: int,
    season_length: int,
    levels: Sequence[float],
    aliases: Sequence[str],
) -> Widths:
    """:func:`conformal_widths` from a long backtest frame ``unique_id, ds, cutoff, y, <alias>...``.

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
    return conformal_widths(residuals, scales, levels)


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
@dataclass(frozen=True)
class Choice:
    """The chosen configuration: one model, or the mean of several."""

    alias: str
    members: tuple[str, ...] = field(default=())  # model names when the choice is an ensemble

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


def choose(
    scores: pd.DataFrame, ensembles: Mapping[str, Sequence[str]], alias_to_name: Mapping[str, str]
) -> Choice:
    """The candidate with the lowest backtest OWA (MASE when OWA is missing); ties go to the simpler model.

    Args:
        scores: one row per candidate alias (``model``) with ``owa`` (or ``mase``).
        ensembles: ensemble alias -> member aliases.
        alias_to_name: alias -> model name, to name an ensemble's members.
    """
    ranked = scores.assign(
        _key=scores["owa"].fillna(np.inf) if "owa" in scores else scores["mase"],
        _size=scores["model"].map(lambda a: len(ensembles.get(a, (a,)))),
    ).sort_values(["_key", "_size", "model"])
    best = str(ranked["model"].iloc[0])
    if best in ensembles:
        return Choice(alias=best, members=tuple(alias_to_name[a] for a in ensembles[best]))
    return Choice(alias=best)
