"""The time budget: slow candidate models join a run only when they fit in it.

Before any backtest, each candidate's cost is measured (in CPU seconds, so other work on the machine does not
change the outcome), not guessed: cheaper copies of the model
(:meth:`~stackml.forecasting.models.base.ForecastModel.probe`: a thirtieth and a tenth of the boosting rounds,
10 and 30 training steps of a network, or the model itself) are fitted on the series (a few of them for a
per-series model), and the time is scaled up to the whole panel and to every fit the run needs (one per
backtest window, plus the final fit). Probes run in a forked process that is stopped when it takes too long.
Baselines cost nothing and always run.

Candidates are then admitted in the order they are listed (the default list puts the global LightGBM first)
while the sum of their estimates fits the budget; the first real model always runs, so a run never ends with
baselines alone. A probe that runs out of its own time (a tenth of the budget, at least 6 s) means the model
is far too slow for the budget. A skipped model is reported with its
estimate, so a user can raise ``--time-budget`` knowing what it buys.

Example:
    >>> plan = plan_candidates(train, config)  # doctest: +SKIP
    >>> plan.models, plan.skipped  # doctest: +SKIP
    (('snaive', 'theta', 'lgbm', 'naive2'), {'nhits': 'estimated 182 s ...'})
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from stackml.forecasting.config import ForecastConfig
    from stackml.forecasting.models.base import ForecastModel

__all__ = ["Plan", "estimate_seconds", "plan_candidates"]

#: how long the probe of one per-series model may take before its per-series cost is known well enough
_LOCAL_PROBE_SECONDS = 1.0
_LOCAL_PROBE_MAX_SERIES = 16
#: series the cheaper copies of a global model are fitted on: all of them up to this many, because part of a
#: tree's cost does not grow with the rows, so scaling up from a few series overestimates it several times
_GLOBAL_PROBE_SERIES = 1000
#: the longest one model's probe may run: this share of the budget, but at least a few seconds
_PROBE_SHARE = 0.1
_MIN_PROBE_SECONDS = 6.0


@dataclass(frozen=True)
class Plan:
    """Which candidates run, what each was estimated to cost (seconds), and why the others do not."""

    models: tuple[str, ...]
    estimates: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    budget: float | None = None


def _fit_seconds(model: ForecastModel, frame: pd.DataFrame, config: ForecastConfig) -> float:
    from stackml.forecasting.forecaster import Forecaster

    forecaster = Forecaster(
        models=[model],
        freq=config.freq,
        season_length=config.main_period,
        seasonal_periods=config.seasonal_periods,
    )
    # CPU time of this (single-process) probe, not wall time: other work on the machine must not decide
    # which models a run gets
    started = time.process_time()
    forecaster.fit(frame).predict(config.horizon)
    return time.process_time() - started


def _extrapolate(times: list[float], shares: list[float]) -> float:
    """The full model's time from its copies': scaled by the share, or a line through two points."""
    if len(times) == 1:
        return times[0] / shares[0]
    (t0, t1), (s0, s1) = times, shares
    slope = max(t1 - t0, 0.0) / (s1 - s0)
    return max(t1 + slope * (1.0 - s1), t1)


def estimate_seconds(
    name: str, train: pd.DataFrame, config: ForecastConfig, seed: int = 0, enough: float = np.inf
) -> float:
    """Estimated seconds of every fit a run makes of model ``name`` (backtest windows + final fit).

    ``enough``: stop measuring as soon as the estimate is sure to exceed this many seconds (the budget left),
    and return what is known so far: the model will not run, so a finer figure is not worth its time.

    The probe fits on the training part of the last backtest window, so series lengths are as in the run;
    one untimed fit comes first, since compiling (numba in statsforecast, torch's first pass) happens once per
    process and would otherwise be scaled up to the whole panel.
    """
    from stackml.forecasting.models import make_model_for

    copies = make_model_for(name, config.horizon).probe()
    if copies is None:
        return 0.0
    ids = train["unique_id"].drop_duplicates().to_numpy()
    order = np.random.default_rng(seed).permutation(len(ids))
    fits = (config.n_windows or 1) + 1
    cut = train.groupby("unique_id", sort=False).head(-config.horizon)
    groups = dict(tuple(cut.groupby("unique_id", sort=False)))
    first = copies[0][0]
    _fit_seconds(first.clone(), groups[ids[order[0]]], config)
    shares = [share for _, share in copies]
    if first.is_global:
        chosen = set(ids[order[:_GLOBAL_PROBE_SERIES]])
        sample = cut[cut["unique_id"].isin(chosen)]
        scale = len(ids) / len(chosen) * fits
        times: list[float] = []
        for copy, _ in copies:
            times.append(_fit_seconds(copy.clone(), sample, config))
            if times[-1] * scale > enough:  # the full model costs more than any copy
                return times[-1] * scale
        return _extrapolate(times, shares) * scale
    spent, done = 0.0, 0
    scale = len(ids) * fits / _workers(config.n_jobs)
    for k in order[:_LOCAL_PROBE_MAX_SERIES]:
        spent += _fit_seconds(first.clone(), groups[ids[k]], config)
        done += 1
        if spent > _LOCAL_PROBE_SECONDS or _extrapolate([spent / done], shares[:1]) * scale > enough:
            break
    return _extrapolate([spent / done], shares[:1]) * scale


def _probe_in_child(
    name: str, train: pd.DataFrame, config: ForecastConfig, limit: float, enough: float = np.inf
) -> float | None:
    """:func:`estimate_seconds` in a forked process that is stopped after ``limit`` seconds (``None``): a
    model whose probe alone takes that long cannot fit the budget, and a Python thread could not be stopped
    inside compiled code."""
    import multiprocessing as mp

    try:
        ctx = mp.get_context("fork")
    except ValueError:  # no fork (Windows): probe in this process
        return estimate_seconds(name, train, config, enough=enough)
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_probe_child, args=(send, name, train, config, enough), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(limit):
            return None
        kind, value = receive.recv()
    except EOFError:  # the child died without an answer
        kind, value = "error", "the probe process ended without a result"
    finally:
        if child.is_alive():
            child.kill()
        child.join()
    if kind == "error":
        from stackml.errors import InputError

        raise InputError(str(value))
    return float(value)


def _probe_child(send: Any, name: str, train: pd.DataFrame, config: ForecastConfig, enough: float) -> None:
    try:
        send.send(("ok", estimate_seconds(name, train, config, enough=enough)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        send.send(("error", str(getattr(exc, "message", exc))))


def _estimate_or_free(
    name: str, train: pd.DataFrame, config: ForecastConfig, limit: float, enough: float = np.inf
) -> float:
    """The estimate, ``inf`` when the probe ran out of time, 0 for a baseline (nothing to measure)."""
    from stackml.errors import InputError
    from stackml.forecasting.models import model_class

    if _is_baseline(name, config):
        return 0.0
    import importlib

    for module in model_class(name).requires:
        # imported here once, the forked probes inherit it instead of each paying the import
        importlib.import_module(module)
    try:
        found = _probe_in_child(name, train, config, limit, enough)
    except InputError:
        # the model cannot fit these series (too short for its features, say): it runs, and its candidate
        # task reports why it stopped, which tells the user more than a silent skip
        return 0.0
    return np.inf if found is None else found


def _is_baseline(name: str, config: ForecastConfig) -> bool:
    from stackml.forecasting.models import make_model_for

    return make_model_for(name, config.horizon).probe() is None


def _workers(n_jobs: int) -> int:
    import os

    cores = os.cpu_count() or 1
    return cores if n_jobs < 0 else max(1, min(n_jobs, cores))


def plan_candidates(train: pd.DataFrame, config: ForecastConfig) -> Plan:
    """The candidates that fit ``config.effective_time_budget``, in the order listed, with every estimate.

    Without a budget every candidate runs and nothing is probed.
    """
    budget = config.effective_time_budget
    candidates = config.candidates
    if budget is None:
        return Plan(models=candidates)
    limit = max(_MIN_PROBE_SECONDS, budget * _PROBE_SHARE)
    estimates: dict[str, float] = {}
    admitted: list[str] = []
    skipped: dict[str, str] = {}
    spent = 0.0
    real_model_in = False
    for name in candidates:
        if real_model_in and spent >= budget and not _is_baseline(name, config):
            # probing costs time too: once the budget is spent, only baselines (free) can still join
            skipped[name] = (
                f"not measured: the models before it already take the time budget of {budget:.0f} s "
                f"(estimated {spent:.0f} s; raise --time-budget to include it)"
            )
            continue
        # the first real model runs whatever it costs, so it is measured in full; later ones only until they
        # are sure not to fit what is left
        enough = budget - spent if real_model_in else np.inf
        cost = estimates[name] = _estimate_or_free(name, train, config, limit, enough)
        if cost == 0.0 or not real_model_in or spent + cost <= budget:
            admitted.append(name)
            spent += cost
            real_model_in = real_model_in or cost > 0
        elif not np.isfinite(cost):
            skipped[name] = (
                f"its probe alone (a short fit on one series) took more than {limit:.0f} s, so it cannot fit "
                f"the time budget of {budget:.0f} s (raise --time-budget to include it)"
            )
        else:
            skipped[name] = (
                f"estimated {cost:.0f} s for its {(config.n_windows or 1) + 1} fits would take the run past "
                f"its time budget of {budget:.0f} s (raise --time-budget to include it)"
            )
    models = tuple(n for n in candidates if n in admitted)
    return Plan(models=models, estimates=estimates, skipped=skipped, budget=budget)
