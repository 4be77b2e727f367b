"""Statistical models per series: ETS, Theta and ARIMA, over statsforecast's automatic model selection.

statsforecast is imported lazily (``stackml[forecast]``). Each series gets its own fitted statsforecast
object. Two rules keep the output finite whatever the series looks like:

- seasonality is used only when a series holds at least two full seasons (``n >= 2 m``); shorter series are
  modelled without it, as the M4 benchmarks do;
- when statsforecast cannot fit a series (too short, degenerate) or returns non-finite values, that series
  falls back to seasonal naive (naive when shorter than one season); ``fallbacks_`` counts them.

Example:
    >>> import numpy as np
    >>> from stackml.forecasting.panel import Panel
    >>> panel = Panel.from_arrays([np.arange(1.0, 41.0)], season_length=1)
    >>> ETS().fit(panel).predict(2).shape
    (1, 2)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.checks import is_int
from stackml.errors import InputError
from stackml.forecasting.models.base import LocalModel
from stackml.forecasting.panel import Panel

__all__ = ["ARIMA", "ETS", "Theta"]


class _Fallback:
    """Seasonal naive from a series' last season (naive when shorter than one season)."""

    def __init__(self, y: np.ndarray, season_length: int) -> None:
        m = season_length if len(y) >= season_length else 1
        self.tail = np.asarray(y[-m:], dtype=np.float64) if len(y) else np.zeros(1)

    def forecast(self, h: int) -> np.ndarray:
        return np.resize(self.tail, h)


@dataclass
class _SeriesState:
    """One series: its fitted statsforecast object (``None`` if fitting failed) and its fallback."""

    model: Any
    fallback: _Fallback
    with_exog: bool = False


class _StatsForecastModel(LocalModel):
    """Shared machinery: subclasses name the statsforecast class and its keyword arguments."""

    requires = ("statsforecast.models",)

    _sf_class = ""
    season_length: int | None = None

    def _sf_kwargs(self) -> dict[str, Any]:
        return {}

    def _season(self, panel_season: int) -> int:
        m = self.season_length if self.season_length is not None else panel_season
        if not is_int(m) or m < 1:
            raise InputError(
                f"{self.name}: season_length must be a positive integer or None (= the panel's), got {m!r}."
            )
        return int(m)

    def _make(self, n: int, m: int) -> Any:
        cls = getattr(require("statsforecast.models"), self._sf_class)
        # seasonal models need two full seasons to estimate the pattern
        return cls(season_length=m if n >= 2 * m else 1, **self._sf_kwargs())

    def _fit(self, panel: Panel) -> None:
        m = self._season(panel.season_length)
        self.season_length_ = m
        use_x = self.uses_exogenous and panel.X is not None
        self.states_ = [
            self._fit_series(panel.series(i), m, panel.exog(i) if use_x else None)
            for i in range(panel.n_series)
        ]
        self.fallbacks_ = sum(s.model is None for s in self.states_)

    def _fit_series(self, y: np.ndarray, m: int, X: np.ndarray | None) -> _SeriesState:
        fallback = _Fallback(y, m)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # statsforecast warns on near-degenerate series we handle anyway
                model = self._make(len(y), m)
                model = model.fit(y) if X is None else model.fit(y, X)
            return _SeriesState(model, fallback, X is not None)
        # statsforecast raises many kinds (KeyError, NotImplementedError, LinAlgError...) on series it cannot
        # model; those series fall back to seasonal naive instead of failing the whole panel
        except Exception:  # noqa: BLE001
            return _SeriesState(None, fallback)

    def fit_one(self, y: np.ndarray, season_length: int) -> _SeriesState:
        return self._fit_series(np.asarray(y, dtype=np.float64), self._season(season_length), None)

    def predict_one(self, state: _SeriesState, h: int, X: np.ndarray | None = None) -> np.ndarray:
        if state.model is None:
            return state.fallback.forecast(h)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = state.model.predict(h) if X is None else state.model.predict(h, X=X)
            mean = np.asarray(out["mean"], dtype=np.float64)
        except Exception:  # noqa: BLE001 - same reasoning as in _fit_series
            return state.fallback.forecast(h)
        return mean if mean.shape == (h,) and np.all(np.isfinite(mean)) else state.fallback.forecast(h)

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        rows = []
        for i, state in enumerate(self.states_):
            X = None
            if state.with_exog:
                if X_future is None:
                    raise InputError(
                        f"{self.name} was fitted with exogenous regressors and needs their future values.",
                        hint="Pass X_future (front door: X_df) with the future values of the regressors.",
                    )
                X = X_future[i * h : (i + 1) * h]
            rows.append(self.predict_one(state, h, X))
        return np.vstack(rows)


