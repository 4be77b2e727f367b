"""The path attribution step of ``stackml demo``: simulated users whose channels have known incremental
effects (one of them, retargeting-like, has none) leave raw touchpoints in the warehouse, and the same world's
weekly spend and conversions a second table. A short media-mix model is fitted on the weekly table; the
attribution pipeline cuts the touchpoints into journeys, credits the channels with every method, and reports
them beside the MMM and the truth the simulator knows (the triangulation view).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackml.demo import DemoContext

TOUCHPOINTS_TABLE = "demo_journeys"
WEEKLY_TABLE = "demo_journeys_weekly"
MODEL_NAME = "attribution-demo-journeys"
MMM_MODEL_NAME = "mmm-demo-journeys"
N_USERS = 20_000  # about 40 conversions a week: enough for a weekly MMM to see the channels


def attribution_step(ctx: DemoContext) -> None:
    """Simulate journeys; fit an MMM on their weekly totals; credit the paths; compare all with the truth."""
    from stackml.attribution.config import AttributionConfig
    from stackml.attribution.simulation import simulate_journeys
    from stackml.demo.mmm_demo import DEMO_SAMPLER
    from stackml.mmm.config import MMMConfig

    world = simulate_journeys(N_USERS, seed=0)
    truth_file = Path(ctx.settings.home) / "demo" / "journeys_truth.csv"
    truth_file.parent.mkdir(parents=True, exist_ok=True)
    world.paid_truth.to_csv(truth_file, index=False)
    with ctx.warehouse() as warehouse:
        warehouse.ingest(world.touchpoints, TOUCHPOINTS_TABLE, if_exists="replace")
        warehouse.ingest(world.weekly, WEEKLY_TABLE, if_exists="replace")
    ctx.say(
        f"Simulated {N_USERS:,} users' journeys into [bold]{TOUCHPOINTS_TABLE}[/bold] and their weekly spend "
        f"and conversions into [bold]{WEEKLY_TABLE}[/bold]; fitting a short MMM on the weekly table"
    )
    mmm_config = MMMConfig(
        channels=world.channels, target="conversions", random_state=0, horizon=0, **DEMO_SAMPLER
    )
    mmm = ctx.run_pipeline("mmm", mmm_config, WEEKLY_TABLE, MMM_MODEL_NAME)
    config = AttributionConfig(truth_file=str(truth_file), mmm_model=mmm.published.run_id)
    end = ctx.run_pipeline("attribution", config, TOUCHPOINTS_TABLE, MODEL_NAME)
    truth = ", ".join(f"{row.channel} {row.share:.0%}" for row in world.paid_truth.itertuples())
    errors = end.summary["credit_error"]
    ctx.say(
        f"True incremental shares: {truth}. Distance of each method's credit from them (0 best, 2 worst): "
        + ", ".join(f"{method} {error:.2f}" for method, error in errors.items())
    )
    mmm_view = end.summary["mmm"]
    mmm_share = ", ".join(f"{c} {s:.0%}" for c, s in mmm_view["share"].items())
    ctx.say(
        f"The MMM on the same world's weekly totals gives the channels {mmm_share} of media's conversions "
        f"({mmm_view['truth_error']:.2f} from the truth); the report shows every view side by side"
    )
