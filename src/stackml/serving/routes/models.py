"""The served models: list them, describe one, re-resolve one's alias now."""

import logging

from fastapi import APIRouter, Depends, Path, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from stackml.errors import RegistryError
from stackml.serving.registry import ModelCache, ServedModel
from stackml.serving.routes.common import ERROR, served_model
from stackml.serving.schemas import ModelInfo, ModelList, ReloadResponse

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList)
def list_served(request: Request) -> ModelList:
    """The served models: version, alias, input and output schema (and an example, when published)."""
    cache = request.app.state.cache
    publish = request.app.state.options.publish_examples
    return ModelList(models=[_info(m, cache, publish) for m in cache.models()])


@router.get("/v1/models/{name}", response_model=ModelInfo, responses={404: ERROR})
def describe(request: Request, served: ServedModel = Depends(served_model)) -> ModelInfo:
    """One served model."""
    return _info(served, request.app.state.cache, request.app.state.options.publish_examples)


@router.post(
    "/v1/models/{name}/reload", response_model=ReloadResponse, responses={404: ERROR, 409: ERROR, 503: ERROR}
)
def reload(
    request: Request, name: str = Path(description="A served model (see GET /v1/models).")
) -> ReloadResponse:
    """Re-resolve the model's alias now; serve the version it points to (loaded fully, then swapped).

    Also brings back a model that was unavailable (its alias deleted, its version broken) once fixed.
    """
    cache = request.app.state.cache
    if name not in cache.specs:
        raise StarletteHTTPException(
            404, f"Model '{name}' is not served here; served models: {', '.join(cache.names)}."
        )
    try:
        result = cache.reload(name)
    except RegistryError as exc:
        raise StarletteHTTPException(409, f"{exc.message} {_still(cache, name)}") from exc
    except Exception as exc:  # the registry is down or answered garbage: the old version keeps serving
        log.warning("Reloading %s failed: %s", name, exc)
        raise StarletteHTTPException(
            503, f"The registry could not be asked ({type(exc).__name__}: {exc}). {_still(cache, name)}"
        ) from exc
    return ReloadResponse(
        name=result.name,
        alias=result.alias,
        previous_version=result.previous_version,
        version=result.version,
        changed=result.changed,
    )


def _still(cache: ModelCache, name: str) -> str:
    served = cache.get(name)
    return f"Still serving v{served.version}." if served is not None else "The model is not served now."


def _info(served: ServedModel, cache: ModelCache, publish_examples: bool) -> ModelInfo:
    return ModelInfo(
        name=served.name,
        alias=served.alias,
        version=served.version,
        run_id=served.run_id,
        input_schema=served.input_schema,
        output_schema=served.output_schema,
        # Input-example rows are training data: shown only when the service was asked to publish them.
        example=served.example if publish_examples else None,
        loaded_at=served.loaded_at,
        last_refresh_error=cache.last_errors.get(served.name),
        feature_service=served.feature_service,
    )
