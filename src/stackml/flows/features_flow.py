"""FeaturesFlow: the feature pipeline on a schedule: new source rows into the online store, checked before
they land, then the store monitored.

1. start: read the configuration.
2. compute: each view's batch (the newest row per entity since the last watermark), computed in the
   warehouse; nothing is written.
3. validate: refuse batches with rows without a join key, source rows dated in the future, a column typed
   otherwise than the stored online table, or a feature missing in every row: the run fails here, naming
   every problem, and the online store is untouched.
4. materialise: write each batch into the PostgreSQL online store, one transaction per view.
5. monitor: each view's freshness and null rates, each service's drift and quality against its training set;
   alerts opened and resolved in the warehouse's alerts table, sent to the log and the webhook.
6. end: keep the summary for the CLI.

The steps are :class:`~stackml.features.FeatureStore`'s ``compute_batches``, ``check_batches``,
``write_batches`` and ``monitor``, in this order; this file only wires them.

``@schedule(hourly=True)`` takes effect where the flow is deployed to a production scheduler
(``python features_flow.py argo-workflows create``, ``step-functions create``, ``airflow create``). On one
machine, cron runs it through the CLI, e.g. every hour::

    0 * * * * cd /srv/stackml && .venv/bin/stackml features run --repo feature_repo --online "$PG" >> features.log 2>&1
"""  # noqa: E501 - the cron line

from metaflow import FlowSpec, Parameter, schedule, step


@schedule(hourly=True)
class FeaturesFlow(FlowSpec):
    """Materialise the feature views into the online store, checked first, then monitor the store."""

    config_json = Parameter(
        "config", required=True, help="FeaturesRunConfig as JSON (FeaturesRunConfig.to_json())"
    )

    @step
    def start(self):
        """Read the configuration."""
        from stackml.features.config import FeaturesRunConfig

        self.config = FeaturesRunConfig.from_json(self.config_json)
        self.next(self.compute)

    @step
    def compute(self):
        """Each view's batch, computed in the warehouse; nothing is written."""
        from stackml.features import FeatureStore

        store = FeatureStore(self.config.repo)
        self.batches = store.compute_batches(list(self.config.views) or None)
        self.next(self.validate)

    @step
    def validate(self):
        """Refuse the batches, every problem at once, before anything reaches the online store."""
        from stackml.features import FeatureStore

        FeatureStore(self.config.repo).check_batches(self.batches)
        self.next(self.materialise)

    @step
    def materialise(self):
        """Write each batch into the online store, one transaction per view."""
        from stackml.features import FeatureStore

        written = FeatureStore(self.config.repo).write_batches(self.batches)
        self.materialized = [m.as_dict() for m in written]
        self.next(self.monitor)

    @step
    def monitor(self):
        """Freshness, null rates, drift and quality; raise and resolve alerts."""
        from stackml.features import FeatureStore

        self.monitoring = FeatureStore(self.config.repo).monitor(self.config).summary()
        self.next(self.end)

    @step
    def end(self):
        """Keep the summary for the CLI."""
        self.summary = {"materialized": self.materialized, "monitor": self.monitoring}


if __name__ == "__main__":
    FeaturesFlow()
