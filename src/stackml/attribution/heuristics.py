"""Rule-based attribution: first touch, last touch, linear, time decay and position-based (U-shaped).

Each rule splits a path's conversions (and their value) over its touches with fixed weights; a channel's
credit is the sum over touches and paths. Credits sum to the total conversions (and value) exactly.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import pandas as pd

from stackml.attribution.methods import RULES
from stackml.attribution.paths import Paths

__all__ = ["heuristic_credit"]

POSITION_ENDS = 0.4  # position-based: the first and the last touch each get 40%, the middle shares 20%
DEFAULT_HALF_LIFE_DAYS = 7.0


def heuristic_credit(
    paths: Paths, method: str, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> pd.DataFrame:
    """Conversions and value credited to each channel by one rule: ``channel, conversions, value``.

    Every touch of every path at once (flat arrays, one weight per touch), not a loop over paths.
    """
    if method not in RULES:
        raise KeyError(f"unknown rule {method!r}; known: {', '.join(RULES)}")
    frame = paths.frame
    flat = paths.touches
    owner, position, n = flat.owner, flat.position, flat.length
    if method == "first_touch":
        weights = (position == 0).astype(float)
    elif method == "last_touch":
        weights = (position == n - 1).astype(float)
    elif method == "linear":
        weights = 1.0 / n
    elif method == "position":
        middle = (1.0 - 2 * POSITION_ENDS) / np.maximum(n - 2, 1)
        ends = np.where(n == 2, 0.5, POSITION_ENDS)
        weights = np.where((position == 0) | (position == n - 1), ends, middle)
        weights[n == 1] = 1.0
    else:  # time decay; without timestamps a touch k steps before the last is k half-lives old
        if paths.has_gaps:
            ages = np.fromiter(chain.from_iterable(frame["gaps"]), float, len(owner)) / half_life_days
        else:
            ages = (n - 1 - position).astype(float)
        weights = np.power(0.5, ages)
        weights = weights / np.bincount(owner, weights, minlength=len(frame))[owner]
    channels, codes = paths.channels, flat.channel
    conversions = frame["conversions"].to_numpy(float)[owner] * weights
    value = frame["value"].to_numpy(float)[owner] * weights
    return pd.DataFrame(
        {
            "channel": channels,
            "conversions": np.bincount(codes, conversions, minlength=len(channels)),
            "value": np.bincount(codes, value, minlength=len(channels)),
        }
    )
