"""The configuration base every pipeline shares: declared once, validated once, passed as one JSON value.

A pipeline's settings live in one frozen pydantic class derived from :class:`PipelineConfig`. Its field
defaults are the only place a default is written: the CLI reads them for its options (:func:`default_of`), the
flow receives the whole configuration as one JSON Parameter (:meth:`PipelineConfig.to_json` /
:meth:`PipelineConfig.from_json`), and the plain step functions take the object itself. Every problem of the
input is reported at once, in the backbone's one format (:func:`stackml.errors.problems_error`).

Example:
    >>> from stackml.pipelines import PipelineConfig, Names
    >>> class DemoConfig(PipelineConfig):
    ...     what = "the demo configuration"
    ...     columns: Names = ()
    ...     draws: int = 100
    >>> DemoConfig(columns="a, b").columns
    ('a', 'b')
    >>> DemoConfig.from_json(DemoConfig(draws=5).to_json()).draws
    5
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from stackml.errors import InputError, StackmlError, problems_error

__all__ = ["PipelineConfig", "Names", "Int", "Float", "split_names", "default_of"]


def split_names(value: Any) -> Any:
    """``"a, b"`` -> ``("a", "b")``; one name -> a 1-tuple; sequences pass through (None -> empty)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _not_bool(value: Any) -> Any:
    # Python counts True as 1; a flag given where a count or a number belongs is a mistake, not a 1.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a bool")
    return value


#: a tuple of column or model names, also accepted as one comma-separated string (as on the command line)
Names = Annotated[tuple[str, ...], BeforeValidator(split_names)]
#: an int that is not a bool
Int = Annotated[int, BeforeValidator(_not_bool)]
#: a float that is not a bool
Float = Annotated[float, BeforeValidator(_not_bool)]


def _problem(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if not where:  # a check across fields: its message names the fields itself
        return message
    return f"'{where}': {message}, got {error.get('input')!r}"


class PipelineConfig(BaseModel):
    """Base of every pipeline configuration: frozen, unknown keys refused, every error reported at once.

    Subclasses set ``what`` (how messages name the configuration) and ``hint`` (where to look for the
    options), declare fields with their defaults and constraints, and check relations between fields in a
    ``model_validator(mode="after")`` that raises one ``ValueError`` listing its problems, one per line.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=False, arbitrary_types_allowed=False
    )

    what: ClassVar[str] = "the configuration"
    hint: ClassVar[str | None] = None
    error: ClassVar[type[StackmlError]] = InputError

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = [line for err in exc.errors() for line in _problem(err).splitlines() if line.strip()]
            raise problems_error(problems, what=self.what, hint=self.hint, error=self.error) from None

    def __getstate__(self) -> dict[Any, Any]:
        # Pickled bytes must not depend on the process's hash seed: Metaflow merges the artifacts of parallel
        # tasks by comparing them, and pydantic keeps the names of the fields set in a set.
        state = super().__getstate__()
        state["__pydantic_fields_set__"] = sorted(state["__pydantic_fields_set__"])
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        state = dict(state)
        state["__pydantic_fields_set__"] = set(state["__pydantic_fields_set__"])
        super().__setstate__(state)

    def to_json(self) -> str:
        """The configuration as one JSON object (the flow's ``config`` Parameter)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> PipelineConfig:
        """Rebuild a configuration from :meth:`to_json`, validating it again."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"The {cls.__name__} JSON is malformed: {exc}.", hint="Pass config.to_json()."
            ) from exc
        if not isinstance(values, dict):
            raise InputError(
                f"The {cls.__name__} JSON must be an object, got {type(values).__name__}.",
                hint="Pass config.to_json().",
            )
        return cls(**values)

    def replace(self, **changes: Any) -> PipelineConfig:
        """A copy with ``changes`` applied and validated again (``model_copy`` would skip validation)."""
        return type(self)(**(self.model_dump() | changes))


def default_of(config_class: type[PipelineConfig], field: str) -> Any:
    """The declared default of ``field``: what a CLI option shows and uses when it is not given."""
    info = config_class.model_fields[field]
    return info.get_default(call_default_factory=True)
