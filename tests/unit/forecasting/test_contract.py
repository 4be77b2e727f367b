"""One contract, every registered model: a model is checked by registering it.

The parameter list is built from the registry, so models whose module has not landed are not collected;
``test_every_registered_model_is_importable`` then fails, so none is skipped silently for long.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting import Forecaster, generate_series
from stackml.forecasting.frame import build_panel
from stackml.forecasting.models import MODELS, available_models, make_model, model_class
from stackml.forecasting.models.base import ForecastModel
from stackml.forecasting.panel import Panel
from stackml.forecasting.validation import validate_frame

SEASON = 6
H = 4
AVAILABLE = available_models()

# small settings so every model trains in well under a second; a key is used when the class accepts it
_TINY = {
    "n_estimators": 10,
    "n_jobs": 1,
    "max_steps": 30,
    "n_epochs": 2,
    "max_epochs": 2,
    "epochs": 2,
    "hidden_size": 16,
    "batch_size": 16,
    "random_state": 0,
    "approximation": True,
    "n_threads": 1,
}
_MEMBERS = {"models": ["naive", "theta"]}


def _params(name: str) -> dict[str, Any]:
    cls = AVAILABLE[name]
    accepted = inspect.signature(cls.__init__).parameters
    params = {k: v for k, v in _TINY.items() if k in accepted}
    if "models" in accepted:
        params.update(_MEMBERS)
    return params


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_series(
        n_series=3, freq="h", min_length=40, max_length=50, season_length=SEASON, random_state=5
    )


@pytest.fixture(scope="module")
def panels(frame: pd.DataFrame) -> dict[str, Panel]:
    clean, spec = validate_frame(frame)
    rng = np.random.default_rng(0)
    bare = Panel.from_arrays(
        [10 + rng.normal(0, 1, n) for n in (30, 36, 42)], ids=["a", "b", "c"], season_length=SEASON
    )
    # "frame": what the front door builds (calendar features, dates); "bare": arrays only
    return {"frame": build_panel(clean, spec, season_length=SEASON), "bare": bare}


@pytest.fixture(scope="module")
def fitted(panels: dict[str, Panel]) -> dict[tuple[str, str], ForecastModel]:
    """Fitted once per (model, panel) and shared by the tests below."""
    cache: dict[tuple[str, str], ForecastModel] = {}
    return cache


def _get(fitted: dict, panels: dict, name: str, which: str) -> ForecastModel:
    if (name, which) not in fitted:
        model = make_model(name, **_params(name))
        assert model.fit(panels[which]) is model
        fitted[(name, which)] = model
    return fitted[(name, which)]


NAMES = list(AVAILABLE)


def test_every_registered_model_is_importable() -> None:
    assert set(AVAILABLE) == set(MODELS), f"not importable: {sorted(set(MODELS) - set(AVAILABLE))}"


@pytest.mark.parametrize("name", NAMES)
def test_init_only_stores_arguments(name: str) -> None:
    params = _params(name)
    model = make_model(name, **params)
    assert isinstance(model, ForecastModel)
    for key, value in params.items():
        assert model.get_params()[key] == value
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert learned == [], f"__init__ set learned state {learned}"


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name: str) -> None:
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        make_model(name, **_params(name)).predict(H)


@pytest.mark.parametrize("which", ["frame", "bare"])
@pytest.mark.parametrize("name", NAMES)
def test_fit_predict_shape_and_finite(name: str, which: str, fitted: dict, panels: dict) -> None:
    model = _get(fitted, panels, name, which)
    for h in (1, H):
        out = model.predict(h)
        assert out.shape == (panels[which].n_series, h)
        assert np.isfinite(out).all()
    with pytest.raises(InputError, match="The horizon h must be a positive integer, got 0"):
        model.predict(0)


@pytest.mark.parametrize("name", NAMES)
def test_refit_is_deterministic(name: str, fitted: dict, panels: dict) -> None:
    first = _get(fitted, panels, name, "frame").predict(H)
    again = make_model(name, **_params(name)).fit(panels["frame"]).predict(H)
    assert np.allclose(first, again)


@pytest.mark.parametrize("name", NAMES)
def test_clone_is_unfitted_with_the_same_arguments(name: str, fitted: dict, panels: dict) -> None:
    model = _get(fitted, panels, name, "frame")
    copy = model.clone()
    assert type(copy) is type(model) and repr(copy) == repr(model)
    with pytest.raises(NotFittedError):
        copy.predict(H)


@pytest.mark.parametrize("name", NAMES)
def test_alias_names_the_output(name: str, frame: pd.DataFrame) -> None:
    cls = model_class(name)
    assert cls.default_alias, f"{cls.__name__} needs a default_alias"
    assert make_model(name, **_params(name)).name == cls.default_alias
    custom = make_model(name, **_params(name), alias="custom")
    assert custom.name == "custom" and custom.clone().name == "custom"


@pytest.mark.parametrize("name", NAMES)
def test_through_the_front_door(name: str, frame: pd.DataFrame) -> None:
    model = make_model(name, **_params(name), alias="m")
    out = Forecaster(models=[model], season_length=SEASON).fit(frame).predict(H)
    assert list(out.columns) == ["unique_id", "ds", "m"] and len(out) == 3 * H
    assert np.isfinite(out["m"]).all()


# -- the registry --------------------------------------------------------------------------------------------
def test_names_are_case_insensitive_with_synonyms() -> None:
    assert model_class("ETS") is model_class("autoets") is model_class(" ets ")
    assert model_class("Seasonal-Naive") is model_class("snaive")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"Unknown model name 'prophet'. Known models: naive, snaive, naive2, rwd"
    ):
        make_model("prophet")
    with pytest.raises(InputError, match=r"Unknown model name 3"):
        model_class(3)  # type: ignore[arg-type]
