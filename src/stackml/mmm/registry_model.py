"""The media-mix model as a registered MLflow pyfunc: given a spend plan, the expected target per period.

Input rows: one per period, the date column and one spend column per channel (evenly spaced at the training
frequency, usually the periods after the training data), plus the control columns; a control that is left out
is held at its training average. Output rows: ``date, prediction, hdi_low, hdi_high``: the posterior-mean
expected target and its highest-density interval, with the training spend before the plan carrying over into
it.

The fitted :class:`~stackml.mmm.MediaMixModel` travels inside the pickled pyfunc (posterior draws and design,
no compiled sampler), so predicting is NumPy only; ``stackml mmm optimize`` unwraps it to plan budgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from stackml._deps import require
from stackml.errors import InputError

if TYPE_CHECKING:
    from stackml.mmm.model import MediaMixModel

mlflow_pyfunc = require("mlflow.pyfunc", extra="tracking")

#: the extra distributions an MMM pyfunc needs at load time (the pickled posterior holds ArviZ/xarray data)
MODEL_REQUIREMENTS = ("pymc", "nutpie", "arviz", "xarray", "scipy")
EXAMPLE_PERIODS = 4


class MMMPyfunc(mlflow_pyfunc.PythonModel):
    """A pyfunc over a fitted media-mix model: expected target with an HDI for each period of a spend plan.

    Args:
        model: the fitted model.
        hdi_prob: mass of the returned interval.
    """

    def __init__(self, model: MediaMixModel, hdi_prob: float = 0.94) -> None:
        self.model = model
        self.hdi_prob = float(hdi_prob)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        model = self.model
        if not isinstance(model_input, pd.DataFrame):
            raise InputError(
                f"The input must be a table of spend per period, got {type(model_input).__name__}.",
                hint=f"Send rows like {example_plan(model).head(1).to_dict(orient='records')}.",
            )
        required = [model.date_column, *model.channels_]
        missing = [c for c in required if c not in model_input.columns]
        if missing:
            raise InputError(
                f"The spend plan misses columns {missing} (it has {list(model_input.columns)}).",
                hint=f"Send '{model.date_column}' and one spend column per channel: {list(model.channels_)}.",
            )
        plan = model_input.copy()
        for control, average in control_averages(model).items():
            if control not in plan.columns or plan[control].isna().all():
                plan[control] = average  # unknown future controls: an average period
        return model.predict(plan, hdi_prob=self.hdi_prob).reset_index(drop=True)


def control_averages(model: MediaMixModel) -> dict[str, float]:
    """Each control's mean over the training periods."""
    d = model.design_
    return {c: float(d.control_values[:, k].mean()) for k, c in enumerate(d.controls)}


def example_plan(model: MediaMixModel, periods: int = EXAMPLE_PERIODS) -> pd.DataFrame:
    """The periods after the training data at each channel's average spend, controls at their average."""
    d = model.design_
    step = pd.Timedelta(days=d.period_days)
    plan = pd.DataFrame({model.date_column: [d.dates[-1] + step * (i + 1) for i in range(periods)]})
    for k, channel in enumerate(d.channels):
        plan[channel] = float(d.spend[:, k].mean())
    for control, average in control_averages(model).items():
        plan[control] = average
    return plan


def signature_for(model: MediaMixModel, example_output: pd.DataFrame) -> Any:
    """Input: the date (datetime, required), channel spend (double, required), controls (double, optional)."""
    from mlflow.models import ModelSignature
    from mlflow.models.signature import infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    columns = [ColSpec(DataType.datetime, model.date_column)]
    columns += [ColSpec(DataType.double, c) for c in model.channels_]
    columns += [ColSpec(DataType.double, c, required=False) for c in model.design_.controls]
    outputs = infer_signature(example_output.head(), example_output.head()).outputs
    return ModelSignature(inputs=Schema(columns), outputs=outputs)


class GeoMMMPyfunc(mlflow_pyfunc.PythonModel):
    """A pyfunc over a fitted geo media-mix model: a spend plan per geo in, the expected target per period and
    geo out (``date, geo, prediction, hdi_low, hdi_high``), each geo predicted by its own posterior view.

    Args:
        model: the fitted :class:`~stackml.mmm.GeoMediaMixModel`.
        hdi_prob: mass of the returned interval.
    """

    def __init__(self, model: Any, hdi_prob: float = 0.94) -> None:
        self.model = model
        self.hdi_prob = float(hdi_prob)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        model = self.model
        geo_column = model.geo_column
        if not isinstance(model_input, pd.DataFrame) or geo_column not in model_input.columns:
            got = type(model_input).__name__
            columns = list(model_input.columns) if isinstance(model_input, pd.DataFrame) else got
            raise InputError(
                f"The input must be a table of spend per period and geo with a '{geo_column}' column, got "
                f"{columns}.",
                hint=f"Send rows like {geo_example_plan(model).head(1).to_dict(orient='records')}.",
            )
        labels = model_input[geo_column].astype(str)
        unknown = sorted(set(labels) - set(model.geo_models_))
        if unknown:
            raise InputError(
                f"The plan names geos the model was not fitted on: {unknown[:5]}.",
                hint=f"The model knows the geos {list(model.geo_models_)}.",
            )
        parts = []
        for geo in pd.unique(labels):
            view = MMMPyfunc(model.geo_models_[geo], self.hdi_prob)
            rows = model_input[labels == geo].drop(columns=[geo_column])
            out = view.predict(context, rows)
            out.insert(1, geo_column, geo)
            parts.append(out)
        return pd.concat(parts, ignore_index=True)


def geo_example_plan(model: Any, periods: int = EXAMPLE_PERIODS) -> pd.DataFrame:
    """:func:`example_plan` of every geo, with the geo column."""
    parts = []
    for geo, view in model.geo_models_.items():
        plan = example_plan(view, periods)
        plan.insert(1, model.geo_column, geo)
        parts.append(plan)
    return pd.concat(parts, ignore_index=True)


def geo_signature(model: Any, example_output: pd.DataFrame) -> Any:
    """:func:`signature_for` with the geo column (string, required) after the date."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    view = next(iter(model.geo_models_.values()))
    national = signature_for(view, example_output)
    columns = list(national.inputs.inputs)
    columns.insert(1, ColSpec(DataType.string, model.geo_column))
    return ModelSignature(inputs=Schema(columns), outputs=national.outputs)
