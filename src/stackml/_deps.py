"""Lazy imports of optional, heavy dependencies, each behind the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from stackml.errors import MissingDependencyError

# module name -> extra of stackml that installs it
_EXTRA_FOR = {
    "psycopg": "postgres",
    "mlflow": "tracking",
    "metaflow": "flows",
    "statsforecast": "forecast",
    "lightgbm": "forecast",
    "xgboost": "forecast",
    "sklearn": "forecast",
    "torch": "forecast",
    "fastapi": "serve",
    "uvicorn": "serve",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that says which extra to install.

    Example:
        >>> np = require("numpy")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or _EXTRA_FOR.get(top, "all")
        raise MissingDependencyError(
            f"This feature needs the optional package '{top}', which is not installed ({exc}).",
            hint=f"Install it with: pip install 'stackml[{extra}]'",
        ) from exc
