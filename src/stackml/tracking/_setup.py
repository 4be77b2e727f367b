"""Points MLflow at the store named by the settings and keeps the client for later calls.

MLflow keeps its tracking URI and active run in process-wide state, so this module keeps the matching
stackml state next to it: the settings last applied and a client bound to them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.errors import InputError, RegistryError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["configure", "current_settings", "ensure_store", "mlflow_module", "translate_mlflow_error"]

TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"


@dataclass
class _State:
    settings: Settings
    client: Any
    explicit: bool  # passed by the caller (kept for later calls) rather than read from the defaults


_state: _State | None = None


def mlflow_module() -> Any:
    """Import MLflow with telemetry off; the variable must be set before the first import to take effect."""
    os.environ[TELEMETRY_ENV] = "true"
    return require("mlflow")


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (three slashes, then a relative or absolute path)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def configure(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow's tracking and registry at ``settings.tracking_uri`` and return a client.

    Settings passed here (or to any stackml.tracking function) stay in force for later calls made
    without ``settings``. Until some are passed, ``settings=None`` re-reads the defaults on each call,
    so a changed ``STACKML_HOME`` is followed. Repeated calls with unchanged settings are cheap; the
    first call on a new SQLite store creates it (about a second), in a temporary file linked into place
    once complete, so an interrupted creation never leaves a half-made store.

    Args:
        settings: where to track; default the settings passed last, else
            :func:`stackml.config.get_settings`.

    Returns:
        An ``mlflow.tracking.MlflowClient`` bound to the tracking and registry URI.

    Example:
        >>> from stackml.config import get_settings
        >>> client = configure(get_settings(home="/tmp/stackml-demo"))
    """
    global _state
    mlflow = mlflow_module()
    explicit = settings is not None
    if settings is None:
        # Inside a run, stay on the run's store even if it came from the defaults.
        if _state is not None and (_state.explicit or mlflow.active_run() is not None):
            settings, explicit = _state.settings, _state.explicit
        else:
            settings = get_settings()
    uri = settings.tracking_uri
    # Someone else may have re-pointed MLflow's process-wide URI; the fluent API would follow it.
    if _state is not None and _state.settings == settings and mlflow.get_tracking_uri() == uri:
        _state.explicit = _state.explicit or explicit
        return _state.client
    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        _create_sqlite_store(mlflow, db, settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri, registry_uri=uri)
    _state = _State(settings=settings, client=client, explicit=explicit)
    return client


def _create_sqlite_store(mlflow: Any, db: Path, settings: Settings) -> None:
    """Create the SQLite store in a temporary file and link it into place only once it is complete.

    MLflow builds a new store with dozens of migrations; a process stopped half-way (Ctrl-C on a first run)
    would otherwise leave a store every later command refuses. Linking never replaces a store another
    process finished first.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    # SQLite creates the file but not its folder; a fresh clone has no .stackml yet.
    db.parent.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(f".{db.name}.{os.getpid()}.partial")
    try:
        with _quiet_migrations():
            store = SqlAlchemyStore(f"sqlite:///{partial}", settings.artifact_location)
        store.engine.dispose()
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile: keep theirs
            os.link(partial, db)
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(
            f"Could not create the MLflow store {db}: {exc}",
            hint="Check that the folder is writable, or set STACKML_TRACKING_URI to another store.",
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_migrations() -> Any:
    """MLflow and Alembic log each migration at INFO on stderr; a CLI command prints only its result."""
    loggers = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def ensure_store(settings: Settings | None = None) -> None:
    """Create the tracking store now, or check that it is usable, before anything writes to it.

    Pipelines call this before their flow starts, so no step of the flow ever creates (and, when
    interrupted, half-creates) the store.

    Raises:
        RegistryError: the store exists but MLflow cannot use it (e.g. a store left half-migrated by an
            older stackml interrupted on its first run); the hint says how to repair it.
    """
    client = configure(settings)
    mlflow = mlflow_module()
    uri = current_settings().tracking_uri
    try:
        with _quiet_migrations():
            client.search_experiments(max_results=1)
    except mlflow.exceptions.MlflowException as exc:
        if "out-of-date database schema" not in str(exc):
            raise translate_mlflow_error(exc, f"The MLflow store {uri}") from exc
        raise RegistryError(
            f"The MLflow store {uri} has an incomplete schema ({_first_sentence(str(exc))}); "
            "it was probably left half-created by an interrupted first run.",
            hint=f"Back it up, then run `mlflow db upgrade {uri}`, or delete it if nothing in it is needed.",
        ) from exc


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].strip()


def current_settings() -> Settings:
    """The settings applied by the last :func:`configure` (configuring the defaults if none was)."""
    configure()
    assert _state is not None
    return _state.settings


def experiment_artifact_location(settings: Settings, pipeline: str) -> str | None:
    """Where a new experiment stores its artifacts: one folder per pipeline under the settings' location.

    A tracking server chooses its own artifact store; our file default under the local home would
    make a remote server write into a folder of its own machine, so it is only passed on when the
    user set it or the store is local.
    """
    default = (settings.home / "mlartifacts").as_uri()
    remote = urlparse(settings.tracking_uri).scheme in ("http", "https", "databricks")
    if remote and settings.artifact_location == default:
        return None
    return f"{settings.artifact_location.rstrip('/')}/{pipeline}"


def translate_mlflow_error(exc: Exception, what: str, *, hint: str | None = None) -> Exception:
    """Turn an ``MlflowException`` into the stackml error a caller would catch.

    Args:
        exc: the exception raised by MLflow.
        what: the object that was looked up or written, e.g. "model 'demand' version 3".
        hint: how to fix it, when the caller knows better than the generic advice.

    Returns:
        A :class:`RegistryError` for missing objects, an :class:`InputError` for rejected values, or
        ``exc`` itself for anything else (a broken store is not the caller's fault).
    """
    code = getattr(exc, "error_code", "")
    message = getattr(exc, "message", None) or str(exc)
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message:
        return RegistryError(
            f"{what} does not exist in the MLflow store ({message}).",
            hint=hint or "Run `stackml models` or `stackml runs` to see what exists.",
        )
    if code == "INVALID_PARAMETER_VALUE":
        return InputError(f"MLflow rejected {what}: {message}", hint=hint)
    return exc
