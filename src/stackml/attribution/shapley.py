"""Shapley-value attribution over channel coalitions.

The value of a coalition ``S`` of channels is the conversions (or conversion value) of the paths whose
channels all lie in ``S`` (Zhao et al., 2018, "simplified Shapley value"); each channel gets its Shapley value
of that game, and the credits sum to the total exactly. Up to ``EXACT_UP_TO`` channels every coalition is
counted (a subset-sum transform over ``2^n`` coalitions, vectorised); beyond, permutations are sampled and
the standard error of each channel's credit is returned with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stackml.attribution.paths import Paths

__all__ = ["ShapleyResult", "shapley_credit", "EXACT_UP_TO"]

EXACT_UP_TO = 20  # 2^20 coalitions: a few hundred milliseconds and 16 MB
DEFAULT_PERMUTATIONS = 2000


@dataclass(frozen=True)
class ShapleyResult:
    credit: pd.DataFrame  # channel, conversions, value (and conversions_se, value_se when sampled)
    exact: bool
    permutations: int  # 0 when exact


def shapley_credit(
    paths: Paths,
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    random_state: int = 0,
    exact_up_to: int = EXACT_UP_TO,
) -> ShapleyResult:
    """Shapley credit of each channel, exact up to ``exact_up_to`` channels, else sampled."""
    channels = paths.channels
    n = len(channels)
    position = {c: i for i, c in enumerate(channels)}
    frame = paths.aggregated().frame
    masks = np.array([sum(1 << position[c] for c in set(path)) for path in frame["path"]], dtype=np.int64)
    games = np.column_stack([frame["conversions"].to_numpy(float), frame["value"].to_numpy(float)])
    if n <= exact_up_to:
        phi = _exact(masks, games, n)
        credit = pd.DataFrame({"channel": channels, "conversions": phi[:, 0], "value": phi[:, 1]})
        return ShapleyResult(credit, True, 0)
    mean, se = _sampled(masks, games, n, permutations, random_state)
    credit = pd.DataFrame(
        {
            "channel": channels,
            "conversions": mean[:, 0],
            "value": mean[:, 1],
            "conversions_se": se[:, 0],
            "value_se": se[:, 1],
        }
    )
    return ShapleyResult(credit, False, permutations)


def _exact(masks: np.ndarray, games: np.ndarray, n: int) -> np.ndarray:
    size = 1 << n
    v = np.zeros((size, games.shape[1]))
    np.add.at(v, masks, games)
    for i in range(n):  # v[S] = sum over subsets of S (the zeta transform), one bit at a time
        view = v.reshape(-1, 2, 1 << i, games.shape[1])
        view[:, 1] += view[:, 0]
    sizes = np.array([bin(m).count("1") for m in range(size)]) if n <= 16 else _popcount(np.arange(size))
    weights = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.zeros((n, games.shape[1]))
    everything = np.arange(size)
    for i in range(n):
        without = everything[(everything >> i) & 1 == 0]
        gain = v[without | (1 << i)] - v[without]
        phi[i] = (weights[sizes[without]][:, None] * gain).sum(axis=0)
    return phi


def _popcount(values: np.ndarray) -> np.ndarray:
    counts = np.zeros_like(values)
    while values.any():
        counts += values & 1
        values = values >> 1
    return counts


def _sampled(
    masks: np.ndarray, games: np.ndarray, n: int, permutations: int, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of each channel's marginal contribution over random orders."""
    rng = np.random.default_rng(random_state)
    draws = np.zeros((permutations, n, games.shape[1]))
    for k in range(permutations):
        order = rng.permutation(n)
        coalition = 0
        before = np.zeros(games.shape[1])
        for channel in order:
            coalition |= 1 << int(channel)
            inside = (masks & ~coalition) == 0
            after = games[inside].sum(axis=0)
            draws[k, channel] = after - before
            before = after
    return draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(permutations)
