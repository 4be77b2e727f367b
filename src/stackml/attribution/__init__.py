"""Path-based multi-touch attribution: user paths from raw touchpoints, and credit per channel by rules
(first, last, linear, time decay, position), an exact Markov chain (order 1-3) and Shapley values.

Example:
    >>> from stackml.attribution import Attribution, read_paths  # doctest: +SKIP
    >>> Attribution().fit(read_paths("paths.csv")).shares()["markov"]  # doctest: +SKIP
"""

from stackml.attribution.model import METHODS, Attribution, AttributionResult
from stackml.attribution.paths import Paths, paths_from_touchpoints, read_paths

__all__ = ["Attribution", "AttributionResult", "METHODS", "Paths", "paths_from_touchpoints", "read_paths"]
