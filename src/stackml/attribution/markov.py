"""Markov-chain attribution with removal effects, solved exactly.

Journeys are walks from a start state through channel states to one of two absorbing states, conversion or
null (no conversion). A state is the last ``order`` channels seen (fewer at the start of a path), so order 2
and 3 remember where a visitor came from. The probability of converting from the start is the absorption
probability of an absorbing chain, ``x = (I - Q)^-1 r``, solved as one sparse linear system; no simulation,
so no run-to-run noise. A channel's removal effect is the share of that probability lost when every state
that contains the channel leads to null instead; credit is split in proportion to the removal effects. The
same is done with each conversion weighted by its value, for the value credit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stackml.attribution.paths import Paths
from stackml.errors import InputError

__all__ = ["MarkovResult", "markov_credit", "MAX_ORDER"]

MAX_ORDER = 3
_START = ("(start)",)


@dataclass(frozen=True)
class MarkovResult:
    """Credit, removal effects and the first-order transition probabilities (for the report's graph)."""

    credit: pd.DataFrame  # channel, conversions, value
    removal_effects: pd.DataFrame  # channel, conversions, value (the share of P(convert) lost without it)
    conversion_probability: float
    transitions: pd.DataFrame  # source, target, probability (first-order view; start, conversion, null too)
    states: int


def markov_credit(paths: Paths, order: int = 1) -> MarkovResult:
    """Attribute by removal effects of an order-``order`` Markov chain (1 to 3).

    Raises:
        InputError: an order outside 1-3.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise InputError(f"The Markov order must be 1, 2 or 3, got {order!r}.", hint="--markov-order 1")
    frame = paths.aggregated().frame
    index: dict[tuple[str, ...], int] = {_START: 0}
    src, dst, weight = [], [], []
    ends: dict[int, list[float]] = {}  # state -> [conversions, value, nulls]
    for path, conv, val, nulls in zip(frame["path"], frame["conversions"], frame["value"], frame["nulls"]):
        walks = conv + nulls
        if walks <= 0:
            continue
        previous = 0
        for i in range(len(path)):
            state = tuple(path[max(0, i - order + 1) : i + 1])
            current = index.setdefault(state, len(index))
            src.append(previous)
            dst.append(current)
            weight.append(walks)
            previous = current
        end = ends.setdefault(previous, [0.0, 0.0, 0.0])
        end[0] += conv
        end[1] += val
        end[2] += nulls
    n = len(index)
    counts = sparse.csr_matrix((weight, (src, dst)), shape=(n, n))  # duplicates are summed
    converted = np.zeros(n)
    valued = np.zeros(n)
    dropped = np.zeros(n)
    for state, (conv, val, nulls) in ends.items():
        converted[state], valued[state], dropped[state] = conv, val, nulls
    leaving = np.asarray(counts.sum(axis=1)).ravel() + converted + dropped
    leaving[leaving == 0] = 1.0
    scale = sparse.diags(1.0 / leaving)
    q = (scale @ counts).tocsc()
    r_conv, r_value = converted / leaving, valued / leaving
    identity = sparse.identity(n, format="csc")

    def absorbed(keep: np.ndarray | None) -> tuple[float, float]:
        chain = q if keep is None else (q @ sparse.diags(keep)).tocsc()  # removed states lead to null
        solved = spsolve((identity - chain).tocsc(), np.column_stack([r_conv, r_value]))
        solved = np.asarray(solved).reshape(n, -1)
        return float(solved[0, 0]), float(solved[0, 1])

    base_conv, base_value = absorbed(None)
    channels = paths.channels
    states = list(index)
    removal_conv, removal_value = [], []
    for channel in channels:
        keep = np.array([0.0 if channel in state and state != _START else 1.0 for state in states])
        p_conv, p_value = absorbed(keep)
        removal_conv.append(1.0 - p_conv / base_conv if base_conv > 0 else 0.0)
        removal_value.append(1.0 - p_value / base_value if base_value > 0 else 0.0)
    removal_conv_arr, removal_value_arr = np.clip(removal_conv, 0, None), np.clip(removal_value, 0, None)
    credit = pd.DataFrame(
        {
            "channel": channels,
            "conversions": _split(removal_conv_arr, paths.conversions),
            "value": _split(removal_value_arr, paths.value),
        }
    )
    effects = pd.DataFrame({"channel": channels, "conversions": removal_conv_arr, "value": removal_value_arr})
    return MarkovResult(credit, effects, base_conv, _first_order_transitions(frame), n)


def _split(effects: np.ndarray, total: float) -> np.ndarray:
    share = effects.sum()
    return effects / share * total if share > 0 else np.zeros_like(effects)


def _first_order_transitions(frame: pd.DataFrame) -> pd.DataFrame:
    """Transition probabilities between channels (and start, conversion, null), for the report's graph."""
    counts: dict[tuple[str, str], float] = {}
    for path, conv, nulls in zip(frame["path"], frame["conversions"], frame["nulls"]):
        walks = conv + nulls
        if walks <= 0:
            continue
        steps = ["(start)", *path]
        for a, b in zip(steps, steps[1:]):
            counts[(a, b)] = counts.get((a, b), 0.0) + walks
        if conv:
            counts[(path[-1], "(conversion)")] = counts.get((path[-1], "(conversion)"), 0.0) + conv
        if nulls:
            counts[(path[-1], "(null)")] = counts.get((path[-1], "(null)"), 0.0) + nulls
    table = pd.DataFrame([(a, b, w) for (a, b), w in counts.items()], columns=["source", "target", "count"])
    table["probability"] = table["count"] / table.groupby("source")["count"].transform("sum")
    return table.drop(columns="count").sort_values(["source", "target"]).reset_index(drop=True)
