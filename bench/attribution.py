"""Path attribution against ChannelAttribution on its own example data: heuristics, first-order Markov, speed.

Targets (issue #13, parity half): heuristics identical to ChannelAttribution's; first-order Markov shares per
channel within 0.005 of its estimate (ours is exact, theirs simulated: its run-to-run spread is measured
here over seeds); speed side by side.

How each number is taken:
  * the data is `../shared/data/mta/channelattribution_paths.csv` (ChannelAttribution's 10,000 aggregated
    paths over 12 channels; GPL-3, a test fixture only);
  * stackml: `Attribution(...).fit(read_paths(file))` in this process, best of `--repeat` calls per method;
  * ChannelAttribution 2.2.5 (`heuristic_models`, and `markov_model(order=1)` with its default simulation)
    runs in an interpreter that has it (GPL-3: never a dependency of stackml), best of `--repeat` calls,
    and `markov_model` once per seed in `--seeds` for its spread;
  * shares are each channel's credited conversions over the total conversions.

ChannelAttribution lives in a venv of its own (it builds from source and needs matplotlib):
    python3 -m venv bench/.cache/channelattribution-venv
    bench/.cache/channelattribution-venv/bin/pip install channelattribution==2.2.5 matplotlib

Run from the repository root:
    .venv/bin/python bench/attribution.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results  # noqa: E402

RESULTS = REPO / "bench" / "results" / "attribution.md"
DATA = REPO.parent / "shared" / "data" / "mta" / "channelattribution_paths.csv"
PEER_PYTHON = REPO / "bench" / ".cache" / "channelattribution-venv" / "bin" / "python"
TARGET_MARKOV = 0.005

PEER_CODE = """
import json, sys, time, io, contextlib
import pandas as pd
with contextlib.redirect_stdout(io.StringIO()):
    import ChannelAttribution as ca
data = pd.read_csv(sys.argv[1], sep=";")
repeat, seeds = int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
def best(call):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            out = call()
        times.append(time.perf_counter() - started)
    return out, min(times)
heur, heur_s = best(lambda: ca.heuristic_models(data, "path", "total_conversions",
                                               var_value="total_conversion_value"))
markov, markov_s = best(lambda: ca.markov_model(data, "path", "total_conversions",
    var_value="total_conversion_value", var_null="total_null", order=1, verbose=0))
runs = []
for seed in seeds:
    with contextlib.redirect_stdout(io.StringIO()):
        m = ca.markov_model(data, "path", "total_conversions", var_value="total_conversion_value",
                            var_null="total_null", order=1, seed=seed, verbose=0)
    runs.append(dict(zip(m["channel_name"], m["total_conversions"])))
out = {"seconds": {"heuristics": heur_s, "markov": markov_s}, "markov_runs": runs,
       "markov": dict(zip(markov["channel_name"], markov["total_conversions"]))}
for name in ("first_touch", "last_touch", "linear_touch"):
    out[name] = dict(zip(heur["channel_name"], heur[f"{name}_conversions"]))
    out[name + "_value"] = dict(zip(heur["channel_name"], heur[f"{name}_value"]))
