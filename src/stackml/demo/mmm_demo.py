"""The media-mix step of ``stackml demo``: simulated touchpoints -> warehouse -> SQL -> MMMFlow -> registry ->
report.

The simulator knows the truth, so the step ends by printing each channel's estimated ROAS next to the true
one. The sampler runs short (two chains of 500 draws, about a minute with the compile) and the convergence
gates are relaxed to match; the CLI's defaults are the ones to use for decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackml.demo import DemoContext

TOUCHPOINTS_TABLE = "demo_touchpoints"
CONTROLS_TABLE = "demo_mmm_controls"
MODEL_NAME = "mmm-demo-touchpoints"
SEED = 0
#: short chains for a demo, and gates relaxed to what they can reach (defaults: r_hat <= 1.01, ESS >= 400)
DEMO_SAMPLER = {
    "draws": 500,
    "tune": 500,
    "chains": 2,
    "target_accept": 0.95,
    "max_rhat": 1.05,
    "min_ess": 100.0,
}


def mmm_step(ctx: DemoContext) -> None:
    """Simulate two years of touchpoints for three channels, load them, and run MMMFlow on them with lift
    tests."""
    from stackml.mmm import simulate
    from stackml.mmm.config import MMMConfig

    sim = simulate("2y_3ch", seed=SEED)
    lift_path = Path(ctx.settings.home) / "demo" / "mmm_lift_tests.csv"
    lift_path.parent.mkdir(parents=True, exist_ok=True)
    sim.lift_tests.to_csv(lift_path, index=False)
    with ctx.warehouse() as warehouse:
        loaded = warehouse.ingest(sim.touchpoints, TOUCHPOINTS_TABLE, if_exists="replace")
        warehouse.ingest(sim.controls_frame, CONTROLS_TABLE, if_exists="replace")
    ctx.say(
        f"Simulated {loaded.rows:,} daily touchpoints ({', '.join(sim.channels)} and organic) into "
        f"[bold]{TOUCHPOINTS_TABLE}[/bold], with {len(sim.lift_tests)} go-dark lift tests; "
        "fitting a Bayesian MMM (the first fit compiles the model: up to a minute)"
    )
    config = MMMConfig(
        channels=sim.channels,
        controls=sim.controls,
        controls_table=CONTROLS_TABLE,
        target="revenue",
        lift_tests=str(lift_path),
        random_state=SEED,
        **DEMO_SAMPLER,
    )
    end = ctx.run_pipeline("mmm", config, TOUCHPOINTS_TABLE, MODEL_NAME)
    roas = end.result.summary()["roas"]
    versus = ", ".join(
        f"{c} {roas[c]['mean']:.2f} (true {sim.truth.loc[c, 'roas']:.2f})" for c in sim.channels
    )
    ctx.say(f"ROAS estimated vs simulated truth: {versus}")
    ctx.say(end.published.note if end.result.passed else f"[yellow]{end.published.note}[/yellow]")
