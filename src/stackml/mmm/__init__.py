"""Bayesian media-mix modelling on PyMC: from raw touchpoints to ROAS, response curves and a posterior to plan
with.

The front door is :class:`MediaMixModel` (:class:`GeoMediaMixModel` for a panel of markets);
:func:`simulate` makes touchpoints with known truth, and
:func:`aggregate_touchpoints` turns a raw touchpoint table in the warehouse into the model frame with SQL.
PyMC, PyTensor and nutpie are imported only when a model is fitted (``pip install 'stackml[mmm]'``).

Example:
    >>> from stackml.mmm import MediaMixModel, simulate
    >>> sim = simulate("2y_3ch", seed=0)
    >>> model = MediaMixModel("date", sim.channels, "revenue", control_columns=sim.controls)

Names resolve lazily so that ``import stackml.mmm.config`` (the CLI's option defaults) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BudgetPlan",
    "Diagnostics",
    "GeoMediaMixModel",
    "MediaMixModel",
    "SimulatedGeoMMM",
    "SimulatedMMM",
    "aggregate_touchpoints",
    "diagnose",
    "load_lift_tests",
    "optimize_budget",
    "simulate",
    "simulate_geo",
]

_WHERE = {
    "BudgetPlan": "stackml.mmm.optimize",
    "Diagnostics": "stackml.mmm.diagnostics",
    "GeoMediaMixModel": "stackml.mmm.geo",
    "MediaMixModel": "stackml.mmm.model",
    "SimulatedGeoMMM": "stackml.mmm.simulation",
    "SimulatedMMM": "stackml.mmm.simulation",
    "aggregate_touchpoints": "stackml.mmm.data",
    "diagnose": "stackml.mmm.diagnostics",
    "load_lift_tests": "stackml.mmm.calibration",
    "optimize_budget": "stackml.mmm.optimize",
    "simulate": "stackml.mmm.simulation",
    "simulate_geo": "stackml.mmm.simulation",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stackml.mmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
