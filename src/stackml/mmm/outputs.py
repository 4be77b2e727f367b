"""What a fitted media-mix model says: contributions, ROAS, marginal ROAS and response curves, with intervals.

Every function takes a fitted :class:`~stackml.mmm.MediaMixModel` and returns a tidy DataFrame whose intervals
are highest-density intervals (HDI) of the posterior. ROAS is a channel's contribution over the fitted period
divided by its spend over the same period; a contribution share is divided by the total target instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.mmm._posterior import hdi

if TYPE_CHECKING:
    from stackml.mmm.model import MediaMixModel

__all__ = [
    "contribution_share",
    "contributions",
    "hdi",
    "marginal_roas",
    "response_curves",
    "roas",
    "summary",
]


def _summarise(draws: np.ndarray, index: Any, hdi_prob: float) -> pd.DataFrame:
    low, high = hdi(draws, hdi_prob)
    return pd.DataFrame(
        {
            "mean": draws.mean(axis=0),
            "median": np.median(draws, axis=0),
            "sd": draws.std(axis=0),
            "hdi_low": low,
            "hdi_high": high,
        },
        index=index,
    )


def contributions(model: MediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Per-period contributions of every channel and baseline part, long format.

    Returns:
        Columns ``date, component, kind (channel|baseline), mean, hdi_low, hdi_high``; the means of all
        components add up to the expected target.
    """
    d = model.design_
    parts = {c: model.contribution_draws()[:, :, k] for k, c in enumerate(d.channels)}
    baseline = model.posterior_.baseline_parts(d.dates, d.control_values)
    return long_contributions(d.dates, parts, baseline, hdi_prob)


def long_contributions(
    dates: pd.DatetimeIndex, channels: dict[str, np.ndarray], baseline: dict[str, np.ndarray], hdi_prob: float
) -> pd.DataFrame:
    """Draws ``(S, T)`` per channel and baseline part as the long table :func:`contributions` returns."""
    rows = []
    for kind, group in (("channel", channels), ("baseline", baseline)):
        for name, draws in group.items():
            low, high = hdi(draws, hdi_prob)
            rows.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "component": name,
                        "kind": kind,
                        "mean": draws.mean(axis=0),
                        "hdi_low": low,
                        "hdi_high": high,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def roas(model: MediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Return on ad spend per channel over the fitted period (contribution / spend).

    Returns:
        Index ``channel``; columns ``spend, contribution, mean, median, sd, hdi_low, hdi_high``, then
        ``identified`` (did the data, not the prior, set it), ``sd_ratio`` and ``note`` (why not) from
        :func:`stackml.mmm.identification.identification`, when the model holds its prior's draws.
    """
    total = model.contribution_draws().sum(axis=1)  # (S, K)
    spend = model.design_.spend.sum(axis=0)
    out = _summarise(total / spend, pd.Index(model.channels_, name="channel"), hdi_prob)
    out.insert(0, "contribution", total.mean(axis=0))
    out.insert(0, "spend", spend)
    if getattr(model, "prior_roas_", None) is not None:  # models registered before it was kept have none
        from stackml.mmm.identification import identification

        ident = identification(model, total / spend)
        out = out.join(ident[["identified", "sd_ratio", "note"]])
    return out


def contribution_share(model: MediaMixModel, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Share of the total target each channel contributed over the fitted period (0..1)."""
    total = model.contribution_draws().sum(axis=1)
    return _summarise(total / model.design_.target.sum(), pd.Index(model.channels_, name="channel"), hdi_prob)


def marginal_roas(model: MediaMixModel, hdi_prob: float = 0.94, increase: float = 0.01) -> pd.DataFrame:
    """Extra target per extra spend unit if every period's spend of a channel rose by ``increase`` (1 %).

    Like ROAS it counts effects inside the fitted period; a value below the ROAS shows diminishing returns.
    """
    d = model.design_
    base = model.contribution_draws().sum(axis=1)
    draws = np.empty_like(base)
    for k in range(len(d.channels)):
        spend = d.spend.copy()
        spend[:, k] *= 1.0 + increase
        bumped = model.posterior_.contributions(spend)[:, :, k].sum(axis=1)
        draws[:, k] = (bumped - base[:, k]) / (increase * d.spend[:, k].sum())
    return _summarise(draws, pd.Index(d.channels, name="channel"), hdi_prob)


def response_curves(
    model: MediaMixModel, n_points: int = 41, max_multiple: float = 2.0, hdi_prob: float = 0.94
) -> pd.DataFrame:
    """Steady-state contribution per period if a channel spent a constant amount every period.

    The grid runs from 0 to ``max_multiple`` times the channel's average spend per period.

    Returns:
        Columns ``channel, spend, multiple, mean, hdi_low, hdi_high`` (spend and contribution per period).
    """
    d = model.design_
    mean_spend = d.spend.mean(axis=0)
    multiples = np.linspace(0.0, max_multiple, n_points)
    steady = model.adstock_.l_max  # after l_max constant periods adstock has reached its steady state
    rows = []
    for multiple in multiples:
        spend = np.tile(mean_spend * multiple, (steady, 1))
        draws = model.posterior_.contributions(spend)[:, -1, :]
        low, high = hdi(draws, hdi_prob)
        rows.append(
            pd.DataFrame(
                {
                    "channel": list(d.channels),
                    "spend": mean_spend * multiple,
                    "multiple": multiple,
                    "mean": draws.mean(axis=0),
                    "hdi_low": low,
                    "hdi_high": high,
                }
            )
        )
    return pd.concat(rows, ignore_index=True).sort_values(["channel", "multiple"], ignore_index=True)


def summary(model: MediaMixModel, hdi_prob: float = 0.94, diagnostics: Any = None) -> dict[str, Any]:
    """ROAS and contribution shares (and diagnostics, when given) as plain JSON-ready dicts."""

    def as_dict(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
        return {
            str(ch): {k: float(frame.loc[ch, k]) for k in ("mean", "hdi_low", "hdi_high")}
            for ch in frame.index
        }

    out: dict[str, Any] = {
        "roas": as_dict(roas(model, hdi_prob)),
        "contribution_share": as_dict(contribution_share(model, hdi_prob)),
    }
    if diagnostics is not None:
        out["diagnostics"] = diagnostics.as_dict()
    return out
