"""The contract every forecasting model follows.

A model sees a :class:`Panel`: every series of the long frame packed into one float array with offsets, so
per-series models loop over NumPy slices and global models (LightGBM, XGBoost, the PyTorch model) see all the
series at once. The front door (:class:`stackml.forecasting.Forecaster`) owns the DataFrame, the dates and the
output columns; models only ever see arrays.

Contract (checked for every model by one parametrised test):
- ``__init__`` only stores keyword arguments (``alias`` included); ``fit(panel)`` validates, learns state in
  attributes ending in ``_`` and returns ``self``; ``predict(h, X_future=None)`` checks the model is fitted
  and returns an array of shape ``(panel.n_series, h)`` of finite floats, series in panel order.
- Seeds are ``random_state``; counts are ``n_*``.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from stackml.errors import InputError, NotFittedError
from stackml.forecasting.panel import Panel

__all__ = ["ForecastModel", "LocalModel", "Panel"]


class ForecastModel(abc.ABC):
    """Base class: subclasses implement ``_fit`` and ``_predict``; this class enforces the contract."""

    #: the default alias, i.e. the output column name; instances may override it with ``alias=``
    default_alias: str = ""
    #: True when the model learns across series (needs the whole panel at once)
    is_global: bool = False
    #: the optional libraries fitting imports (lazily); the time budget imports them once before its probes
    requires: tuple[str, ...] = ()
    #: True when the model uses exogenous columns when the panel has them
    uses_exogenous: bool = False

    def __init__(self, *, alias: str | None = None) -> None:
        self.alias = alias

    @property
    def name(self) -> str:
        """The output column name of this model."""
        return self.alias or self.default_alias or type(self).__name__

    def fit(self, panel: Panel) -> ForecastModel:
        if panel.n_series == 0:
            raise InputError(
                f"{self.name}: cannot fit on an empty panel (0 series).", hint="Pass at least one series."
            )
        self._fit(panel)
        self.n_series_ = panel.n_series
        return self

    def predict(self, h: int, X_future: np.ndarray | None = None) -> np.ndarray:
        if not hasattr(self, "n_series_"):
            raise NotFittedError(
                f"{self.name} is not fitted yet.",
                hint=f"Call {type(self).__name__}.fit(panel) before predict().",
            )
        if not isinstance(h, (int, np.integer)) or h < 1:
            raise InputError(f"The horizon h must be a positive integer, got {h!r}.", hint="Pass e.g. h=48.")
        out = np.asarray(self._predict(int(h), X_future), dtype=np.float64)
        if out.shape != (self.n_series_, h):
            raise RuntimeError(f"{self.name} returned shape {out.shape}, expected {(self.n_series_, h)}")
        return out

    @abc.abstractmethod
    def _fit(self, panel: Panel) -> None: ...

    @abc.abstractmethod
    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, scikit-learn style (used to clone a model per backtest window)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def probe(self) -> list[tuple[ForecastModel, float]] | None:
        """Cheaper unfitted copies, each with the share of this model's work it does, so that short fits of
        the copies estimate this model's cost (see :mod:`stackml.forecasting.budget`): one copy scales by its
        share; two copies fit a line through their times (which separates fixed set-up from work that grows).
        ``None`` when fitting costs next to nothing."""
        return [(self.clone(), 1.0)]

    def clone(self) -> ForecastModel:
        """An unfitted copy with the same arguments."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"{type(self).__name__}({args})"


class LocalModel(ForecastModel):
    """A model fitted to each series on its own; subclasses implement ``fit_one`` and ``predict_one``."""

    def _fit(self, panel: Panel) -> None:
        self.season_length_ = panel.season_length
        self.states_ = [self.fit_one(panel.series(i), panel.season_length) for i in range(panel.n_series)]

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        return np.vstack([self.predict_one(state, h) for state in self.states_])

    @abc.abstractmethod
    def fit_one(self, y: np.ndarray, season_length: int) -> Any:
        """Learn what is needed to forecast ``y``; return it (any object)."""

    @abc.abstractmethod
    def predict_one(self, state: Any, h: int) -> np.ndarray:
        """Forecast ``h`` steps from a state returned by ``fit_one``."""
