"""Path-based multi-touch attribution: user paths from raw touchpoints, and credit per channel by rules
(first, last, linear, time decay, position), an exact Markov chain (order 1-3) and Shapley values.

Example:
    >>> from stackml.attribution import Attribution, read_paths  # doctest: +SKIP
    >>> Attribution().fit(read_paths("paths.csv")).shares()["markov"]  # doctest: +SKIP
"""

from stackml.attribution.methods import METHODS

__all__ = ["Attribution", "AttributionResult", "METHODS", "Paths", "paths_from_touchpoints", "read_paths"]

_LAZY = {
    "Attribution": "stackml.attribution.model",
    "AttributionResult": "stackml.attribution.model",
    "Paths": "stackml.attribution.paths",
    "paths_from_touchpoints": "stackml.attribution.paths",
    "read_paths": "stackml.attribution.paths",
}


def __getattr__(name: str):  # noqa: ANN202 - numpy and pandas load when a model or paths are first used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stackml.attribution' has no attribute {name!r}")