class ETS(_StatsForecastModel):
    """Exponential smoothing with automatic choice of error, trend and season (statsforecast ``AutoETS``).

    Args:
        model: three letters for error, trend and season, each ``A`` (additive), ``M`` (multiplicative), ``N``
            (none) or ``Z`` (chosen by AICc); ``"ZZZ"`` searches everything.
        damped: force a damped trend (``True``/``False``) or let AICc choose (``None``).
        season_length: seasonal period; ``None`` uses the panel's.
        alias: output column name (default ``"ETS"``).
    """

    default_alias = "ETS"
    _sf_class = "AutoETS"

    def __init__(
        self,
        *,
        model: str = "ZZZ",
        damped: bool | None = None,
        season_length: int | None = None,
        alias: str | None = None,
    ) -> None:
        super().__init__(alias=alias)
        self.model = model
        self.damped = damped
        self.season_length = season_length

    def _sf_kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "damped": self.damped}


class Theta(_StatsForecastModel):
    """The Theta method with automatic variant selection (statsforecast ``AutoTheta``).

    Args:
        model: ``None`` picks among standard, optimised, dynamic standard and dynamic optimised Theta by
            in-sample error; or one of ``"STM"``, ``"OTM"``, ``"DSTM"``, ``"DOTM"``.
        decomposition_type: ``"multiplicative"`` (the M4 benchmark's classical decomposition) or
            ``"additive"``; statsforecast applies it only when a seasonality test passes.
        season_length: seasonal period; ``None`` uses the panel's.
        alias: output column name (default ``"Theta"``).
    """

    default_alias = "Theta"
    _sf_class = "AutoTheta"

    def __init__(
        self,
        *,
        model: str | None = None,
        decomposition_type: str = "multiplicative",
        season_length: int | None = None,
        alias: str | None = None,
    ) -> None:
        super().__init__(alias=alias)
        self.model = model
        self.decomposition_type = decomposition_type
        self.season_length = season_length

    def _sf_kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "decomposition_type": self.decomposition_type}


class ARIMA(_StatsForecastModel):
    """Automatic (seasonal) ARIMA, with exogenous regressors when the panel has them
    (statsforecast ``AutoARIMA``).

    Args:
        approximation: approximate the likelihood during the order search (faster on long series); ``None``
            lets statsforecast decide.
        stepwise: stepwise order search (fast) instead of an exhaustive one.
        season_length: seasonal period; ``None`` uses the panel's.
        alias: output column name (default ``"ARIMA"``).
    """

    default_alias = "ARIMA"
    uses_exogenous = True
    _sf_class = "AutoARIMA"

    def __init__(
        self,
        *,
        approximation: bool | None = None,
        stepwise: bool = True,
        season_length: int | None = None,
        alias: str | None = None,
    ) -> None:
        super().__init__(alias=alias)
        self.approximation = approximation
        self.stepwise = stepwise
        self.season_length = season_length

    def _sf_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"stepwise": self.stepwise}
        if self.approximation is not None:
            kwargs["approximation"] = self.approximation
        return kwargs

    def _fit_series(self, y: np.ndarray, m: int, X: np.ndarray | None) -> _SeriesState:
        state = super()._fit_series(y, m, X)
        if X is not None and state.model is None:
            # regressors can make the fit singular (e.g. a constant column); try again without them
            state = super()._fit_series(y, m, None)
        return state
