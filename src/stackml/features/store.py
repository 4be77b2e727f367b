"""The front door of the feature store: ``FeatureStore(repo, warehouse=...)``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, raise_if_problems

if TYPE_CHECKING:
    import pandas as pd

    from stackml.features.definitions import Definitions
    from stackml.features.registry import Registered
    from stackml.warehouse import Warehouse

__all__ = ["FeatureStore"]


class FeatureStore:
    """Feature definitions from a repo folder (or, without one, the newest version registered in the
    warehouse), registered and served as point-in-time correct training sets.

    Args:
        repo: the folder of ``*.yaml``/``*.py`` definitions (see :mod:`stackml.features.repo`); None reads
            the definitions last applied to the warehouse.
        warehouse: a warehouse URL (default: the settings' warehouse) or an open
            :class:`~stackml.warehouse.Warehouse`, which stays open.

    Example:
        >>> import pandas as pd
        >>> from stackml.features import FeatureStore
        >>> store = FeatureStore("feature_repo", warehouse="duckdb:///wh.duckdb")  # doctest: +SKIP
        >>> store.apply().version  # doctest: +SKIP
        1
        >>> entities = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2024-03-01")]})
        >>> store.get_training_set(entities, "churn").columns.tolist()  # doctest: +SKIP
        ['customer_id', 'event_timestamp', 'customer_orders__amount', 'customer_orders__big']
    """

    def __init__(self, repo: str | Path | None = None, *, warehouse: str | Warehouse | None = None) -> None:
        self.repo = repo
        self.warehouse = warehouse

    @contextlib.contextmanager
    def _warehouse(self, *, read_only: bool = False) -> Iterator[Warehouse]:
        from stackml.warehouse import Warehouse, connect

        if isinstance(self.warehouse, Warehouse):
            yield self.warehouse
            return
        with connect(self.warehouse, read_only=read_only) as wh:
            yield wh

    def definitions(self, wh: Warehouse | None = None) -> Definitions:
        """The repo's definitions (checked without the warehouse), or the newest registered ones."""
        if self.repo is not None:
            from stackml.features.repo import load_repo

            return load_repo(self.repo)
        from stackml.features.registry import latest

        with contextlib.ExitStack() as stack:
            current = latest(wh if wh is not None else stack.enter_context(self._warehouse()))
        if current is None:
            raise InputError(
                "No feature definitions are registered in the warehouse, and no repo was given.",
                hint="Apply a repo first (`stackml features apply --repo DIR`), or pass --repo.",
            )
        return current.definitions

    def apply(self) -> Registered:
        """Check the repo against the warehouse (every problem at once) and register it; the version is
        unchanged when the definitions equal the newest registered ones (``changed`` says which)."""
        from stackml.features.registry import apply_definitions
        from stackml.features.validation import warehouse_problems

        if self.repo is None:
            raise InputError("apply needs a repo to register, got repo=None.", hint="Pass --repo DIR.")
        defs = self.definitions()
        with self._warehouse() as wh:
            raise_if_problems(
                warehouse_problems(defs, wh),
                what=f"the feature repo '{self.repo}' against {wh.redacted_url()}",
                hint="Fix the definitions named above (an expression is SQL in the warehouse's dialect).",
            )
            return apply_definitions(defs, wh)

    def list(self) -> Registered | None:
        """The newest registered version (its number, time and definitions), None before the first apply."""
        from stackml.features.registry import latest

        with self._warehouse(read_only=True) as wh:  # listing must not create an empty warehouse
            return latest(wh)

    def get_training_set(
        self,
        entities: Any,
        features: str | list[str] | tuple[str, ...],
        *,
        created_before_entity: bool = False,
    ) -> pd.DataFrame:
        """The entity rows with one column per feature (``view__feature``), point-in-time correct.

        Args:
            entities: a DataFrame, a ``.csv``/``.parquet`` path or a SQL query, with the features' join keys
                and ``event_timestamp`` (time zone-aware values are converted to UTC; naive ones are UTC).
            features: a service name, or feature references ``"view:feature"`` (``"view"``: all of it).
            created_before_entity: only rows written by the entity's time (``created_timestamp <= t``), so
                a backfill does not leak into the past.

        The rules are Feast's (see :mod:`stackml.features.retrieval`): per view, the newest row with
        ``t - ttl <= event_timestamp <= t`` (TTL 0: unbounded), ties to the newest ``created_timestamp``,
        NULLs when none; every entity row kept, in order.
        """
        from stackml.features.retrieval import load_entities, training_set
        from stackml.features.validation import resolve_features

        with self._warehouse() as wh:
            defs = self.definitions(wh)
            refs = _references(defs, features)
            resolved, problems = resolve_features(defs, refs)
            raise_if_problems(
                problems,
                what=f"the requested features {list(refs)}",
                hint=f"Name features as 'view:feature'; the views are {[v.name for v in defs.views]}.",
            )
            return training_set(
                defs, wh, load_entities(entities, wh), resolved, created_before_entity=created_before_entity
            )


def _references(defs: Definitions, features: str | list[str] | tuple[str, ...]) -> list[str]:
    """A service's feature references, or the references given."""
    if isinstance(features, str) and ":" not in features:
        services = {s.name: s for s in defs.services}
        if features not in services:
            raise InputError(
                f"Unknown feature service {features!r} (services: {sorted(services) or 'none'}).",
                hint="Name a service of the repo, or pass feature references such as 'view:feature'.",
            )
        return list(services[features].features)
    refs = [features] if isinstance(features, str) else list(features)
    if not refs or not all(isinstance(r, str) and r for r in refs):
        raise InputError(
            f"The features must be a service name or 'view:feature' references, got {features!r}.",
            hint="Pass e.g. 'churn' or ['customer_orders:amount'].",
        )
    return refs
