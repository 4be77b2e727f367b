"""The front door of the feature store: ``FeatureStore(repo, warehouse=...)``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackml.errors import InputError, raise_if_problems

if TYPE_CHECKING:
    import pandas as pd

    from stackml.features.config import FeatureMonitorConfig
    from stackml.features.definitions import Definitions, FeatureView
    from stackml.features.monitor import FeatureMonitorResult
    from stackml.features.online import Batch, Materialized, OnlineReader, ViewState
    from stackml.features.reference import RecordedReference
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
        online: the PostgreSQL URL of the online store (default: the settings' ``postgres_url``, else the
            warehouse when it is PostgreSQL); only materialisation and online reads need it.

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

    def __init__(
        self,
        repo: str | Path | None = None,
        *,
        warehouse: str | Warehouse | None = None,
        online: str | None = None,
    ) -> None:
        self.repo = repo
        self.warehouse = warehouse
        self.online = online
        self._readers: dict[tuple[str, ...], OnlineReader] = {}

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

        with self._warehouse() as wh:
            defs = self.definitions(wh)
            resolved = self._resolve(defs, features)
            return training_set(
                defs, wh, load_entities(entities, wh), resolved, created_before_entity=created_before_entity
            )

    def _resolve(
        self, defs: Definitions, features: str | list[str] | tuple[str, ...]
    ) -> list[tuple[FeatureView, str]]:
        from stackml.features.validation import resolve_features

        refs = _references(defs, features)
        resolved, problems = resolve_features(defs, refs)
        raise_if_problems(
            problems,
            what=f"the requested features {list(refs)}",
            hint=f"Name features as 'view:feature'; the views are {[v.name for v in defs.views]}.",
        )
        return resolved

    def record_reference(
        self, service: str, training_set: pd.DataFrame, *, n_rows: int | None = None, random_state: int = 0
    ) -> RecordedReference:
        """Keep a seeded sample of ``training_set``'s feature columns (at most ``n_rows``, default 50,000)
        as ``service``'s reference in the warehouse, replacing the one before: :meth:`monitor` tests the
        online values' drift and quality against it. ``stackml features training-set --service S`` does
        this unless told ``--no-reference``.

        Example:
            >>> frame = store.get_training_set("entities.parquet", "churn")  # doctest: +SKIP
            >>> store.record_reference("churn", frame).table  # doctest: +SKIP
            'stackml_feature_ref_churn'
        """
        from stackml.features.config import REFERENCE_ROWS
        from stackml.features.reference import record_reference

        with self._warehouse() as wh:
            defs = self.definitions(wh)
            columns = [view.column(f) for view, f in self._resolve(defs, _service_name(service))]
            return record_reference(
                wh,
                service,
                training_set,
                columns,
                n_rows=REFERENCE_ROWS if n_rows is None else n_rows,
                random_state=random_state,
            )

    @contextlib.contextmanager
    def _online(self) -> Iterator[Warehouse]:
        from stackml.features.online import online_url
        from stackml.warehouse import connect

        with connect(online_url(self.online)) as online:
            yield online

    def materialize(
        self,
        views: str | list[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Materialized]:
        """Bring the online store up to ``until`` (default now): per view, the newest row of each entity
        among the source rows with ``since < event_timestamp <= until``, upserted in one transaction.

        Args:
            views: the views to materialise (default all).
            since: reach back to this event time (default: each view's last watermark; a view that is new or
                whose definition changed is rebuilt from its whole source).
            until: the newest event time to take (time zone-aware values are converted to UTC).
        """
        from stackml.features.online import materialize_view

        self.close()  # a rebuilt view must be planned again by the next read
        with self._online() as online, self._warehouse() as wh:
            defs = self.definitions(wh)
            chosen = _views(defs, views)
            return [materialize_view(defs, view, wh, online, since=since, until=until) for view in chosen]

    def compute_batches(
        self,
        views: str | list[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Batch]:
        """Each view's batch as :meth:`materialize` would write it (the newest row per entity since the last
        watermark), computed on the warehouse; nothing is written. ``FeaturesFlow`` checks them
        (:meth:`check_batches`) before it writes them (:meth:`write_batches`)."""
        from stackml.features.online import compute_batch

        with self._online() as online, self._warehouse() as wh:
            defs = self.definitions(wh)
            return [
                compute_batch(defs, view, wh, online, since=since, until=until, count_ahead=True)
                for view in _views(defs, views)
            ]

    def check_batches(self, batches: list[Batch]) -> None:
        """Refuse batches that must not reach the online store, every problem of every batch at once: rows
        without a join key, source rows dated in the future, a column typed otherwise than the stored table,
        a feature missing in every row (see :func:`stackml.features.validation.batch_problems`)."""
        from stackml.features.online import stored_types
        from stackml.features.validation import batch_problems

        defs = self._definitions_once()
        with self._online() as online:
            problems = [
                p for batch in batches for p in batch_problems(defs, batch, stored_types(online, batch.view))
            ]
        raise_if_problems(
            problems,
            what="the feature batches (nothing was written to the online store)",
            hint="Fix the source rows or the definitions named above, then run again.",
        )

    def write_batches(self, batches: list[Batch]) -> list[Materialized]:
        """Write batches from :meth:`compute_batches` into the online store, one transaction per view."""
        from stackml.features.online import write_batch

        self.close()  # a rebuilt view must be planned again by the next read
        defs = self._definitions_once()
        with self._online() as online:
            return [write_batch(defs, batch, online) for batch in batches]

    def _definitions_once(self) -> Definitions:
        if self.repo is not None:
            return self.definitions()
        with self._warehouse(read_only=True) as wh:
            return self.definitions(wh)

    def monitor(self, config: FeatureMonitorConfig | None = None, /, **options: Any) -> FeatureMonitorResult:
        """One monitoring pass over the online store: each view's freshness (against its ``freshness``
        limit) and null rates, each service's drift and quality against its reference; alerts opened and
        resolved in the warehouse's alerts table, sent to the log and a webhook.

        Args:
            config: a :class:`~stackml.features.config.FeatureMonitorConfig`, or its fields as keywords
                (``service="churn"``, ``webhook=...``, ``rules=...``, ``reference="train.parquet"``).

        Example:
            >>> result = store.monitor(service="churn")  # doctest: +SKIP
            >>> result.stale_views, [e.action for e in result.events]  # doctest: +SKIP
            (['customer_orders'], ['opened'])
        """
        from stackml.features.config import FeatureMonitorConfig
        from stackml.features.monitor import monitor_features

        if config is None:
            config = FeatureMonitorConfig(**options)
        elif options:
            config = config.replace(**options)  # type: ignore[assignment]
        with self._online() as online, self._warehouse() as wh:
            defs = self.definitions(wh)
            if config.service is not None:
                _references(defs, _service_name(config.service))  # an unknown service is the user's to fix
            return monitor_features(defs, wh, online, config)

    def online_states(self) -> dict[str, ViewState]:
        """What the online store holds per view: watermark, newest event time, entities, last run."""
        from stackml.features.online import view_states

        with self._online() as online:
            return view_states(online)

    def online_reader(
        self, features: str | list[str] | tuple[str, ...], *, pool_size: int = 4
    ) -> OnlineReader:
        """A reader of ``features`` (a service or ``view:feature`` references) by entity key, with its own
        connection pool; for a loop or a server, build it once and call ``read`` many times."""
        from stackml.features.online import OnlineReader, online_url

        if self.repo is not None:
            defs = self.definitions()
        else:
            with self._warehouse(read_only=True) as wh:
                defs = self.definitions(wh)
        return OnlineReader(online_url(self.online), defs, self._resolve(defs, features), pool_size=pool_size)

    def get_online_features(
        self, features: str | list[str] | tuple[str, ...], entity_rows: Any
    ) -> dict[str, list[Any]]:
        """The newest stored value of each feature for each entity row, as columns: the join keys, then one
        ``view__feature`` list each (None where the store has nothing, or only a value older than the TTL).

        ``entity_rows``: ``[{"customer_id": 1}, ...]``, a dict of key -> list, or a DataFrame.

        The store keeps one reader (one connection) per feature list, opened at the first call, so later
        calls cost a query, not a connection; :meth:`close` (or ``with FeatureStore(...) as store``) closes
        them, and :meth:`materialize` here starts afresh. A server reading from many threads should hold an
        :meth:`online_reader` with a larger pool.
        """
        key = (features,) if isinstance(features, str) else tuple(features)
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = self.online_reader(features, pool_size=1)
        return reader.read(entity_rows)

    def close(self) -> None:
        """Close the readers :meth:`get_online_features` keeps open."""
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _views(defs: Definitions, views: str | list[str] | None) -> list[FeatureView]:
    if views is None:
        return list(defs.views)
    names = [views] if isinstance(views, str) else list(views)
    known = {v.name: v for v in defs.views}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"Unknown feature view(s) {unknown} (views: {sorted(known) or 'none'}).",
            hint="Name views of the repo, or leave --view out to materialise all of them.",
        )
    return [known[n] for n in names]


def _service_name(service: object) -> str:
    if not isinstance(service, str) or not service or ":" in service:
        raise InputError(
            f"'service' must be the name of a feature service, got {service!r}.",
            hint="Name a service of the repo, e.g. 'churn'.",
        )
    return service


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
