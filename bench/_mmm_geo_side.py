"""PyMC-Marketing's multidimensional MMM on one geo panel, for ``bench/mmm_geo.py``; runs in its own venv.

pymc-marketing is not a dependency of stackml, so ``bench/mmm_geo.py`` installs it into
``bench/.cache/pmm-venv`` and runs this script there, one world per process. It imports nothing from stackml:
the panel comes as a CSV written by the driver, and the answer goes back as one ``RESULT {json}`` line on
stdout with the same fields the stackml workers return (weekly contribution means per geo and channel, ROAS
per geo and nationally with 94% intervals, sampler facts), which the driver scores against the truth.

The model is the documented multidimensional one with its default priors and scaling:
``MMM(date_column, channel_columns, target_column, control_columns=[*controls, "t"], dims=("geo",),
adstock=GeometricAdstock(l_max), saturation=LogisticSaturation(), yearly_seasonality=2)``; ``t`` (weeks since
the panel's first date) stands in for a trend, as their example data set does. ``fit(X, y, draws, tune,
chains, random_seed, nuts_sampler="nutpie")``; if nutpie is refused the fit runs on PyMC's default NUTS and
the result says why.

Usage (by the driver): ``bench/.cache/pmm-venv/bin/python bench/_mmm_geo_side.py '{json job}'``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def hdi(draws, prob: float):
    """Narrowest interval holding ``prob`` of the draws along axis 0 (the same definition as stackml's)."""
    import numpy as np

    ordered = np.sort(draws, axis=0)
    n = ordered.shape[0]
    keep = int(np.floor(prob * n))
    widths = ordered[keep:] - ordered[: n - keep]
    start = np.argmin(widths, axis=0)
    low = np.take_along_axis(ordered, start[None], axis=0)[0]
    high = np.take_along_axis(ordered, (start + keep)[None], axis=0)[0]
    return low, high


def work(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import numpy as np
    import pandas as pd
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    imported = time.perf_counter()
    channels, controls = list(job["channels"]), list(job["controls"])
    frame = pd.read_csv(job["csv"], parse_dates=["date"])
    frame["geo"] = frame["geo"].astype(str)
    first = frame["date"].min()
    frame["t"] = ((frame["date"] - first).dt.days // 7).astype(float)
    X = frame[["date", "geo", *channels, *controls, "t"]]
    y = frame["revenue"].rename("revenue")

    compile_seconds: list[float] = []

    def timed(function):  # measure, do not change: the sampler's set-up (its compile)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                compile_seconds.append(time.perf_counter() - t0)

        return wrapper

    def build() -> MMM:
        mmm = MMM(
            date_column="date",
            channel_columns=channels,
            target_column="revenue",
            control_columns=[*controls, "t"],
            dims=("geo",),
            adstock=GeometricAdstock(l_max=int(job["l_max"])),
            saturation=LogisticSaturation(),
            yearly_seasonality=2,
        )
        mmm.build_model(X, y)
        mmm.add_original_scale_contribution_variable(var=["channel_contribution"])
        return mmm

    fit = {"draws": job["draws"], "tune": job["tune"], "chains": job["chains"]}
    fallback = None
    fit_started = time.perf_counter()
    try:
        import nutpie

        nutpie.compile_pymc_model = timed(nutpie.compile_pymc_model)
        mmm = build()
        idata = mmm.fit(X, y, random_seed=job["seed"], progressbar=False, nuts_sampler="nutpie", **fit)
        sampler = "nutpie"
    except Exception as exc:  # noqa: BLE001 - nutpie is optional for them; say why and use their default NUTS
        fallback = f"nutpie refused ({type(exc).__name__}: {str(exc)[:200]}); PyMC's default NUTS used"
        compile_seconds.clear()
        from pymc.sampling import mcmc

        mcmc.init_nuts = timed(mcmc.init_nuts)
        fit_started = time.perf_counter()
        mmm = build()
        idata = mmm.fit(X, y, random_seed=job["seed"], progressbar=False, **fit)
        sampler = "pymc"
    fit_seconds = time.perf_counter() - fit_started

    post = idata.posterior["channel_contribution_original_scale"]
    post = post.transpose("chain", "draw", "date", "geo", "channel")
    dates = pd.DatetimeIndex(post.coords["date"].values)
    geos = [str(g) for g in post.coords["geo"].values]
    names = [str(c) for c in post.coords["channel"].values]
    values = np.asarray(post.values)
    draws = values.reshape(-1, *values.shape[2:])  # (S, T, G, K)
    order = [names.index(c) for c in channels]
    draws = draws[..., order]

    contributions = {"date": [], "geo": [], "channel": [], "mean": []}
    roas_rows = []
    national_total = np.zeros((draws.shape[0], len(channels)))
    national_spend = np.zeros(len(channels))
    for g, geo in enumerate(geos):
        rows = frame[frame["geo"] == geo]
        present = dates.isin(pd.DatetimeIndex(rows["date"]))  # the weeks this geo has; the rest are padding
        mine = draws[:, present, g, :]  # (S, T_g, K)
        means = mine.mean(axis=0)
        for k, channel in enumerate(channels):
            contributions["date"] += [d.strftime("%Y-%m-%d") for d in dates[present]]
            contributions["geo"] += [geo] * int(present.sum())
            contributions["channel"] += [channel] * int(present.sum())
            contributions["mean"] += means[:, k].tolist()
        total = mine.sum(axis=1)  # (S, K)
        spend = rows[channels].to_numpy(dtype=float).sum(axis=0)
        national_total += total
        national_spend += spend
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = total / spend
        low, high = hdi(ratio, job["hdi_prob"])
        for k, channel in enumerate(channels):
            roas_rows.append(
                {
                    "geo": geo,
                    "channel": channel,
                    "mean": float(ratio[:, k].mean()),
                    "hdi_low": float(low[k]),
                    "hdi_high": float(high[k]),
                }
            )
    ratio = national_total / national_spend
    low, high = hdi(ratio, job["hdi_prob"])
    national = {
        c: {"mean": float(ratio[:, k].mean()), "hdi_low": float(low[k]), "hdi_high": float(high[k])}
        for k, c in enumerate(channels)
    }
    import pymc_marketing

    return {
        "fingerprint": float(frame["revenue"].sum()),
        "contributions": contributions,
        "roas": roas_rows,
        "national_roas": national,
        "divergences": int(np.asarray(idata.sample_stats["diverging"]).sum()),
        "retried": False,
        "sampler": sampler,
        "fallback": fallback,
        "import_seconds": imported - started,
        "fit_seconds": fit_seconds,
        "compile_seconds": sum(compile_seconds),
        "sampling_seconds": _sampling_seconds(idata),
        "version": pymc_marketing.__version__,
    }


def _sampling_seconds(idata) -> float | None:
    for group in ("sample_stats", "posterior"):
        value = getattr(idata, group).attrs.get("sampling_time")
        if value is not None:
            return float(value)
    return None


if __name__ == "__main__":
    print("RESULT " + json.dumps(work(json.loads(sys.argv[1]))), flush=True)
