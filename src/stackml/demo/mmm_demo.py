"""The media-mix step of ``stackml demo``: simulated touchpoints -> warehouse -> SQL -> MMMFlow -> registry -> report.

The simulator knows the truth, so the step ends by printing each channel's estimated ROAS next to the true one. The
sampler runs short (two chains of 500 draws, about a minute with the compile) and the convergence gates are relaxed
to match; the CLI's defaults are the ones to use for decisions.
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
FLOW_SETTINGS = {
    "draws": 500,
    "tune": 500,
    "chains": 2,
    "target_accept": 0.95,
    "max_rhat": 1.05,
    "min_ess": 100.0,
}


def mmm_step(ctx: DemoContext) -> None:
    """Simulate two years of touchpoints for three channels, load them, and run MMMFlow on them with lift tests."""
    from stackml.flows import flow_path, run_flow
    from stackml.mmm import simulate

    sim = simulate("2y_3ch", seed=SEED)
    lift_path = Path(ctx.settings.home) / "demo" / "mmm_lift_tests.csv"
    lift_path.parent.mkdir(parents=True, exist_ok=True)
    sim.lift_tests.to_csv(lift_path, index=False)
    with ctx.warehouse() as warehouse:
        loaded = warehouse.ingest(sim.touchpoints, TOUCHPOINTS_TABLE, if_exists="replace")
        warehouse.ingest(sim.controls_frame, CONTROLS_TABLE, if_exists="replace")
    ctx.say(
        f"Simulated {loaded.rows:,} daily touchpoints ({', '.join(sim.channels)} and organic) into "
        f"[bold]{TOUCHPOINTS_TABLE}[/bold], with {len(sim.lift_tests)} go-dark lift tests; fitting a Bayesian MMM "
        "(the first fit compiles the model: up to a minute)"
    )
    parameters = {
        "table": TOUCHPOINTS_TABLE, "controls_table": CONTROLS_TABLE, "channels": ",".join(sim.channels),
        "controls": ",".join(sim.controls), "target": "revenue", "lift_tests": str(lift_path),
        "seed": SEED, "model_name": MODEL_NAME, **FLOW_SETTINGS,
    }  # fmt: skip
    result = run_flow(
        flow_path("mmm"),
        parameters,
        settings=ctx.settings,
        console=ctx.console,
        show_progress=ctx.console is not None,
    )
    end = result.run["end"].task.data
    roas = end.summary["roas"]
    versus = ", ".join(
        f"{c} {roas[c]['mean']:.2f} (true {sim.truth.loc[c, 'roas']:.2f})" for c in sim.channels
    )
    ctx.say(f"ROAS estimated vs simulated truth: {versus}")
    if end.promotion is not None:
        ctx.say(f"Registered {MODEL_NAME} v{end.model_version}; {end.promotion.reason}")
    else:
        ctx.say(f"[yellow]Not registered: {'; '.join(end.failed_gates)}[/yellow]")
    ctx.reports.append(Path(end.report_path))
