"""A NaN, infinite or missing primary metric never registers or promotes a model (issue 16).

The run is still tracked and the note says why; a champion whose metric is NaN gives way to a finite
candidate. Real file-based MLflow stores under ``tmp_path``, real pyfunc models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackml.pipelines import ModelToRegister, publish


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": [1, 2, 1], "y": [1.0, 2.0, 3.0]})


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from stackml.config import get_settings

    return get_settings(home=tmp_path)


def _constant_model(value: float) -> Any:
    import mlflow.pyfunc

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            return pd.DataFrame({"prediction": [value] * len(model_input)})

    return Constant()


@dataclass
class ScoredResult:
    """A real publishable result: a constant predictor whose primary metric ``error`` may be anything."""

    error: Any
    passed: bool = True

    pipeline = "toy"
    primary_metric = "error"
    higher_is_better = False

    def failed_gates(self) -> list[str]:
        return []

    def params(self) -> dict[str, Any]:
        return {"kind": "constant"}

    def metrics(self) -> dict[str, Any]:
        return {"rmse": 2.0} | ({} if self.error == "missing" else {"error": self.error})

    def tables(self) -> dict[str, pd.DataFrame]:
        return {}

    def comparison_key(self, frame: pd.DataFrame) -> str:
        return f"rows-{len(frame)}"

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        return [ModelToRegister(_constant_model(1.0), frame.head(2), None)]


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (float("nan"), "is NaN"),
        (np.float64("nan"), "is NaN"),
        (float("inf"), "is inf"),
        (-math.inf, "is -inf"),
        (None, "was not measured"),
        ("missing", "was not measured"),
    ],
)
def test_a_primary_metric_without_a_value_tracks_the_run_and_registers_nothing(frame, settings, error, said):
    from stackml import tracking

    published = publish(ScoredResult(error), frame, model_name="toy", settings=settings)
    assert published.run_id and published.model_version is None and published.promotion is None
    assert published.variants == {}
    assert published.note == (
        f"Not registered: the primary metric error {said}, so the model cannot be compared with the champion "
        "(a score can be undefined on, e.g., a constant series or one shorter than its season)."
    )
    run = tracking.configure(settings).get_run(published.run_id)
    assert run.data.metrics == {"rmse": 2.0} and run.data.params["kind"] == "constant"
    assert tracking.list_models(settings=settings).empty
    # switched off or failed gates still say so first
    off = publish(ScoredResult(error), frame, model_name="toy", register=False, settings=settings)
    assert off.note == "Not registered (registration was switched off)."


def test_a_forecasting_result_with_an_undefined_owa_is_tracked_not_registered(frame, settings):
    from stackml.forecasting.config import ForecastConfig
    from stackml.forecasting.result import PipelineResult
    from stackml.forecasting.selection import Choice

    # a constant series that Naive2 forecast exactly: OWA is undefined for every model
    scores = pd.DataFrame(
        {
            "model": ["Naive2", "Theta"],
            "smape": [0.0, 1.5],
            "mase": [0.0, 0.2],
            "owa": [np.nan, None],
            "rmse": [0.0, 0.1],
        }
    )
    result = PipelineResult(
        config=ForecastConfig(horizon=2),
        run_id="r",
        scores=scores,
        choice=Choice("Naive2"),
        ensembles={},
        backtest=pd.DataFrame(),
        forecasts=pd.DataFrame(),
        widths={},
        forecasters={},
        alias_names={"Naive2": "naive2", "Theta": "theta"},
        holdout=None,
        by_step=pd.DataFrame(),
        by_series=pd.DataFrame(),
        seconds={},
    )
    metrics = result.metrics()
    assert math.isnan(metrics["backtest_owa"]) and math.isnan(metrics["backtest_owa_Theta"])
    assert metrics["backtest_smape"] == 0.0
    published = publish(result, frame, model_name="forecast-flat", settings=settings)
    assert published.run_id and published.model_version is None and published.promotion is None
    assert published.note.startswith(
        "Not registered: the primary metric backtest_owa is NaN, so the model cannot be compared"
    )


def test_a_champion_with_a_nan_metric_gives_way_to_a_finite_candidate(frame, settings):
    from stackml import tracking
    from stackml.tracking.registry import TAG_EVALUATION

    # An older champion whose metric is NaN, measured on the same data as the candidates will be.
    key = ScoredResult(1.0).comparison_key(frame)
    nan_version = tracking.register_model(
        _constant_model(0.0),
        "toy",
        input_example=frame.head(2),
        metrics={"error": float("nan")},
        settings=settings,
    )
    client = tracking.configure(settings)
    client.set_model_version_tag("toy", nan_version.version, TAG_EVALUATION, key)
    client.set_registered_model_alias("toy", "champion", nan_version.version)
    assert math.isnan(client.get_run(nan_version.run_id).data.metrics["error"])

    first = publish(ScoredResult(1.0), frame, model_name="toy", settings=settings)
    assert first.model_version == 2 and first.promotion.promoted
    assert math.isnan(first.promotion.champion_value) and first.promotion.champion_version == 1
    assert "replaces champion v1, whose error=nan is not a finite number" in first.note
    assert int(client.get_model_version_by_alias("toy", "champion").version) == 2
    # from there on, ordinary comparisons
    worse = publish(ScoredResult(3.0), frame, model_name="toy", settings=settings)
    assert worse.model_version == 3 and not worse.promotion.promoted and "does not beat" in worse.note


def test_promote_never_moves_the_alias_to_a_nan_candidate(frame, settings):
    # (MLflow stores an infinite metric as +-1.8e308, a finite number: only publish can see that it was inf.)
    from stackml import tracking

    version = tracking.register_model(
        _constant_model(0.0),
        "direct",
        input_example=frame.head(2),
        metrics={"error": math.nan},
        settings=settings,
    )
    decision = tracking.promote("direct", version.version, "error", higher_is_better=False, settings=settings)
    assert (
        not decision.promoted
        and decision.reason == "candidate v1 error=nan is not a finite number, so it is not promoted."
    )
    assert "champion" not in tracking.configure(settings).get_registered_model("direct").aliases
