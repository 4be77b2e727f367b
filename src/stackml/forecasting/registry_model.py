"""The forecaster as a registered MLflow pyfunc: given ``unique_id`` values (and optionally ``h``), forecasts.

Input rows: ``unique_id`` (required) and ``h`` (optional, at most the trained horizon; the largest ``h`` in
the request applies to all its rows). Output rows: ``unique_id, ds, yhat`` and ``yhat-lo-<level>`` /
``yhat-hi-<level>`` for every interval level (e.g. ``yhat-lo-80``; see
:func:`stackml.forecasting.selection.interval_column`), ``h`` rows per requested series.

The fitted forecasters and the conformal half-widths travel inside the pickled model; forecasts from the end
of training are computed once per ``h`` and cached, so serving a request is a lookup. The ensemble mean and
the intervals are those of :mod:`stackml.forecasting.selection`, as in the pipeline that chose the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.errors import InputError
from stackml.forecasting.selection import join_forecasts, mean_ensemble, with_intervals

if TYPE_CHECKING:
    from stackml.forecasting.forecaster import Forecaster

mlflow_pyfunc = require("mlflow.pyfunc", extra="tracking")

#: the extra distributions a forecasting pyfunc needs at load time
MODEL_REQUIREMENTS = ("scikit-learn", "statsforecast", "lightgbm", "xgboost", "torch", "joblib")


class ForecastPyfunc(mlflow_pyfunc.PythonModel):
    """A pyfunc over fitted forecasters: one model, or the mean of several (an ensemble).

    Args:
        forecasters: alias -> fitted :class:`~stackml.forecasting.Forecaster` holding that alias.
        members: aliases whose mean is the forecast (one alias for a single model).
        widths: level -> conformal half-widths, array ``(n_series, horizon)`` in the forecasters'
            series order.
        horizon: the trained horizon; requests may ask for less.
    """

    def __init__(
        self,
        forecasters: dict[str, Forecaster],
        members: list[str],
        widths: dict[float, np.ndarray],
        horizon: int,
    ) -> None:
        self.forecasters = forecasters
        self.members = list(members)
        self.widths = widths
        self.horizon = int(horizon)
        self._cache: dict[int, pd.DataFrame] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def forecast(self, h: int) -> pd.DataFrame:
        """Forecasts of every series for ``h`` steps (cached)."""
        if h not in self._cache:
            points = join_forecasts(
                [self.forecasters[a].predict(h)[["unique_id", "ds", a]] for a in self.members]
            )
            out = points[["unique_id", "ds"]].assign(
                unique_id=points["unique_id"].astype(str),
                yhat=mean_ensemble([points[a] for a in self.members]),
            )
            widths = {"yhat": {level: width[:, :h] for level, width in self.widths.items()}}
            self._cache[h] = with_intervals(out, widths).reset_index(drop=True)
        return self._cache[h]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame) or "unique_id" not in model_input:
            raise InputError(
                "The input needs a 'unique_id' column.", hint="Send rows like {'unique_id': 'H1', 'h': 24}."
            )
        h = self.horizon
        if "h" in model_input and model_input["h"].notna().any():
            h = int(model_input["h"].max())
            if h < 1 or h > self.horizon:
                raise InputError(
                    f"h must be between 1 and the trained horizon {self.horizon}; got {h}.",
                    hint=f"Ask for at most h={self.horizon}, or retrain with a longer horizon.",
                )
        table = self.forecast(h)
        wanted = pd.unique(model_input["unique_id"].astype(str))
        unknown = sorted(set(wanted) - set(table["unique_id"]))
        if unknown:
            raise InputError(
                f"Unknown series {unknown[:10]}{' ...' if len(unknown) > 10 else ''} "
                f"({len(unknown)} in all).",
                hint="Ask for series the model was trained on.",
            )
        return table[table["unique_id"].isin(wanted)].reset_index(drop=True)


def signature_for(example_output: pd.DataFrame) -> Any:
    """Input ``unique_id`` (string, required) and ``h`` (long, optional); output as produced."""
    from mlflow.models import ModelSignature
    from mlflow.models.signature import infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    inputs = Schema([ColSpec(DataType.string, "unique_id"), ColSpec(DataType.long, "h", required=False)])
    outputs = infer_signature(example_output.head(), example_output.head()).outputs
    return ModelSignature(inputs=inputs, outputs=outputs)
