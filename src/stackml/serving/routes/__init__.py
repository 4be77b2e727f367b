"""The HTTP routes, one ``APIRouter`` per concern; :func:`stackml.serving.app.create_app` includes them.

A handler finds what it needs on ``request.app.state``, which ``create_app`` fills: ``cache`` (the
:class:`~stackml.serving.registry.ModelCache`), ``features`` (the
:class:`~stackml.serving.online_features.OnlineFeatures`), ``prediction_log``, ``metrics``, ``options``,
``readiness`` (the cached health probes) and ``request_ids``. These modules import FastAPI: import them
only once FastAPI is known to be installed.
"""
