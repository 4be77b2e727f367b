"""Budget optimiser: split a total budget over channels to maximise the expected media response of a plan.

A plan spends a constant amount per period on each channel over ``horizon_periods`` periods (the decision is
one number per channel). Its response is each channel's total contribution over the horizon, posterior mean,
with carryover from the training spend before the horizon counted (``history=True``) and, if asked, the plan's
own carryover in the ``l_max - 1`` periods after it (``include_tail=True``); it is the same quantity
:meth:`MediaMixModel.expected_response` returns, which is what the final plans are scored with.

Because adstock is linear in spend, each draw's adstocked media over the horizon is ``h + x * g`` for a
per-period spend ``x``, with ``h`` (carryover of past spend) and ``g`` (adstock of one spend unit per period)
computed once. The objective is then cheap on a thinned posterior (``max_draws``), separable over channels,
and its gradient is a central difference of all channels at once. SLSQP runs from several starts (the
historical mix, an even split and random splits) and the best plan wins; it is never worse than the historical
mix when that mix is feasible.

The reference plan is the **historical mix**: the same budget split in each channel's share of the training
spend. The uplift and its interval compare the two plans draw by draw on the full posterior.

Bounds are **per period**, in the units of the spend columns: ``{channel: (min, max)}`` spend per period,
either side None for its default ``(0, 3 x the channel's mean spend per period in the training data)``.

Example:
    >>> plan = optimize_budget(model, total_budget=500_000, horizon_periods=12)  # doctest: +SKIP
    >>> plan.allocation[["per_period", "total", "bound"]]  # doctest: +SKIP
    >>> plan.uplift, plan.uplift_hdi  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.checks import int_problem, is_number
from stackml.errors import InputError, raise_if_problems
from stackml.mmm._posterior import PosteriorDraws, hdi
from stackml.mmm.amounts import gap, is_above, is_below, precise
from stackml.mmm.transforms import lag_matrix

if TYPE_CHECKING:
    from stackml.mmm.model import MediaMixModel

__all__ = ["DEFAULT_UPPER_MULTIPLE", "BudgetPlan", "optimize_budget"]

DEFAULT_UPPER_MULTIPLE = 3.0  # default per-period cap: this multiple of the channel's historical mean spend


@dataclass(frozen=True)
class BudgetPlan:
    """The optimised allocation, what it is expected to return and how it compares with the historical mix.

    Attributes:
        allocation: index ``channel``; columns ``per_period`` and ``total`` (spend), ``share`` of the budget,
            ``baseline_per_period`` (the historical mix of the same budget), ``lower``/``upper`` (per-period
            bounds), ``bound`` (``"lower"``, ``"upper"`` or ``""``), ``response`` and ``baseline_response``
            (posterior-mean contribution over the horizon).
        plan: one row per period: the date column and each channel's spend; feed it to ``predict`` (with
            controls added) or ``expected_response``.
        expected_response: posterior mean of the plan's total media contribution over the horizon.
        expected_response_hdi: its highest-density interval.
        baseline_response: the same for the historical-mix plan.
        uplift: posterior mean of (plan - historical mix), evaluated draw by draw on the full posterior.
        uplift_hdi: HDI of that difference.
        uplift_probability: share of draws in which the plan beats the historical mix.
        binding: ``{channel: "lower" | "upper"}`` for bounds the plan sits on.
        converged: whether the winning SLSQP run reported success.
        settings: the inputs and how the optimum was found (starts, draws used, seconds).
    """

    allocation: pd.DataFrame
    plan: pd.DataFrame
    total_budget: float
    horizon_periods: int
    expected_response: float
    expected_response_hdi: tuple[float, float]
    baseline_response: float
    uplift: float
    uplift_hdi: tuple[float, float]
    uplift_probability: float
    binding: dict[str, str]
    converged: bool
    hdi_prob: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def uplift_ratio(self) -> float:
        """Uplift as a share of the historical mix's response (0.05 = 5 % more)."""
        return self.uplift / self.baseline_response if self.baseline_response else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (allocation per channel, response, uplift with its interval, binding bounds)."""
        alloc = {
            str(ch): {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
            for ch, row in self.allocation.to_dict(orient="index").items()
        }
        return {
            "total_budget": self.total_budget,
            "horizon_periods": self.horizon_periods,
            "allocation": alloc,
            "expected_response": {
                "mean": self.expected_response,
                "hdi_low": self.expected_response_hdi[0],
                "hdi_high": self.expected_response_hdi[1],
            },
            "baseline_response": self.baseline_response,
            "uplift": {
                "mean": self.uplift,
                "hdi_low": self.uplift_hdi[0],
                "hdi_high": self.uplift_hdi[1],
                "probability_positive": self.uplift_probability,
                "ratio": self.uplift_ratio,
            },
            "binding": dict(self.binding),
            "converged": self.converged,
            "hdi_prob": self.hdi_prob,
        }


def optimize_budget(
    model: MediaMixModel,
    total_budget: float,
    horizon_periods: int,
    *,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    start_date: str | pd.Timestamp | None = None,
    history: bool = True,
    include_tail: bool = False,
    max_draws: int = 200,
    n_starts: int = 5,
    hdi_prob: float = 0.94,
    binding_tolerance: float = 1e-3,
    random_state: int = 0,
) -> BudgetPlan:
    """Allocate ``total_budget`` over the model's channels for ``horizon_periods`` periods.

    Args:
        model: a fitted :class:`~stackml.mmm.MediaMixModel`.
        total_budget: spend over the whole horizon and all channels (spend-column units), > 0.
        horizon_periods: number of periods in the plan, >= 1.
        bounds: per-period spend limits ``{channel: (min, max)}``; unnamed channels and None sides take the
            default ``(0, 3 x historical mean per period)``.
        start_date: first period of the plan; default the period right after the training data.
        history: count carryover from the training spend before the plan.
        include_tail: also count the plan's carryover after the horizon.
        max_draws: posterior draws (evenly thinned) used inside the optimiser; the result is scored on all
            draws.
        n_starts: optimiser starts (historical mix, even split, then random splits).
        hdi_prob: mass of the reported intervals.
        binding_tolerance: a bound binds when the spend is within this share of the per-period budget from it.
        random_state: seed of the random starts.

    Returns:
        A :class:`BudgetPlan`.

    Raises:
        InputError: every problem with the inputs at once (budget, horizon, unknown channels, bounds that do
            not allow the budget, with the smallest and largest total they allow).
    """
    from scipy.optimize import minimize  # scipy is a dependency of the mmm extra (via pymc)

    model._check_fitted()
    channels = model.channels_
    historical = model.design_.spend.mean(axis=0)
    lower, upper = _check_inputs(
        channels, historical, total_budget, horizon_periods, bounds, max_draws, n_starts, hdi_prob
    )
    budget, horizon = float(total_budget), int(horizon_periods)
    dates = _plan_dates(model, horizon, start_date)
    per_period = budget / horizon
    lo, hi = lower / per_period, upper / per_period  # decision: each channel's share of the budget

    draws = _thin(model.posterior_, max_draws)
    surface = _ResponseSurface(model, draws, dates, history=history, include_tail=include_tail)
    mix = model.design_.spend.sum(axis=0) / model.design_.spend.sum()  # historical mix of the training period
    scale = max(abs(surface.mean_total(mix * per_period)), 1e-12 * per_period, 1e-300)

    def objective(share: np.ndarray) -> tuple[float, np.ndarray]:
        spend = share * per_period
        value = surface.mean_total(spend)
        return -value / scale, -surface.gradient(spend) * per_period / scale

    rng = np.random.default_rng(random_state)
    starts = [mix, np.full(len(channels), 1.0 / len(channels))]
    starts += [rng.dirichlet(np.ones(len(channels))) for _ in range(max(n_starts - 2, 0))]
    runs = []
    for start in starts[: max(n_starts, 1)]:
        result = minimize(
            objective,
            _project(start, lo, hi),
            jac=True,
            method="SLSQP",
            bounds=list(zip(lo, hi, strict=True)),
            constraints=[{"type": "eq", "fun": lambda s: s.sum() - 1.0, "jac": lambda s: np.ones_like(s)}],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        share = _project(result.x, lo, hi)  # SLSQP may end a hair outside; put it back exactly
        runs.append((-objective(share)[0], bool(result.success), share))
    _, converged, best = max(runs, key=lambda run: run[0])

    # Score on the full posterior, draw by draw, against the historical mix of the same budget.
    baseline_spend = mix * per_period
    chosen_spend = best * per_period
    response = model.expected_response(
        _frame(model, dates, chosen_spend), history=history, include_tail=include_tail
    )
    baseline = model.expected_response(
        _frame(model, dates, baseline_spend), history=history, include_tail=include_tail
    )
    mix_feasible = not bool(
        np.any(is_below(baseline_spend, lower)) or np.any(is_above(baseline_spend, upper))
    )
    if mix_feasible and baseline.sum(axis=1).mean() > response.sum(axis=1).mean():
        # Thinning can leave the optimum a hair below an already optimal mix on all draws; keep the mix then.
        chosen_spend, response = baseline_spend.copy(), baseline.copy()
    return _result(
        model,
        dates,
        budget,
        horizon,
        chosen_spend,
        baseline_spend,
        lower,
        upper,
        response,
        baseline,
        hdi_prob=hdi_prob,
        binding_tolerance=binding_tolerance,
        converged=converged,
        settings={
            "start_date": str(dates[0].date()),
            "history": history,
            "include_tail": include_tail,
            "n_starts": len(runs),
            "optimizer_draws": draws.n_draws,
            "posterior_draws": response.shape[0],
            "historical_mix_feasible": mix_feasible,
            "random_state": random_state,
        },
    )


# -- the objective -------------------------------------------------------------------------------------------
class _ResponseSurface:
    """Expected response of constant per-period spend ``x`` (K,) over the plan, per draw, in closed form.

    Adstock is a linear filter, so the plan's adstocked media is ``h + x * g``: ``h`` is the carryover of the
    training spend (zero without history) and ``g`` the adstock of one spend unit per plan period.
    """

    def __init__(
        self,
        model: MediaMixModel,
        draws: PosteriorDraws,
        dates: pd.DatetimeIndex,
        *,
        history: bool,
        include_tail: bool,
    ) -> None:
        k = len(model.channels_)
        past, offset = model._with_history(dates, np.zeros((len(dates), k)), history)
        unit = np.zeros_like(past)
        unit[offset:] = 1.0
        tail = model.adstock_.l_max - 1 if include_tail else 0
        past, unit = (np.vstack([a, np.zeros((tail, k))]) for a in (past, unit))
        design = draws.design

        def adstocked(spend: np.ndarray) -> np.ndarray:
            lagged = lag_matrix(design.scaled_spend(spend), draws.adstock.l_max)
            return draws.adstock.apply_lagged_np(lagged, **draws.adstock_params)[:, offset:, :]

        self._h, self._g = adstocked(past), adstocked(unit)  # (S, T, K)
        self._draws = draws
        self._coef = draws.beta * design.target_scale  # (S, K)

    def per_draw(self, spend: np.ndarray) -> np.ndarray:
        """``(S, K)`` total contribution over the plan for per-period ``spend`` ``(K,)``."""
        media = self._draws.saturation.apply_np(self._h + spend * self._g, **self._draws.saturation_params)
        return media.sum(axis=1) * self._coef

    def mean_by_channel(self, spend: np.ndarray) -> np.ndarray:
        return self.per_draw(spend).mean(axis=0)

    def mean_total(self, spend: np.ndarray) -> float:
        return float(self.mean_by_channel(spend).sum())

    def gradient(self, spend: np.ndarray) -> np.ndarray:
        """d(mean total)/d(spend_k): the response is a sum of one-channel terms, so one central difference
        of all channels at once gives every partial derivative (one-sided at zero, where spend cannot go)."""
        step = 1e-6 * max(float(np.max(spend)), float(np.mean(self._draws.design.spend_scale)), 1e-12)
        up = spend + step
        down = np.maximum(spend - step, 0.0)
        return (self.mean_by_channel(up) - self.mean_by_channel(down)) / (up - down)


def _thin(draws: PosteriorDraws, max_draws: int) -> PosteriorDraws:
    """Every n-th draw so at most ``max_draws`` remain (evenly spread over the chains)."""
    if draws.n_draws <= max_draws:
        return draws
    index = np.linspace(0, draws.n_draws - 1, max_draws).round().astype(int)
    return replace(
        draws,
        adstock_params={k: v[index] for k, v in draws.adstock_params.items()},
        saturation_params={k: v[index] for k, v in draws.saturation_params.items()},
        beta=draws.beta[index],
        intercept=draws.intercept[index],
        trend_slope=draws.trend_slope[index],
        gamma_fourier=draws.gamma_fourier[index],
        gamma_control=draws.gamma_control[index],
        sigma=draws.sigma[index],
    )


def _project(share: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Closest point (Euclidean) to ``share`` with ``lo <= s <= hi`` and ``sum(s) == 1``, by bisection on a
    shift."""
    share = np.asarray(share, dtype=float)
    low, high = float(np.min(lo - share)), float(np.max(hi - share))
    for _ in range(200):
        mid = 0.5 * (low + high)
        if np.clip(share + mid, lo, hi).sum() < 1.0:
            low = mid
        else:
            high = mid
    out = np.clip(share + 0.5 * (low + high), lo, hi)
    free = (out > lo) & (out < hi)
    if free.any():  # remove the last rounding residue from channels that are not on a bound
        out[free] += (1.0 - out.sum()) / free.sum()
    return np.clip(out, lo, hi)


