"""Which channels the data identify: each channel's ROAS posterior against its prior, and spend that moves
with other spend.

A channel is *identified* when the data, not the prior, set its ROAS: the posterior's spread of log-ROAS is
under :data:`IDENTIFIED_SD_RATIO` of the prior's. Otherwise its interval mostly restates the prior, and the
report says so instead of presenting it as a finding. Spend that moves with another channel's spend or with
the trend (correlation above :data:`COLLINEAR`) is the usual reason, named beside the flag; a lift test on
the channel is the usual cure.

The prior's ROAS draws are sampled from the model's own prior (:func:`prior_roas_draws`) when it is fitted,
so the comparison holds for any prior a user sets.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> prior = np.exp(rng.normal(0, 1.0, (4000, 2)))
    >>> posterior = np.exp(rng.normal(0, [0.1, 0.9], (4000, 2)))
    >>> [round(r, 1) for r in sd_ratio(prior, posterior)]
    [0.1, 0.9]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.mmm._design import Design
    from stackml.mmm.transforms import Adstock, Saturation

__all__ = [
    "COLLINEAR",
    "IDENTIFIED_SD_RATIO",
    "identification",
    "prior_roas_draws",
    "sample_prior",
    "sd_ratio",
]

IDENTIFIED_SD_RATIO = 0.5
COLLINEAR = 0.9
PRIOR_DRAWS = 2000


def prior_roas_draws(
    pymc_model: Any, design: Design, adstock: Adstock, saturation: Saturation, seed: int | None = None
) -> np.ndarray:
    """ROAS of every channel over the fitted period under the prior alone, ``(draws, channels)``.

    The likelihood terms of the model (target and lift tests) are potentials, which prior sampling leaves
    out, so these are draws of the prior itself.
    """
    from stackml.mmm._posterior import PosteriorDraws

    prior = sample_prior(pymc_model, seed)
    draws = PosteriorDraws.from_idata(prior, design, adstock, saturation)
    return draws.contributions(design.spend).sum(axis=1) / design.spend.sum(axis=0)


def sample_prior(pymc_model: Any, seed: int | None = None, draws: int = PRIOR_DRAWS) -> Any:
    """Draws of the model's prior, in the ``posterior`` group (where :class:`PosteriorDraws` reads them).

    Likelihood terms written as potentials are left out by prior sampling, so these are the prior itself.
    """
    import logging
    import warnings

    from stackml._deps import require

    pm = require("pymc", extra="mmm")
    chatty = logging.getLogger("pymc.sampling.forward")  # "Sampling: [...]" at INFO, on every fit
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the effect of Potentials ... is not included": the point
            prior = pm.sample_prior_predictive(draws, model=pymc_model, random_seed=seed)
    finally:
        chatty.setLevel(level)
    prior.posterior = prior.prior
    return prior


def sd_ratio(prior: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """Per channel: the posterior's standard deviation of log-ROAS over the prior's (1 = learnt nothing)."""
    floor = np.finfo(float).tiny  # a draw of exactly 0 ROAS (no spend reached saturation) stays finite
    return np.log(np.maximum(posterior, floor)).std(axis=0) / np.log(np.maximum(prior, floor)).std(axis=0)


def identification(model: Any, roas_draws: np.ndarray) -> pd.DataFrame:
    """One row per channel: ``sd_ratio``, ``identified``, the most correlated other series and ``note``.

    Args:
        model: a fitted :class:`~stackml.mmm.MediaMixModel` (its ``prior_roas_`` holds the prior draws;
            not imported here, since the model imports this module).
        roas_draws: the posterior's ROAS draws ``(draws, channels)``.
    """
    d = model.design_
    ratio = sd_ratio(model.prior_roas_, roas_draws)
    partner, corr = _most_correlated(d)
    identified = ratio < IDENTIFIED_SD_RATIO
    notes = []
    for k, channel in enumerate(d.channels):
        if identified[k]:
            notes.append("")
            continue
        why = (
            f"its spend moves with {partner[k]}'s (correlation {corr[k]:.2f})"
            if abs(corr[k]) >= COLLINEAR
            else "its spend varies too little for the data to tell its effect from the baseline and noise"
        )
        notes.append(
            f"not identified: the posterior keeps {ratio[k]:.0%} of the prior's spread, so the interval "
            f"mostly restates the prior; {why}. A lift test on {channel}, or --roas-prior from one, would "
            "settle it"
        )
    return pd.DataFrame(
        {
            "sd_ratio": ratio,
            "identified": identified,
            "most_correlated": partner,
            "correlation": corr,
            "note": notes,
        },
        index=pd.Index(d.channels, name="channel"),
    )


def _most_correlated(d: Design) -> tuple[list[str], np.ndarray]:
    """For each channel, the other channel (or the trend) whose series its spend follows most closely."""
    names = [*d.channels, "the trend"]
    series = np.column_stack([d.spend, np.arange(d.n_periods, dtype=float)])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(series, rowvar=False))
    np.fill_diagonal(corr, 0.0)
    k = len(d.channels)
    best = np.abs(corr[:k]).argmax(axis=1)
    return [names[j] for j in best], corr[np.arange(k), best]
