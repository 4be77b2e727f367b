"""Tuning knobs of the prediction service and the ``name@alias`` model specs it serves."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackml.errors import InputError

__all__ = [
    "ServingOptions",
    "ModelSpec",
    "parse_model_specs",
    "parse_enrich",
    "servable_name",
    "DEFAULT_ALIAS",
]

DEFAULT_ALIAS = "champion"
# Registered model names may hold more than our pipeline names do, but they travel in URL paths.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def servable_name(name: str) -> bool:
    """Whether a registered model name can be served: it travels in URL paths, metric labels and logs."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class ServingOptions:
    """How the service behaves; the defaults suit one process on a small machine.

    Attributes:
        max_body_bytes: largest request body accepted; larger ones get 413.
        max_records: most records one prediction request may carry (documented in the OpenAPI schema);
            more get 422.
        max_problems: most problems one 422 answer lists (the count of all of them is in its detail), so
            a large invalid body cannot produce an answer many times its size.
        log_table: warehouse table of the prediction log.
        log_batch_size: requests gathered before the log writer writes early (else every flush interval).
        log_flush_interval_s: longest a logged row waits before its batch is written.
        log_retry_interval_s: pause between attempts to reach a warehouse that was down.
        spill_dir: folder of the spill files used while the warehouse is down; default
            ``<home>/serving/spill``.
        log_hold_connection: keep the warehouse connection open between batches. DuckDB admits one
            process per file, so while serving on a DuckDB warehouse other processes cannot open it; False
            reopens the file for each batch (about 50 ms each) so they can, between batches.
        probe_timeout_s: longest ``/ready`` waits for each probe.
        ready_cache_s: how long ``/ready`` answers from its last probe of the registry and the
            warehouse before probing again (a flood of readiness checks costs at most one probe per period).
        drain_s: after SIGTERM, seconds the service keeps answering (each answer with ``Connection: close``,
            ``/ready`` with 503) before it stops listening, so clients move off kept-alive connections
            instead of having a request cut. Applies when the app runs in a process's main thread.
        shutdown_timeout_s: longest shutdown waits for the log to drain.
        publish_examples: show rows of each model's input example (training data) in ``/v1/models``
            and the OpenAPI document; off by default.
        features_repo: the feature repo folder whose services ``/v1/features/{service}`` and enrichment
            read; default the definitions last applied to the warehouse (none: no feature services).
        online_url: the PostgreSQL URL of the online feature store; default the settings' ``postgres_url``,
            else the warehouse when it is PostgreSQL.
        enrich: model name -> feature service whose features are added to the model's records before it
            sees them; overrides the version's ``stackml.feature_service`` tag.
    """

    max_body_bytes: int = 1 << 20
    max_records: int = 1_000
    max_problems: int = 100
    log_table: str = "prediction_log"
    log_batch_size: int = 500
    log_flush_interval_s: float = 1.0
    log_retry_interval_s: float = 2.0
    spill_dir: Path | None = None
    log_hold_connection: bool = True
    probe_timeout_s: float = 3.0
    ready_cache_s: float = 5.0
    drain_s: float = 2.0
    shutdown_timeout_s: float = 30.0
    publish_examples: bool = False
    features_repo: Path | None = None
    online_url: str | None = None
    enrich: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.enrich, Mapping) or not all(
            isinstance(k, str) and servable_name(k) and isinstance(v, str) and v
            for k, v in self.enrich.items()
        ):
            problems.append(f"'enrich' must map model names to feature service names, got {self.enrich!r}")
        for name in ("max_body_bytes", "max_records", "max_problems", "log_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"'{name}' must be a positive integer, got {value!r}")
        for name in (
            "log_flush_interval_s",
            "log_retry_interval_s",
            "probe_timeout_s",
            "ready_cache_s",
            "drain_s",
            "shutdown_timeout_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(f"'{name}' must be a number >= 0, got {value!r}")
        if problems:
            raise InputError(f"Invalid serving options: {'; '.join(problems)}.")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model to serve, by name and the alias that picks its version."""

    name: str
    alias: str = DEFAULT_ALIAS

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}"


def parse_model_specs(specs: str | Iterable[str | ModelSpec]) -> list[ModelSpec]:
    """Parse ``"demand@champion,churn"`` (or a list of such items) into :class:`ModelSpec` objects.

    A name without ``@alias`` means ``@champion``. Every malformed item is reported at once.

    Raises:
        InputError: an item is not ``name`` or ``name@alias``, or a name appears twice (the URL
            ``/v1/models/{name}`` can address one version of each model).

    Example:
        >>> [str(s) for s in parse_model_specs("demand, churn@challenger")]
        ['demand@champion', 'churn@challenger']
    """
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    parsed, problems = [], []
    for item in items:
        if isinstance(item, ModelSpec):
            parsed.append(item)
            continue
        text = str(item).strip()
        if not text and isinstance(specs, str):
            continue  # tolerate "a,,b" and a trailing comma
        name, _, alias = text.partition("@")
        alias = alias or DEFAULT_ALIAS
        if not _NAME.match(name) or not _NAME.match(alias):
            problems.append(repr(text))
        else:
            parsed.append(ModelSpec(name, alias))
    if problems:
        raise InputError(
            f"Model specs must be 'name' or 'name@alias' (letters, digits, '_', '.', '-'); "
            f"got {', '.join(problems)}.",
            hint="Example: --models demand@champion,churn",
        )
    seen: set[str] = set()
    twice = sorted({s.name for s in parsed if s.name in seen or seen.add(s.name)})
    if twice:
        raise InputError(
            f"Each model can be served under one alias; these names appear more than once: {twice}.",
            hint="Keep one 'name@alias' per model.",
        )
    if not parsed:
        raise InputError("No model to serve was given.", hint="Example: --models demand@champion")
    return parsed


def parse_enrich(items: Iterable[str]) -> dict[str, str]:
    """Parse ``["churn=churn_features", ...]`` (``MODEL=SERVICE`` items) into a mapping; every malformed
    item, and every model named twice, is reported at once.

    Raises:
        InputError: an item is not ``MODEL=SERVICE``, or a model is given two services.

    Example:
        >>> parse_enrich(["churn=customer_features"])
        {'churn': 'customer_features'}
    """
    parsed: dict[str, str] = {}
    problems = []
    for item in items:
        model, sep, service = str(item).partition("=")
        model, service = model.strip(), service.strip()
        if not sep or not _NAME.match(model) or not _NAME.match(service):
            problems.append(f"{str(item)!r} is not MODEL=SERVICE")
        elif parsed.get(model, service) != service:
            problems.append(f"model {model!r} is given two services ({parsed[model]!r} and {service!r})")
        else:
            parsed[model] = service
    if problems:
        raise InputError(
            f"Invalid --enrich: {'; '.join(problems)}.",
            hint="Example: --enrich churn=customer_features (repeat it for each model).",
        )
    return parsed
