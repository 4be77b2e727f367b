"""The media-mix pipeline's configuration: every setting of ``stackml mmm fit`` with its one default.

The CLI takes its option defaults from these fields, ``MMMFlow`` receives the configuration as one JSON
Parameter, and the step functions of :mod:`stackml.mmm.pipeline` take the object itself.

Example:
    >>> from stackml.mmm.config import MMMConfig
    >>> config = MMMConfig(channels="search, tv", bounds="tv=:20000")
    >>> config.channels, config.bounds
    (('search', 'tv'), {'tv': (None, 20000.0)})
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from stackml.errors import raise_if_problems
from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["MMMConfig", "parse_bounds", "config_default"]

Bounds = dict[str, tuple[float | None, float | None]]
BOUNDS_HINT = "Write them as search=0:5000,tv=:20000 (per-period spend; a side may be empty)."


def _bounds_and_problems(text: str) -> tuple[Bounds, list[str]]:
    bounds: Bounds = {}
    problems = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        channel, sep, span = item.partition("=")
        low, colon, high = span.partition(":")
        try:
            if not (sep and colon and channel.strip()):
                raise ValueError
            bounds[channel.strip()] = (
                float(low) if low.strip() else None,
                float(high) if high.strip() else None,
            )
        except ValueError:
            problems.append(f"{item!r} is not CHANNEL=MIN:MAX")
    return bounds, problems


def parse_bounds(text: str | None) -> Bounds | None:
    """``"search=0:5000,tv=:20000"`` -> ``{"search": (0.0, 5000.0), "tv": (None, 20000.0)}`` (per-period
    spend).

    Example:
        >>> parse_bounds("search=0:5000,tv=:20000")
        {'search': (0.0, 5000.0), 'tv': (None, 20000.0)}
    """
    if not text or not text.strip():
        return None
    bounds, problems = _bounds_and_problems(text)
    raise_if_problems(problems, what="the bounds", hint=BOUNDS_HINT)
    return bounds


def _bounds_from_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    bounds, problems = _bounds_and_problems(value)
    if problems:
        raise ValueError(
            "; ".join(problems) + " (write CHANNEL=MIN:MAX per channel, e.g. search=0:5000,tv=:20000)"
        )
    return bounds


class MMMConfig(PipelineConfig):
    """What to model, how long to sample, the gates a model must pass and the plan to make.

    Attributes:
        channels, target, date_column, controls: the roles of the model frame's columns.
        controls_table: for a touchpoint table, the table holding the controls (default: the touchpoint
            table).
        freq: ``"W"`` or ``"D"``, the period raw touchpoints are aggregated to.
        adstock, saturation, target_accept: passed to :class:`~stackml.mmm.MediaMixModel`.
        draws, tune, chains, random_state: NUTS settings.
        lift_tests: path of a lift-test CSV to calibrate with (see :mod:`stackml.mmm.calibration`).
        holdout: share of the last periods held out for the time-slice check (0 skips it).
        max_divergences, max_rhat, min_ess, min_r2, max_mape, max_holdout_mape: the gates (None: not gated).
        horizon: periods of the budget plan (0: no plan).
        budget: total budget of the plan; default the historical spend rate times ``horizon``.
        bounds: per-period spend bounds of the plan, ``{channel: (min, max)}`` or
            ``"search=0:5000,tv=:20000"``.
        hdi_prob: mass of every reported interval.
    """

    what = "the media-mix configuration"
    hint = "See `stackml mmm fit --help` for the options."

    channels: Annotated[Names, Field(min_length=1)]
    target: str = "revenue"
    date_column: str = "date"
    controls: Names = ()
    controls_table: str | None = None
    freq: str = "W"
    adstock: str = "geometric"
    saturation: str = "logistic"
    target_accept: Annotated[Float, Field(gt=0, lt=1)] = 0.9
    draws: Annotated[Int, Field(ge=1)] = 2000
    tune: Annotated[Int, Field(ge=0)] = 1000
    chains: Annotated[Int, Field(ge=1)] = 4
    random_state: Int | None = 0
    lift_tests: str | None = None
    holdout: Annotated[Float, Field(ge=0, le=0.5)] = 0.15
    max_divergences: Annotated[Int, Field(ge=0)] = 0
    max_rhat: Annotated[Float, Field(ge=1)] = 1.01
    min_ess: Annotated[Float, Field(ge=0)] = 400.0
    min_r2: Float = 0.5
    max_mape: Annotated[Float, Field(gt=0)] | None = None
    max_holdout_mape: Annotated[Float, Field(gt=0)] | None = None
    horizon: Annotated[Int, Field(ge=0)] = 12
    budget: Annotated[Float, Field(gt=0)] | None = None
    bounds: Annotated[Bounds | None, BeforeValidator(_bounds_from_text)] = None
    hdi_prob: Annotated[Float, Field(gt=0, lt=1)] = 0.94

    @field_validator("freq", "adstock", "saturation")
    @classmethod
    def _one_of_the_known(cls, value: str, info: ValidationInfo) -> str:
        # The registries live beside the code that uses them; imported here, when a config is built.
        from stackml.mmm.data import FREQUENCIES
        from stackml.mmm.transforms import ADSTOCKS, SATURATIONS

        known = {"freq": FREQUENCIES, "adstock": ADSTOCKS, "saturation": SATURATIONS}[info.field_name]
        if value not in known:
            raise ValueError(f"must be one of {sorted(known)}")
        return value

    @field_validator("lift_tests")
    @classmethod
    def _lift_test_file(cls, value: str | None) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError("the lift-test file was not found")
        return str(path.resolve())  # the flow's steps may run in another folder

    @model_validator(mode="after")
    def _roles_and_bounds(self) -> MMMConfig:
        problems = []
        names = [self.date_column, self.target, *self.channels, *self.controls]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            problems.append(f"columns named in more than one role: {duplicated}")
        unknown = sorted(set(self.bounds or {}) - set(self.channels))
        if unknown:
            problems.append(
                f"bounds name channels {unknown} that are not among the channels {list(self.channels)}"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def primary_metric(self) -> str:
        """The registry compares models on held-out MAPE when there is a holdout, else on in-sample MAPE."""
        return "holdout_mape" if self.holdout > 0 else "insample_mape"


def config_default(field: str) -> Any:
    """The pipeline's default for ``field``: what the front door and the gates use when the caller gives
    none."""
    from stackml.pipelines import default_of

    return default_of(MMMConfig, field)
