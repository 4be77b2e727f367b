"""The forecasting pipeline's configuration: every setting of ``stackml forecast run`` with its one default.

The CLI takes its option defaults from these fields, ``ForecastFlow`` receives the configuration as one JSON
Parameter, and the step functions of :mod:`stackml.forecasting.pipeline` take the object itself.

Example:
    >>> from stackml.forecasting.config import ForecastConfig
    >>> ForecastConfig(horizon=24, season_length=24, models="snaive, lgbm").candidates
    ('snaive', 'lgbm', 'naive2')
    >>> ForecastConfig(horizon=24).effective_time_budget(n_points=400_000)  # default models, default budget
    90.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_TIME_BUDGET",
    "FORMATS",
    "REFERENCE_MODEL",
    "ForecastConfig",
    "default_time_budget",
]

#: the default candidates: a global learner next to robust statistical and seasonal baselines; the slow ones
#: (ARIMA on long series, the network) join only when they fit the time budget
DEFAULT_MODELS: tuple[str, ...] = ("snaive", "lgbm", "theta", "ets", "arima", "nhits")
#: the most seconds of estimated model fitting a run of the default models may spend
#: (see stackml.forecasting.budget); smaller data get less, see default_time_budget
DEFAULT_TIME_BUDGET = 90.0
#: what every run gets: enough for LightGBM, Theta and ETS on a few short series
BASE_TIME_BUDGET = 15.0
#: and per training value: a little less than LightGBM and Theta cost together per value of a long panel
#: (98 CPU seconds for the two fits of each on M4 Hourly's 353,500 values)
SECONDS_PER_POINT = 2e-4
#: always backtested: the M4 reference that OWA is measured against
REFERENCE_MODEL = "naive2"
FORMATS = ("long", "m4-wide")


class ForecastConfig(PipelineConfig):
    """What to forecast and how to choose.

    Attributes:
        horizon: steps to forecast (``h``).
        season_length: the seasonal period that scores use (MASE's ``m``) and the models' main period;
            ``None`` (the default) takes it from the frequency or the data
            (:mod:`stackml.forecasting.seasonality`); 1 for none. A value given here always wins.
        seasonal_periods: every period the models use, main first; ``None`` is filled in from the data by
            :func:`stackml.forecasting.pipeline.check_data`.
        freq: pandas frequency of timestamp ``ds`` (inferred when ``None``); ``None`` for integer steps.
        models: candidate model names (see :func:`stackml.forecasting.available_models`).
        time_budget: seconds of model fitting the candidates may take together, measured by a short probe
            of each before the run (:mod:`stackml.forecasting.budget`); slow models that do not fit are
            skipped, and said so. ``None``: for the default models, 15 s plus 0.2 ms per training value,
            at most 90 s (:func:`default_time_budget`); no limit for models you list.
        n_windows: backtest windows of ``horizon`` values at the end of each series; ``None`` (the default)
            picks them from the data with :func:`stackml.forecasting.pipeline.auto_windows`.
        level: prediction interval coverages in percent.
        ensemble_sizes: mean ensembles of the best ``k`` single models (by backtest OWA) to score as
            candidates.
        n_jobs: processes for per-series models (-1: all cores).
        data_format: ``"long"`` (``unique_id, ds, y``) or ``"m4-wide"`` (the M4 competition's files).
        test: an optional holdout file in the same format, scored with the M4 metrics.
    """

    what = "the forecast configuration"
    hint = "See `stackml forecast run --help` for the options and the model names."

    horizon: Annotated[Int, Field(ge=1)]
    season_length: Annotated[Int, Field(ge=1)] | None = None
    seasonal_periods: tuple[Annotated[Int, Field(ge=2)], ...] | None = None
    freq: str | None = None
    models: Annotated[Names, Field(min_length=1)] = DEFAULT_MODELS
    time_budget: Annotated[Float, Field(gt=0)] | None = None
    n_windows: Annotated[Int, Field(ge=1)] | None = None
    level: tuple[Annotated[Float, Field(gt=0, lt=100)], ...] = (80.0, 95.0)
    ensemble_sizes: tuple[Annotated[Int, Field(ge=2)], ...] = (2, 3)
    n_jobs: Annotated[Int, Field(ge=-1)] = -1
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

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("n_jobs must be a positive number of processes, or -1 for all cores")
        return value

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

    @property
    def main_period(self) -> int:
        """The period per-series models use: the first of ``seasonal_periods``, else ``season_length``."""
        if self.seasonal_periods:
            return self.seasonal_periods[0]
        return self.season_length or 1

    def effective_time_budget(self, n_points: int) -> float | None:
        """``time_budget``; when unset, :func:`default_time_budget` of the ``n_points`` training values for
        the default models, and none for a list of your own."""
        if self.time_budget is not None:
            return self.time_budget
        return default_time_budget(n_points) if tuple(self.models) == DEFAULT_MODELS else None


def default_time_budget(n_points: int) -> float:
    """Seconds of model fitting the default models get for ``n_points`` training values.

    :data:`BASE_TIME_BUDGET` plus :data:`SECONDS_PER_POINT` per value, at most :data:`DEFAULT_TIME_BUDGET`:
    a small panel gets a run of seconds, and the slow models (ARIMA on long series, the network) join only
    where the data make them worth their time.

    Example:
        >>> default_time_budget(5_000), default_time_budget(200_000), default_time_budget(10**7)
        (16.0, 55.0, 90.0)
    """
    return float(min(BASE_TIME_BUDGET + n_points * SECONDS_PER_POINT, DEFAULT_TIME_BUDGET))
