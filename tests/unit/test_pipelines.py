"""The pipeline skeleton: the configuration base, the source,
and publish with a small real result and pyfunc."""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pytest
from pydantic import Field, model_validator

from stackml.errors import InputError, TableNotFoundError
from stackml.pipelines import (
    Int,
    ModelToRegister,
    Names,
    PipelineConfig,
    Publishable,
    Source,
    default_of,
    publish,
)


class ToyConfig(PipelineConfig):
    what = "the toy configuration"
    hint = "See the toy's docs."

    columns: Annotated[Names, Field(min_length=1)]
    draws: Annotated[Int, Field(ge=1)] = 100
    share: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    label: str | None = None

    @model_validator(mode="after")
    def _label_is_a_column(self) -> ToyConfig:
        if self.label is not None and self.label in self.columns:
            raise ValueError(
                f"the label {self.label!r} is also a feature column\nanother problem on its own line"
            )
        return self


# -- the configuration base ----------------------------------------------------------------------------------
def test_every_field_problem_is_reported_at_once_in_one_format() -> None:
    with pytest.raises(InputError) as caught:
        ToyConfig(columns=(), draws=0, share=0.9, colour="red")
    message = str(caught.value)
    assert message.startswith("4 problem(s) with the toy configuration:\n  - ")
    for part in (
        "'columns': Value should have at least 1 item",
        "'draws': Input should be greater than or equal to 1",
        "'share': Input should be less than or equal to 0.5, got 0.9",
        "'colour': Extra inputs are not permitted, got 'red'",
        "See the toy's docs.",
    ):
        assert part in message


def test_checks_across_fields_report_each_line_as_a_problem() -> None:
    with pytest.raises(
        InputError, match=r"2 problem\(s\)[\s\S]*- the label 'a' is also[\s\S]*- another problem"
    ):
        ToyConfig(columns="a, b", label="a")


def test_names_read_comma_text_and_ints_refuse_bools() -> None:
    assert ToyConfig(columns=" a, b ,").columns == ("a", "b")
    assert ToyConfig(columns=["x"]).columns == ("x",)
    with pytest.raises(InputError, match="'draws': must be a number, not a bool, got True"):
        ToyConfig(columns="a", draws=True)


def test_json_round_trip_replace_and_defaults() -> None:
    config = ToyConfig(columns="a,b", draws=7)
    assert ToyConfig.from_json(config.to_json()) == config
    assert config.replace(draws=9).draws == 9 and config.draws == 7
    with pytest.raises(InputError, match="'draws': Input should be greater than or equal to 1"):
        config.replace(draws=0)  # replace validates again
    with pytest.raises(InputError, match="must be an object, got list"):
        ToyConfig.from_json("[1, 2]")
    with pytest.raises(InputError, match="JSON is malformed"):
        ToyConfig.from_json("{")
    assert default_of(ToyConfig, "draws") == 100 and default_of(ToyConfig, "label") is None
    with pytest.raises(Exception, match="frozen"):
        config.draws = 3  # type: ignore[misc]


def test_pickles_are_the_same_bytes_under_any_hash_seed() -> None:
    """Metaflow merges the artifacts of parallel tasks by comparing their bytes."""
    code = (
        "import hashlib, pickle; from stackml.forecasting.config import ForecastConfig; "
        "c = ForecastConfig(horizon=7, season_length=7, models='snaive,theta', freq=None, n_windows=None); "
        "b = pickle.dumps(c); assert pickle.loads(b) == c; print(hashlib.sha1(b).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1 and len(next(iter(digests)).strip()) == 40


# -- the source ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [1.5, None, 3.0],
        }
    )


def test_exactly_one_of_a_file_or_a_table(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exactly one of a data file or a warehouse table; got neither"):
        Source.of()
    with pytest.raises(InputError, match="got both"):
        Source.of(tmp_path / "x.csv", "sales")
    with pytest.raises(InputError, match="Data file not found: "):
        Source.of(tmp_path / "x.csv")
    with pytest.raises(InputError, match="is a folder, not a file"):
        Source.of(tmp_path)
    with pytest.raises(InputError, match="not a valid table name|identifier"):
        Source.of(table="sales; DROP TABLE x")
    assert Source.of("", "sales") == Source(table="sales")  # a flow's empty Parameter means "not given"


def test_files_are_read_by_the_warehouse_strict_reader(tmp_path: Path, frame: pd.DataFrame) -> None:
    csv, parquet, pq, gz = (tmp_path / n for n in ("Sales Data.csv", "s.parquet", "s.pq", "s.csv.gz"))
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    frame.to_parquet(pq)
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    for path in (csv, parquet, pq, gz):
        source = Source.of(path)
        assert source.columns() == ["id", "when", "amount"]
        read = source.read()
        pd.testing.assert_frame_equal(read, frame, check_dtype=False)
        assert str(read["when"].dtype) == "datetime64[ns]"
    assert Source.of(csv).default_model_name("forecast") == "forecast-sales-data"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InputError, match=r"Could not read .*ragged.csv"):
        Source.of(ragged).read()


