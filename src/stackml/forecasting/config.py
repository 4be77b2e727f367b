"""The forecasting pipeline's configuration: every setting of ``stackml forecast run`` with its one default.

The CLI takes its option defaults from these fields, ``ForecastFlow`` receives the configuration as one JSON
Parameter, and the step functions of :mod:`stackml.forecasting.pipeline` take the object itself.

Example:
    >>> from stackml.forecasting.config import ForecastConfig
    >>> ForecastConfig(horizon=24, season_length=24, models="snaive, lgbm").candidates
    ('snaive', 'lgbm', 'naive2')
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["DEFAULT_MODELS", "FORMATS", "REFERENCE_MODEL", "ForecastConfig"]

#: the default candidates: strong global learners next to robust statistical and seasonal baselines
DEFAULT_MODELS: tuple[str, ...] = ("snaive", "theta", "lgbm", "nhits")
#: always backtested: the M4 reference that OWA is measured against
REFERENCE_MODEL = "naive2"
FORMATS = ("long", "m4-wide")


class ForecastConfig(PipelineConfig):
    """What to forecast and how to choose.

    Attributes:
        horizon: steps to forecast (``h``).
        season_length: main seasonal period (``m``; 1 for none).
        freq: pandas frequency of timestamp ``ds`` (inferred when ``None``); ``None`` for integer steps.
        models: candidate model names (see :func:`stackml.forecasting.available_models`).
        n_windows: backtest windows of ``horizon`` values at the end of each series; ``None`` (the default)
            picks them from the data with :func:`stackml.forecasting.pipeline.auto_windows`.
        level: prediction interval coverages in percent.
        ensemble_sizes: mean ensembles of the best ``k`` single models (by backtest OWA) to score as
            candidates.
        n_jobs: processes for per-series models.
        data_format: ``"long"`` (``unique_id, ds, y``) or ``"m4-wide"`` (the M4 competition's files).
        test: an optional holdout file in the same format, scored with the M4 metrics.
    """

    what = "the forecast configuration"
    hint = "See `stackml forecast run --help` for the options and the model names."

    horizon: Annotated[Int, Field(ge=1)]
    season_length: Annotated[Int, Field(ge=1)] = 1
    freq: str | None = None
    models: Annotated[Names, Field(min_length=1)] = DEFAULT_MODELS
    n_windows: Annotated[Int, Field(ge=1)] | None = None
    level: tuple[Annotated[Float, Field(gt=0, lt=100)], ...] = (80.0, 95.0)
    ensemble_sizes: tuple[Annotated[Int, Field(ge=2)], ...] = (2, 3)
    n_jobs: Annotated[Int, Field(ge=1)] = 1
    data_format: Literal["long", "m4-wide"] = "long"
    test: str | None = None

    @field_validator("models")
    @classmethod
    def _known_models(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from stackml.errors import InputError
        from stackml.forecasting.models import model_class

        problems = []
        for name in names:
            try:
                model_class(name)
            except InputError as exc:
                problems.append(exc.message.rstrip("."))
        if problems:
            raise ValueError("; ".join(problems))
        return names

    @field_validator("test")
    @classmethod
    def _test_file(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError("the holdout file was not found")
        return str(path.resolve())  # the flow's steps may run in another folder

    @property
    def candidates(self) -> tuple[str, ...]:
        """The models to backtest: the requested ones plus the Naive2 reference, without repeats."""
        from stackml.forecasting.models import model_class

        seen, out = set(), []
        for name in (*self.models, REFERENCE_MODEL):
            cls = model_class(name)
            if cls not in seen:
                seen.add(cls)
                out.append(name)
        return tuple(out)
