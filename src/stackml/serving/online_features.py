"""The feature services a prediction service reads online: their definitions, read once at start, and one
:class:`~stackml.features.online.OnlineReader` per service, opened on first use and kept until shutdown.

The definitions come from ``--features-repo`` or, by default, from the version last applied to the
warehouse. They are read before the prediction log opens the warehouse (a DuckDB file admits one
configuration per process) and handed to the workers by their parent, so every worker serves the same
version. A service that changes needs a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from stackml.errors import InputError, StackmlError, problems_error

if TYPE_CHECKING:
    from stackml.config import Settings
    from stackml.features.definitions import Definitions
    from stackml.features.online import OnlineReader
    from stackml.serving.options import ServingOptions

__all__ = ["OnlineFeatures", "online_features", "read_definitions"]

log = logging.getLogger(__name__)

# After a reader failed to open (the store is down, a view is not materialised), requests are answered with
# that failure for this long before the next try: each try may wait seconds for a connection.
RETRY_OPEN_S = 5.0


class OnlineFeatures:
    """Feature services by name, each read through one lazily opened, cached reader (thread-safe).

    Args:
        definitions: the feature definitions; None when there are none to serve (``unavailable`` says why).
        online_url: the online store's URL, or the reason it has none (an :class:`InputError`).
        enrich: model name -> service, from ``--enrich``; it overrides a version's tag.
        unavailable: why there are no definitions, for the answers that need one.
    """

    def __init__(
        self,
        definitions: Definitions | None,
        online_url: str | InputError,
        enrich: Mapping[str, str] | None = None,
        unavailable: str | None = None,
    ) -> None:
        self.definitions = definitions
        self.online_url = online_url
        self.enrich = dict(enrich or {})
        self.unavailable = unavailable
        self._services = {s.name: s for s in definitions.services} if definitions is not None else {}
        self._readers: dict[str, OnlineReader] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # service -> (when, why) of its last failed open
        self._locks = {name: threading.Lock() for name in self._services}

    @property
    def services(self) -> list[str]:
        return sorted(self._services)

    def service_of(self, model: str, tags: Mapping[str, str]) -> str | None:
        """The service whose features ``model`` takes: ``--enrich``, else its version's tag, else None."""
        from stackml.tracking import FEATURE_SERVICE_TAG

        return self.enrich.get(model) or tags.get(FEATURE_SERVICE_TAG) or None

    def unknown(self, service: str) -> str | None:
        """Why ``service`` cannot be read here, or None when it is one of the definitions' services."""
        if service in self._services:
            return None
        if self.definitions is None:
            return f"there are no feature services to read: {self.unavailable}"
        known = ", ".join(self.services) or "none"
        return f"the feature definitions have no service '{service}' (services: {known})"

    def store_problem(self) -> str | None:
        """Why there is no online store to read (its URL is not PostgreSQL), or None."""
        return self.online_url.message if isinstance(self.online_url, InputError) else None

    def columns(self, service: str) -> tuple[list[str], list[str]]:
        """The join keys and the ``view__feature`` columns of a known service, from its definitions."""
        from stackml.features.validation import resolve_features

        definitions = cast("Definitions", self.definitions)  # a known service has definitions
        resolved, _ = resolve_features(definitions, self._services[service].features)
        return (
            list(dict.fromkeys(k for view, _ in resolved for k in definitions.join_keys(view))),
            [view.column(feature) for view, feature in resolved],
        )

    def reader(self, service: str) -> OnlineReader:
        """The reader of a known service, opened now when this is its first use.

        Raises:
            InputError: the online store cannot be reached, or a view of the service was not materialised
                (or was changed since); tried again once :data:`RETRY_OPEN_S` have passed.
        """
        reader = self._readers.get(service)
        if reader is not None:
            return reader
        with self._locks[service]:
            reader = self._readers.get(service)
            if reader is not None:
                return reader
            failed = self._failed.get(service)
            if failed is not None and time.monotonic() - failed[0] < RETRY_OPEN_S:
                raise InputError(failed[1])
            try:
                reader = self._readers[service] = self._open(service)
            except Exception as exc:  # whatever it was, the next requests get it without waiting
                why = exc.message if isinstance(exc, StackmlError) else f"{type(exc).__name__}: {exc}"
                hint = getattr(exc, "hint", None)
                self._failed[service] = (time.monotonic(), f"{why} {hint}" if hint else why)
                raise
            self._failed.pop(service, None)
        return reader

    def _open(self, service: str) -> OnlineReader:
        from stackml.features.online import OnlineReader
        from stackml.features.validation import resolve_features

        if isinstance(self.online_url, InputError):
            raise self.online_url
        definitions = cast("Definitions", self.definitions)
        resolved, problems = resolve_features(definitions, self._services[service].features)
        if problems:
            raise problems_error(problems, what=f"feature service '{service}'")
        return OnlineReader(self.online_url, definitions, resolved)

    def close(self) -> None:
        """Close every reader's pool; a later use opens a new one (an app may be started again)."""
        for service in list(self._readers):
            with self._locks[service]:
                reader = self._readers.pop(service, None)
            if reader is not None:
                reader.close()

    def config(self) -> dict[str, Any]:
        """What a worker needs to serve the same definitions without reading them again (JSON-ready)."""
        return {
            "definitions": self.definitions.to_dict() if self.definitions is not None else None,
            "unavailable": self.unavailable,
        }