# -- inputs and outputs --------------------------------------------------------------------------------------
def _check_inputs(
    channels: tuple[str, ...],
    historical: np.ndarray,
    total_budget: Any,
    horizon: Any,
    bounds: Any,
    max_draws: Any,
    n_starts: Any,
    hdi_prob: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-period ``(lower, upper)`` arrays, or one InputError listing every problem."""
    problems: list[str] = []
    budget_ok = is_number(total_budget) and math.isfinite(total_budget) and total_budget > 0
    if not budget_ok:
        problems.append(f"'total_budget' must be a finite number > 0, got {total_budget!r}")
    horizon_problem = int_problem("horizon_periods", horizon, low=1)
    horizon_ok = horizon_problem is None
    if horizon_problem:
        problems.append(horizon_problem)
    if not (isinstance(max_draws, (int, np.integer)) and max_draws >= 1):
        problems.append(f"'max_draws' must be an int >= 1, got {max_draws!r}")
    if not (isinstance(n_starts, (int, np.integer)) and n_starts >= 1):
        problems.append(f"'n_starts' must be an int >= 1, got {n_starts!r}")
    if not (is_number(hdi_prob) and 0 < hdi_prob < 1):
        problems.append(f"'hdi_prob' must be in (0, 1), got {hdi_prob!r}")
    lower, upper = np.zeros(len(channels)), historical * DEFAULT_UPPER_MULTIPLE
    if bounds is not None and not isinstance(bounds, dict):
        problems.append(
            f"'bounds' must be a dict {{channel: (min, max)}} or None, got {type(bounds).__name__}"
        )
        bounds = {}
    for channel, pair in (bounds or {}).items():
        if channel not in channels:
            problems.append(
                f"bounds name unknown channel {channel!r}; the model's channels are {list(channels)}"
            )
            continue
        k = channels.index(channel)
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            problems.append(f"bounds[{channel!r}] must be a (min, max) pair, got {pair!r}")
            continue
        for side, value, target in (("min", pair[0], lower), ("max", pair[1], upper)):
            if value is None:
                continue
            if not (is_number(value) and math.isfinite(value) and value >= 0):
                problems.append(
                    f"bounds[{channel!r}] {side} must be a finite number >= 0 or None, got {value!r}"
                )
            else:
                target[k] = float(value)
        if is_above(lower[k], upper[k]):
            problems.append(
                f"bounds[{channel!r}]: min {precise(lower[k])} is above max {precise(upper[k])} per period "
                f"{gap(lower[k], upper[k])}"
            )
        elif lower[k] > upper[k]:  # equal up to the decimals they were written with: one fixed spend
            lower[k] = upper[k]
    if not problems and budget_ok and horizon_ok:
        low_total, high_total = lower.sum() * horizon, upper.sum() * horizon
        allowed = (
            f"the bounds allow a total budget from {precise(low_total)} to {precise(high_total)} over "
            f"{horizon} period(s), got total_budget={precise(total_budget)}"
        )
        if is_below(total_budget, low_total):
            problems.append(f"{allowed}, below their smallest total {gap(total_budget, low_total)}")
        elif is_above(total_budget, high_total) or high_total <= 0:
            problems.append(f"{allowed}, above their largest total {gap(total_budget, high_total)}")
        # Bounds that add up to the budget up to rounding (e.g. written with a few decimals) must pass, and
        # the optimiser needs them to allow it exactly: stretch the side it touches by that rounding.
        elif total_budget < low_total:
            lower *= total_budget / low_total
        elif total_budget > high_total:
            upper *= total_budget / high_total
    raise_if_problems(
        problems,
        what="the budget optimisation",
        hint="Bounds are per-period spend {channel: (min, max)}; defaults are (0, "
        f"{DEFAULT_UPPER_MULTIPLE:g} x the channel's mean spend per period). "
        "Widen them or change the budget.",
    )
    return lower, upper


def _plan_dates(model: MediaMixModel, horizon: int, start_date: Any) -> pd.DatetimeIndex:
    d = model.design_
    step = pd.Timedelta(days=d.period_days)
    if start_date is None:
        return pd.DatetimeIndex([d.dates[-1] + step * (i + 1) for i in range(horizon)])
    try:
        start = pd.Timestamp(start_date)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"'start_date' must be a date, got {start_date!r}.", hint="Use an ISO date such as '2025-01-06'."
        ) from exc
    return pd.DatetimeIndex([start + step * i for i in range(horizon)])


def _frame(model: MediaMixModel, dates: pd.DatetimeIndex, spend: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({model.date_column: dates})
    for k, channel in enumerate(model.channels_):
        frame[channel] = float(spend[k])
    return frame


def _result(
    model,
    dates,
    budget,
    horizon,
    spend,
    baseline_spend,
    lower,
    upper,
    response,
    baseline,
    *,
    hdi_prob,
    binding_tolerance,
    converged,
    settings,
) -> BudgetPlan:
    tol = binding_tolerance * budget / horizon
    bound = np.where(spend <= lower + tol, "lower", np.where(spend >= upper - tol, "upper", ""))
    bound = np.where((bound == "lower") & (upper - lower <= tol), "fixed", bound)  # min == max: both bind
    channels = list(model.channels_)
    allocation = pd.DataFrame(
        {
            "per_period": spend,
            "total": spend * horizon,
            "share": spend * horizon / budget,
            "baseline_per_period": baseline_spend,
            "lower": lower,
            "upper": upper,
            "bound": bound,
            "response": response.mean(axis=0),
            "baseline_response": baseline.mean(axis=0),
        },
        index=pd.Index(channels, name="channel"),
    )
    total, base_total = response.sum(axis=1), baseline.sum(axis=1)
    difference = total - base_total
    (r_low, d_low), (r_high, d_high) = hdi(np.stack([total, difference], axis=1), hdi_prob)
    return BudgetPlan(
        allocation=allocation,
        plan=_frame(model, dates, spend),
        total_budget=budget,
        horizon_periods=horizon,
        expected_response=float(total.mean()),
        expected_response_hdi=(float(r_low), float(r_high)),
        baseline_response=float(base_total.mean()),
        uplift=float(difference.mean()),
        uplift_hdi=(float(d_low), float(d_high)),
        uplift_probability=float(np.mean(difference > 0)),
        binding={c: str(b) for c, b in zip(channels, bound, strict=True) if b},
        converged=converged,
        hdi_prob=hdi_prob,
        settings=settings,
    )
