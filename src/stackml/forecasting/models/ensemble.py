"""Ensembles: the mean or median of member models, and a combination chosen on backtest error.

Members are given as model instances or registry names. An ensemble fits its own copies of the members, except
when the front door hands it members it already fitted on the same panel (:meth:`use_prefitted`), so listing
``["ets", "theta", "mean_ensemble"]`` fits ETS and Theta once. A registry name given to
:class:`~stackml.forecasting.Forecaster` without ``models`` (e.g. ``"mean_ensemble"``) combines every other
model of that forecaster.

Example:
    >>> import numpy as np
    >>> from stackml.forecasting.models.base import Panel
    >>> panel = Panel.from_arrays([np.arange(1.0, 31.0)])
    >>> MeanEnsemble(models=["naive", "rwd"]).fit(panel).predict(2).round(1)
    array([[30.5, 31. ]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from stackml.checks import is_int
from stackml.errors import InputError, NotFittedError
from stackml.forecasting.conformal import panel_scales, scaled_errors
from stackml.forecasting.frame import split_panel, take_panel
from stackml.forecasting.models.base import ForecastModel, Panel
from stackml.forecasting.selection import mean_ensemble

__all__ = ["BestOnBacktest", "MeanEnsemble", "MedianEnsemble"]


class _Ensemble(ForecastModel):
    """Shared machinery: resolve, fit (or reuse) and predict the members."""

    def __init__(
        self, models: Sequence[ForecastModel | str] | None = None, *, alias: str | None = None
    ) -> None:
        super().__init__(alias=alias)
        self.models = models

    def members(self) -> list[ForecastModel]:
        """The member models, unfitted, resolved from names where needed.

        Raises:
            InputError: if there are no members, an item is neither a model nor a registry name, a member is
                itself an ensemble, or two members share an alias.
        """
        from stackml.forecasting.models import make_model  # the registry imports this module

        if not self.models:
            raise InputError(
                f"{self.name} needs member models, got models={self.models!r}.",
                hint=f"Pass e.g. {type(self).__name__}(models=['ets', 'theta']).",
            )
        out, problems = [], []
        for item in self.models:
            if isinstance(item, str):
                out.append(make_model(item))
            elif isinstance(item, ForecastModel):
                out.append(item)
            else:
                problems.append(f"{item!r} is neither a ForecastModel nor a registry name")
        problems += [
            f"{m.name} is an ensemble; nest members directly" for m in out if isinstance(m, _Ensemble)
        ]
        names = [m.name for m in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"members share the aliases {dup}; give them distinct alias= values")
        if problems:
            raise InputError(f"{self.name}: " + "; ".join(problems) + ".")
        return out

    @property
    def is_global(self) -> bool:  # type: ignore[override]
        return any(m.is_global for m in self.members()) if self.models else False

    @property
    def uses_exogenous(self) -> bool:  # type: ignore[override]
        return any(m.uses_exogenous for m in self.members()) if self.models else False

    def use_prefitted(self, fitted: Mapping[str, ForecastModel]) -> None:
        """Reuse members already fitted on the panel the next ``fit`` gets,
        keyed by ``repr`` of the unfitted model.

        The front door calls this so a model listed both alone and in an ensemble is fitted once.
        """
        self._prefitted = dict(fitted)

    def _fit(self, panel: Panel) -> None:
        prefitted = getattr(self, "_prefitted", {})
        self._prefitted = {}  # only for this one fit
        fitted = []
        for member in self.members():
            ready = prefitted.get(repr(member))
            if ready is not None and getattr(ready, "n_series_", None) == panel.n_series:
                fitted.append(ready)
            else:
                fitted.append(member.clone().fit(panel))
        self.members_ = fitted

    def member_forecasts(self, h: int, X_future: np.ndarray | None = None) -> np.ndarray:
        """Forecasts of every fitted member, shape ``(n_members, n_series, h)``."""
        if not hasattr(self, "members_"):
            raise NotFittedError(f"{self.name} is not fitted yet.", hint="Call fit(panel) first.")
        return np.stack([m.predict(h, X_future if m.uses_exogenous else None) for m in self.members_])


class MeanEnsemble(_Ensemble):
    """The mean of the members' forecasts.

    Args:
        models: member models or registry names.
        alias: output column name (default ``"MeanEnsemble"``).
    """

    default_alias = "MeanEnsemble"

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        return mean_ensemble(self.member_forecasts(h, X_future))


class MedianEnsemble(_Ensemble):
    """The median of the members' forecasts (robust to one member going astray).

    Args:
        models: member models or registry names.
        alias: output column name (default ``"MedianEnsemble"``).
    """

    default_alias = "MedianEnsemble"

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        return np.median(self.member_forecasts(h, X_future), axis=0)


_COMBINATIONS = ("best", "inverse_error", "mean_top_k")


class BestOnBacktest(_Ensemble):
    """A combination of the members weighted by their backtest error at the requested horizon.

    At ``predict(h)`` every member is scored on a backtest of ``n_windows`` windows of ``h`` values at the end
    of each series (members refitted on the data before each window), unless the front door already supplied
    the errors of its own backtest through :meth:`set_backtest_errors`. Series too short for a window are left
    out of the scoring; if none can be scored, the members are averaged.

    Args:
        models: member models or registry names.
        combination: ``"best"`` takes the member with the lowest error, ``"inverse_error"`` weights members by
            ``1 / error``, ``"mean_top_k"`` averages the ``top_k`` best.
        top_k: members averaged by ``"mean_top_k"``.
        metric: ``"mase"`` (scaled absolute error) or ``"smape"``.
        n_windows: backtest windows of its own backtest.
        per_series: choose per series instead of once for the whole panel (noisier on short series).
        alias: output column name (default ``"BestOnBacktest"``).

    Attributes:
        weights_: member weights ``(n_members, n_series)`` used by the last ``predict``.
        backtest_errors_: ``{h: (n_members, n_series) errors}``.
    """

    default_alias = "BestOnBacktest"

    def __init__(
        self,
        models: Sequence[ForecastModel | str] | None = None,
        *,
        combination: str = "best",
        top_k: int = 2,
        metric: str = "mase",
        n_windows: int = 1,
        per_series: bool = False,
        alias: str | None = None,
    ) -> None:
        super().__init__(models, alias=alias)
        self.combination = combination
        self.top_k = top_k
        self.metric = metric
        self.n_windows = n_windows
        self.per_series = per_series

    @property
    def is_global(self) -> bool:  # type: ignore[override]
        # one choice for the whole panel needs the whole panel
        return not self.per_series or super().is_global

    def _fit(self, panel: Panel) -> None:
        problems = []
        if self.combination not in _COMBINATIONS:
            problems.append(f"combination must be one of {list(_COMBINATIONS)}, got {self.combination!r}")
        if not is_int(self.top_k) or self.top_k < 1:
            problems.append(f"top_k must be a positive integer, got {self.top_k!r}")
        if self.metric not in ("mase", "smape"):
            problems.append(f"metric must be 'mase' or 'smape', got {self.metric!r}")
        if not is_int(self.n_windows) or self.n_windows < 1:
            problems.append(f"n_windows must be a positive integer, got {self.n_windows!r}")
        if problems:
            raise InputError(f"{self.name}: " + "; ".join(problems) + ".")
        super()._fit(panel)
        self.panel_ = panel
        self.backtest_errors_: dict[int, np.ndarray] = {}

    def set_backtest_errors(self, h: int, errors: Mapping[str, np.ndarray]) -> None:
        """Use these per-series errors (``{member alias: (n_series,)}``) for horizon ``h``
        instead of backtesting."""
        if not hasattr(self, "members_"):
            raise NotFittedError(f"{self.name} is not fitted yet.", hint="Call fit(panel) first.")
        names = [m.name for m in self.members_]
        missing = [n for n in names if n not in errors]
        if missing:
            raise InputError(f"{self.name}: backtest errors are missing for members {missing}.")
        table = np.vstack([np.asarray(errors[n], dtype=np.float64).reshape(-1) for n in names])
        if table.shape[1] != self.n_series_:
            raise InputError(
                f"{self.name}: backtest errors cover {table.shape[1]} series, the panel has {self.n_series_}."
            )
        self.backtest_errors_[int(h)] = table

    def _backtest(self, h: int) -> np.ndarray:
        panel, members = self.panel_, self.members_
        scales = panel_scales(panel)
        total = np.zeros((len(members), panel.n_series))
        count = np.zeros(panel.n_series)
        for w in range(self.n_windows):
            end = panel.lengths - (self.n_windows - 1 - w) * h
            ok = np.flatnonzero(end - h >= 1)
            if ok.size == 0:
                continue
            train, actual, X_future = split_panel(take_panel(panel, ok, end[ok]), h)
            for j, member in enumerate(members):
                fc = member.clone().fit(train).predict(h, X_future if member.uses_exogenous else None)
                total[j, ok] += scaled_errors(actual[None], fc[None], scales[ok], self.metric)
            count[ok] += 1
        with np.errstate(invalid="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def _combine(self, errors: np.ndarray) -> np.ndarray:
        k = len(errors)
        if not np.all(np.isfinite(errors)):
            return np.full(k, 1.0 / k)
        if self.combination == "best":
            return np.eye(k)[int(np.argmin(errors))]
        if self.combination == "inverse_error":
            inv = 1.0 / np.maximum(errors, 1e-12)
            return inv / inv.sum()
        top = np.argsort(errors, kind="stable")[: min(self.top_k, k)]
        weights = np.zeros(k)
        weights[top] = 1.0 / len(top)
        return weights

    def _weights(self, errors: np.ndarray) -> np.ndarray:
        scored = np.all(np.isfinite(errors), axis=0)
        overall = self._combine(
            errors[:, scored].mean(axis=1) if scored.any() else np.full(len(errors), np.nan)
        )
        weights = np.repeat(overall[:, None], errors.shape[1], axis=1)
        if self.per_series:
            for i in np.flatnonzero(scored):
                weights[:, i] = self._combine(errors[:, i])
        return weights

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        if h not in self.backtest_errors_:
            self.backtest_errors_[h] = self._backtest(h)
        self.weights_ = self._weights(self.backtest_errors_[h])
        return np.einsum("ms,msh->sh", self.weights_, self.member_forecasts(h, X_future))
