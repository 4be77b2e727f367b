"""The HTTP routes, one ``APIRouter`` per concern; :func:`stackml.serving.app.create_app` includes them.

A handler finds what it needs on ``request.app.state``, which ``create_app`` fills: ``cache`` (the
:class:`~stackml.serving.registry.ModelCache`), ``prediction_log``, ``metrics``, ``options``, ``probes`` (the
thread pool for health probes) and ``request_ids``. These modules import FastAPI: import them only once
FastAPI is known to be installed.
"""
