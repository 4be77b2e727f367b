"""Several uvicorn worker processes: each builds its own app from the settings the parent hands down.

Uvicorn starts workers with ``spawn``, so each is a fresh interpreter that imports
:func:`app_from_environment` and calls it; the parent passes the command's choices in one environment
variable, with the feature definitions it read (a worker could not open a DuckDB warehouse another worker
holds). Each worker loads the models, re-resolves aliases and writes its own prediction-log journal; with
DuckDB, whichever worker holds the database file replays the spill files of the others.

:func:`run_workers` is uvicorn's own supervisor but for one thing: on SIGTERM the parent lets go of the
listening socket before it signals the workers. Otherwise the parent's copy keeps the socket open while the
workers drain, clients they send away reconnect into its listen queue, and those requests are reset when the
parent finally exits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackml.serving.online_features import OnlineFeatures
from stackml.serving.options import ModelSpec, ServingOptions

__all__ = ["WORKER_CONFIG_ENV", "worker_config", "app_from_environment", "default_workers", "run_workers"]

WORKER_CONFIG_ENV = "STACKML_SERVE_WORKER_CONFIG"


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def worker_config(
    models: Sequence[ModelSpec] | None,
    reload_interval_s: float,
    warehouse: str | None,
    options: ServingOptions,
    features: OnlineFeatures,
) -> str:
    """The JSON the parent puts in :data:`WORKER_CONFIG_ENV` for its workers."""
    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(options).items()}
    return json.dumps(
        {
            "models": [str(m) for m in models] if models is not None else None,
            "reload_interval_s": reload_interval_s,
            "warehouse": warehouse,
            "options": fields,
            "features": features.config(),
        }
    )


def app_from_environment() -> Any:
    """The app of one worker (uvicorn's ``factory``), built from :data:`WORKER_CONFIG_ENV`."""
    import logging

    from stackml.config import get_settings
    from stackml.serving.app import create_app
    from stackml.serving.online_features import online_features

    config = json.loads(os.environ[WORKER_CONFIG_ENV])
    fields = dict(config["options"])
    for path in ("spill_dir", "features_repo"):
        if fields.get(path):
            fields[path] = Path(fields[path])
    settings = get_settings(warehouse_url=config["warehouse"])
    options = ServingOptions(**fields)
    app = create_app(
        settings,
        models=config["models"],
        reload_interval_s=config["reload_interval_s"],
        options=options,
        features=online_features(settings, options, config["features"]),
    )
    served = ", ".join(f"{m.name}@{m.alias} v{m.version}" for m in app.state.cache.models())
    logging.getLogger(__name__).info("Worker %d serving %s.", os.getpid(), served, extra={"event": "worker"})
    return app


def run_workers(app_path: str, workers: int, **run: Any) -> None:
    """Serve ``app_path`` (a factory) with ``workers`` processes, as ``uvicorn.run(..., workers=N)`` does."""
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    class ClosingMultiprocess(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:  # new connections are refused from now on, not queued and then reset
                sock.close()
            super().terminate_all()

    config = Config(app_path, factory=True, workers=workers, **run)
    ClosingMultiprocess(config, sockets=[config.bind_socket()]).run()
