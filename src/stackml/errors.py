"""The one error hierarchy of stackml.

Every error we raise derives from :class:`StackmlError`, and each subclass also inherits the
built-in exception a caller would naturally catch (``ValueError``, ``KeyError``, ...), so
``except ValueError`` keeps working for code that does not know about stackml.

Messages follow one rule: say what was wrong, what was received and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "StackmlError",
    "ConfigError",
    "InputError",
    "IdentifierError",
    "TableExistsError",
    "TableNotFoundError",
    "ConnectionFailedError",
    "MissingDependencyError",
    "RegistryError",
    "FlowFailedError",
    "FlowInterruptedError",
    "NotFittedError",
    "problems_error",
    "raise_if_problems",
]


class StackmlError(Exception):
    """Base class of every error stackml raises on purpose.

    Args:
        message: what was wrong and what was received.
        hint: how to fix it; shown on its own by the CLI.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(StackmlError, ValueError):
    """A setting is missing or malformed (environment, ``stackml.yaml`` or arguments)."""


class InputError(StackmlError, ValueError):
    """User-supplied data or arguments are invalid: a missing file, a malformed CSV, a bad option."""


class IdentifierError(InputError):
    """A table or column name is not a safe SQL identifier."""


class TableExistsError(InputError):
    """A load would overwrite a table the caller did not ask to replace."""


class TableNotFoundError(StackmlError, KeyError):
    """A table named by the caller does not exist in the warehouse."""


class ConnectionFailedError(StackmlError, ConnectionError):
    """A database, tracking server or other service could not be reached."""


class MissingDependencyError(StackmlError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class RegistryError(StackmlError, LookupError):
    """A registered model, version or alias does not exist or cannot be used as asked."""


class FlowFailedError(StackmlError, RuntimeError):
    """A pipeline flow failed; the message names the failing step and how to resume."""


class FlowInterruptedError(FlowFailedError):
    """The run was interrupted (Ctrl-C); the CLI exits with 130. The hint holds the resume command."""


class NotFittedError(StackmlError, AttributeError):
    """A model was used before ``fit`` was called."""


def problems_error(
    problems: list[str], *, what: str, hint: str | None = None, error: type[StackmlError] = InputError
) -> StackmlError:
    """One error listing every problem found in ``what``, in the one format stackml uses everywhere.

    Example:
        >>> str(problems_error(["'draws' must be >= 1, got 0"], what="the media-mix configuration"))
        "1 problem(s) with the media-mix configuration:\\n  - 'draws' must be >= 1, got 0"
    """
    listed = "\n".join(f"  - {p}" for p in problems)
    return error(f"{len(problems)} problem(s) with {what}:\n{listed}", hint=hint)


def raise_if_problems(
    problems: list[str], *, what: str, hint: str | None = None, error: type[StackmlError] = InputError
) -> None:
    """Raise :func:`problems_error` when ``problems`` is not empty; a no-op otherwise."""
    if problems:
        raise problems_error(problems, what=what, hint=hint, error=error)
