"""The attribution pipeline's configuration: every setting of ``stackml attribution run``, one default each.

Example:
    >>> from stackml.attribution.config import AttributionConfig
    >>> AttributionConfig(methods="markov, last_touch", markov_order=2).methods
    ('markov', 'last_touch')
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from stackml.attribution.methods import METHODS
from stackml.pipelines import Float, Int, Names, PipelineConfig

__all__ = ["AttributionConfig"]


class AttributionConfig(PipelineConfig):
    """What the input is and which methods credit the channels.

    Attributes:
        format: ``touchpoints`` (raw rows: user, time, channel, conversion flag, value), cut into journeys in
            SQL; or ``paths``, the aggregated format
            ``path;total_conversions;total_conversion_value;total_null``.
        methods: the methods to run, side by side.
        lookback_days: touchpoints only: a touch counts if it came this many days or fewer before the
            journey's end.
        markov_order: the Markov chain's memory (1-3 channels).
        half_life_days: time decay's half-life (in touches for the aggregated format).
        shapley_permutations: sampled orders when there are more channels than Shapley counts exactly.
        neural_epochs: the sequence model's most passes over the journeys (early stopping ends sooner).
        user_column, time_column, channel_column, conversion_column, value_column: touchpoints' columns
            (``value_column`` may be absent from the data: values are then 0).
        random_state: seeds anything sampled or trained.
        truth_file: simulated data only: a file of the true incremental shares (``channel, share``, optional
            ``roas``); the run then says how far each method is from them.
        mmm_model: a media-mix model (``name``, ``name@alias``, ``name/version`` or the id of its run)
            whose contribution shares and ROAS the report shows beside the path credit.
    """

    what = "the attribution configuration"
    hint = "See `stackml attribution run --help` for the options."

    format: Literal["touchpoints", "paths"] = "touchpoints"
    methods: Names = METHODS
    lookback_days: Annotated[Float, Field(gt=0)] = 30.0
    markov_order: Annotated[Int, Field(ge=1, le=3)] = 1
    half_life_days: Annotated[Float, Field(gt=0)] = 7.0
    shapley_permutations: Annotated[Int, Field(ge=2)] = 2000
    neural_epochs: Annotated[Int, Field(ge=1)] = 30
    user_column: str = "user_id"
    time_column: str = "ts"
    channel_column: str = "channel"
    conversion_column: str = "conversion"
    value_column: str = "value"
    random_state: Int = 0
    truth_file: str | None = None
    mmm_model: str | None = None

    @model_validator(mode="after")
    def _known_methods(self) -> AttributionConfig:
        problems = [
            f"'methods': unknown method {m!r} (known: {', '.join(METHODS)})"
            for m in self.methods
            if m not in METHODS
        ]
        if not self.methods:
            problems.append("'methods': name at least one method")
        if len(set(self.methods)) < len(self.methods):
            problems.append(f"'methods': a method is named twice in {list(self.methods)}")
        if problems:
            raise ValueError("\n".join(problems))
        return self
