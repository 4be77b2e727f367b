"""Benchmark: are the media-mix model's ROAS intervals calibrated on worlds it was not built on? (issue 17, 2)

Draws worlds from the broad family of ``bench/_mmm_worlds.py`` (2-8 channels, logistic or Hill saturation,
geometric or delayed adstock, 1-4 years, weekly or daily, independent, correlated or flighted spend, a price
index and a promo flag with real effects), checks each world's truth without fitting, and fits each world
twice with the default model through the front door, every fit in its own subprocess:

* ``uncalibrated``: ``MediaMixModel(date, channels, revenue, control_columns=[price_index, promo])``
  ``.fit(frame, draws, tune, chains, random_state)``;
* ``go-dark``: the same with ``lift_tests=`` one go-dark test per channel (standard error 10% of the effect).

From ``stackml.mmm.outputs.roas`` at 0.94 and 0.50 it scores, per channel, the interval's coverage of the true
ROAS and the relative error of the posterior mean, per world kind (weekly|daily x spend pattern, and each
factor pooled) and overall. A channel counts as identified unless the ROAS frame's boolean ``identified``
column says otherwise. Targets (issue 17): 94% coverage >= 88% and mean error < 20% on the identified
channels without experiments; mean error < 10% with one go-dark test per channel.

Fits at the pipeline's draws cost from about a minute (a short weekly world) to over ten (four daily years of
eight channels) on 2 cores, so by default the run fits as many worlds as start within ``--minutes`` (25) and
prints the seed and count that draw the same worlds again. Every fit imports one snapshot of ``src/stackml``
taken at the start, so a model edited during the run does not mix versions.

Run from the repository root:
    .venv/bin/python bench/mmm_calibration.py                    # ~25-40 min; writes bench/results/
    .venv/bin/python bench/mmm_calibration.py --seed 7 --worlds 24   # a fixed set of worlds
    .venv/bin/python bench/mmm_calibration.py --quick --no-write     # 4 worlds, 200 draws, 2 chains: plumbing
    .venv/bin/python bench/mmm_calibration.py --check-worlds 500     # the truth checks alone, no fitting
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, run_measured, write_results
from _mmm_worlds import FREQS, L_MAX, LIFT_SE, SEQUENCE, SPEND_PATTERNS, check_world, draw_world

RESULTS = REPO / "bench" / "results" / "mmm_calibration.md"
ROWS_CSV = RESULTS.with_name("mmm_calibration_rows.csv")
VARIANTS = ("previous default", "uncalibrated", "go-dark")
# The default before issue 17 (logistic saturation, 8 lags, a half-normal prior on the coefficients of the
# scaled model), fitted beside today's on the same worlds.
PREVIOUS_DEFAULT = {
    "saturation": "logistic",
    "l_max": 8,
    "priors": {"beta": ("HalfNormal", {"sigma": 1.0})},
}
DEFAULT_MINUTES = 25
GROUPS = tuple(
    f"{f}-{p}" for f in FREQS for p in SPEND_PATTERNS
)  # the table's rows: kinds pooled over saturation
QUICK = {"worlds": 4, "draws": 200, "tune": 200, "chains": 2}  # --quick: the plumbing, not the numbers
TARGET_COVERAGE, TARGET_ERROR, TARGET_ERROR_CALIBRATED = 0.88, 0.20, 0.10


def world_of(seed: int, index: int):
    """World ``index`` of a run with base ``seed``; kinds come in the order of ``_mmm_worlds.SEQUENCE``."""
    import numpy as np

    return draw_world(np.random.default_rng([seed, index]), SEQUENCE[index % len(SEQUENCE)])


def fingerprint(world) -> float:
    """A number that changes with any of the world's data, to prove the worker fitted the same world."""
    return float(world.frame["revenue"].sum() + world.spend.sum())


