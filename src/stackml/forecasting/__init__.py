"""Forecasting: one front door, :class:`Forecaster`, over the long frame ``unique_id, ds, y`` (+ exogenous).

Example:
    >>> from stackml.forecasting import Forecaster, generate_series
    >>> df = generate_series(n_series=2, freq="h", min_length=72, max_length=72, season_length=24)
    >>> fc = Forecaster(models=["snaive", "ets"], freq="h", season_length=24).fit(df)
    >>> fc.predict(h=24, level=[80]).columns.tolist()[:3]
    ['unique_id', 'ds', 'SeasonalNaive']

Names resolve lazily so that ``import stackml.forecasting`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Forecaster", "available_models", "fill_gaps", "generate_series", "make_model"]

_WHERE = {
    "Forecaster": "stackml.forecasting.forecaster",
    "fill_gaps": "stackml.forecasting.frame",
    "generate_series": "stackml.forecasting.synthetic",
    "make_model": "stackml.forecasting.models",
    "available_models": "stackml.forecasting.models",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stackml.forecasting' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
