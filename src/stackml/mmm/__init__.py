"""Bayesian media-mix modelling on PyMC: from raw touchpoints to ROAS, response curves and a posterior to plan with.

The front door is :class:`MediaMixModel`; :func:`simulate` makes touchpoints with known truth, and
:func:`aggregate_touchpoints` turns a raw touchpoint table in the warehouse into the model frame with SQL.
PyMC, PyTensor and nutpie are imported only when a model is fitted (``pip install 'stackml[mmm]'``).

Example:
    >>> from stackml.mmm import MediaMixModel, simulate
    >>> sim = simulate("2y_3ch", seed=0)
    >>> model = MediaMixModel("date", sim.channels, "revenue", control_columns=sim.controls)
"""

from stackml.mmm.calibration import load_lift_tests
from stackml.mmm.data import aggregate_touchpoints
from stackml.mmm.diagnostics import Diagnostics, diagnose
from stackml.mmm.model import MediaMixModel
from stackml.mmm.optimize import BudgetPlan, optimize_budget
from stackml.mmm.simulate import SimulatedMMM, simulate

__all__ = [
    "BudgetPlan",
    "Diagnostics",
    "MediaMixModel",
    "SimulatedMMM",
    "aggregate_touchpoints",
    "diagnose",
    "load_lift_tests",
    "optimize_budget",
    "simulate",
]