def test_tables_are_read_from_the_warehouse_given(frame: pd.DataFrame) -> None:
    from stackml.warehouse import connect

    with connect("duckdb:///:memory:") as wh:
        wh.ingest(frame, "sales")
        source = Source.of(table="sales")
        assert source.columns(wh) == ["id", "when", "amount"] and len(source.read(wh)) == 3
        with pytest.raises(TableNotFoundError, match=r"Table 'nope' does not exist .*tables: \['sales'\]"):
            Source.of(table="nope").check(wh)
    with pytest.raises(InputError, match="needs a warehouse"):
        source.read()


# -- publish -------------------------------------------------------------------------------------------------
def _constant_model(value: float) -> Any:
    import mlflow.pyfunc

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            return pd.DataFrame({"prediction": [value] * len(model_input)})

    return Constant()


@dataclass
class ToyResult:
    """A real result implementing the publish protocol: a constant predictor scored by its error."""

    error: float
    passed: bool = True
    with_variant: bool = False
    gates: list[str] = field(default_factory=list)

    pipeline = "toy"
    primary_metric = "error"
    higher_is_better = False

    def failed_gates(self) -> list[str]:
        return self.gates

    def params(self) -> dict[str, Any]:
        return {"kind": "constant"}

    def metrics(self) -> dict[str, float]:
        return {"error": self.error, "not_finite": float("nan")}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"scores": pd.DataFrame({"model": ["constant"], "error": [self.error]})}

    def comparison_key(self, frame: pd.DataFrame) -> str:
        return f"rows-{len(frame)}"

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        example = frame.head(2)
        out = [ModelToRegister(_constant_model(1.0), example, None)]
        if self.with_variant:
            out.append(ModelToRegister(_constant_model(1.0), example, None, name_suffix="-fast"))
        return out


def test_publish_tracks_registers_promotes_and_writes_one_note(tmp_path: Path, frame: pd.DataFrame) -> None:
    from stackml import tracking
    from stackml.config import get_settings

    settings = get_settings(home=tmp_path)
    assert isinstance(ToyResult(1.0), Publishable)
    first = publish(ToyResult(1.0, with_variant=True), frame, model_name="toy", settings=settings)
    assert first.model_version == 1 and first.promotion.promoted and first.variants == {"toy-fast": 1}
    assert first.note.startswith("Registered as toy v1: ")
    client = tracking.configure(settings)
    run = client.get_run(first.run_id)
    assert run.data.metrics == {"error": 1.0} and run.data.params["kind"] == "constant"  # NaN left out
    assert int(client.get_model_version_by_alias("toy-fast", "champion").version) == 1

    worse = publish(ToyResult(2.0), frame, model_name="toy", settings=settings)
    assert worse.model_version == 2 and not worse.promotion.promoted
    other_data = publish(ToyResult(0.5), frame.head(2), model_name="toy", settings=settings)
    assert not other_data.promotion.promoted and "was not compared" in other_data.note

    off = publish(ToyResult(0.1), frame, model_name="toy", register=False, settings=settings)
    assert (
        off.model_version is None
        and off.run_id
        and off.note == "Not registered (registration was switched off)."
    )
    failed = publish(
        ToyResult(0.1, passed=False, gates=["r2 = 0.1 (limit 0.5)"]),
        frame,
        model_name="toy",
        settings=settings,
    )
    assert failed.model_version is None and failed.note == (
        "Not registered: the model failed its diagnostics gates (r2 = 0.1 (limit 0.5))."
    )
    assert int(client.get_model_version_by_alias("toy", "champion").version) == 1


# -- publish: a primary metric that is NaN, infinite or missing (issue 16) ----------------------------------
# The run is still tracked and the note says why; a champion whose metric is NaN gives way to a finite one.
@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from stackml.config import get_settings

    return get_settings(home=tmp_path)


class ScoredResult(ToyResult):
    """:class:`ToyResult` whose primary metric ``error`` may be anything, NaN, None or ``"missing"``."""

    def metrics(self) -> dict[str, Any]:
        return {"rmse": 2.0} | ({} if self.error == "missing" else {"error": self.error})

    def tables(self) -> dict[str, pd.DataFrame]:
        return {}


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
