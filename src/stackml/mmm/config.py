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

__all__ = ["MMMConfig", "parse_bounds", "parse_roas_prior", "config_default"]

Bounds = dict[str, tuple[float | None, float | None]]
RoasPrior = dict[str, tuple[float, float]]
BOUNDS_HINT = "Write them as search=0:5000,tv=:20000 (per-period spend; a side may be empty)."
ROAS_PRIOR_HINT = (
    "Write it as search=2:1,tv=1.5:1 (CHANNEL=MEAN:SD of the channel's ROAS, target units per spend unit); "
    "*=MEAN:SD gives every channel not named its prior."
)


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


def parse_roas_prior(text: str | None) -> RoasPrior | None:
    """``"search=2:1,*=1:1"`` -> ``{"search": (2.0, 1.0), "*": (1.0, 1.0)}``: log-normal ROAS priors by their
    mean and standard deviation; ``*`` stands for every channel not named.

    Example:
        >>> parse_roas_prior("search=2:1, *=1:0.5")
        {'search': (2.0, 1.0), '*': (1.0, 0.5)}
    """
    if not text or not text.strip():
        return None
    prior: RoasPrior = {}
    problems = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        channel, sep, pair = item.partition("=")
        mean, colon, sd = pair.partition(":")
        try:
            if not (sep and colon and channel.strip()):
                raise ValueError
            values = (float(mean), float(sd))
        except ValueError:
            problems.append(f"{item!r} is not CHANNEL=MEAN:SD")
            continue
        if not all(0 < v < float("inf") for v in values):
            problems.append(f"{item!r}: the mean and the sd must be finite and > 0")
        prior[channel.strip()] = values
    if problems:
        raise ValueError("; ".join(problems) + f". {ROAS_PRIOR_HINT}")
    return prior


def _roas_prior_from_text(value: Any) -> Any:
    return parse_roas_prior(value) if isinstance(value, str) else value


class MMMConfig(PipelineConfig):
    """What to model, how long to sample, the gates a model must pass and the plan to make.

    Attributes:
        channels, target, date_column, controls: the roles of the model frame's columns.
        controls_table: for a touchpoint table, the table holding the controls (default: the touchpoint
            table).
        geo_column: the market of each row of a geo panel (one row per period and geo): the model is then a
            :class:`~stackml.mmm.GeoMediaMixModel`, and its outputs are national sums plus ROAS per geo.
        freq: ``"W"`` or ``"D"``, the period raw touchpoints are aggregated to.
        adstock, saturation, target_accept, yearly_seasonality, time_varying_intercept: passed to
            :class:`~stackml.mmm.MediaMixModel`.
        roas_prior: ``{channel: (mean, sd)}`` of each channel's ROAS (``"search=2:1,*=1:1"``; ``*`` is every
            channel not named), None for the default coefficient prior.
        draws, tune, chains, random_state: NUTS settings.
        lift_tests: path of a lift-test CSV to calibrate with (see :mod:`stackml.mmm.calibration`).
        holdout: share of the last periods held out for the time-slice check (0 skips it).
        max_divergences, max_rhat, min_ess, min_r2, max_mape, max_holdout_mape: the gates (None: not gated).
            ``draws * chains`` must exceed ``min_ess``: fewer draws in all cannot reach it, and that is said
            before anything is sampled.
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
    geo_column: str | None = None
    controls: Names = ()
    controls_table: str | None = None
    freq: str = "W"
    adstock: str = "geometric"
    saturation: str = "default"
    target_accept: Annotated[Float, Field(gt=0, lt=1)] = 0.9
    yearly_seasonality: Annotated[Int, Field(ge=0, le=10)] = 2
    time_varying_intercept: bool = False
    roas_prior: Annotated[RoasPrior | None, BeforeValidator(_roas_prior_from_text)] = None
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
        from stackml.mmm.transforms import ADSTOCKS, saturation_choices

        known = {"freq": FREQUENCIES, "adstock": ADSTOCKS, "saturation": saturation_choices()}[
            info.field_name
        ]
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
        names += [self.geo_column] if self.geo_column else []
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            problems.append(f"columns named in more than one role: {duplicated}")
        unknown = sorted(set(self.bounds or {}) - set(self.channels))
        if unknown:
            problems.append(
                f"bounds name channels {unknown} that are not among the channels {list(self.channels)}"
            )
        problems += self._roas_prior_problems()
        if self.min_ess and self.draws * self.chains <= self.min_ess:
            # The smallest bulk ESS of the parameters stays below the draw count: the gate could only fail,
            # and only after the compile and the sampling.
            problems.append(
                f"draws x chains = {self.draws} x {self.chains} = {self.draws * self.chains} draws in all "
                f"cannot give the bulk effective sample size the min_ess gate asks for ({self.min_ess:g}); "
                f"raise --draws or --chains (e.g. --draws {_draws_for(self.min_ess, self.chains)}) or lower "
                "--min-ess"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def channel_roas_prior(self) -> RoasPrior | None:
        """``roas_prior`` with ``*`` spelled out: one ``(mean, sd)`` per channel, as the model takes it."""
        if self.roas_prior is None:
            return None
        return {c: self.roas_prior.get(c, self.roas_prior.get("*")) for c in self.channels}  # type: ignore[misc]

    def _roas_prior_problems(self) -> list[str]:
        if self.roas_prior is None:
            return []
        unknown = sorted(set(self.roas_prior) - {*self.channels, "*"})
        missing = [c for c in self.channels if c not in self.roas_prior]
        if unknown:
            return [
                f"roas_prior names channels {unknown} that are not among the channels {list(self.channels)}"
            ]
        if missing and "*" not in self.roas_prior:
            return [
                f"roas_prior gives no prior for the channels {missing}; name each, or add *=MEAN:SD for "
                "every channel not named"
            ]
        return []

    @property
    def primary_metric(self) -> str:
        """The registry compares models on held-out MAPE when there is a holdout, else on in-sample MAPE."""
        return "holdout_mape" if self.holdout > 0 and not self.geo_column else "insample_mape"


def _draws_for(min_ess: float, chains: int) -> int:
    """Draws per chain that leave the ESS gate room: twice its value in all, rounded up to a hundred."""
    return int(-(-2 * min_ess // (chains * 100)) * 100)


def config_default(field: str) -> Any:
    """The pipeline's default for ``field``: what the front door and the gates use when the caller gives
    none."""
    from stackml.pipelines import default_of

    return default_of(MMMConfig, field)
