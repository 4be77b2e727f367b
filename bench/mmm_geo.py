"""Benchmark: does the hierarchical geo media-mix model recover per-market truth better than the alternatives?
(issue 19)

For each of ``--worlds`` simulated geo panels (``stackml.mmm.simulate_geo``: ``--geos`` markets x ``--weeks``
weeks x ``--channels`` channels, the last ``--small-geos`` markets launched late and keep only the last third
of the weeks; world ``i`` uses seed ``--seed + i``) it fits four ways, every fit in its own subprocess
(``_common.run_measured``: wall seconds and peak memory are that fit's own):

1. ``hierarchical``: ``GeoMediaMixModel("date", "geo", channels, "revenue", control_columns=("promo",
   "price_index")).fit(panel, draws, tune, chains, random_state)`` on the whole panel;
2. ``separate``: one national ``MediaMixModel`` per geo on that geo's rows (a geo with too few rows for it
   is a failed fit, reported as such);
3. ``summed``: one national ``MediaMixModel`` on the panel summed over geos by date (spend and revenue
   summed, promo and price_index averaged over the geos present that week): national figures only;
4. ``pymc-marketing``: ``pymc_marketing.mmm.multidimensional.MMM`` with ``dims=("geo",)``, GeometricAdstock
   (l_max 8, ours by default) + LogisticSaturation, its default priors and scaling, ``t`` as a trend control,
   the same draws, tune and chains, ``nuts_sampler="nutpie"`` (``bench/_mmm_geo_side.py``). pymc-marketing
   is not a stackml dependency: it runs from ``bench/.cache/pmm-venv``, which this script creates (``python3
   -m venv``, ``pip install pymc-marketing==PMM_VERSION nutpie``) when missing, giving up after 10 minutes;
   if it cannot be installed or run the tables say "not run" and why.

Each method is scored against the world's truth per geo and channel: scaled RMSE of the weekly
contributions (RMSE over the geo's weeks / the mean true weekly contribution of that geo and channel, as the
Meridian and PyMC-Marketing recovery benchmarks scale it), ROAS error |posterior mean - true| / true, and
whether the 94% ROAS interval covers the truth; the same nationally (weekly contributions and ROAS summed over
geos). Separate fits have no joint draws across geos, so their national ROAS is the sum of the posterior mean
contributions over the spend, without an interval. Results pool over worlds, split into big geos, small
(late-launched) geos and national.

Targets (issue 19): the hierarchical model at least as good as separate fits on the big markets (mean scaled
RMSE and mean ROAS error each within 5% of theirs) and better on the small ones; an 8-geo x 156-week x
8-channel hierarchical fit under 5 minutes (judged only on a run of that size); at least 2x faster than
PyMC-Marketing (``fit()`` seconds, imports excluded for both) at equal or better recovery on the big geos.

Every fit imports one snapshot of ``src/stackml`` taken at the start, so a model edited during the run does
not mix versions. Fits run one at a time (the sampler's chains already use the cores).

Run from the repository root:
    .venv/bin/python bench/mmm_geo.py                # 3 worlds of 8 geos x 156 weeks x 4 channels; writes
                                                     # bench/results/mmm_geo.md (33 fits at the default draws)
    .venv/bin/python bench/mmm_geo.py --channels 8 --worlds 1     # the size of the speed target
    .venv/bin/python bench/mmm_geo.py --worlds 1 --geos 3 --weeks 60 --channels 2 --small-geos 1 \\
        --draws 100 --tune 100 --chains 2 --no-write                # the plumbing (a few minutes)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, run_measured, write_results

RESULTS = REPO / "bench" / "results" / "mmm_geo.md"
SIDE_SCRIPT = Path(__file__).resolve().with_name("_mmm_geo_side.py")
PMM_VENV = REPO / "bench" / ".cache" / "pmm-venv"
PMM_VERSION = "0.19.2"  # the version _mmm_geo_side.py was written against
PMM_INSTALL_SECONDS = 600
PMM_L_MAX = 8  # our default carryover on weekly data (transforms.DEFAULT_L_MAX), so both see the same window
CHANNEL_NAMES = ("search", "social", "display", "tv", "radio", "print", "ooh", "video")
CONTROLS = ("promo", "price_index")
METHODS = ("hierarchical", "separate", "summed", "pymc-marketing")
SCOPES = ("big geos", "small geos", "national")
HDI_PROB = 0.94
TARGET_WITHIN, TARGET_SECONDS, TARGET_SPEEDUP = 0.05, 300.0, 2.0
SPEED_TARGET_SIZE = (8, 156, 8)  # geos, weeks, channels


def channel_names(n: int) -> tuple[str, ...]:
    return tuple(CHANNEL_NAMES[:n]) + tuple(f"channel_{k + 1:02d}" for k in range(len(CHANNEL_NAMES), n))


def world_kwargs(args, index: int) -> dict[str, Any]:
    """``simulate_geo`` arguments of world ``index``; everything else at the simulator's defaults."""
    return {
        "n_geos": args.geos,
        "n_periods": args.weeks,
        "channels": channel_names(args.channels),
        "seed": args.seed + index,
        "small_geos": args.small_geos,
    }


