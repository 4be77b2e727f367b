"""Request and response bodies of the HTTP API; they are what the OpenAPI document shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "predict_request_model",
    "features_request_model",
    "PredictResponse",
    "FeaturesResponse",
    "ModelRef",
    "ModelInfo",
    "ModelList",
    "ReloadResponse",
    "LiveResponse",
    "ReadyResponse",
    "ServedVersion",
    "ProbeResult",
    "LogState",
    "ProblemItem",
    "ErrorResponse",
]


def predict_request_model(max_records: int) -> type[BaseModel]:
    """The body of ``POST /v1/models/{name}/predict``, with the service's record limit in its schema."""

    class PredictRequest(BaseModel):
        """Records to predict, each a JSON object of input column -> value (see ``GET /v1/models``)."""

        model_config = ConfigDict(extra="forbid")

        records: list[dict[str, Any]] = Field(
            min_length=1,
            max_length=max_records,
            description="One object per row; keys are the model's input columns.",
            examples=[[{"x": 1.5, "g": "a"}]],
        )

    return PredictRequest


def features_request_model(max_records: int) -> type[BaseModel]:
    """The body of ``POST /v1/features/{service}``, with the service's record limit in its schema."""

    class FeaturesRequest(BaseModel):
        """Entities to read the service's features for, each a JSON object of its join keys."""

        model_config = ConfigDict(extra="forbid")

        entities: list[dict[str, Any]] = Field(
            min_length=1,
            max_length=max_records,
            description="One object per entity: the service's join keys, as strings or integers.",
            examples=[[{"customer_id": 1001}]],
        )

    return FeaturesRequest


class ModelRef(BaseModel):
    """Which model version answered."""

    name: str
    version: int


class PredictResponse(BaseModel):
    """Predictions, one item per record (an object per row for models that return a table)."""

    predictions: list[Any]
    model: ModelRef
    request_id: str = Field(description="Also in the X-Request-ID header and the prediction_log table.")


class FeaturesResponse(BaseModel):
    """The features of each entity, in the order sent: its join keys, then one ``view__feature`` value each
    (null when the store has none for the entity, or only one older than the view's TTL)."""

    service: str
    features: list[dict[str, Any]]
    request_id: str = Field(description="Also in the X-Request-ID header.")


class ModelInfo(BaseModel):
    """A served model and the version its alias points to."""

    name: str
    alias: str
    version: int
    run_id: str | None
    input_schema: list[dict[str, Any]] | None = Field(
        description="MLflow signature inputs: [{name, type, required}]; null for models without one."
    )
    output_schema: list[dict[str, Any]] | None
    example: list[dict[str, Any]] | None = Field(
        description="A few records from the model's input example; null unless the service publishes them."
    )
    loaded_at: float = Field(description="When this version was loaded, in seconds since the epoch.")
    last_refresh_error: str | None = Field(
        description="Why the last re-resolution of the alias failed (the loaded version keeps serving)."
    )
    feature_service: str | None = Field(
        None,
        description="The feature service whose features are read by the records' join keys and added "
        "before the model sees them: send the join keys and the other inputs, not the feature columns.",
    )


class ModelList(BaseModel):
    models: list[ModelInfo]


class ReloadResponse(BaseModel):
    """Outcome of re-resolving the alias."""

    name: str
    alias: str
    previous_version: int = Field(description="The version served before; 0 when the model was not served.")
    version: int
    changed: bool


class ProbeResult(BaseModel):
    ok: bool
    detail: str


class LogState(BaseModel):
    """The prediction log: rows written, spilled while the warehouse was down, and waiting."""

    queued_requests: int
    written_rows: int
    spilled_rows: int
    replayed_rows: int
    spill_files: int
    spill_bytes: int


class LiveResponse(BaseModel):
    """The process is up and answering; says nothing else (``GET /health`` is open to anyone)."""

    status: Literal["ok"]


class ServedVersion(BaseModel):
    alias: str
    version: int


class ReadyResponse(BaseModel):
    """``ok``: the registry and the warehouse answered and every configured model is served.
    ``degraded``: something is wrong, but predictions are served (and logged to the spill file while the
    warehouse is down). ``draining`` (HTTP 503): the service is shutting down. ``unavailable`` (HTTP 503):
    no model can be served."""

    status: Literal["ok", "degraded", "draining", "unavailable"]
    registry: ProbeResult
    warehouse: ProbeResult
    probed_seconds_ago: float = Field(
        description="Age of the probe results (probes run at most once a period)."
    )
    models: dict[str, ServedVersion] = Field(description="Served model name -> alias and version.")
    unavailable: dict[str, str] = Field(description="Configured models not served now, and why.")
    refresh_errors: dict[str, str] = Field(
        description="Models whose alias could not be followed (the loaded version keeps serving), and why."
    )
    prediction_log: LogState


class ProblemItem(BaseModel):
    """One problem with a request."""

    record: int | None = Field(description="Index of the record, or null for the body as a whole.")
    column: str | None
    kind: str = Field(
        description="wrong_type, missing_column, null_value, unknown_column, feature_column (a column a "
        "feature service provides, sent in a record) or invalid_body."
    )
    message: str


class ErrorResponse(BaseModel):
    """Why a request failed; ``problems`` lists every problem found in the input."""

    detail: str
    problems: list[ProblemItem] = Field(default_factory=list)
