"""NUTS sampling with nutpie (default) and PyMC's own NUTS as the fallback.

nutpie compiles the model's log-density with numba once (tens of seconds on a small machine) and then samples
fast; the compiled model is kept so a time-slice check can re-sample with new data without compiling again.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from stackml._deps import require

log = logging.getLogger(__name__)


@dataclass
class SampleResult:
    """The posterior and how it was obtained."""

    idata: Any
    sampler: str
    compile_seconds: float
    sampling_seconds: float
    compiled: Any = field(default=None, repr=False)  # nutpie's compiled model, or the PyMC model
    fallback_reason: str | None = None


def sample(
    model: Any,
    *,
    sampler: str = "nutpie",
    draws: int,
    tune: int,
    chains: int,
    random_state: int | None,
    target_accept: float,
    progressbar: bool,
) -> SampleResult:
    """Sample ``model`` with ``sampler``; if nutpie is missing or fails, fall back to PyMC NUTS with a
    warning."""
    if sampler == "nutpie":
        try:
            return _sample_nutpie(model, draws, tune, chains, random_state, target_accept, progressbar)
        except Exception as exc:  # noqa: BLE001 - any nutpie failure (import, numba, sampling) falls back
            reason = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"nutpie could not sample this model ({reason}); using PyMC's NUTS instead.", stacklevel=3
            )
            result = _sample_pymc(model, draws, tune, chains, random_state, target_accept, progressbar)
            result.fallback_reason = reason
            return result
    return _sample_pymc(model, draws, tune, chains, random_state, target_accept, progressbar)


def sample_with_retry(
    model: Any,
    *,
    sampler: str,
    target_accept: float,
    progressbar: bool,
    retry_divergences: bool,
    **run: Any,
) -> tuple[SampleResult, float, dict[str, Any] | None]:
    """:func:`sample`, then once more at a higher target acceptance if the draws have divergences.

    Divergences mean the sampler skipped a region it could not step through, which biases the posterior
    there; a smaller step (higher target acceptance) usually reaches it. One retry, on the compiled model.

    Returns:
        ``(result, target acceptance of the kept draws, retry)``; ``retry`` is None, or the divergences that
        caused it, the target acceptance they came at and the divergences after it.
    """
    result = sample(model, sampler=sampler, target_accept=target_accept, progressbar=progressbar, **run)
    divergent = divergences(result.idata)
    if not divergent or not retry_divergences:
        return result, target_accept, None
    raised = raised_target_accept(target_accept)
    log.info("%d divergences at target_accept %g: sampling again at %g", divergent, target_accept, raised)
    started = time.perf_counter()
    result.idata = resample(result, {}, target_accept=raised, progressbar=progressbar, **run)
    result.sampling_seconds += time.perf_counter() - started
    retry = {
        "divergences": divergent,
        "target_accept": target_accept,
        "divergences_after": divergences(result.idata),
    }
    return result, raised, retry


def divergences(idata: Any) -> int:
    """Divergent transitions of the kept draws, all chains together."""
    return int(idata.sample_stats["diverging"].values.sum())


def raised_target_accept(target_accept: float) -> float:
    """The target acceptance of a retry after divergences: a third of the way left to 1 (0.9 -> 0.967),
    which shortens the step size enough for the usual funnel or saturation-ridge divergences."""
    return round(1.0 - (1.0 - target_accept) / 3.0, 4)


def resample(result: SampleResult, data: dict[str, Any], **kwargs: Any) -> Any:
    """Sample again with new values for the model's data containers, reusing the compiled model."""
    if result.sampler == "nutpie":
        nutpie = require("nutpie", extra="mmm")
        compiled = result.compiled.with_data(**data)
        return _natural_scale(nutpie.sample(compiled, **_nutpie_kwargs(**kwargs)))
    pm = require("pymc", extra="mmm")
    model = result.compiled
    before = {name: model[name].get_value() for name in data}
    with model:
        pm.set_data(data)
    try:
        return _pymc_sample(pm, model, **kwargs)
    finally:
        with model:  # leave the model as it was fitted
            pm.set_data(before)


def _nutpie_kwargs(
    draws: int, tune: int, chains: int, random_state: Any, target_accept: float, progressbar: bool
):
    return {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": random_state,
        "target_accept": target_accept,
        "progress_bar": progressbar,
        "save_warmup": False,
    }


def _sample_nutpie(model, draws, tune, chains, random_state, target_accept, progressbar) -> SampleResult:
    nutpie = require("nutpie", extra="mmm")
    log.info("compiling the model with nutpie (numba): 20-70 s on a small machine, less once cached")
    started = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    compiled_at = time.perf_counter()
    idata = _natural_scale(
        nutpie.sample(
            compiled, **_nutpie_kwargs(draws, tune, chains, random_state, target_accept, progressbar)
        )
    )
    done = time.perf_counter()
    log.info("nutpie: compile %.1fs, sampling %.1fs", compiled_at - started, done - compiled_at)
    return SampleResult(idata, "nutpie", compiled_at - started, done - compiled_at, compiled)


def _sample_pymc(model, draws, tune, chains, random_state, target_accept, progressbar) -> SampleResult:
    pm = require("pymc", extra="mmm")
    started = time.perf_counter()
    idata = _pymc_sample(
        pm,
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_state=random_state,
        target_accept=target_accept,
        progressbar=progressbar,
    )
    # PyMC compiles inside pm.sample, so its compile time is part of the sampling time here.
    return SampleResult(idata, "pymc", 0.0, time.perf_counter() - started, model)


def _pymc_sample(pm, model, *, draws, tune, chains, random_state, target_accept, progressbar) -> Any:
    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=min(chains, os.cpu_count() or 1),
            random_seed=random_state,
            target_accept=target_accept,
            progressbar=progressbar,
            compute_convergence_checks=False,
        )


def _natural_scale(idata: Any) -> Any:
    """Drop nutpie's copies of the parameters on the sampler's unconstrained scale (``*_log__`` ...)."""
    unconstrained = [name for name in idata.posterior.data_vars if name.endswith("__")]
    idata.posterior = idata.posterior.drop_vars(unconstrained)
    return idata
