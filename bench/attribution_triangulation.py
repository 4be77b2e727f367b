"""Benchmark: path attribution beside a media-mix model on the same simulated worlds (issue 13, 3).

``simulate_journeys`` draws users in the MMM simulator's world (channels and daily spend of a preset), with
known incremental effects per channel; one channel causes nothing but is shown to users about to convert. The
same run yields the touchpoints (for the path methods) and the weekly spend and conversions (for the MMM).
For each size and seed this script

* credits the paths with every method through the front door (``Attribution(random_state=seed)``);
* fits ``MediaMixModel(date, channels, "conversions")`` with the pipeline's defaults on the weekly table
  (``draws`` 1000, ``tune`` 1000, 2 chains: shorter than the CLI's 2000 x 4, to keep the run short);
* scores every view's shares of the paid channels against the true incremental shares (total absolute
  difference, 0 best, 2 worst), and the MMM's 94% ROAS interval against the true conversions per spend unit.

Run from the repository root (about 2 minutes per world on 2 cores):
    .venv/bin/python bench/attribution_triangulation.py                       # 20k and 100k users, seeds 0-2
    .venv/bin/python bench/attribution_triangulation.py --sizes 20000 --seeds 0 --no-write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results

RESULTS = REPO / "bench" / "results" / "attribution_triangulation.md"
PATH_METHODS = ("last_touch", "first_touch", "linear", "markov", "shapley", "neural")
SAMPLER = {"draws": 1000, "tune": 1000, "chains": 2}


def one_world(n_users: int, seed: int) -> dict:
    from stackml.attribution import Attribution
    from stackml.attribution.triangulation import credit_error, read_truth
    from stackml.mmm import MediaMixModel
    from stackml.mmm.outputs import roas

    world = simulate(n_users, seed)
    truth = read_truth(world.paid_truth)
    started = time.perf_counter()
    fitted = Attribution(PATH_METHODS, random_state=seed).fit(world.paths())
    path_seconds = time.perf_counter() - started
    channels = list(world.channels)
    started = time.perf_counter()
    model = MediaMixModel("date", channels, "conversions").fit(world.weekly, random_state=seed, **SAMPLER)
    mmm_seconds = time.perf_counter() - started
    table = roas(model)
    mmm_shares = (table["contribution"].clip(lower=0) / table["contribution"].clip(lower=0).sum()).to_dict()
    errors = credit_error({**fitted.shares(), "mmm": mmm_shares}, truth)["total_abs_error"]
    true_roas = truth["roas"]
    covered = [bool(table.loc[c, "hdi_low"] <= true_roas[c] <= table.loc[c, "hdi_high"]) for c in channels]
    return {
        "errors": {k: float(v) for k, v in errors.items()},
        "covered": sum(covered),
        "channels": len(channels),
        "conversions": int(world.weekly["conversions"].sum()),
        "mmm_seconds": mmm_seconds,
        "path_seconds": path_seconds,
    }


def simulate(n_users: int, seed: int):  # noqa: ANN201 - a SimulatedJourneys
    from stackml.attribution.simulation import simulate_journeys

    return simulate_journeys(n_users, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    views = [*PATH_METHODS, "mmm"]
    rows, coverage, seconds = [], [0, 0], []
    for n in [int(x) for x in args.sizes.split(",")]:
        for seed in [int(x) for x in args.seeds.split(",")]:
            got = one_world(n, seed)
            rows.append(
                [f"{n:,}", seed, f"{got['conversions']:,}", *[round(got["errors"][v], 2) for v in views]]
            )
            coverage[0] += got["covered"]
            coverage[1] += got["channels"]
            seconds.append([f"{n:,}", seed, round(got["path_seconds"], 1), round(got["mmm_seconds"], 1)])
            print(rows[-1], seconds[-1], f"covered {got['covered']}/{got['channels']}", flush=True)
    mean = {v: sum(r[3 + i] for r in rows) / len(rows) for i, v in enumerate(views)}
    best_path = min(PATH_METHODS, key=mean.get)
    body = "\n\n".join(
        [
            "## Distance from the true incremental shares (0 best, 2 worst)\n\n"
            "Every view's shares of the paid channels (search, social, tv; social causes nothing and is "
            "shown to users about to convert anyway), rescaled to sum to 1 and compared with the truth.\n\n"
            + markdown_table(["users", "seed", "conversions", *views], rows),
            markdown_table(
                ["summary", "value"],
                [
                    ["mean distance, MMM", f"{mean['mmm']:.2f}"],
                    [f"mean distance, best path method ({best_path})", f"{mean[best_path]:.2f}"],
                    ["mean distance, last touch", f"{mean['last_touch']:.2f}"],
                    [
                        "MMM 94% ROAS interval covers the true conversions per spend unit",
                        f"{coverage[0]} of {coverage[1]} channels",
                    ],
                ],
            ),
            "## Seconds\n\n" + markdown_table(["users", "seed", "path methods", "MMM fit"], seconds),
        ]
    )
    print(body)
    if not args.no_write:
        info = machine_info(["pymc", "nutpie", "torch"])
        command = [".venv/bin/python", *sys.argv]
        write_results(
            RESULTS, "Path attribution beside the MMM on the same simulated worlds", command, info, body
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
