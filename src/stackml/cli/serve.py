"""``stackml serve``: the prediction service under uvicorn.

Registered on the app in ``cli/main.py`` with ``app.command()(serve)``. FastAPI, uvicorn and MLflow are
imported inside the command, so ``stackml --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stackml.cli._pipeline import WarehouseOption

__all__ = ["serve"]


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
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (costs throughput).")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    warehouse: WarehouseOption = None,
) -> None:
    """Serve registered models over HTTP: predict, validate, log every prediction, expose /metrics."""
    from stackml._deps import require
    from stackml.config import get_settings
    from stackml.serving.options import parse_model_specs

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from stackml.serving.app import create_app

    # Parse before touching the registry: a malformed --models fails in milliseconds.
    specs = parse_model_specs(models) if models is not None else None
    settings = get_settings(warehouse_url=warehouse)  # where the prediction log goes
    settings.ensure_home()
    app = create_app(settings, models=specs, reload_interval_s=reload_interval)
    names = ", ".join(f"{m.name}@{m.alias} v{m.version}" for m in app.state.cache.models())
    typer.echo(f"Serving {names} on http://{host}:{port} (docs: /docs, metrics: /metrics)", err=True)
    # One worker: the prediction log has one writer per process, and uvloop + httptools keep one core busy.
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        access_log=access_log,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )
