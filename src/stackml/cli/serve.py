"""``stackml serve``: the prediction service under uvicorn.

Registered on the app in ``cli/main.py`` with ``app.command()(serve)``. FastAPI, uvicorn and MLflow are
imported inside the command, so ``stackml --help`` stays fast.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer

from stackml.cli._pipeline import LogFormatOption, WarehouseOption
from stackml.serving.options import ServingOptions

__all__ = ["serve"]

_DEFAULTS = ServingOptions()


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.", min=1, max=65535)] = 8000,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "-m",
            help="Comma-separated name@alias list (a bare name means @champion). "
            "Default: every registered model with a 'champion' alias.",
        ),
    ] = None,
    reload_interval: Annotated[
        float,
        typer.Option(
            "--reload-interval", help="Seconds between re-resolutions of each alias (0: off).", min=0
        ),
    ] = 30.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes. Default: the number of cores this process may use.",
            min=1,
        ),
    ] = None,
    max_records: Annotated[
        int, typer.Option("--max-records", help="Most records one prediction request may carry.", min=1)
    ] = _DEFAULTS.max_records,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="Largest request body accepted (else 413).", min=1)
    ] = _DEFAULTS.max_body_bytes,
    drain_seconds: Annotated[
        float,
        typer.Option(
            "--drain-seconds",
            help="After SIGTERM, seconds to keep answering (with 'Connection: close') before stopping.",
            min=0,
        ),
    ] = _DEFAULTS.drain_s,
    publish_examples: Annotated[
        bool,
        typer.Option(
            "--publish-examples",
            help="Show rows of each model's input example (training data) in /v1/models and the API docs.",
        ),
    ] = _DEFAULTS.publish_examples,
    features_repo: Annotated[
        Path | None,
        typer.Option(
            "--features-repo",
            help="Feature repo whose services /v1/features/{service} and --enrich read. "
            "Default: the definitions last applied to the warehouse.",
        ),
    ] = _DEFAULTS.features_repo,
    online: Annotated[
        str | None,
        typer.Option(
            "--online",
            help="PostgreSQL URL of the online feature store (default: STACKML_POSTGRES_URL, else the "
            "warehouse when it is PostgreSQL).",
        ),
    ] = _DEFAULTS.online_url,
    enrich: Annotated[
        list[str] | None,
        typer.Option(
            "--enrich",
            help="MODEL=SERVICE: add the feature service's online features to the model's records, read by "
            "their join keys (repeatable; overrides the version's stackml.feature_service tag).",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (costs throughput).")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Level of stackml's and uvicorn's logs.")
    ] = "info",
    log_format: LogFormatOption = "text",
    warehouse: WarehouseOption = None,
) -> None:
    """Serve registered models over HTTP: predict, validate, log every prediction, expose /metrics."""
    import gc
    import logging.config
    import os

    from stackml._deps import require
    from stackml.config import get_settings
    from stackml.serving.logs import log_config
    from stackml.serving.options import parse_enrich, parse_model_specs

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from stackml.serving.app import create_app
    from stackml.serving.workers import WORKER_CONFIG_ENV, default_workers, run_workers, worker_config

    # Parse before touching the registry: a malformed --models fails in milliseconds.
    specs = parse_model_specs(models) if models is not None else None
    enriched = parse_enrich(enrich or [])
    logging_config = log_config(log_format, log_level, access_log)
    options = ServingOptions(
        max_records=max_records,
        max_body_bytes=max_body_bytes,
        drain_s=drain_seconds,
        publish_examples=publish_examples,
        features_repo=features_repo,
        online_url=online,
        enrich=enriched,
    )
    settings = get_settings(warehouse_url=warehouse)  # where the prediction log goes
    settings.ensure_home()
    logging.config.dictConfig(logging_config)
    log = logging.getLogger("stackml.serve")
    workers = workers or default_workers()
    # Built here even when workers will build their own: a bad model or alias fails now, with exit code 2.
    app = create_app(settings, models=specs, reload_interval_s=reload_interval, options=options)
    names = ", ".join(f"{m.name}@{m.alias} v{m.version}" for m in app.state.cache.models())
    typer.echo(
        f"Serving {names} on http://{host}:{port} with {workers} worker(s) (docs: /docs, metrics: /metrics)",
        err=True,
    )
    if not settings.api_token and not _loopback(host):
        log.warning(
            "Listening on %s without STACKML_API_TOKEN: anyone who can reach port %d can call every model "
            "and read /ready and /metrics. Set STACKML_API_TOKEN, or listen on 127.0.0.1.",
            host,
            port,
        )
    run: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_config": logging_config,
        "timeout_graceful_shutdown": options.shutdown_timeout_s,
    }
    if workers == 1:
        uvicorn.run(app, **run)
    else:
        # the workers serve the feature definitions read here
        config = worker_config(specs, reload_interval, warehouse, options, app.state.features)
        del app
        gc.collect()
        os.environ[WORKER_CONFIG_ENV] = config
        run_workers("stackml.serving.workers:app_from_environment", workers, **run)
    _replay_leftovers(settings, options)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _replay_leftovers(settings: Any, options: ServingOptions) -> None:
    """Move what the workers left in spill files into the table once they have all stopped.

    With DuckDB one process at a time holds the file, so a worker that stops last may leave its final
    batch spilled; the table is complete after a graceful stop all the same.
    """
    from stackml.serving.app import prediction_log

    plog = prediction_log(settings, options)
    if not plog.has_leftovers():
        return
    plog.start()
    plog.flush(options.shutdown_timeout_s)
    plog.close(options.shutdown_timeout_s)