# -- the worker: one fit, in a subprocess --------------------------------------------------------------------
def work(job: dict[str, Any]) -> dict[str, Any]:
    import stackml
    from stackml.mmm import MediaMixModel, outputs
    from stackml.mmm.calibration import LIFT_TEST_COLUMNS

    world = world_of(job["seed"], job["world"])
    lift = world.lift_tests[list(LIFT_TEST_COLUMNS)] if job["variant"] == "go-dark" else None
    model = MediaMixModel(
        world.date_column,
        list(world.channels),
        world.target_column,
        control_columns=list(world.controls),
        **(PREVIOUS_DEFAULT if job["variant"] == "previous default" else {}),
    )
    started = time.perf_counter()
    model.fit(world.frame, random_state=job["random_state"], lift_tests=lift, **job["fit"])
    fit_seconds = time.perf_counter() - started
    wide, narrow = outputs.roas(model, 0.94), outputs.roas(model, 0.50)
    has_flag = "identified" in wide.columns
    extra = [c for c in ("sd_ratio", "note") if c in wide.columns]  # what the model says about identification
    channels = {
        c: {
            "mean": float(wide.loc[c, "mean"]),
            "median": float(wide.loc[c, "median"]),
            "sd": float(wide.loc[c, "sd"]),
            "hdi94_low": float(wide.loc[c, "hdi_low"]),
            "hdi94_high": float(wide.loc[c, "hdi_high"]),
            "hdi50_low": float(narrow.loc[c, "hdi_low"]),
            "hdi50_high": float(narrow.loc[c, "hdi_high"]),
            "identified": bool(wide.loc[c, "identified"]) if has_flag else True,
            **{k: _plain(wide.loc[c, k]) for k in extra},
        }
        for c in world.channels
    }
    return {
        "fingerprint": fingerprint(world),
        "stackml_path": str(Path(stackml.__file__).resolve().parent),
        "channels": channels,
        "identified_source": "model" if has_flag else "absent (all counted)",
        "fit_seconds": fit_seconds,
        "sampler": model.fit_stats_.get("sampler"),
        "model_saturation": model.fit_stats_.get("saturation"),
        "compile_seconds": model.fit_stats_.get("compile_seconds"),
        "sampling_seconds": model.fit_stats_.get("sampling_seconds"),
        **_health(model),
    }


def _plain(value: Any) -> Any:
    """A JSON-ready scalar from a frame cell."""
    if isinstance(value, str) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _health(model) -> dict[str, Any]:
    from stackml.mmm import diagnose

    try:
        report = diagnose(model, min_ess=0)
    except Exception as exc:  # noqa: BLE001 - the scores matter more than the health report; say why it is missing
        return {"divergences": None, "max_rhat": None, "min_ess": None, "r2": None, "health_error": repr(exc)}
    return {
        "divergences": int(report.divergences),
        "max_rhat": float(report.max_rhat),
        "min_ess": float(report.min_ess),
        "r2": float(report.r2),
    }


