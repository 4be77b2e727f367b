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
baselines alone. The default list runs from the cheapest model to the dearest, so measuring stops at the
first model that does not fit: the ones after it would not fit either, and their probes would cost time.
A probe that runs out of its own time (a tenth of the budget, at least 6 s) means the model
is far too slow for the budget. A skipped model is reported with its
estimate, so a user can raise ``--time-budget`` knowing what it buys.

Example:
    >>> plan = plan_candidates(train, config)  # doctest: +SKIP
    >>> plan.models, plan.skipped  # doctest: +SKIP
    (('snaive', 'theta', 'lgbm', 'naive2'), {'nhits': 'estimated 182 s ...'})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.forecasting.config import DEFAULT_MODELS

if TYPE_CHECKING:
    from stackml.forecasting.config import ForecastConfig
    from stackml.forecasting.models.base import ForecastModel

__all__ = ["AtLeast", "Plan", "admit", "balanced_groups", "estimate_seconds", "plan_candidates"]

#: how long the probe of one per-series model may take before its per-series cost is known well enough
_LOCAL_PROBE_SECONDS = 0.5
_LOCAL_PROBE_MAX_SERIES = 16
#: series the cheaper copies of a global model are fitted on: all of them up to this many, because part of a
#: tree's cost does not grow with the rows, so scaling up from a few series overestimates it several times
_GLOBAL_PROBE_SERIES = 1000
#: the longest one model's probe may run: this share of the budget, but at least a few seconds
_PROBE_SHARE = 0.1
_MIN_PROBE_SECONDS = 6.0


#: a per-series model estimated to cost less than this many CPU seconds in one process runs in one process:
#: starting worker processes (each importing statsforecast and loading its compiled code) would cost more,
#: and the flow already runs the candidates side by side
SERIAL_BELOW_SECONDS = 20.0


