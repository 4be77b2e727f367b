"""Benchmark: ``stackml.monitoring`` drift against Evidently's ``DataDriftPreset`` (default settings).

Target (issue #11): at 1M rows x 20 columns, per-column drift decisions agree with Evidently's on at least 99%
of columns, and stackml is at least 10x faster; false alarms on clean data and missed planted shifts are
counted for both.

How each number is taken:
  * one seeded synthetic table per size (20 columns: 12 floats, a count, a 1-5 rating, a bool, 5 text
    categories), a reference and two currents drawn from it: ``clean`` (a fresh draw of the same
    distributions) and ``shifted`` (the same draw with planted shifts: a mean shift of 0.5 sd in ``age``,
    a 1.5x standard deviation in ``temp``, a new category in 10% of ``country`` rows, and 20% missing
    values in ``amount`` and ``device``); the frames are written to Parquet once and both tools read the same
    files;
  * each tool runs in its own process per size and scenario (Evidently in an interpreter that has it; see
    ``--evidently-python``): load the frames (not timed), one warm-up call on the first 1,000 rows (imports,
    caches), then the timed call(s); wall time is the best of ``--repeat`` calls, except at 1M rows where
    Evidently runs once;
  * peak memory is the growth of the process's resident-set high-water mark over the timed calls (the mark
    is reset through ``/proc/self/clear_refs`` before them): the same kernel counter for both tools, no
    tracing overhead;
  * stackml: ``dataset_drift(reference, current)`` with default ``DriftOptions`` (every core), and
    separately ``quality_checks(reference, current)``; Evidently: ``Report([DataDriftPreset()]).run(current,
    reference)``, decisions read from each ``ValueDrift`` (method, threshold, score) and checked against its
    ``DriftedColumnsCount``;
  * a planted shift is "detected" by drift when the column drifted; missing values are not a drift of the
    values (both tools drop them, as Evidently documents), so the table also says whether stackml's quality
    checks flagged them.

Run from the repository root:
    .venv/bin/python bench/monitoring.py                  # 1k, 10k, 100k, 1M rows; ~10-20 min on 2 cores
    .venv/bin/python bench/monitoring.py --quick --no-write   # 10k and 100k: the plumbing

Evidently pins plotly<6 and stackml pins plotly 7, so Evidently lives in a venv of its own by default:
    .venv/bin/python -m venv bench/.cache/evidently-venv
    grep -v '^plotly==' constraints.txt > /tmp/constraints-evidently.txt
    bench/.cache/evidently-venv/bin/pip install -c /tmp/constraints-evidently.txt evidently==0.7.23 'plotly<6'
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, run_measured, write_results  # noqa: E402

RESULTS = REPO / "bench" / "results" / "monitoring.md"
CACHE = REPO / "bench" / ".cache" / "monitoring"
EVIDENTLY_VENV_PYTHON = REPO / "bench" / ".cache" / "evidently-venv" / "bin" / "python"
SIZES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [10_000, 100_000]
SCENARIOS = ["clean", "shifted"]
PLANTED = {"age": "mean shift", "temp": "variance change", "country": "new category"}
PLANTED_MISSING = {"amount": "missing values", "device": "missing values"}
TARGET_SPEEDUP = 10.0
TARGET_AGREEMENT = 0.99
WARMUP_ROWS = 1_000

# Evidently's display name of each test -> (our name, whether a score at the threshold drifts)
EVIDENTLY_TESTS = {
    "K-S p_value": ("ks", "p_le"),
    "chi-square p_value": ("chisquare", "p_lt"),
    "Z-test p_value": ("z", "p_lt"),
    "Wasserstein distance (normed)": ("wasserstein", "ge"),
    "Jensen-Shannon distance": ("jensenshannon", "ge"),
    "PSI": ("psi", "ge"),
}


# -- data ----------------------------------------------------------------------------------------------------
def generate(n: int, seed: int) -> dict[str, Any]:
    """A reference and the ``clean`` and ``shifted`` currents of ``n`` rows, all from ``seed``."""
    import numpy as np
    import pandas as pd

    def draw(rng: np.random.Generator) -> pd.DataFrame:
        frame = {
            "amount": rng.lognormal(3.0, 0.8, n),
            "age": rng.normal(40.0, 12.0, n),
            "score": rng.beta(2.0, 5.0, n),
            "latency": rng.exponential(120.0, n),
            "temp": rng.normal(15.0, 6.0, n),
        }
        for i in range(7):
            frame[f"x{i}"] = rng.normal(i, 1.0 + i / 3, n) if i % 2 else rng.uniform(-i, i + 1.0, n)
        frame["visits"] = rng.poisson(20, n)  # integers, > 10 distinct values: numeric
        frame["rating"] = rng.integers(1, 6, n)  # integers, 5 distinct values: categorical
        frame["is_member"] = rng.random(n) < 0.3
        frame["country"] = rng.choice(
            ["US", "DE", "FR", "GB", "IN", "BR", "JP", "ES"], n, p=[0.3, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05]
        )
        frame["device"] = rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2])
        frame["plan"] = rng.choice(["free", "basic", "pro", "team"], n, p=[0.5, 0.25, 0.15, 0.1])
        frame["channel"] = rng.choice(["ads", "seo", "email", "social", "direct", "partner"], n)
        frame["segment"] = rng.choice([f"s{i:02d}" for i in range(12)], n)
        return pd.DataFrame(frame)

    rng = np.random.default_rng(seed)
    reference, clean, shifted = draw(rng), draw(rng), draw(rng)
    shifted["age"] = shifted["age"] + 6.0  # 0.5 sd
    shifted["temp"] = 15.0 + (shifted["temp"] - 15.0) * 1.5
    new = rng.random(n) < 0.10
    shifted["country"] = shifted["country"].where(~new, "XX")
    shifted["amount"] = shifted["amount"].mask(rng.random(n) < 0.20)
    shifted["device"] = shifted["device"].astype(object).mask(rng.random(n) < 0.20, None)
    return {"reference": reference, "clean": clean, "shifted": shifted}


def write_data(n: int, seed: int) -> Path:
    """The Parquet files of one size (reused when the seed and size match)."""
    folder = CACHE / f"seed{seed}-n{n}"
    if all((folder / f"{name}.parquet").exists() for name in ["reference", *SCENARIOS]):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in generate(n, seed).items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


# -- workers (each in its own process) -----------------------------------------------------------------------
def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _status_kib(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _measure(call: Any, repeat: int) -> tuple[Any, float, float]:
    """Best wall time of ``repeat`` calls and the growth of the RSS high-water mark over them (MiB)."""
    _reset_peak()
    before = _status_kib("VmRSS")
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    peak = _status_kib("VmHWM")
    return result, best, max(peak - before, 0.0) / 1024


def worker(args: argparse.Namespace) -> None:
    import pandas as pd

    reference = pd.read_parquet(Path(args.data) / "reference.parquet")
    current = pd.read_parquet(Path(args.data) / f"{args.scenario}.parquet")
    out: dict[str, Any] = {"rows": len(current)}
    if args.tool == "stackml":
        from stackml.monitoring.drift import dataset_drift
        from stackml.monitoring.quality import quality_checks

        dataset_drift(reference.head(WARMUP_ROWS), current.head(WARMUP_ROWS))
        quality_checks(reference.head(WARMUP_ROWS), current.head(WARMUP_ROWS))
        result, seconds, peak = _measure(lambda: dataset_drift(reference, current), args.repeat)
        out["columns"] = {
            str(name): {"test": c.test, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
            for name, c in result.columns.items()
        }
        out["count"] = result.n_drifted
        out["dataset_drift"] = result.drifted
        quality, q_seconds, q_peak = _measure(lambda: quality_checks(reference, current), args.repeat)
        out["quality_broken"] = sorted({str(c.column) for c in quality.checks if c.broken and c.column})
        out["quality_seconds"], out["quality_peak_mb"] = q_seconds, q_peak
    else:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        def run(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
            return Report([DataDriftPreset()]).run(cur, ref).dict()

        run(reference.head(WARMUP_ROWS), current.head(WARMUP_ROWS))
        snapshot, seconds, peak = _measure(lambda: run(reference, current), args.repeat)
        out.update(_evidently_decisions(snapshot))
    out["seconds"], out["peak_mb"] = seconds, peak
    print(json.dumps(out, default=float))


def _evidently_decisions(snapshot: dict) -> dict[str, Any]:
    columns, count, share = {}, None, None
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            count, share = metric["value"]["count"], metric["value"]["share"]
        elif config["type"].endswith("ValueDrift"):
            test, rule = EVIDENTLY_TESTS[config["method"]]
            score, threshold = float(metric["value"]), float(config["threshold"])
            drifted = (
                score <= threshold
                if rule == "p_le"
                else score < threshold
                if rule == "p_lt"
                else (score >= threshold)
            )
            columns[config["column"]] = {
                "test": test,
                "score": score,
                "threshold": threshold,
                "drifted": drifted,
            }
    if count is not None and int(count) != sum(c["drifted"] for c in columns.values()):
        raise SystemExit(f"Evidently's DriftedColumnsCount ({count}) disagrees with its ValueDrift decisions")
    return {"columns": columns, "count": count, "dataset_drift": share is not None and share >= 0.5}


# -- the run -------------------------------------------------------------------------------------------------
@dataclass
class Case:
    tool: str
    rows: int
    scenario: str
    seconds: float
    peak_mb: float
    process_rss_mb: float
    columns: dict[str, dict]
    dataset_drift: bool
    quality_broken: list[str]
    quality_seconds: float | None


def run_case(tool: str, python: str, folder: Path, n: int, scenario: str, repeat: int) -> Case:
    cmd = [python, str(Path(__file__).resolve()), "worker", "--tool", tool, "--data", str(folder)]
    cmd += ["--scenario", scenario, "--repeat", str(repeat)]
    env = {**os.environ, "EVIDENTLY_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    measured = run_measured(cmd, env=env, cwd=REPO).check(f"{tool} on {n:,} rows ({scenario})")
    report = json.loads(measured.stdout.strip().splitlines()[-1])
    if report["rows"] != n:
        sys.exit(f"{tool} read {report['rows']} rows; expected {n}")
    return Case(
        tool=tool,
        rows=n,
        scenario=scenario,
        seconds=report["seconds"],
        peak_mb=report["peak_mb"],
        process_rss_mb=measured.peak_rss_mb,
        columns=report["columns"],
        dataset_drift=report["dataset_drift"],
        quality_broken=report.get("quality_broken", []),
        quality_seconds=report.get("quality_seconds"),
    )


def evidently_python(args: argparse.Namespace) -> str:
    if args.evidently_python:
        return args.evidently_python
    probe = subprocess.run([sys.executable, "-c", "import evidently"], capture_output=True, check=False)
    if probe.returncode == 0:
        return sys.executable
    if EVIDENTLY_VENV_PYTHON.exists():
        return str(EVIDENTLY_VENV_PYTHON)
    sys.exit(
        "Evidently is not installed. It pins plotly<6 while stackml pins plotly 7, so give it a venv of its "
        "own (see the top of bench/monitoring.py) or pass --evidently-python PATH."
    )


def summarise(cases: list[Case]) -> tuple[list[list[object]], dict[int, dict[str, float]]]:
    """One row per size: agreement, false alarms, misses, time, memory; and the numbers the verdict uses."""
    rows, verdict = [], {}
    sizes = sorted({c.rows for c in cases})
    for n in sizes:
        pick = {(c.tool, c.scenario): c for c in cases if c.rows == n}
        agree = total = 0
        disagreements = []
        for scenario in SCENARIOS:
            ours, theirs = pick[("stackml", scenario)].columns, pick[("evidently", scenario)].columns
            for column in ours:
                total += 1
                if column in theirs and ours[column]["drifted"] == theirs[column]["drifted"]:
                    agree += 1
                else:
                    disagreements.append(f"{scenario}/{column}")
        counts = {}
        for tool in ("stackml", "evidently"):
            clean, shifted = pick[(tool, "clean")], pick[(tool, "shifted")]
            false_clean = sum(c["drifted"] for c in clean.columns.values())
            false_shifted = sum(
                v["drifted"]
                for k, v in shifted.columns.items()
                if k not in PLANTED and k not in PLANTED_MISSING
            )
            missed = [k for k in PLANTED if not shifted.columns.get(k, {}).get("drifted")]
            missed_missing = [k for k in PLANTED_MISSING if not shifted.columns.get(k, {}).get("drifted")]
            counts[tool] = (false_clean, false_shifted, missed, missed_missing)
        ours_s = pick[("stackml", "shifted")]
        caught_by_quality = [k for k in PLANTED_MISSING if k in ours_s.quality_broken]
        ours_time = max(pick[("stackml", s)].seconds for s in SCENARIOS)
        their_time = max(pick[("evidently", s)].seconds for s in SCENARIOS)
        verdict[n] = {"agreement": agree / total, "speedup": their_time / ours_time}
        for tool in ("stackml", "evidently"):
            false_clean, false_shifted, missed, missed_missing = counts[tool]
            time_s = ours_time if tool == "stackml" else their_time
            peak = max(pick[(tool, s)].peak_mb for s in SCENARIOS)
            rss = max(pick[(tool, s)].process_rss_mb for s in SCENARIOS)
            quality = (
                f"{len(caught_by_quality)}/{len(PLANTED_MISSING)} by quality checks "
                f"({max(pick[('stackml', s)].quality_seconds for s in SCENARIOS):.2f} s)"
                if tool == "stackml"
                else "n/a (DataDriftPreset)"
            )
            rows.append(
                [
                    f"{n:,}",
                    tool,
                    f"{100 * agree / total:.1f}% ({agree}/{total})" if tool == "stackml" else "",
                    false_clean,
                    false_shifted,
                    f"{len(PLANTED) - len(missed)}/{len(PLANTED)}"
                    + (f" (missed {missed})" if missed else ""),
                    f"{len(PLANTED_MISSING) - len(missed_missing)}/{len(PLANTED_MISSING)}; {quality}",
                    round(time_s, 3),
                    round(peak, 1),
                    round(rss, 1),
                    f"{their_time / ours_time:.1f}x" if tool == "stackml" else "",
                ]
            )
        verdict[n]["disagreements"] = disagreements  # type: ignore[assignment]
    return rows, verdict


HEADERS = [
    "rows",
    "tool",
    "same decisions",
    "false alarms (clean)",
    "false alarms (shifted, unplanted)",
    "distribution shifts found",
    "missing-value shifts found (drift; quality)",
    "time (s)",
    "peak memory growth (MiB)",
    "process peak RSS (MiB)",
    "speedup",
]


def tests_table(cases: list[Case]) -> str:
    """Which test each tool chose per size (shifted scenario), to show the choices match."""
    rows = []
    for n in sorted({c.rows for c in cases}):
        pick = {(c.tool, c.scenario): c for c in cases if c.rows == n}
        ours, theirs = pick[("stackml", "shifted")].columns, pick[("evidently", "shifted")].columns
        same = sum(ours[k]["test"] == theirs.get(k, {}).get("test") for k in ours)
        chosen = sorted({v["test"] for v in ours.values()})
        worst = max(
            (abs(ours[k]["score"] - theirs[k]["score"]) for k in ours if k in theirs and ours[k]["test"]),
            default=float("nan"),
        )
        rows.append([f"{n:,}", f"{same}/{len(ours)}", ", ".join(chosen), f"{worst:.2e}"])
    return markdown_table(["rows", "same test chosen", "tests used", "largest score difference"], rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "worker":
        worker(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else QUICK_SIZES if args.quick else SIZES
    python_e = evidently_python(args)
    cases = []
    for n in sizes:
        folder = write_data(n, args.seed)
        for scenario in SCENARIOS:
            for tool, python in (("stackml", sys.executable), ("evidently", python_e)):
                repeat = 1 if (tool == "evidently" and n >= 1_000_000) else args.repeat
                case = run_case(tool, python, folder, n, scenario, repeat)
                cases.append(case)
                print(
                    f"{n:>9,} {scenario:8s} {tool:9s} {case.seconds:8.3f} s  {case.peak_mb:7.1f} MiB",
                    flush=True,
                )
    rows, verdict = summarise(cases)
    table = markdown_table(HEADERS, rows)
    largest = max(sizes)
    passed_speed = verdict[largest]["speedup"] >= TARGET_SPEEDUP
    passed_agree = all(v["agreement"] >= TARGET_AGREEMENT for v in verdict.values())
    lines = [
        f"- speed at {largest:,} rows: {verdict[largest]['speedup']:.1f}x Evidently (target >= "
        f"{TARGET_SPEEDUP:.0f}x): **{'PASS' if passed_speed else 'FAIL'}**",
        f"- same per-column decisions at every size (target >= {100 * TARGET_AGREEMENT:.0f}%): "
        f"**{'PASS' if passed_agree else 'FAIL'}** ("
        + ", ".join(f"{n:,}: {100 * v['agreement']:.1f}%" for n, v in verdict.items())
        + ")",
    ]
    for n, v in verdict.items():
        if v["disagreements"]:
            lines.append(f"- decisions that differ at {n:,} rows: {', '.join(v['disagreements'])}")
    print()
    print(table)
    print()
    print(tests_table(cases))
    print()
    print("\n".join(lines))
    if args.no_write:
        return
    body = "\n\n".join(
        [
            "## Result",
            "\n".join(lines),
            table,
            "Per size, over both scenarios (20 columns each): *same decisions* counts columns where "
            "both tools drifted or both did not; *false alarms* are drifted columns with nothing planted; "
            "time is the slower of the two scenarios (best of the repeats); memory is the growth of the "
            "resident-set high-water mark during the timed call(s), and the whole worker process's peak "
            "(data, imports) beside it.",
            "## Test chosen per column (shifted scenario)",
            tests_table(cases),
            "## Notes",
            NOTES.strip(),
        ]
    )
    info = machine_info(
        ["numpy", "pandas", "scipy"],
        extra={
            "evidently": _version_in(python_e, "evidently"),
            "evidently's interpreter": python_e.replace(str(REPO) + "/", ""),
            "load": _load(),
        },
    )
    write_results(args.out, "Monitoring: drift vs Evidently", [".venv/bin/python", *sys.argv], info, body)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


NOTES = """
- The machine has 2 cores and is shared with other work while the benchmark runs, so wall times move by
  tens of percent between runs; the ratio is taken within one run on the same files.