def summed_panel(frame, channels: list[str]):
    """The panel as one national series: spend and revenue summed over geos by date, controls averaged."""
    spec = {c: "sum" for c in [*channels, "revenue"]} | {c: "mean" for c in CONTROLS}
    return frame.groupby("date", as_index=False).agg(spec)


# -- the worker: one stackml fit, in a subprocess ------------------------------------------------------------
def work(job: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    import stackml
    from stackml.mmm import GeoMediaMixModel, MediaMixModel, sampling
    from stackml.mmm.geo import contributions_table, geo_roas, national_roas
    from stackml.mmm.outputs import roas

    frame = pd.read_csv(job["csv"], parse_dates=["date"])
    frame["geo"] = frame["geo"].astype(str)
    fingerprint = float(frame["revenue"].sum())
    channels, controls = list(job["channels"]), list(CONTROLS)
    fit = {k: job[k] for k in ("draws", "tune", "chains")} | {"random_state": job["seed"]}
    out: dict[str, Any] = {"fingerprint": fingerprint}
    started = time.perf_counter()
    if job["method"] == "hierarchical":
        model = GeoMediaMixModel("date", "geo", channels, "revenue", control_columns=controls).fit(
            frame, **fit
        )
        out["fit_seconds"] = time.perf_counter() - started
        table = contributions_table(model, HDI_PROB)
        by_geo = geo_roas(model, HDI_PROB)
        out["roas"] = by_geo[["geo", "channel", "mean", "hdi_low", "hdi_high"]].to_dict(orient="records")
        nat = national_roas(model, HDI_PROB)
        out["national_roas"] = {
            c: {k: float(nat.loc[c, k]) for k in ("mean", "hdi_low", "hdi_high")} for c in nat.index
        }
    else:
        geo = job.get("geo")
        data = summed_panel(frame, channels) if job["method"] == "summed" else frame[frame["geo"] == geo]
        data = data.drop(columns="geo", errors="ignore").reset_index(drop=True)
        model = MediaMixModel("date", channels, "revenue", control_columns=controls).fit(data, **fit)
        out["fit_seconds"] = time.perf_counter() - started
        table = contributions_table(model, HDI_PROB).assign(geo=geo or "")
        summary = roas(model, HDI_PROB)
        rows = {c: {k: float(summary.loc[c, k]) for k in ("mean", "hdi_low", "hdi_high")} for c in channels}
        if job["method"] == "summed":
            out["roas"], out["national_roas"] = [], rows
        else:
            out["roas"], out["national_roas"] = (
                [{"geo": geo, "channel": c, **v} for c, v in rows.items()],
                None,
            )
    out["contributions"] = {
        "date": table["date"].dt.strftime("%Y-%m-%d").tolist(),
        "geo": table["geo"].astype(str).tolist(),
        "channel": table["channel"].astype(str).tolist(),
        "mean": table["mean"].astype(float).tolist(),
    }
    stats = model.fit_stats_
    out |= {
        "stackml_path": str(Path(stackml.__file__).resolve().parent),
        "divergences": sampling.divergences(model.idata_),
        "retried": bool(stats.get("divergence_retry")),
        "sampler": stats.get("sampler"),
        "fallback": stats.get("fallback_reason"),
        "compile_seconds": stats.get("compile_seconds"),
        "sampling_seconds": stats.get("sampling_seconds"),
    }
    return out


# -- the driver ----------------------------------------------------------------------------------------------
def snapshot_source(root: Path) -> str:
    """Copy ``src/stackml`` under ``root`` so every fit of a run imports the same model while the working tree
    changes; a short hash of the copied files. (``mmm_calibration.snapshot_source``'s twin: importing that
    module would import the working tree's stackml into the driver before the snapshot exists.)"""
    target = root / "stackml"
    shutil.copytree(REPO / "src" / "stackml", target, ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def run_fit(job: dict[str, Any], args, source: Path) -> dict[str, Any]:
    """One fit in a fresh interpreter under ``timeout``; a failure comes back as a result, not raised."""
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
    if job["method"] == "pymc-marketing":
        python, script = str(PMM_VENV / "bin" / "python"), str(SIDE_SCRIPT)
        env.pop("PYTHONPATH", None)
        argv = [script, json.dumps(job)]
    else:
        python = sys.executable
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
        argv = [__file__, "--worker", json.dumps(job)]
    cmd = ["timeout", "--kill-after=30", str(args.fit_timeout), python, *argv]
    measured = run_measured(cmd, env=env)
    lines = [x for x in measured.stdout.splitlines() if x.startswith("RESULT ")]
    if measured.returncode != 0 or not lines:
        why = "timed out" if measured.returncode in (124, 137) else f"exit code {measured.returncode}"
        return {
            "ok": False,
            "error": f"{why}: {_exception(measured.stderr)}",
            "process_seconds": measured.seconds,
        }
    result = json.loads(lines[-1][len("RESULT ") :])
    result |= {"ok": True, "process_seconds": measured.seconds, "peak_rss_mb": measured.peak_rss_mb}
    if abs(result["fingerprint"] - job["fingerprint"]) > 1e-9 * abs(job["fingerprint"]):
        result |= {"ok": False, "error": "the worker read a different panel than the one simulated"}
    if "stackml_path" in result and Path(result["stackml_path"]) != (source / "stackml").resolve():
        result |= {"ok": False, "error": f"the worker imported stackml from {result['stackml_path']}"}
    return result


def _exception(stderr: str) -> str:
    """The exception a child died of (its message after the last traceback), else the last lines it wrote."""
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    starts = [i for i, x in enumerate(lines) if x.startswith("Traceback")]
    if starts:
        after = lines[starts[-1] + 1 :]
        first = next((i for i, x in enumerate(after) if not x.startswith(" ")), len(after))
        if after[first:]:
            return " ".join(x.strip() for x in after[first:])
    return " | ".join(lines[-4:])


def ensure_pmm() -> str | None:
    """Make ``bench/.cache/pmm-venv`` with pymc-marketing when missing; None, or why it cannot be had."""
    python = PMM_VENV / "bin" / "python"
    check = [str(python), "-c", "import pymc_marketing.mmm.multidimensional, nutpie"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return None
    print(f"installing pymc-marketing {PMM_VERSION} into {PMM_VENV.relative_to(REPO)} ...", flush=True)
    steps = [
        ["python3", "-m", "venv", str(PMM_VENV)],
        [str(python), "-m", "pip", "install", "-q", f"pymc-marketing=={PMM_VERSION}", "nutpie"],
    ]
    deadline = time.monotonic() + PMM_INSTALL_SECONDS
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, check=False, timeout=max(deadline - time.monotonic(), 1)
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(step[-3:])}` did not finish within {PMM_INSTALL_SECONDS // 60} minutes"
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            return f"`{' '.join(step[-3:])}` failed: {tail}"
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        return "pymc-marketing installed but `import pymc_marketing.mmm.multidimensional` fails"
    return None


def pmm_version() -> str:
    python = PMM_VENV / "bin" / "python"
    code = "from importlib import metadata as m; print(m.version('pymc-marketing'), m.version('pymc'))"
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    if done.returncode != 0:
        return "not installed"
    mine, pymc = done.stdout.split()
    return f"{mine} (its venv: pymc {pymc})"


def fit_world(index: int, args, source: Path, tmp: Path, pmm_missing: str | None) -> dict[str, Any]:
    """Simulate world ``index``, fit it every way; its truth and the fits' results."""
    from stackml.mmm import simulate_geo

    kwargs = world_kwargs(args, index)
    sim = simulate_geo(**kwargs)
    csv = tmp / f"world-{index}.csv"
    sim.frame.to_csv(csv, index=False)
    base = {
        "csv": str(csv),
        "channels": list(sim.channels),
        "controls": list(CONTROLS),
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "seed": kwargs["seed"],
        "fingerprint": float(sim.frame["revenue"].sum()),
        "hdi_prob": HDI_PROB,
    }
    jobs = [("hierarchical", base | {"method": "hierarchical"})]
    jobs += [("separate", base | {"method": "separate", "geo": g}) for g in sim.geos]
    jobs += [("summed", base | {"method": "summed"})]
    jobs += [("pymc-marketing", base | {"method": "pymc-marketing", "l_max": PMM_L_MAX})]
    fits: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for method, job in jobs:
        if method == "pymc-marketing" and pmm_missing:
            fits[method].append({"ok": False, "not_run": pmm_missing, "process_seconds": 0.0})
            continue
        result = run_fit(job, args, source) | {"geo": job.get("geo")}
        fits[method].append(result)
        what = f"{method}{' ' + job['geo'] if 'geo' in job else ''}"
        status = "ok" if result["ok"] else "FAILED: " + result["error"][:300]
        print(
            f"  world {index} (seed {kwargs['seed']}) {what}: {result['process_seconds']:.0f} s, {status}",
            flush=True,
        )
    small = sim.geos[len(sim.geos) - args.small_geos :] if args.small_geos else ()
    return {"index": index, "seed": kwargs["seed"], "sim": sim, "small": set(small), "fits": fits}


# -- scoring -------------------------------------------------------------------------------------------------
def score_world(world: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method, scope, geo and channel: scaled RMSE of the weekly contributions, ROAS error and
    whether the 94% interval covers the true ROAS (None where there is no interval)."""
    import numpy as np
    import pandas as pd

    sim = world["sim"]
    small = world["small"]
    truth = sim.contributions.assign(date=lambda f: pd.to_datetime(f["date"]))
    true_roas = sim.truth.set_index(["geo", "channel"])["roas"]
    spend = sim.truth.groupby("channel")["spend"].sum()
    national_truth = truth.groupby(["date", "channel"], as_index=False)["contribution"].sum()
    rows = []

    def scaled_rmse(est, true) -> float:
        return float(np.sqrt(np.mean((est - true) ** 2)) / np.mean(true))

    for method, results in world["fits"].items():
        done = [r for r in results if r["ok"]]
        if not done:
            continue
        est = pd.concat([pd.DataFrame(r["contributions"]) for r in done], ignore_index=True)
        est["date"] = pd.to_datetime(est["date"])
        by_geo = truth.merge(est, on=["date", "geo", "channel"], how="inner")
        estimated = {(r["geo"], r["channel"]): r for res in done for r in res["roas"]}
        for (geo, channel), part in by_geo.groupby(["geo", "channel"]):
            r = estimated[(geo, channel)]
            t = float(true_roas[(geo, channel)])
            rows.append(
                {
                    "world": world["index"],
                    "method": method,
                    "scope": "small geos" if geo in small else "big geos",
                    "geo": geo,
                    "channel": channel,
                    "scaled_rmse": scaled_rmse(part["mean"].to_numpy(), part["contribution"].to_numpy()),
                    "roas_error": abs(r["mean"] - t) / t,
                    "covered": r["hdi_low"] <= t <= r["hdi_high"],
                }
            )
        if len(done) < len(results):  # separate fits with a geo missing have no national figure
            continue
        national_est = est.groupby(["date", "channel"], as_index=False)["mean"].sum()
        joined = national_truth.merge(national_est, on=["date", "channel"], how="left").fillna({"mean": 0.0})
        national = next((r["national_roas"] for r in done if r.get("national_roas")), None)
        for channel, part in joined.groupby("channel"):
            t = float(sim.national_truth.loc[channel, "roas"])
            if national is not None:
                r = national[channel]
                mean, covered = r["mean"], r["hdi_low"] <= t <= r["hdi_high"]
            else:  # separate fits: the sum of posterior means over the spend; no joint draws, no interval
                mean, covered = float(est.loc[est["channel"] == channel, "mean"].sum() / spend[channel]), None
            rows.append(
                {
                    "world": world["index"],
                    "method": method,
                    "scope": "national",
                    "geo": "",
                    "channel": channel,
                    "scaled_rmse": scaled_rmse(part["mean"].to_numpy(), part["contribution"].to_numpy()),
                    "roas_error": abs(mean - t) / t,
                    "covered": covered,
                }
            )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    covered = [r["covered"] for r in rows if r["covered"] is not None]
    return {
        "n": len(rows),
        "rmse": statistics.mean(r["scaled_rmse"] for r in rows) if rows else None,
        "error": statistics.mean(r["roas_error"] for r in rows) if rows else None,
        "coverage": statistics.mean(covered) if covered else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def not_scored_reason(method: str, scope: str, worlds: list[dict[str, Any]]) -> str:
    fits = [f for w in worlds for f in w["fits"][method]]
    if method == "pymc-marketing" and fits and all("not_run" in f for f in fits):
        return f"not run: {fits[0]['not_run']}"
    if method == "summed" and scope != "national":
        return "n/a (one national model)"
    if method == "separate" and scope == "national":
        return "n/a (a geo's fit failed)"
    return "n/a (its fits failed)"


def _in_scope(geo: str | None, scope: str, small: set[str]) -> bool:
    """Does a failed fit of ``geo`` (None: a fit of all geos) cost this scope its scores?"""
    if geo is None or scope == "national":
        return True
    return (geo in small) == (scope == "small geos")


def recovery_table(rows: list[dict[str, Any]], worlds: list[dict[str, Any]]) -> str:
    table = []
    for method in METHODS:
        for scope in SCOPES:
            mine = [r for r in rows if r["method"] == method and r["scope"] == scope]
            failed = sum(
                1
                for w in worlds
                for f in w["fits"][method]
                if not f["ok"] and "not_run" not in f and _in_scope(f.get("geo"), scope, w["small"])
            )
            if not mine:
                table.append(
                    [method, scope, 0, not_scored_reason(method, scope, worlds), "", "", failed or ""]
                )
                continue
            s = summarise(mine)
            coverage = _pct(s["coverage"])
            if s["coverage"] is None and method == "separate":
                coverage = "n/a (no joint draws)"
            table.append([method, scope, s["n"], _num(s["rmse"]), _pct(s["error"]), coverage, failed])
    headers = [
        "method",
        "scope",
        "geo-channels scored",
        "mean scaled RMSE",
        "mean ROAS error",
        "94% coverage",
        "failed fits",
    ]
    return markdown_table(headers, table)


def cost_table(worlds: list[dict[str, Any]]) -> str:
    table = []
    for method in METHODS:
        fits = [f for w in worlds for f in w["fits"][method]]
        if all("not_run" in f for f in fits):
            table.append(
                [
                    method,
                    len(fits) // max(len(worlds), 1),
                    f"not run: {fits[0]['not_run']}",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        ok = [f for f in fits if f["ok"]]

        def per_world(key: str, ok=ok, method=method) -> str:
            values = [sum(f.get(key) or 0.0 for f in w["fits"][method] if f["ok"]) for w in worlds]
            return f"{statistics.mean(values):,.0f}" if ok else "n/a"

        wall = [sum(f["process_seconds"] for f in w["fits"][method]) for w in worlds]
        samplers = sorted({str(f.get("sampler")) for f in ok}) or ["-"]
        fallbacks = sorted({f["fallback"] for f in ok if f.get("fallback")})
        table.append(
            [
                method,
                len(fits) // len(worlds),
                f"{statistics.mean(wall):,.0f}",
                per_world("fit_seconds"),
                per_world("compile_seconds"),
                per_world("sampling_seconds"),
                sum(f["divergences"] for f in ok),
                sum(1 for f in ok if f.get("retried")),
                ", ".join(samplers) + (f" ({'; '.join(fallbacks)})" if fallbacks else ""),
            ]
        )
    headers = [
        "method",
        "fits per world",
        "wall s per world",
        "fit() s per world",
        "compile s",
        "sampling s",
        "divergences (all worlds)",
        "fits resampled",
        "sampler",
    ]
    return markdown_table(headers, table)


def worlds_table(rows: list[dict[str, Any]], worlds: list[dict[str, Any]]) -> str:
    table = []
    for w in worlds:
        for method in METHODS:
            fits = w["fits"][method]
            if all("not_run" in f for f in fits):
                continue
            cells: list[Any] = [w["seed"], method]
            for scope in SCOPES:
                s = summarise(
                    [
                        r
                        for r in rows
                        if r["world"] == w["index"] and r["method"] == method and r["scope"] == scope
                    ]
                )
                cells += [_num(s["rmse"]), _pct(s["error"])]
            cells.append(f"{sum(f['process_seconds'] for f in fits):,.0f}")
            table.append(cells)
    headers = ["seed", "method"]
    for scope in SCOPES:
        headers += [f"{scope}: scaled RMSE", "ROAS error"]
    return markdown_table([*headers, "wall s"], table)


def targets_table(rows: list[dict[str, Any]], worlds: list[dict[str, Any]], args) -> str:
    def pooled(method: str, scope: str) -> dict[str, Any]:
        return summarise([r for r in rows if r["method"] == method and r["scope"] == scope])

    def verdict(ok: bool | None) -> str:
        return "not judged" if ok is None else ("PASS" if ok else "FAIL")

    table = []
    h_big, s_big = pooled("hierarchical", "big geos"), pooled("separate", "big geos")
    h_small = pooled("hierarchical", "small geos")
    if h_big["n"] and s_big["n"]:
        big_ok = (
            h_big["rmse"] <= (1 + TARGET_WITHIN) * s_big["rmse"]
            and h_big["error"] <= (1 + TARGET_WITHIN) * s_big["error"]
        )
        big = (
            f"scaled RMSE {h_big['rmse']:.3f} vs {s_big['rmse']:.3f}, ROAS error {h_big['error']:.1%} vs "
            f"{s_big['error']:.1%}"
        )
    else:
        big_ok, big = None, "a method has no scored big geo"
    # the small geos both methods have scored, like for like; a geo separate fits could not fit is a win
    fitted = {
        (r["world"], r["geo"], r["channel"])
        for r in rows
        if r["method"] == "separate" and r["scope"] == "small geos"
    }
    h_pair = summarise(
        [
            r
            for r in rows
            if r["method"] == "hierarchical"
            and r["scope"] == "small geos"
            and (r["world"], r["geo"], r["channel"]) in fitted
        ]
    )
    s_small = pooled("separate", "small geos")
    unfitted = sum(1 for w in worlds for f in w["fits"]["separate"] if not f["ok"] and f["geo"] in w["small"])
    if not h_small["n"]:
        small_ok, small = None, "no small geo scored (--small-geos 0?)"
    elif s_small["n"]:
        small_ok = h_pair["rmse"] < s_small["rmse"] and h_pair["error"] < s_small["error"]
        small = (
            f"scaled RMSE {h_pair['rmse']:.3f} vs {s_small['rmse']:.3f}, ROAS error {h_pair['error']:.1%} vs "
            f"{s_small['error']:.1%} (the {s_small['n']} small geo-channels both fitted)"
        )
        if unfitted:
            small += f"; {unfitted} small-geo fits failed for separate fits only"
    else:
        small_ok = True
        small = (
            f"separate fits could not fit any small geo ({unfitted} failed fits); hierarchical scaled RMSE "
            f"{h_small['rmse']:.3f}, ROAS error {h_small['error']:.1%}"
        )
    table.append(
        [
            f"hierarchical at least as good as separate fits on big markets (mean scaled RMSE and ROAS error "
            f"within {TARGET_WITHIN:.0%})",
            big,
            verdict(big_ok),
        ]
    )
    table.append(["... and better on small markets (both lower)", small, verdict(small_ok)])

    size = (args.geos, args.weeks, args.channels)
    h_fits = [f for w in worlds for f in w["fits"]["hierarchical"]]
    if size != SPEED_TARGET_SIZE:
        table.append(
            [
                "8-geo x 156-week x 8-channel hierarchical fit under 5 minutes",
                f"this run: {args.geos} geos x {args.weeks} weeks x {args.channels} channels",
                "not judged",
            ]
        )
    else:
        slowest = max(f["process_seconds"] for f in h_fits)
        ok = all(f["ok"] for f in h_fits) and slowest < TARGET_SECONDS
        table.append(
            [
                "8-geo x 156-week x 8-channel hierarchical fit under 5 minutes",
                f"slowest of {len(h_fits)}: {slowest:.0f} s (whole process; draws {args.draws}, tune "
                f"{args.tune}, chains {args.chains})",
                verdict(ok),
            ]
        )

    p_fits = [f for w in worlds for f in w["fits"]["pymc-marketing"]]
    p_ok = [f for f in p_fits if f["ok"]]
    if not p_ok:
        reason = p_fits[0].get("not_run") or p_fits[0].get("error", "")
        table.append(
            [
                "at least 2x faster than PyMC-Marketing at equal or better recovery (big geos)",
                f"not run: {reason[:300]}",
                "not judged",
            ]
        )
    else:
        pairs = [
            (w["fits"]["hierarchical"][0], w["fits"]["pymc-marketing"][0])
            for w in worlds
            if w["fits"]["hierarchical"][0]["ok"] and w["fits"]["pymc-marketing"][0]["ok"]
        ]
        ours = sum(h["fit_seconds"] for h, _ in pairs)
        theirs = sum(p["fit_seconds"] for _, p in pairs)
        p_big = pooled("pymc-marketing", "big geos")
        ratio = theirs / ours if ours else float("nan")
        ok = (
            bool(pairs)
            and ratio >= TARGET_SPEEDUP
            and h_big["rmse"] <= p_big["rmse"]
            and h_big["error"] <= p_big["error"]
        )
        table.append(
            [
                "at least 2x faster than PyMC-Marketing at equal or better recovery (big geos)",
                f"{ratio:.1f}x (fit() {ours:.0f} s vs {theirs:.0f} s over {len(pairs)} worlds); scaled RMSE "
                f"{h_big['rmse']:.3f} vs {p_big['rmse']:.3f}, ROAS error {h_big['error']:.1%} vs "
                f"{p_big['error']:.1%}",
                verdict(ok),
            ]
        )
    return markdown_table(["target", "measured", "verdict"], table)


def report(rows: list[dict[str, Any]], worlds: list[dict[str, Any]], args) -> str:
    seeds = ", ".join(str(w["seed"]) for w in worlds)
    failures = [
        f"- seed {w['seed']}, {m}{' ' + f['geo'] if f.get('geo') else ''}: {f['error'][:400]}"
        for w in worlds
        for m in METHODS
        for f in w["fits"][m]
        if not f["ok"] and "error" in f
    ]
    lines = [
        "## Targets\n",
        targets_table(rows, worlds, args),
        "\n## Recovery\n",
        f"{len(worlds)} worlds (`simulate_geo` seeds {seeds}; `--seed {args.seed} --worlds {args.worlds}` "
        f"draws them again): {args.geos} geos x {args.weeks} weeks x {args.channels} channels, the last "
        f"{args.small_geos} geos launched late (the last third of the weeks), the simulator's defaults "
        "otherwise (market sizes log-sd 1, geo ROAS log-sd 0.3 around the national one, shared adstock and "
        f"saturation shapes, spend correlation 0.3, noise 5%). Fits: draws {args.draws}, tune {args.tune}, "
        f"chains {args.chains}; stackml's models at their defaults. Scaled RMSE: per geo and channel, "
        "RMSE of the posterior-mean weekly contribution over the geo's weeks / the mean true weekly "
        "contribution; national: the same on contributions summed over geos. ROAS error: |posterior mean - "
        "true| / true. Coverage: share of geo-channels whose true ROAS lies in the 94% HDI. Means pool every "
        "geo-channel of every world. Separate fits' national ROAS is the sum of their posterior mean "
        "contributions over the spend (no interval). PyMC-Marketing builds its panel on the union of the "
        "dates and fills missing geo-weeks with zero (`xr.merge(...).fillna(0)`, target included), so the "
        "late-launched geos are fitted as if their revenue was zero before launch; they are scored on the "
        "weeks they have, and its speed target is judged on the big geos.\n",
        recovery_table(rows, worlds),
        "\n## Cost and sampler health\n",
        "wall s: the subprocesses of one world (separate: all its geos), interpreter start-up and imports "
        "included; fit() s: the fit call alone; compile and sampling s from the model's own fit stats (ours) "
        "or nutpie's `compile_pymc_model` and the sampler's clock (theirs). Divergences are in the kept "
        "draws; our models sample once more at a higher target_accept after divergences (fits resampled). "
        "PyTensor's on-disk compile cache is shared by all fits (and both venvs) and warm after the first; "
        "nutpie's numba compile is paid by every process.\n",
        cost_table(worlds),
        "\n## Per world\n",
        worlds_table(rows, worlds),
    ]
    if failures:
        lines += ["\n## Failed fits\n", *failures]
    return "\n".join(lines)


def main() -> None:
    from_config = "the pipeline's default (stackml.mmm.config)"
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worlds", type=int, default=3, help="simulated panels (default 3)")
    parser.add_argument("--geos", type=int, default=8, help="geos per panel (default 8)")
    parser.add_argument("--weeks", type=int, default=156, help="weeks per panel (default 156)")
    parser.add_argument("--channels", type=int, default=4, help="channels (default 4)")
    parser.add_argument("--small-geos", type=int, default=3, help="late-launched geos (default 3)")
    parser.add_argument("--draws", type=int, default=None, help=f"default {from_config}")
    parser.add_argument("--tune", type=int, default=None, help=f"default {from_config}")
    parser.add_argument("--chains", type=int, default=None, help=f"default {from_config}")
    parser.add_argument("--seed", type=int, default=0, help="world i is simulated with seed + i (default 0)")
    parser.add_argument("--fit-timeout", type=int, default=3600, help="seconds before a fit counts as failed")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the results page")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"results page (default {RESULTS.relative_to(REPO)})"
    )
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    if not 0 <= args.small_geos < args.geos:
        parser.error(
            f"--small-geos must be between 0 and --geos - 1 ({args.geos - 1}), got {args.small_geos}"
        )
    started, load_start = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmm-geo-") as tmp:
        source = Path(tmp) / "src"
        source_hash = snapshot_source(source)
        sys.path.insert(0, str(source))  # the driver simulates with the same snapshot the fits import
        from stackml.mmm.config import config_default

        for key in ("draws", "tune", "chains"):
            if getattr(args, key) is None:
                setattr(args, key, config_default(key))
        pmm_missing = ensure_pmm()
        print(
            f"{args.worlds} worlds of {args.geos} geos x {args.weeks} weeks x {args.channels} channels "
            f"({args.small_geos} small), seeds {args.seed}..{args.seed + args.worlds - 1}; "
            f"draws {args.draws}, tune {args.tune}, chains {args.chains}; "
            f"src/stackml snapshot {source_hash}; "
            f"pymc-marketing: {'not run: ' + pmm_missing if pmm_missing else 'ready'}",
            flush=True,
        )
        worlds = [fit_world(i, args, source, Path(tmp), pmm_missing) for i in range(args.worlds)]
    rows = [r for w in worlds for r in score_world(w)]
    body = report(rows, worlds, args)
    load_end = os.getloadavg()
    body += (
        f"\n\n## Conditions\n\nTotal run time {time.perf_counter() - started:,.0f} s, one fit at a time. "
        f"Load average (1/5/15 min) {load_start[0]:.1f}/{load_start[1]:.1f}/{load_start[2]:.1f} at the start "
        f"and {load_end[0]:.1f}/{load_end[1]:.1f}/{load_end[2]:.1f} at the end. Every stackml fit imported "
        f"one snapshot of `src/stackml` taken at the start (files hash {source_hash}; the commit below may "
        "carry uncommitted model changes).\n"
    )
    print("\n" + body, flush=True)
    if not args.no_write:
        command = [".venv/bin/python", "bench/mmm_geo.py", *sys.argv[1:]]
        info = machine_info(
            ["pymc", "pytensor", "nutpie", "numba", "numpy", "arviz"],
            {"pymc-marketing": pmm_version(), "seeds": ", ".join(str(w["seed"]) for w in worlds)},
        )
        write_results(
            args.out,
            "MMM benchmark: hierarchical geo model vs separate, summed and pymc-marketing",
            command,
            info,
            body,
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