@dataclass(frozen=True)
class Plan:
    """Which candidates run, what each was estimated to cost (seconds), and why the others do not.

    ``serial``: the per-series models cheap enough to run in one process (see :data:`SERIAL_BELOW_SECONDS`).
    ``groups``: the models split into one group per core, balanced by estimated cost: the flow runs one task
    per group, since every task pays for starting Python and loading the data (about two CPU seconds).
    """

    models: tuple[str, ...]
    estimates: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    budget: float | None = None
    serial: tuple[str, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()

    def config_for(self, name: str, config: ForecastConfig) -> ForecastConfig:
        """``config`` for running candidate ``name``: in one process when the plan found it cheap."""
        return config.replace(n_jobs=1) if name in self.serial else config


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
    cut = train.groupby("unique_id", sort=False).head(-config.horizon)
    groups = dict(tuple(cut.groupby("unique_id", sort=False)))
    first = copies[0][0]
    warm_up = groups[ids[order[0]]]
    _fit_seconds(first.clone(), warm_up if first.is_global else _warm_up_slice(warm_up, config), config)
    try:
        return _timed_estimate(first, copies, ids[order], cut, groups, config, enough)
    except OverBudget:
        # its first timed fit alone used up what is left: the estimate is at least ``enough``; a little more,
        # so that float rounding in the caller's sum cannot let it in
        return AtLeast(enough + max(0.01, 1e-3 * enough))


def _timed_estimate(
    first: ForecastModel,
    copies: list[tuple[ForecastModel, float]],
    ids: np.ndarray,
    cut: pd.DataFrame,
    groups: dict[Any, pd.DataFrame],
    config: ForecastConfig,
    enough: float,
) -> float:
    """The estimate from timed fits of the copies (``ids`` in probing order), once compiling is done."""
    fits = (config.n_windows or 1) + 1
    shares = [share for _, share in copies]
    if first.is_global:
        chosen = set(ids[:_GLOBAL_PROBE_SERIES])
        sample = cut[cut["unique_id"].isin(chosen)]
        scale = len(ids) / len(chosen) * fits
        times: list[float] = []
        for copy, _ in copies:
            with _cpu_deadline(enough / scale if not times else np.inf):
                times.append(_fit_seconds(copy.clone(), sample, config))
            if times[-1] * scale > enough:  # the full model costs more than any copy
                return times[-1] * scale
        return _extrapolate(times, shares) * scale
    spent, done = 0.0, 0
    scale = len(ids) * fits / _workers(config.n_jobs)
    for k in ids[:_LOCAL_PROBE_MAX_SERIES]:
        with _cpu_deadline(enough / scale if not done else np.inf):
            spent += _fit_seconds(first.clone(), groups[k], config)
        done += 1
        if spent > _LOCAL_PROBE_SECONDS or _extrapolate([spent / done], shares[:1]) * scale > enough:
            break
    return _extrapolate([spent / done], shares[:1]) * scale


class AtLeast(float):
    """An estimate known only from below: the probe was stopped once it passed the time left."""


class OverBudget(BaseException):  # noqa: N818 - a signal, not a failure
    """The probe's first timed fit used more CPU time than the budget left allows: the model cannot fit.

    A ``BaseException``, so the ``except Exception`` of a model's own fallbacks cannot swallow it.
    """


@contextmanager
def _cpu_deadline(seconds: float) -> Iterator[None]:
    """Stop the code inside (:class:`OverBudget`) once this process has used ``seconds`` more CPU time.

    Only in the main thread of a Unix process (the forked probe); elsewhere it does nothing and the probe
    runs to its end. CPU time (``ITIMER_PROF``, every thread), so a loaded machine does not cut a probe short.
    """
    import signal
    import threading

    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or not np.isfinite(seconds):
        yield
        return

    def stop(*_: object) -> None:
        raise OverBudget

    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _warm_up_slice(series: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    """The end of one series, long enough for the seasonal code paths of a per-series model's fit: the untimed
    fit that compiles (numba) need not pay for a whole long series. (A global model warms up on a whole
    series: its features may need all of it.)"""
    return series.tail(max(4 * config.main_period, 3 * config.horizon, 60))


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
    return value if isinstance(value, AtLeast) else float(value)


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
    budget = config.effective_time_budget(len(train))
    candidates = config.candidates
    if budget is None:
        return Plan(models=candidates, groups=balanced_groups(candidates, {}, _workers(-1)))
    limit = max(_MIN_PROBE_SECONDS, budget * _PROBE_SHARE)
    admitted, estimates, skipped = admit(
        candidates,
        lambda name, enough: _estimate_or_free(name, train, config, limit, enough),
        budget,
        is_free=lambda name: _is_baseline(name, config),
        # the default list runs from the cheapest model to the dearest; a list of your own may not
        cost_ordered=tuple(config.models) == DEFAULT_MODELS,
        fits=(config.n_windows or 1) + 1,
        probe_limit=limit,
    )
    models = tuple(admitted)  # in the order listed
    serial = _cheap_local_models(models, estimates, config)
    workers = _workers(config.n_jobs)
    # in one process a cheap per-series model costs its estimate times the workers it would have had
    costs = {n: estimates.get(n, 0.0) * (workers if n in serial else 1) for n in models}
    return Plan(
        models=models,
        estimates=estimates,
        skipped=skipped,
        budget=budget,
        serial=serial,
        groups=balanced_groups(models, costs, _workers(-1)),
    )


def admit(
    candidates: tuple[str, ...],
    measure: Callable[[str, float], float],
    budget: float,
    *,
    is_free: Callable[[str], bool],
    cost_ordered: bool,
    fits: int,
    probe_limit: float,
) -> tuple[list[str], dict[str, float], dict[str, str]]:
    """The admission rule, apart from measuring: ``(admitted, estimates, skipped with reasons)``.

    ``measure(name, enough)`` is a model's estimated seconds (``inf``: its probe ran out of time), which may
    stop early once it exceeds ``enough``. The first real model is admitted whatever it costs; free models
    always are. Once the budget is spent, or (``cost_ordered``) after the first model that did not fit,
    later models are not measured at all.
    """
    estimates: dict[str, float] = {}
    admitted: list[str] = []
    skipped: dict[str, str] = {}
    spent = 0.0
    real_model_in = False
    misfit = ""
    for name in candidates:
        if real_model_in and not is_free(name):
            # probing costs time too
            if spent >= budget:
                skipped[name] = (
                    f"not measured: the models before it already take the time budget of {budget:.0f} s "
                    f"(estimated {spent:.0f} s; raise --time-budget to include it)"
                )
                continue
            if misfit and cost_ordered:
                skipped[name] = (
                    f"not measured: {misfit}, cheaper on most data and listed before it, did not fit the "
                    f"time budget of {budget:.0f} s (raise --time-budget to include it)"
                )
                continue
        # the first real model runs whatever it costs, so it is measured in full; later ones only until they
        # are sure not to fit what is left
        cost = estimates[name] = measure(name, budget - spent if real_model_in else np.inf)
        if cost == 0.0 or not real_model_in or spent + cost <= budget:
            admitted.append(name)
            spent += cost
            real_model_in = real_model_in or cost > 0
            continue
        misfit = name
        if not np.isfinite(cost):
            skipped[name] = (
                f"its probe alone (a short fit on one series) took more than {probe_limit:.0f} s, so it "
                f"cannot fit the time budget of {budget:.0f} s (raise --time-budget to include it)"
            )
        else:
            how_much = "more than " if isinstance(cost, AtLeast) else ""
            skipped[name] = (
                f"estimated {how_much}{cost:.0f} s for its {fits} fits would take the run past its time "
                f"budget of {budget:.0f} s (raise --time-budget to include it)"
            )
    return admitted, estimates, skipped


def balanced_groups(
    models: tuple[str, ...], costs: dict[str, float], n_groups: int
) -> tuple[tuple[str, ...], ...]:
    """``models`` in at most ``n_groups`` groups of about equal total cost: dearest first, each into the
    cheapest group so far (unknown costs count as dear, free models as a little). Each group keeps the
    listed order."""
    n_groups = max(1, min(n_groups, len(models)))
    loads, members = [0.0] * n_groups, [[] for _ in range(n_groups)]
    weight = {n: costs.get(n, 1e9) for n in models}
    for name in sorted(models, key=lambda n: -weight[n]):
        k = int(np.argmin(loads))
        loads[k] += max(weight[name], 0.1)
        members[k].append(name)
    order = {n: i for i, n in enumerate(models)}
    return tuple(tuple(sorted(m, key=order.__getitem__)) for m in members if m)


def _cheap_local_models(
    models: tuple[str, ...], estimates: dict[str, float], config: ForecastConfig
) -> tuple[str, ...]:
    from stackml.forecasting.models import make_model_for

    # a local model's estimate is its time spread over the workers: times the workers, its time in one
    # process; a baseline costs next to nothing, and starting worker processes for it cost 0.7 s on the
    # demo's data
    workers = _workers(config.n_jobs)
    return tuple(
        name
        for name in models
        if not make_model_for(name, config.horizon).is_global
        and (_is_baseline(name, config) or 0 < estimates.get(name, 0.0) * workers < SERIAL_BELOW_SECONDS)
    )
