"""The front door of path attribution: ``Attribution(methods).fit(paths)`` -> credit per method and channel.

Example:
    >>> from stackml.attribution import Attribution, Paths
    >>> paths = Paths.from_records(["search > email", "display > search"], conversions=[3, 1], nulls=[5, 9])
    >>> result = Attribution(["last_touch", "markov"]).fit(paths)
    >>> result.shares()["last_touch"]
    {'display': 0.0, 'email': 0.75, 'search': 0.25}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from stackml.attribution.heuristics import DEFAULT_HALF_LIFE_DAYS, heuristic_credit
from stackml.attribution.markov import MarkovResult, markov_credit
from stackml.attribution.methods import METHODS
from stackml.attribution.neural import NeuralOptions, NeuralResult, fit_neural
from stackml.attribution.paths import Paths
from stackml.attribution.shapley import DEFAULT_PERMUTATIONS, ShapleyResult, shapley_credit
from stackml.errors import raise_if_problems

__all__ = ["Attribution", "AttributionResult", "METHODS"]


@dataclass
class AttributionResult:
    """Credit of every method, side by side.

    Attributes:
        credit: ``method, channel, conversions, value, share`` (share of the total conversions; each method's
            shares sum to 1).
        markov: the Markov chain's removal effects and transitions (when ``markov`` ran).
        shapley: whether Shapley values were exact, and their standard errors when sampled.
        neural: the sequence model, its learning curve and calibration (when ``neural`` ran).
        seconds: fit time per method.
    """

    credit: pd.DataFrame
    markov: MarkovResult | None = None
    shapley: ShapleyResult | None = None
    neural: NeuralResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def shares(self) -> dict[str, dict[str, float]]:
        """``{method: {channel: share of conversions}}``, rounded to 6 places."""
        return {
            method: {row.channel: round(float(row.share), 6) for row in rows.itertuples()}
            for method, rows in self.credit.groupby("method", sort=False)
        }

    def table(self, what: str = "share") -> pd.DataFrame:
        """Channels down, methods across: ``share``, ``conversions`` or ``value``."""
        return self.credit.pivot(index="channel", columns="method", values=what)[
            list(dict.fromkeys(self.credit["method"]))
        ]


class Attribution:
    """Path attribution with one or more methods.

    Args:
        methods: any of ``first_touch, last_touch, linear, time_decay, position, markov, shapley, neural``.
        markov_order: states remember this many channels (1-3).
        half_life_days: time decay's half-life (in touches when the paths carry no times).
        shapley_permutations: sampled orders when there are too many channels to count every coalition.
        random_state: seed of anything sampled or trained.
        neural_options: the sequence model's settings (its seed is ``random_state``).
    """

    def __init__(
        self,
        methods: Sequence[str] = METHODS,
        *,
        markov_order: int = 1,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        shapley_permutations: int = DEFAULT_PERMUTATIONS,
        random_state: int = 0,
        neural_options: NeuralOptions | None = None,
    ) -> None:
        methods = [methods] if isinstance(methods, str) else list(methods)
        problems = [
            f"unknown method {m!r} (known: {', '.join(METHODS)})" for m in methods if m not in METHODS
        ]
        if not methods:
            problems.append("no method named")
        if len(set(methods)) < len(methods):
            problems.append(f"a method is named twice in {methods}")
        if not half_life_days > 0:
            problems.append(f"the half-life must be > 0 days, got {half_life_days!r}")
        if not isinstance(shapley_permutations, int) or shapley_permutations < 2:
            problems.append(f"Shapley needs at least 2 permutations, got {shapley_permutations!r}")
        raise_if_problems(
            problems, what="the attribution settings", hint="--methods markov,shapley,last_touch"
        )
        self.methods = methods
        self.markov_order = markov_order
        self.half_life_days = half_life_days
        self.shapley_permutations = shapley_permutations
        self.random_state = random_state
        self.neural_options = replace(neural_options or NeuralOptions(), random_state=random_state)

    def fit(self, paths: Paths) -> AttributionResult:
        """Credit each channel with each method."""
        import time

        frames, seconds = [], {}
        markov = shapley = neural = None
        for method in self.methods:
            started = time.perf_counter()
            if method == "markov":
                markov = markov_credit(paths, self.markov_order)
                credit = markov.credit
            elif method == "shapley":
                shapley = shapley_credit(
                    paths, permutations=self.shapley_permutations, random_state=self.random_state
                )
                credit = shapley.credit
            elif method == "neural":
                neural = fit_neural(paths, self.neural_options)
                credit = neural.credit
            else:
                credit = heuristic_credit(paths, method, self.half_life_days)
            seconds[method] = time.perf_counter() - started
            total = credit["conversions"].sum()
            frames.append(
                credit[["channel", "conversions", "value"]].assign(
                    method=method, share=credit["conversions"] / total if total > 0 else 0.0
                )
            )
        table = pd.concat(frames, ignore_index=True)[["method", "channel", "conversions", "value", "share"]]
        return AttributionResult(table, markov, shapley, neural, seconds)