# -- the driver ----------------------------------------------------------------------------------------------
def snapshot_source(root: Path) -> str:
    """Copy ``src/stackml`` under ``root``, so every fit of a run imports the same model while the working
    tree changes (the model is developed beside this benchmark). Returns a short hash of the copied files."""
    target = root / "stackml"
    shutil.copytree(REPO / "src" / "stackml", target, ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def run_fit(job: dict[str, Any], timeout_s: int, source: Path) -> dict[str, Any]:
    """One fit in a fresh interpreter under ``timeout``, importing stackml from ``source``; a failure comes
    back as a result, not raised."""
    path = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore", "PYTHONPATH": path}
    cmd = [
        "timeout",
        "--kill-after=30",
        str(timeout_s),
        sys.executable,
        __file__,
        "--worker",
        json.dumps(job),
    ]
    measured = run_measured(cmd, env=env)
    lines = [x for x in measured.stdout.splitlines() if x.startswith("RESULT ")]
    if measured.returncode != 0 or not lines:
        why = "timed out" if measured.returncode in (124, 137) else f"exit code {measured.returncode}"
        tail = measured.stderr.strip().splitlines()[-6:]
        return {"ok": False, "error": f"{why}: " + " | ".join(tail), "process_seconds": measured.seconds}
    result = json.loads(lines[-1][len("RESULT ") :])
    result |= {"ok": True, "process_seconds": measured.seconds, "peak_rss_mb": measured.peak_rss_mb}
    if Path(result["stackml_path"]) != (source / "stackml").resolve():
        result |= {"ok": False, "error": f"the worker imported stackml from {result['stackml_path']}"}
    return result


def channel_rows(seed: int, index: int, world, variant: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw per-channel rows of one fit: the world's truth beside the model's estimate."""
    s = world.settings
    base = {
        "seed": seed,
        "world": index,
        "kind": s["kind"],
        "group": f"{s['freq']}-{s['spend_pattern']}",
        "freq": s["freq"],
        "saturation": s["saturation"],
        "spend_pattern": s["spend_pattern"],
        "years": s["years"],
        "n_periods": s["n_periods"],
        "n_channels": s["n_channels"],
        "rho": s["rho"],
        "noise_share": s["noise_share"],
        "media_share": s["media_share"],
        "variant": variant,
        "ok": result["ok"],
        "error": result.get("error", ""),
    }
    health = {
        k: result.get(k)
        for k in (
            "divergences",
            "max_rhat",
            "min_ess",
            "r2",
            "fit_seconds",
            "sampling_seconds",
            "sampler",
            "model_saturation",
        )
    }
    health["process_seconds"] = result["process_seconds"]
    health["identified_source"] = result.get("identified_source", "")
    rows = []
    tests = world.lift_tests.set_index("channel")
    for channel, truth in world.truth.iterrows():
        row = base | {"channel": channel, "true_roas": float(truth["roas"])}
        row |= {k: truth[k] for k in ("spend_share", "contribution_share", "adstock", "alpha", "theta")}
        row |= {k: truth[k] for k in ("lam", "k", "s", "flighted", "zero_share", "tail_beyond_8")}
        row |= {
            "lift_true_effect": float(tests.loc[channel, "true_effect"]),
            "lift_reported": float(tests.loc[channel, "incremental_target"]),
        }
        est = result.get("channels", {}).get(channel)
        if est is not None:
            truth_roas = row["true_roas"]
            row |= est | {
                "covered94": est["hdi94_low"] <= truth_roas <= est["hdi94_high"],
                "covered50": est["hdi50_low"] <= truth_roas <= est["hdi50_high"],
                "abs_rel_error": abs(est["mean"] - truth_roas) / truth_roas,
                "signed_rel_error": (est["mean"] - truth_roas) / truth_roas,
            }
        rows.append(row | health)
    return rows


def world_jobs(seed: int, index: int, fit: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "seed": seed,
            "world": index,
            "variant": v,
            "random_state": (seed * 1009 + index) % 2**31,
            "fit": fit,
        }
        for v in VARIANTS
    ]


def run_all(
    args,
    seed: int,
    source: Path,
    done_rows: list[dict[str, Any]],
    save: Callable[[list[dict[str, Any]]], None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Fit worlds 0, 1, 2, ... (``--jobs`` fits at a time): ``--worlds`` of them, or, without it, as many as
    start within ``--minutes``. Each world's truth is checked before its fits; fits already in ``done_rows``
    (a resumed run) are not repeated; ``save`` gets every row so far after each fit. Returns (channel rows,
    failed fits, worlds fitted)."""
    fit = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    deadline = None if args.worlds else time.perf_counter() + 60 * args.minutes
    done = {(int(r["world"]), r["variant"]) for r in done_rows}
    worlds: dict[int, Any] = {}
    pending: list[dict[str, Any]] = []
    rows, failures = list(done_rows), []
    started = time.perf_counter()

    def next_job() -> dict[str, Any] | None:
        while not pending:
            index = len(worlds)
            if args.worlds and index >= args.worlds:
                return None
            todo = [v for v in VARIANTS if (index, v) not in done]
            if todo and deadline and time.perf_counter() > deadline:
                return None
            world = world_of(seed, index)
            check_world(world)  # the answer key first: a wrong truth must stop the run before a fit
            worlds[index] = world
            pending.extend(j for j in world_jobs(seed, index, fit) if j["variant"] in todo)
        return pending.pop(0)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        running = {}
        done_count = 0
        while True:
            while len(running) < args.jobs and (job := next_job()) is not None:
                running[pool.submit(run_fit, job, args.fit_timeout, source)] = job
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job, result = running.pop(future), future.result()
                done_count += 1
                world = worlds[job["world"]]
                expected = fingerprint(world)
                if result["ok"] and abs(result["fingerprint"] - expected) > 1e-9 * abs(expected):
                    result = result | {"ok": False, "error": "the worker fitted another world"}
                if not result["ok"]:
                    failures.append(
                        {"world": job["world"], "kind": world.kind, "variant": job["variant"]} | result
                    )
                new = channel_rows(seed, job["world"], world, job["variant"], result)
                rows.extend(r | {"model_source": args.source_hash} for r in new)
                save(rows)  # a run cut short keeps what it measured (and --resume continues it)
                print(progress_line(done_count, started, job, world, result), flush=True)
    return rows, failures, len({int(r["world"]) for r in rows})


def resumed_rows(seed: int) -> list[dict[str, Any]]:
    """The successful fits of an earlier run with ``seed``, from the rows CSV it left."""
    import pandas as pd

    if not ROWS_CSV.exists():
        return []
    frame = pd.read_csv(ROWS_CSV)
    frame = frame[(frame["seed"] == seed) & (frame["ok"].astype(str) == "True")]
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for r in records:  # the CSV holds text; the scores need booleans
        for key in ("ok", "covered50", "covered94", "identified", "flighted"):
            r[key] = str(r[key]) == "True"
    return records


def progress_line(done: int, started: float, job: dict[str, Any], world, result: dict[str, Any]) -> str:
    s = world.settings
    if not result["ok"]:
        state = "FAILED " + result["error"][:200]
    elif result.get("max_rhat") is None:
        state = "ok"
    else:
        state = f"{result['divergences']} divergences, r_hat {result['max_rhat']:.3f}"
    return (
        f"  [{done} fits, {time.perf_counter() - started:,.0f} s] world {job['world']} {world.kind} "
        f"({s['n_periods']} periods, {s['n_channels']} channels) {job['variant']}: "
        f"{result['process_seconds']:.0f} s, {state}"
    )


# -- scoring -------------------------------------------------------------------------------------------------
def groups() -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    """Table rows: each frequency x spend pattern, then each factor on its own, then everything."""
    out: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        (g, lambda r, g=g: r["group"] == g) for g in GROUPS
    ]
    out += [("all weekly", lambda r: r["freq"] == "W"), ("all daily", lambda r: r["freq"] == "D")]
    out += [(f"all {s}", lambda r, s=s: r["saturation"] == s) for s in ("logistic", "hill")]
    out += [(f"all {p}", lambda r, p=p: r["spend_pattern"] == p) for p in SPEND_PATTERNS]
    out.append(("overall", lambda r: True))
    return out


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage, errors and the identified share of a set of channel rows (fitted ones only)."""
    fitted = [r for r in rows if r["ok"]]
    if not fitted:
        return {"worlds": 0, "channels": 0}
    errors = [r["abs_rel_error"] for r in fitted]
    return {
        "worlds": len({r["world"] for r in fitted}),
        "channels": len(fitted),
        "cov50": statistics.mean(r["covered50"] for r in fitted),
        "cov94": statistics.mean(r["covered94"] for r in fitted),
        "mean_error": statistics.mean(errors),
        "median_error": statistics.median(errors),
        "identified": statistics.mean(r["identified"] for r in fitted),
    }


SELECTIONS = {
    "p": ("previous default, uncalibrated, all channels", "previous default", False),
    "q": ("previous default, uncalibrated, channels it flags identified", "previous default", True),
    "a": ("uncalibrated, all channels", "uncalibrated", False),
    "b": ("uncalibrated, identified channels", "uncalibrated", True),
    "c": ("one go-dark test per channel, all channels", "go-dark", False),
}


def select(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    _, variant, identified_only = SELECTIONS[key]
    return [
        r for r in rows if r["variant"] == variant and (not identified_only or (r["ok"] and r["identified"]))
    ]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _pct1(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def score_table(rows: list[dict[str, Any]], key: str) -> str:
    table = []
    chosen = select(rows, key)
    for label, keep in groups():
        mine = [r for r in chosen if keep(r)]
        failed = len({r["world"] for r in mine if not r["ok"]})
        s = score(mine)
        table.append(
            [
                label,
                s["worlds"],
                s["channels"],
                _pct(s.get("cov50")),
                _pct(s.get("cov94")),
                _pct1(s.get("mean_error")),
                _pct1(s.get("median_error")),
                _pct(s.get("identified")),
                failed,
            ]
        )
    headers = [
        "world kind",
        "worlds",
        "channels",
        "50% cov.",
        "94% cov.",
        "mean ROAS err",
        "median err",
        "identified",
        "failed fits",
    ]
    return f"### ({key}) {SELECTIONS[key][0]}\n\n" + markdown_table(headers, table)


def health_table(rows: list[dict[str, Any]]) -> str:
    """Sampler health per group and variant: one row per fit, taken from its first channel row."""
    fits = {}
    for r in rows:
        fits.setdefault((r["world"], r["variant"]), r)
    table = []
    for label, keep in [*groups()[: len(GROUPS)], groups()[-1]]:
        cells = [label]
        for variant in VARIANTS:
            mine = [f for f in fits.values() if f["variant"] == variant and keep(f) and f["ok"]]
            divergent = sum(1 for f in mine if (f["divergences"] or 0) > 0)
            rhats = [f["max_rhat"] for f in mine if f["max_rhat"] is not None]
            seconds = [f["process_seconds"] for f in mine]
            cells += [
                len(mine),
                divergent,
                f"{max(rhats):.3f}" if rhats else "-",
                f"{statistics.median(seconds):.0f}" if seconds else "-",
            ]
        table.append(cells)
    headers = ["world kind"]
    for variant in VARIANTS:
        headers += [f"{variant}: fits", "with divergences", "max r_hat", "median s"]
    return markdown_table(headers, table)


def targets_table(rows: list[dict[str, Any]]) -> str:
    b, c = score(select(rows, "b")), score(select(rows, "c"))

    def verdict(value: float | None, ok: Callable[[float], bool]) -> str:
        return "FAIL" if value is None else ("PASS" if ok(value) else "FAIL")

    table = [
        [
            f"94% ROAS interval coverage >= {TARGET_COVERAGE:.0%} (uncalibrated, identified channels)",
            f"{_pct(b.get('cov94'))} of {b['channels']} channels",
            verdict(b.get("cov94"), lambda v: v >= TARGET_COVERAGE),
        ],
        [
            f"mean ROAS error < {TARGET_ERROR:.0%} (uncalibrated, identified channels)",
            f"{_pct1(b.get('mean_error'))} over {b['channels']} channels",
            verdict(b.get("mean_error"), lambda v: v < TARGET_ERROR),
        ],
        [
            f"mean ROAS error < {TARGET_ERROR_CALIBRATED:.0%} (one go-dark test per channel)",
            f"{_pct1(c.get('mean_error'))} over {c['channels']} channels",
            verdict(c.get("mean_error"), lambda v: v < TARGET_ERROR_CALIBRATED),
        ],
    ]
    return markdown_table(["target", "measured", "verdict"], table)


def report(rows: list[dict[str, Any]], failures: list[dict[str, Any]], args, seed: int, n_worlds: int) -> str:
    flag = {r["identified_source"] for r in rows if r["ok"]}
    how = (
        f"--worlds {args.worlds}" if args.worlds else f"as many as started within --minutes {args.minutes:g}"
    )
    lines = [
        "## Targets\n",
        targets_table(rows),
        "\n## ROAS coverage and error by world kind\n",
        f"Seed {seed}, {n_worlds} worlds ({how}; `--seed {seed} --worlds {n_worlds}` draws the same ones "
        f"again); fits: draws {args.draws}, tune {args.tune}, chains {args.chains}, the default model "
        "otherwise (its saturation curve: Hill without lift tests, logistic with them; `model_saturation` in "
        "the rows CSV). Rows are `<W|D>-<spend pattern>` (each pools logistic and Hill worlds; a run draws "
        "the "
        "12 kinds `<W|D>-<logistic|hill>-<spend pattern>` in a fixed interleaved order), then each factor "
        "pooled on its own. Coverage: the share of channels whose true ROAS lies inside the 50% / 94% HDI of "
        "`outputs.roas` (nominal 50% / 94%). Error: |posterior mean - true ROAS| / true ROAS per channel. "
        "identified: the share of channels the model flags as identified "
        f"(flag: {', '.join(sorted(flag)) or '-'}). failed fits: worlds whose fit of this variant failed.\n",
        *(score_table(rows, key) + "\n" for key in SELECTIONS),
        "## Sampler health\n",
        "Fits per world kind (each row counts fits, not channels); divergences and r_hat from "
        "`stackml.mmm.diagnose`; seconds are the whole subprocess (imports, compile, sampling, scoring).\n",
        health_table(rows),
        "\n## The worlds\n",
        WORLD_FAMILY,
    ]
    if failures:
        lines += ["\n## Failed fits\n"]
        lines += [f"- world {f['world']} ({f['kind']}), {f['variant']}: {f['error'][:400]}" for f in failures]
    return "\n".join(lines)


WORLD_FAMILY = f"""\
Drawn by `bench/_mmm_worlds.py` (bench-only, independent of `stackml.mmm.simulation`); every world's truth
is checked before any fit (`check_world`: revenue equals the sum of its parts; each channel's contribution
equals a loop-by-loop textbook recomputation; each lift test's true effect equals the channel's contribution
recomputed with `stackml.mmm.calibration.counterfactual_spend`, summed over the window and the carryover
after it).

- 2-8 channels (weekly worlds keep at least 20 + 8 x channels weeks), 1-4 years, weekly or daily.
- Spend: log-normal around a per-channel level (1,000-50,000 a week) with smooth AR(1) variation and a
  seasonal push; `independent`: rho = 0; `correlated`: a common factor carries a share rho ~ U(0.3, 0.8) of
  the log-spend variance; `flighted`: rho ~ U(0, 0.8) and 25-60% of the channels (at least one) on air in
  bursts (2-8 weeks on, 2-8 off; daily 7-42 days) with zero spend between them.
- Media: spend / its maximum, adstocked (half the channels geometric, alpha ~ U(0.05, 0.75) a week or U(0.3,
  0.85) a day; half delayed `alpha^((l - theta)^2)`, alpha ~ U(0.3, 0.8), peak theta ~ U(1, 3) weeks or U(1,
  4) days; normalised weights over l_max {L_MAX["W"]} weeks or {L_MAX["D"]} days), then saturated (logistic,
  lam ~ U(0.5, 5), or Hill, k ~ U(0.15, 0.9), s ~ U(0.8, 3)), times a coefficient set so the channel's true
  ROAS ~ U(0.3, 6). The default model's carryover runs 8 periods, and 21 days on daily data, so every
  world's carryover lies inside it (`tail_beyond_8` in the rows CSV: the share past 8 periods).
- Baseline: a level set so media make 10-40% of revenue, linear trend (-20% to +50% over the period), yearly
  seasonality (two harmonics, up to 15% and 6% of the level), a price index (1 + AR(1), sd 2-6%, elasticity
  -3 to -0.8) and a promo flag (5-20% of periods, +5% to +25%), Gaussian noise 3-15% of the level.
- Truth: ROAS = true contribution over the simulated period / spend over it (`outputs.roas`'s definition; no
  spend before the first period). Lift tests: one go-dark test per channel, 4-8 weeks (28-56 days) in a
  window with at least half the typical spend; true `incremental_target` = the change of the channel's
  contribution, carryover after the window included; reported value = truth + N(0, SE), SE = {LIFT_SE:.0%}
  of the effect = `incremental_target_sd`."""


def main() -> None:
    from stackml.mmm.config import config_default

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worlds", type=int, default=None, help="worlds to fit (default: as many as start within --minutes)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help="without --worlds: start no new world after this many minutes (fits in flight finish)",
    )
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: a fresh one, printed)")
    parser.add_argument("--draws", type=int, default=None, help=f"default {config_default('draws')}")
    parser.add_argument("--tune", type=int, default=None, help=f"default {config_default('tune')}")
    parser.add_argument("--chains", type=int, default=None, help=f"default {config_default('chains')}")
    parser.add_argument("--jobs", type=int, default=2, help="fits run at the same time")
    parser.add_argument("--fit-timeout", type=int, default=3600, help="seconds before a fit counts as failed")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 worlds, 200 draws, 200 tune, 2 chains"
    )
    parser.add_argument("--check-worlds", type=int, default=0, help="only draw and check this many worlds")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not write {RESULTS.name}")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"with --seed: keep the successful fits of that seed in {ROWS_CSV.name} and fit the rest "
        "(each row's model_source says which snapshot of src/stackml made it)",
    )
    args = parser.parse_args()
    if args.resume and args.seed is None:
        parser.error("--resume needs the --seed of the run to continue")
    if args.worker:
        print("RESULT " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    seed_given = args.seed is not None
    seed = args.seed if seed_given else time.time_ns() // 1000 % 1_000_000
    if args.check_worlds:
        for index in range(args.check_worlds):
            check_world(world_of(seed, index))
        print(f"seed {seed}: the truth of {args.check_worlds} worlds checks out")
        return
    defaults = QUICK if args.quick else {k: config_default(k) for k in ("draws", "tune", "chains")}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    worlds = f"{args.worlds} worlds" if args.worlds else f"worlds started within {args.minutes:g} min"
    print(
        f"seed {seed} ({'given' if seed_given else 'fresh; repeat with --seed ' + str(seed)}); {worlds}, "
        f"{len(VARIANTS)} fits each; draws {args.draws}, tune {args.tune}, chains {args.chains}; "
        f"{args.jobs} fits at a time",
        flush=True,
    )
    started, load_start = time.perf_counter(), os.getloadavg()
    done_rows = resumed_rows(seed) if args.resume else []
    if args.resume:
        fits = {(r["world"], r["variant"]) for r in done_rows}
        print(f"resuming: {len(fits)} fits of seed {seed} already in {ROWS_CSV.name}", flush=True)

    def save(rows: list[dict[str, Any]]) -> None:
        if not args.no_write:
            import pandas as pd

            ROWS_CSV.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(ROWS_CSV, index=False)

    with tempfile.TemporaryDirectory(prefix="mmm-calibration-src-") as source:
        source_hash = args.source_hash = snapshot_source(Path(source))
        print(f"fits import a snapshot of src/stackml (files hash {source_hash})", flush=True)
        rows, failures, n_worlds = run_all(args, seed, Path(source), done_rows, save)
    rows.sort(key=lambda r: (r["world"], r["variant"], r["channel"]))
    body = report(rows, failures, args, seed, n_worlds)
    elapsed, load_end = time.perf_counter() - started, os.getloadavg()
    body += (
        f"\n\n## Conditions\n\nTotal run time {elapsed:,.0f} s ({args.jobs} fits at a time). Load average "
        f"(1/5/15 min) {load_start[0]:.1f}/{load_start[1]:.1f}/{load_start[2]:.1f} at the start and "
        f"{load_end[0]:.1f}/{load_end[1]:.1f}/{load_end[2]:.1f} at the end. Every fit imported one "
        f"snapshot of `src/stackml` taken at the start (files hash {source_hash}; the commit below may carry "
        f"uncommitted model changes). Raw per-channel rows: `{ROWS_CSV.relative_to(REPO)}`.\n"
    )
    print("\n" + body, flush=True)
    if not args.no_write:
        command = [".venv/bin/python", "bench/mmm_calibration.py", *sys.argv[1:]]
        if not seed_given:
            command += ["--seed", str(seed)]
        info = machine_info(["pymc", "pytensor", "nutpie", "numba", "numpy", "arviz"])
        write_results(RESULTS, "MMM benchmark: simulation-based calibration of ROAS", command, info, body)
        save(rows)
        print(f"wrote {RESULTS} and {ROWS_CSV}")


if __name__ == "__main__":
    main()