print(json.dumps(out))
"""


def ours(repeat: int) -> dict:
    """Our credit per method (the peer's method names) and the best time of each group of methods."""
    from stackml.attribution import Attribution, Paths, read_paths

    paths = read_paths(DATA)
    out: dict = {"seconds": {}}
    groups = {"heuristics": ["first_touch", "last_touch", "linear"], "markov": ["markov"]}
    for group, methods in groups.items():
        times = []
        for _ in range(repeat):
            fresh = Paths(paths.frame)  # nothing cached from the previous call
            started = time.perf_counter()
            fitted = Attribution(methods).fit(fresh)
            times.append(time.perf_counter() - started)
        out["seconds"][group] = min(times)
        for method in methods:
            credit = fitted.credit[fitted.credit["method"] == method]
            name = "linear_touch" if method == "linear" else method
            out[name] = dict(zip(credit["channel"], credit["conversions"]))
            out[name + "_value"] = dict(zip(credit["channel"], credit["value"]))
    return out


def truth_recovery(sizes: list[int], seeds: list[int], big_seeds: int) -> tuple[list[list], list[list]]:
    """Each method's distance from the true incremental shares on simulated journeys, per size and seed."""
    from stackml.attribution import Attribution
    from stackml.attribution.simulation import simulate_journeys

    rows, timings = [], []
    for n in sizes:
        for seed in seeds[: big_seeds if n >= 1_000_000 else len(seeds)]:
            started = time.perf_counter()
            world = simulate_journeys(n, seed=seed)
            simulated = time.perf_counter() - started
            paths = world.paths()
            cut = time.perf_counter() - started - simulated
            fitted = Attribution(random_state=seed).fit(paths)
            errors = world.credit_error(fitted.shares())["total_abs_error"]
            rows.append([f"{n:,}", seed, *[round(float(errors[m]), 3) for m in METHOD_ORDER]])
            timings.append(
                [f"{n:,}", seed, f"{len(paths):,}", round(simulated, 1), round(cut, 1)]
                + [round(fitted.seconds[m], 2) for m in ("markov", "shapley", "neural")]
                + [fitted.neural.epochs_run]
            )
            print(rows[-1], timings[-1], flush=True)
    return rows, timings


METHOD_ORDER = (
    "last_touch",
    "first_touch",
    "linear",
    "time_decay",
    "position",
    "markov",
    "shapley",
    "neural",
)


def shares(credit: dict[str, float]) -> dict[str, float]:
    total = sum(credit.values())
    return {c: v / total for c, v in credit.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--truth-sizes", default="10000,1000000", help="simulated users per truth run")
    parser.add_argument("--truth-seeds", default="0,1,2")
    parser.add_argument("--big-seeds", type=int, default=3, help="seeds run at 1M users and more")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not args.peer_python.exists():
        sys.exit(f"No ChannelAttribution interpreter at {args.peer_python}; see this script's docstring.")
    peer = json.loads(
        subprocess.run(
            [str(args.peer_python), "-c", PEER_CODE, str(DATA), str(args.repeat), args.seeds],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    mine = ours(args.repeat)
    sizes = [int(x) for x in args.truth_sizes.split(",") if x]
    truth_rows, truth_times = truth_recovery(
        sizes, [int(x) for x in args.truth_seeds.split(",")], args.big_seeds
    )
    truth_checks = []
    for label, column in (("markov", 7), ("neural", 9)):
        wins = sum(row[column] < row[2] for row in truth_rows)
        truth_checks.append(
            [
                f"{label} closer to the truth than last touch",
                f"{wins} of {len(truth_rows)} runs",
                "yes" if wins == len(truth_rows) else "NO",
            ]
        )
    big = [t for t in truth_times if t[0] == "1,000,000"]
    if big:
        slowest = max(t[7] for t in big)
        truth_checks.append(
            [
                "neural trains on 1M journeys in < 10 minutes",
                f"{slowest:.0f} s",
                "yes" if slowest < 600 else "NO",
            ]
        )
    channels = sorted(peer["markov"])
    rows, checks = [], []
    for method in ("first_touch", "last_touch", "linear_touch"):
        for kind in ("", "_value"):
            a, b = mine[method + kind], peer[method + kind]
            diff = max(abs(a[c] - b[c]) for c in channels)
            checks.append(
                [
                    f"{method}{kind or ' conversions'}: largest difference per channel",
                    f"{diff:.2e}",
                    "yes" if diff < 1e-6 * max(1.0, max(b.values())) else "NO",
                ]
            )
    ours_markov, theirs_markov = shares(mine["markov"]), shares(peer["markov"])
    spread = {
        c: max(shares(r)[c] for r in peer["markov_runs"]) - min(shares(r)[c] for r in peer["markov_runs"])
        for c in channels
    }
    for c in channels:
        difference = ours_markov[c] - theirs_markov[c]
        rows.append(
            [c, f"{ours_markov[c]:.4f}", f"{theirs_markov[c]:.4f}", f"{difference:+.4f}", f"{spread[c]:.4f}"]
        )
    worst = max(abs(ours_markov[c] - theirs_markov[c]) for c in channels)
    checks.append(
        [
            "first-order Markov: largest share difference per channel < 0.005",
            f"{worst:.4f}",
            "yes" if worst < TARGET_MARKOV else "NO",
        ]
    )
    timing = [
        [
            "heuristics (first, last, linear)",
            round(mine["seconds"]["heuristics"] * 1000, 1),
            round(peer["seconds"]["heuristics"] * 1000, 1),
            f"{peer['seconds']['heuristics'] / mine['seconds']['heuristics']:.2f}x",
        ],
        [
            "first-order Markov",
            round(mine["seconds"]["markov"] * 1000, 1),
            round(peer["seconds"]["markov"] * 1000, 1),
            f"{peer['seconds']['markov'] / mine['seconds']['markov']:.2f}x",
        ],
    ]
    body = "\n".join(
        [
            "ChannelAttribution's example data: 10,000 aggregated paths, 12 channels, 19,785 conversions. "
            f"Best of {args.repeat} calls; "
            f"ChannelAttribution's Markov spread over seeds {args.seeds}.\n",
            "## Targets\n",
            markdown_table(["check", "value", "met"], checks),
            "\n## First-order Markov: share of conversions per channel\n",
            markdown_table(
                [
                    "channel",
                    "stackml (exact)",
                    "ChannelAttribution (simulated)",
                    "difference",
                    "ChannelAttribution spread over seeds",
                ],
                rows,
            ),
            "\n## Speed (ms)\n",
            markdown_table(["models", "stackml ms", "ChannelAttribution ms", "stackml faster by"], timing),
            "\n## Truth recovery on simulated journeys\n",
            "`simulate_journeys` (preset 2y_3ch: search, social, tv; social has no effect and is shown on "
            "the days users convert anyway): the total absolute difference between each method's shares of "
            "the paid channels and the true incremental shares (0 best, 2 worst), per size and seed.\n",
            markdown_table(["users", "seed", *METHOD_ORDER], truth_rows),
            "\n" + markdown_table(["check", "value", "met"], truth_checks),
            "\nTimes (s): simulating, cutting journeys in DuckDB, and the three slower methods.\n",
            markdown_table(
                ["users", "seed", "paths", "simulate", "cut", "markov", "shapley", "neural", "neural epochs"],
                truth_times,
            ),
        ]
    )
    print(body)
    if not args.no_write:
        info = machine_info(["pandas", "numpy", "scipy"], {"ChannelAttribution": "2.2.5 (own venv)"})
        write_results(
            RESULTS,
            "Path attribution: stackml vs ChannelAttribution",
            [".venv/bin/python", *sys.argv],
            info,
            body,
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
