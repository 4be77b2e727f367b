"""The path attribution step of ``stackml demo``: simulated users whose channels have known incremental
effects (one of them, retargeting-like, has none) leave raw touchpoints in the warehouse; the attribution
pipeline cuts them into journeys, credits the channels with every method and reports; the step then says how
far each method's credit is from the truth the simulator knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackml.demo import DemoContext

TOUCHPOINTS_TABLE = "demo_journeys"
MODEL_NAME = "attribution-demo-journeys"
N_USERS = 5000


def attribution_step(ctx: DemoContext) -> None:
    """Simulate journeys, run the attribution pipeline on their touchpoints, compare with the truth."""
    from stackml.attribution.config import AttributionConfig
    from stackml.attribution.simulation import simulate_journeys

    world = simulate_journeys(N_USERS, seed=0)
    with ctx.warehouse() as warehouse:
        warehouse.ingest(world.touchpoints, TOUCHPOINTS_TABLE, if_exists="replace")
    end = ctx.run_pipeline("attribution", AttributionConfig(), TOUCHPOINTS_TABLE, MODEL_NAME)
    errors = world.credit_error(end.summary["credit"])["total_abs_error"]
    truth = ", ".join(
        f"{row.channel} {row.share:.0%}" for row in world.truth.itertuples() if row.channel != "direct"
    )
    ctx.say(
        f"True incremental shares: {truth}. Distance of each method's credit from them (0 best, 2 worst): "
        + ", ".join(f"{method} {error:.2f}" for method, error in errors.items())
    )
