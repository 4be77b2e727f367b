"""Global gradient-boosted tree forecasters (LightGBM, XGBoost) over lag, rolling and calendar features.

One model learns from every series at once. Each series is first put on a common scale (and optionally
differenced) by invertible target transforms from :mod:`stackml.forecasting.features`; the training matrix
holds, for every observation, lags and rolling statistics of the transformed target plus position-in-season,
calendar and exogenous columns, all taken relative to the last value so that trees learn changes rather than
levels. The objective is the absolute error (M4's sMAPE and MASE are absolute-error metrics; the median is
also robust to outliers). Forecasts are recursive: one vectorised prediction over all series per horizon step,
each step feeding the next, then the transforms are inverted.

Defaults were chosen to hold for any frequency: lags and windows scale with the season length, the scale is
each series' own seasonal-naive error, and nothing refers to a particular calendar.

Example:
    >>> import numpy as np
    >>> from stackml.forecasting.panel import Panel
    >>> t = np.arange(120)
    >>> panel = Panel.from_arrays([10 + np.sin(2 * np.pi * t / 12) * k for k in (1, 2, 3)], season_length=12)
    >>> LightGBMForecaster(n_estimators=20).fit(panel).predict(6).shape  # doctest: +SKIP
    (3, 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.errors import InputError
from stackml.forecasting.features import (
    Differences,
    FeatureSpec,
    LocalScaler,
    RollingSpec,
    TransformChain,
    default_lags,
    lag_features,
    positions,
    rolling_features,
    start_steps,
    tails,
)
from stackml.forecasting.models.base import ForecastModel
from stackml.forecasting.panel import Panel

__all__ = ["LightGBMForecaster", "XGBoostForecaster"]


class GlobalTreeForecaster(ForecastModel):
    """Shared machinery of the gradient-boosting forecasters; subclasses only build and call their learner.

    Args:
        lags: lags of the transformed target; ``None`` takes
            :func:`~stackml.forecasting.features.default_lags` of the season length, cut at half the median
            series length.
        rolling: rolling statistics as ``(lag, window, stat)`` tuples or :class:`RollingSpec`; ``None`` takes
            the mean of the last season and of the season before it (the last 7 values when ``season_length``
            is 1).
        season_position: add the position in the season, ``t mod m``; ``t`` is the integer time step when the
            panel has integer ``ds`` (``Panel.extra["ds"]``), else the position counted from each series'
            start. Timestamps give calendar features (``Panel.time_features``) instead, which the model uses
            as well.
        scaler: per-series scaling (see :class:`~stackml.forecasting.features.LocalScaler`): ``"mase"``
            (default) divides by the in-sample seasonal-naive error, so the absolute-error objective is a MASE
            loss and series weigh by how predictable they are; ``"mean"``, ``"standard"``, ``"robust"`` or
            ``None``.
        scaler_window: compute the scale over the last ``scaler_window`` values (``None``: the whole series).
        differences: differencing lags applied after scaling, e.g. ``(1,)``; ``"season"`` stands for the
            season length.
        level_window: subtract, row by row, the mean of the last ``level_window`` values from the target and
            from the lags and rolling means (``"season"``: the season length; ``None``: off). Trees cannot
            extrapolate a level they never saw; relative to the recent level they learn changes, which carry
            over to trending series (default 1: relative to the last value).
        n_estimators: boosting rounds (of 255-leaf trees: a global model over many series has the rows to use
            them; lower both for small panels or speed).
        learning_rate: shrinkage per round.
        random_state: seed of the learner's sampling.
        n_jobs: threads for the learner (``None`` or -1: all cores). One by default: on a 2-core machine, 2
            threads trained 2-5 times slower than one (OpenMP synchronisation on 255-leaf trees, worse when
            other work shares the cores, e.g. models fitted in parallel); raise it on a many-core machine with
            a large panel.
        params: extra learner parameters, passed through as they are.
        alias: output column name.
    """

    is_global = True
    uses_exogenous = True

    def __init__(
        self,
        *,
        lags: Sequence[int] | None = None,
        rolling: Sequence[RollingSpec | tuple] | None = None,
        season_position: bool = True,
        scaler: str | None = "mase",
        scaler_window: int | None = None,
        differences: Sequence[int | str] = (),
        level_window: int | str | None = 1,
        n_estimators: int = 300,
        learning_rate: float = 0.1,
        random_state: int | None = 0,
        n_jobs: int | None = 1,
        params: dict[str, Any] | None = None,
        alias: str | None = None,
    ) -> None:
        super().__init__(alias=alias)
        self.lags = lags
        self.rolling = rolling
        self.season_position = season_position
        self.scaler = scaler
        self.scaler_window = scaler_window
        self.differences = differences
        self.level_window = level_window
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.params = params

    def probe(self) -> list[tuple[ForecastModel, float]]:
        # boosting cost grows with the rounds on top of a fixed cost (features, binning): two short fits
        # tell them apart
        full = int(self.n_estimators)
        rounds = sorted({max(1, full // 30), max(2, full // 10)})
        return [(type(self)(**{**self.get_params(), "n_estimators": r}), r / full) for r in rounds]

    # ------------------------------------------------------------------------------------------ learner hooks
    def _train(self, X: np.ndarray, y: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer(self, learner: Any, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------------- set-up
    def _check_params(self) -> None:
        problems = []
        if not isinstance(self.n_estimators, (int, np.integer)) or self.n_estimators < 1:
            problems.append(f"n_estimators must be a positive integer, got {self.n_estimators!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if self.lags is not None and (
            len(self.lags) == 0 or any(not isinstance(v, (int, np.integer)) or v < 1 for v in self.lags)
        ):
            problems.append(f"lags must be positive integers, got {self.lags!r}")
        if self.scaler is not None and self.scaler not in LocalScaler.METHODS:
            problems.append(f"scaler must be one of {LocalScaler.METHODS} or None, got {self.scaler!r}")
        lw = self.level_window
        if lw is not None and lw != "season" and (not isinstance(lw, (int, np.integer)) or lw < 1):
            problems.append(f"level_window must be a positive integer, 'season' or None, got {lw!r}")
        if self.params is not None and not isinstance(self.params, dict):
            problems.append(
                f"params must be a dict of learner settings or None, got {type(self.params).__name__}"
            )
        for d in self.differences:
            if d != "season" and (not isinstance(d, (int, np.integer)) or d < 1):
                problems.append(f"differences must hold positive integers or 'season', got {d!r}")
        if problems:
            raise InputError(
                f"{type(self).__name__}: " + "; ".join(problems) + ".",
                hint="See help(stackml.forecasting.models.ml.GlobalTreeForecaster) for the valid values.",
            )

    def _feature_spec(self, panel: Panel) -> FeatureSpec:
        m = max(int(panel.season_length), 1)
        lengths = panel.lengths
        max_lag = int(np.median(lengths)) // 2
        # longer cycles than the main one (a week in hourly data, a year in daily data), when the typical
        # series is long enough to see them twice
        longer = [p for p in panel.seasonal_periods[1:] if p <= max_lag]
        if self.lags is None:
            twice = [2 * p for p in longer if 2 * p <= max_lag]
            lags = sorted({*default_lags(m, max_lag=max_lag), *longer, *twice})
        else:
            lags = sorted({int(v) for v in self.lags})
        if self.rolling is None:
            rolling = [RollingSpec(1, m)] if m > 1 else [RollingSpec(1, 7)]
            if m > 1:
                rolling.append(RollingSpec(m + 1, m))
            rolling += [RollingSpec(1, p) for p in longer]
        else:
            rolling = [r if isinstance(r, RollingSpec) else RollingSpec(*r) for r in self.rolling]
        tf = panel.time_features if panel.extra.get("future_time_features") is not None else None
        exog_names: tuple[str, ...] = ()
        if panel.X is not None:
            n_exog = np.asarray(panel.X).reshape(len(panel.y), -1).shape[1]
            exog_names = tuple(panel.exog_names) or tuple(f"exog_{j}" for j in range(n_exog))
            if self._level_window(panel):
                exog_names += tuple(f"{name}_prev" for name in exog_names)
        return FeatureSpec(
            lags=tuple(lags),
            rolling=tuple(rolling),
            season_length=m,
            season_position=bool(self.season_position) and m > 1,
            n_time_features=0 if tf is None else np.asarray(tf).reshape(len(panel.y), -1).shape[1],
            n_exog=len(exog_names),
            time_feature_names=tuple(panel.time_feature_names) if tf is not None else (),
            exog_names=exog_names,
        )

    def _level_window(self, panel: Panel) -> int:
        if self.level_window is None:
            return 0
        if self.level_window == "season":
            return max(int(panel.season_length), 1)
        return int(self.level_window)

    def _relative(self, X: np.ndarray, level: np.ndarray, inplace: bool = False) -> np.ndarray:
        # lags and rolling means/min/max move with the level; std, positions, calendar and exogenous
        # columns do not
        spec = self.spec_
        n_lag = len(spec.lags)
        cols = list(range(n_lag)) + [n_lag + j for j, r in enumerate(spec.rolling) if r.stat != "std"]
        X = X if inplace else X.copy()
        X[:, cols] -= level[:, None]
        return X

    def _transform(self, panel: Panel) -> TransformChain:
        steps: list = []
        m = max(int(panel.season_length), 1)
        if self.scaler is not None:
            steps.append(LocalScaler(self.scaler, window=self.scaler_window, season_length=m))
        steps += [Differences(m if d == "season" else int(d)) for d in self.differences]
        return TransformChain(steps)

    # -------------------------------------------------------------------------------------------- fit/predict
    def _fit(self, panel: Panel) -> None:
        self._check_params()
        y = np.asarray(panel.y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise InputError(
                f"{self.name}: the target holds {int((~np.isfinite(y)).sum())} missing or infinite values.",
                hint="Fill or drop them first (the Forecaster's fill_gaps helper "
                "fills gaps in the time index).",
            )
        spec = self._feature_spec(panel)
        transform = self._transform(panel)
        z = transform.fit_transform(y, panel.indptr)
        tf = panel.time_features if spec.n_time_features else None
        self.start_ = start_steps(panel) if spec.season_position else np.zeros(panel.n_series, dtype=np.int64)
        self.level_window_ = self._level_window(panel)
        exog = self._exog(panel) if spec.n_exog else None
        X = spec.transform(z, panel.indptr, time_features=tf, X=exog, start=self.start_)
        # rows need a defined target and the shortest lag and rolling windows. Rows whose longer lags reach
        # before the series start (NaN) teach the trees to forecast series with a short history, so they are
        # kept only when some series is that short at forecast time; otherwise they are dropped, which is
        # also faster
        pos = positions(panel.indptr)
        keep = np.isfinite(z) & (pos >= spec.min_history)
        keep &= np.isfinite(X[:, : len(spec.lags)]).any(axis=1)
        self.short_history_ = bool(np.isnan(tails(z, panel.indptr, spec.history)).any())
        if not self.short_history_:
            keep &= np.isfinite(X[:, : len(spec.lags)]).all(axis=1)
        if keep.sum() < 2:
            raise InputError(
                f"{self.name}: the series are too short to build training rows "
                f"(longest {int(panel.lengths.max())} values, the features need {spec.min_history} "
                "past values plus the differencing).",
                hint="Pass shorter lags=..., fewer differences=... or longer series.",
            )
        self.spec_ = spec
        target = z
        if self.level_window_:
            level = rolling_features(z, panel.indptr, [RollingSpec(1, self.level_window_)])[:, 0]
            keep &= np.isfinite(level)
            X, target = X[keep], z[keep] - level[keep]
            self._relative(X, level[keep], inplace=True)
        else:
            X, target = X[keep], z[keep]
        self.n_train_rows_ = len(target)
        self.learner_ = self._train(X, target)
        self.transform_ = transform
        self.width_ = max(spec.history, self.level_window_)
        self.z_tail_ = tails(z, panel.indptr, self.width_)
        self.lengths_ = panel.lengths.copy()
        self.last_values_ = tails(y, panel.indptr, 1)[:, 0]
        self.last_exog_ = None if exog is None else exog[panel.indptr[1:] - 1]
        self.future_time_features_ = panel.extra.get("future_time_features") if spec.n_time_features else None
        self.feature_names_ = spec.names

    def _exog(self, panel: Panel) -> np.ndarray:
        """Exogenous columns; with a target relative to the recent level, also their previous values, since
        the change of the target then follows the change of the regressors."""
        X = np.asarray(panel.X, dtype=np.float64).reshape(len(panel.y), -1)
        if not self.level_window_:
            return X
        prev = np.column_stack([lag_features(X[:, j], panel.indptr, [1])[:, 0] for j in range(X.shape[1])])
        return np.hstack([X, prev])

    def _future_exog(self, X_future: np.ndarray | None, h: int) -> np.ndarray | None:
        n_exog = self.spec_.n_exog
        if not self.level_window_:
            return self._future_block(X_future, h, n_exog, "exogenous")
        xf = self._future_block(X_future, h, n_exog // 2, "exogenous")
        if xf is None:
            return None
        prev = np.concatenate([self.last_exog_[:, None, : n_exog // 2], xf[:, :-1]], axis=1)
        return np.concatenate([xf, prev], axis=2)

    def _future_block(self, values: np.ndarray | None, h: int, width: int, what: str) -> np.ndarray | None:
        if width == 0:
            return None
        if values is None:
            raise InputError(
                f"{self.name} was fitted with {width} {what} columns, so predict needs their future values.",
                hint=f"Pass X_future with shape (n_series, h, {width}) or (n_series * h, {width}).",
            )
        arr = np.asarray(values, dtype=np.float64)
        if arr.size != self.n_series_ * h * width:
            raise InputError(
                f"{self.name}: future {what} values have shape {arr.shape}, expected "
                f"({self.n_series_}, {h}, {width}).",
                hint="Give one row per series and horizon step, series in panel order.",
            )
        return arr.reshape(self.n_series_, h, width)

    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        spec = self.spec_
        tf = None
        if spec.n_time_features:
            tf = self._future_block(self.future_time_features_(h), h, spec.n_time_features, "calendar")
        xf = self._future_exog(X_future, h)
        width = self.width_
        buf = np.hstack([self.z_tail_, np.full((self.n_series_, h), np.nan)])
        for k in range(h):  # recursive: one prediction for all series per step
            row = spec.next_row(
                buf[:, k : k + width],
                self.lengths_ + k + self.start_,
                time_features=None if tf is None else tf[:, k],
                X=None if xf is None else xf[:, k],
            )
            if self.level_window_:
                level = buf[:, width + k - self.level_window_ : width + k].mean(axis=1)
                buf[:, width + k] = self._infer(self.learner_, self._relative(row, level)) + level
            else:
                buf[:, width + k] = self._infer(self.learner_, row)
        out = self.transform_.inverse_forecast(buf[:, width:])
        # a series shorter than the differencing lag has no history to integrate from: carry its last value
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            out[bad] = self.last_values_[bad, None]
        return out


class LightGBMForecaster(GlobalTreeForecaster):
    """Global LightGBM over lag, rolling and calendar features
    (see :class:`GlobalTreeForecaster` for arguments).

    255-leaf trees with the absolute-error (``l1``) objective; extra learner settings go in ``params`` (e.g.
    ``{"num_leaves": 63}``).
    """

    default_alias = "LightGBM"
    requires = ("lightgbm",)

    def _train(self, X: np.ndarray, y: np.ndarray) -> Any:
        lgb = require("lightgbm")
        params = {
            "objective": "l1",
            "learning_rate": float(self.learning_rate),
            "num_leaves": 255,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "seed": 0 if self.random_state is None else int(self.random_state),
            "deterministic": True,
            "num_threads": 0 if self.n_jobs in (None, -1) else int(self.n_jobs),
            "verbosity": -1,
        }
        params.update(self.params or {})
        data = lgb.Dataset(X, label=y, feature_name=_safe_names(self.spec_.names), free_raw_data=True)
        # keep_training_booster skips a round trip of the model through its text format at the end
        return lgb.train(params, data, num_boost_round=int(self.n_estimators), keep_training_booster=True)

    def _infer(self, learner: Any, X: np.ndarray) -> np.ndarray:
        return learner.predict(X, num_threads=1)


class XGBoostForecaster(GlobalTreeForecaster):
    """Global XGBoost (histogram trees) over the same features
    (see :class:`GlobalTreeForecaster` for arguments).

    Depth-8 trees with the absolute-error objective; extra learner settings go in ``params`` (e.g.
    ``{"max_depth": 10}``).
    """

    default_alias = "XGBoost"
    requires = ("xgboost",)

    def _train(self, X: np.ndarray, y: np.ndarray) -> Any:
        xgb = require("xgboost")
        params = {
            "objective": "reg:absoluteerror",
            "tree_method": "hist",
            "eta": float(self.learning_rate),
            "max_depth": 8,
            "min_child_weight": 20,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "seed": 0 if self.random_state is None else int(self.random_state),
            "verbosity": 0,
        }
        if self.n_jobs not in (None, -1):  # left out, XGBoost uses every core
            params["nthread"] = int(self.n_jobs)
        params.update(self.params or {})
        data = xgb.DMatrix(X, label=y, missing=np.nan)
        return xgb.train(params, data, num_boost_round=int(self.n_estimators))

    def _infer(self, learner: Any, X: np.ndarray) -> np.ndarray:
        xgb = require("xgboost")
        return learner.predict(xgb.DMatrix(X, missing=np.nan))


def _safe_names(names: list[str]) -> list[str]:
    """Feature names LightGBM accepts: letters, digits and underscores, unique."""
    safe = ["".join(c if c.isalnum() or c == "_" else "_" for c in name) for name in names]
    return safe if len(set(safe)) == len(safe) else [f"{name}_{j}" for j, name in enumerate(safe)]