- Missing values are dropped before testing by both tools, as Evidently documents, so 20% missing values
  that are missing at random leave the distribution of the rest unchanged and no drift test sees them;
  the null-rate check of `quality_checks` is what reports them.
- Evidently decides a column's type from the *current* data (`Dataset.from_pandas` per frame, the report
  reads the current one); stackml decides from the reference. They differ only when the current data changes
  type, e.g. an integer column that gains missing values becomes float in pandas, which Evidently then tests
  as numeric. The planted missing values are in a float and a text column, so both tools type every column
  alike here.
- Evidently's DataDriftPreset also computes plots and per-column statistics it renders in its HTML report;
  that work is part of its default run and is inside its time.
- At 1,000 rows both tools use the statistical tests (KS, chi-squared, Z) at p = 0.05, so about one column
  in twenty is flagged on clean data by chance alone; the larger sizes use the distances (Wasserstein, Jensen-
  Shannon at 0.1), which do not flag sampling noise. Both tools flag the same columns.
- Evidently 0.7.23 pins `plotly<6` (the older releases checked, 0.7.0, 0.6.7 and 0.4.40, also pin
  `numpy<2.1`), while stackml pins plotly 7.1 and numpy 2.4, so it cannot join the `bench` extra; it runs
  from its own venv (see the top of `bench/monitoring.py`) with the same numpy, pandas and SciPy versions
  as ours.
"""


def _version_in(python: str, package: str) -> str:
    code = f"from importlib.metadata import version; print(version({package!r}))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "not installed"


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " at the end of the run"
    except OSError:
        return "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    work = sub.add_parser("worker", help=argparse.SUPPRESS)
    work.add_argument("--tool", choices=["stackml", "evidently"], required=True)
    work.add_argument("--data", required=True)
    work.add_argument("--scenario", choices=SCENARIOS, required=True)
    work.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument("--sizes", default="", help="comma-separated row counts (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case; the best is kept")
    parser.add_argument("--evidently-python", default="", help="an interpreter with Evidently installed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
