"""The registry of forecasting models, found by name.

Classes are registered by dotted path and imported on first use, so importing the registry stays cheap and a
model whose optional dependency is missing fails only when it is asked for. Names are case-insensitive.

Example:
    >>> from stackml.forecasting.models import make_model
    >>> make_model("ets", alias="my_ets").name
    'my_ets'
"""

from __future__ import annotations

import importlib
from typing import Any

from stackml.errors import InputError, MissingDependencyError
from stackml.forecasting.models.base import ForecastModel, LocalModel
from stackml.forecasting.panel import Panel

__all__ = [
    "MODELS",
    "ForecastModel",
    "LocalModel",
    "Panel",
    "available_models",
    "make_model",
    "make_model_for",
    "model_class",
]

_PKG = "stackml.forecasting.models"

#: registry name -> "module:Class"
MODELS: dict[str, str] = {
    "naive": f"{_PKG}.baselines:Naive",
    "snaive": f"{_PKG}.baselines:SeasonalNaive",
    "naive2": f"{_PKG}.baselines:Naive2",
    "rwd": f"{_PKG}.baselines:RandomWalkWithDrift",
    "ets": f"{_PKG}.statistical:ETS",
    "theta": f"{_PKG}.statistical:Theta",
    "arima": f"{_PKG}.statistical:ARIMA",
    "lgbm": f"{_PKG}.ml:LightGBMForecaster",
    "xgb": f"{_PKG}.ml:XGBoostForecaster",
    "nhits": f"{_PKG}.neural:NHITSForecaster",
    "mean_ensemble": f"{_PKG}.ensemble:MeanEnsemble",
    "median_ensemble": f"{_PKG}.ensemble:MedianEnsemble",
    "best_on_backtest": f"{_PKG}.ensemble:BestOnBacktest",
}

# other spellings people reach for (default aliases, library names)
_SYNONYMS = {
    "naive1": "naive",
    "seasonalnaive": "snaive",
    "seasonal_naive": "snaive",
    "randomwalkwithdrift": "rwd",
    "autoets": "ets",
    "autotheta": "theta",
    "autoarima": "arima",
    "lightgbm": "lgbm",
    "xgboost": "xgb",
    "n_hits": "nhits",
    "meanensemble": "mean_ensemble",
    "medianensemble": "median_ensemble",
    "bestonbacktest": "best_on_backtest",
}


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _SYNONYMS.get(key, key)


def model_class(name: str) -> type[ForecastModel]:
    """The model class registered under ``name`` (case-insensitive).

    Raises:
        InputError: if no model has that name (the message lists the known names).
        MissingDependencyError: if the model's optional dependency is not installed.
    """
    if not isinstance(name, str) or _key(name) not in MODELS:
        raise InputError(
            f"Unknown model name {name!r}. Known models: {', '.join(MODELS)}.",
            hint="Pass one of the known names, or a ForecastModel instance.",
        )
    module, _, attr = MODELS[_key(name)].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_model(name: str, **params: Any) -> ForecastModel:
    """A new, unfitted model of the class registered under ``name``, built with ``params``."""
    return model_class(name)(**params)


def make_model_for(name: str, horizon: int) -> ForecastModel:
    """:func:`make_model` told the horizon when the model trains for one (the neural model fits a fixed output
    length); other models ignore it."""
    import inspect

    takes_horizon = "horizon" in inspect.signature(model_class(name).__init__).parameters
    return make_model(name, horizon=horizon) if takes_horizon else make_model(name)


def available_models() -> dict[str, type[ForecastModel]]:
    """The registered models whose module can be imported now (name -> class), in registry order.

    A model whose module is not there (not installed with this build) or whose optional dependency is missing
    is left out; :func:`model_class` says why. Any other import failure is a bug and propagates.
    """
    found = {}
    for name, path in MODELS.items():
        try:
            found[name] = model_class(name)
        except ModuleNotFoundError as exc:
            if exc.name != path.partition(":")[0]:
                raise
        except MissingDependencyError:
            continue
    return found
