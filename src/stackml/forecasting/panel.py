"""The :class:`Panel`: many series packed into one float array with offsets, the one shape models see.

It sits below both the front door (:mod:`stackml.forecasting.frame` builds it from a long frame) and the
models (:mod:`stackml.forecasting.models`), so neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Panel"]


@dataclass(frozen=True)
class Panel:
    """Many series packed for fast per-series and global access.

    Attributes:
        ids: series ids, in the order of the other arrays (shape ``(n_series,)``).
        y: all target values, series after series (shape ``(n_obs,)``, float64).
        indptr: offsets, series ``i`` is ``y[indptr[i]:indptr[i+1]]`` (shape ``(n_series + 1,)``).
        season_length: the main seasonal period (1 = no seasonality).
        periods: every seasonal period the models may use, main first (e.g. ``(24, 168)`` for hourly data
            with a daily and a weekly cycle); empty means just ``season_length``.
        X: exogenous values aligned with ``y`` (shape ``(n_obs, n_exog)``) or ``None``.
        exog_names: names of the exogenous columns.
        time_features: optional calendar features aligned with ``y`` that the front door derives from dates
            (shape ``(n_obs, k)``), with ``time_feature_names``; global models may use them.
    """

    ids: np.ndarray
    y: np.ndarray
    indptr: np.ndarray
    season_length: int = 1
    periods: tuple[int, ...] = ()
    X: np.ndarray | None = None
    exog_names: tuple[str, ...] = ()
    time_features: np.ndarray | None = None
    time_feature_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def seasonal_periods(self) -> tuple[int, ...]:
        """``periods``, or the main season alone when none were given (empty when there is no season)."""
        if self.periods:
            return self.periods
        return (self.season_length,) if self.season_length > 1 else ()

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def series(self, i: int) -> np.ndarray:
        return self.y[self.indptr[i] : self.indptr[i + 1]]

    def exog(self, i: int) -> np.ndarray | None:
        return None if self.X is None else self.X[self.indptr[i] : self.indptr[i + 1]]

    @classmethod
    def from_arrays(
        cls, series: list[np.ndarray], ids: list[Any] | None = None, season_length: int = 1
    ) -> Panel:
        """Build a panel from a list of 1-D arrays (handy in tests and for per-series callers)."""
        lengths = np.array([len(s) for s in series], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        y = np.concatenate([np.asarray(s, dtype=np.float64) for s in series]) if series else np.empty(0)
        return cls(
            ids=np.asarray(ids if ids is not None else np.arange(len(series))),
            y=y,
            indptr=indptr,
            season_length=int(season_length),
        )