def read_definitions(settings: Settings, options: ServingOptions) -> tuple[Definitions | None, str | None]:
    """The definitions to serve and, when there are none, why.

    Raises:
        InputError: the ``features_repo`` named in the options does not load (asked for, so it must).
    """
    from stackml.features import FeatureStore

    if options.features_repo is not None:
        return FeatureStore(options.features_repo).definitions(), None
    store = FeatureStore(warehouse=settings.warehouse_url)
    try:
        registered = store.list()
    # Any failure (a missing DuckDB file, an unreachable server): serving models must go on without them.
    except Exception as exc:
        said = exc.message if isinstance(exc, StackmlError) else f"{type(exc).__name__}: {exc}"
        return None, f"the feature definitions registered in the warehouse could not be read ({said})"
    if registered is None:
        return None, (
            "no feature definitions are registered in the warehouse; apply a repo "
            "(`stackml features apply --repo DIR`) or serve with --features-repo DIR"
        )
    return registered.definitions, None


def online_features(
    settings: Settings, options: ServingOptions, config: Mapping[str, Any] | None = None
) -> OnlineFeatures:
    """The feature services of a service with these settings and options.

    Args:
        settings: the warehouse (registered definitions) and ``postgres_url`` (the online store).
        options: ``features_repo``, ``online_url`` and ``enrich``.
        config: a parent's :meth:`OnlineFeatures.config`, which a worker serves instead of reading again.
    """
    if config is None:
        definitions, unavailable = read_definitions(settings, options)
    else:
        definitions, unavailable = _from_config(config)
    if definitions is None:
        log.info("No feature services: %s.", unavailable)
    return OnlineFeatures(definitions, _online_url(settings, options), options.enrich, unavailable)


def _from_config(config: Mapping[str, Any]) -> tuple[Definitions | None, str | None]:
    from stackml.errors import raise_if_problems
    from stackml.features.repo import definitions_from_mapping

    if config["definitions"] is None:
        return None, config["unavailable"]
    problems: list[str] = []
    definitions = definitions_from_mapping(config["definitions"], "the parent process", problems)
    raise_if_problems(problems, what="the feature definitions handed to the worker")
    return definitions, None


def _online_url(settings: Settings, options: ServingOptions) -> str | InputError:
    """The online store of these settings (``online_url`` falls back on the process's settings only)."""
    from stackml.features.online import online_url

    try:
        return online_url(options.online_url or settings.postgres_url or str(settings.warehouse_url))
    except InputError as exc:  # only the services need it: serving models goes on without one
        return exc
