"""The front door: :class:`Forecaster` fits models on a long frame, forecasts, backtests and adds intervals.

Models only ever see a :class:`~stackml.forecasting.models.base.Panel`; this module owns the frames, dates,
exogenous futures, parallelism and output columns.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stackml.checks import is_int
from stackml.errors import InputError, NotFittedError
from stackml.forecasting.conformal import panel_scales, scaled_errors
from stackml.forecasting.frame import FrameSpec, build_panel, future_ds, split_panel, take_panel
from stackml.forecasting.models import make_model
from stackml.forecasting.models.base import ForecastModel, Panel
from stackml.forecasting.models.ensemble import BestOnBacktest, _Ensemble
from stackml.forecasting.selection import Widths, conformal_widths, with_intervals
from stackml.forecasting.validation import (
    check_horizon,
    check_lengths,
    check_level,
    check_windows,
    validate_frame,
    windows_needed,
)

__all__ = ["Forecaster"]


class _Fitted:
    """One model fitted on the whole panel, or one copy per contiguous chunk of series
    (parallel local fits)."""

    def __init__(self, parts: list[tuple[int, int, ForecastModel]]) -> None:
        self.parts = parts

    def predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        return np.vstack(
            [m.predict(h, None if X_future is None else X_future[a * h : b * h]) for a, b, m in self.parts]
        )


def _fit_part(model: ForecastModel, panel: Panel) -> ForecastModel:
    return model.fit(panel)


class Forecaster:
    """Fit forecasting models on a long frame, forecast with conformal intervals, and backtest.

    Args:
        models: model instances (:class:`~stackml.forecasting.models.base.ForecastModel`) or registry names
            (see :func:`stackml.forecasting.available_models`), e.g. ``["snaive", "ets", "lgbm"]``. An
            ensemble given by name without members (``"mean_ensemble"``) combines all the other models.
        freq: pandas frequency of timestamp ``ds`` (``"h"``, ``"D"``, ``"MS"``...), inferred when ``None``;
            for integer ``ds``, ``None`` or the integer step.
        season_length: main seasonal period (24 for hourly data with a daily cycle, 12 for monthly...).
        seasonal_periods: every period the models may use, ``season_length`` first (e.g. ``(24, 168)`` for
            hourly data with a weekly cycle too); global models add lags and rolling means for the longer
            ones. ``None``: just ``season_length``. See :mod:`stackml.forecasting.seasonality`.
        n_jobs: processes for fitting per-series models (joblib; ``-1`` = all cores). Global models use their
            own threads.
        conformal_windows: backtest windows of ``h`` values used to calibrate prediction intervals.

    Attributes:
        models_: alias -> the fitted model, or the list of per-chunk fitted copies when fitted in parallel.
        spec_: what was learned about the frame (columns, exogenous columns, frequency).

    Example:
        >>> from stackml.forecasting import Forecaster, generate_series
        >>> df = generate_series(n_series=2, freq="D", min_length=60, max_length=60, season_length=7)
        >>> fc = Forecaster(models=["snaive", "theta"], freq="D", season_length=7).fit(df)
        >>> out = fc.predict(h=7, level=[80])
        >>> out.columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['unique_id', 'ds', 'SeasonalNaive', 'SeasonalNaive-lo-80', 'SeasonalNaive-hi-80', 'Theta',
        'Theta-lo-80', 'Theta-hi-80']
    """

    def __init__(
        self,
        models: Sequence[ForecastModel | str],
        freq: str | int | None = None,
        season_length: int = 1,
        seasonal_periods: Sequence[int] | None = None,
        n_jobs: int = 1,
        conformal_windows: int = 2,
    ) -> None:
        self.models = models
        self.freq = freq
        self.season_length = season_length
        self.seasonal_periods = seasonal_periods
        self.n_jobs = n_jobs
        self.conformal_windows = conformal_windows

    # ------------------------------------------------------------------------------------------------ public
    def fit(
        self, df: pd.DataFrame, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y"
    ) -> Forecaster:
        """Validate ``df`` and fit every model on all of it.

        Every column other than the id, time and target columns is an exogenous regressor (it must be
        numeric); ``predict`` then needs their future values in ``X_df``.

        Raises:
            InputError: listing every problem with the arguments or the frame.
        """
        models = self._resolve_models()
        clean, spec = validate_frame(df, id_col, time_col, target_col, self.freq)
        panel = build_panel(clean, spec, self.season_length, self._periods())
        self._models, self.spec_, self._panel = models, spec, panel
        self._fitted = self._fit_models(models, panel)
        self.models_ = {
            alias: f.parts[0][2] if len(f.parts) == 1 else [m for _, _, m in f.parts]
            for alias, f in self._fitted.items()
        }
        self._backtests: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        return self

    def predict(
        self, h: int, level: Sequence[float] | None = None, X_df: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast ``h`` steps after the end of each series.

        Args:
            h: horizon.
            level: prediction interval coverages in percent, e.g. ``[80, 95]``. Intervals are conformal: the
                models are backtested on ``conformal_windows`` windows of ``h`` values (refitted for each),
                and the interval half-width at each step is a quantile of the absolute backtest errors at that
                step (per series when there are enough windows, else pooled across series after scaling; see
                :mod:`stackml.forecasting.conformal`). The backtest is cached per ``h``; it also gives a
                :class:`~stackml.forecasting.models.ensemble.BestOnBacktest` whose members are all models of
                this forecaster its backtest errors, with or without ``level``.
            X_df: future values of the exogenous columns: id, time and every exogenous column, one row per
                series and future step (needed only when a model uses exogenous columns).

        Returns:
            Long frame ``unique_id, ds, <alias>...`` with ``<alias>-lo-<level>`` / ``<alias>-hi-<level>``
            columns when ``level`` is given (id and time columns keep the names given to ``fit``).
        """
        if not hasattr(self, "_fitted"):
            raise NotFittedError("This Forecaster is not fitted yet.", hint="Call fit(df) before predict().")
        h = check_horizon(h)
        levels = check_level(level)
        panel, spec = self._panel, self.spec_
        X_future = self._future_exog(h, X_df)
        backtest = None
        if levels or self._can_share(self._models, panel, h):
            if h not in self._backtests:
                self._backtests[h] = self._conformal_backtest(self._models, panel, h)
            backtest = self._backtests[h]
        preds, widths = self._forecast(self._models, self._fitted, panel, h, X_future, levels, backtest)
        last = panel.extra["ds"][panel.indptr[1:] - 1]
        index = pd.DataFrame(
            {spec.id_col: np.repeat(panel.ids, h), spec.time_col: future_ds(last, h, spec.freq)}
        )
        return self._assemble(index, preds, widths)

    def cross_validation(
        self,
        df: pd.DataFrame,
        h: int,
        n_windows: int = 1,
        step_size: int | None = None,
        level: Sequence[float] | None = None,
        refit: bool = True,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
    ) -> pd.DataFrame:
        """Backtest: for each of ``n_windows`` windows at the end of each series, fit on the data before it
        and forecast its ``h`` values.

        Windows end ``step_size`` apart (default ``h``, i.e. back to back); the last window ends at each
        series' end. Exogenous columns of ``df`` provide their own future values. With ``level``, intervals in
        each window are calibrated on that window's training data only (nested backtest), so their coverage
        can be scored. This does not change what ``fit`` learned.

        Args:
            df: long frame as for ``fit``.
            h: horizon of each window.
            n_windows: number of windows.
            step_size: distance between window ends; ``None`` means ``h``.
            level: prediction interval coverages in percent.
            refit: must be ``True``: every model is refitted on each window's history (the model contract has
                no step that updates a fitted model with new values).
            id_col: series id column.
            time_col: time column.
            target_col: target column.

        Returns:
            Long frame ``unique_id, ds, cutoff, y, <alias>...`` (+ interval columns), ``cutoff`` being the
            last training time of the window.
        """
        models = self._resolve_models()
        h = check_horizon(h)
        n_windows, step = check_windows(h, n_windows, step_size)
        levels = check_level(level)
        if refit is not True:
            raise InputError(
                f"refit={refit!r} is not supported: models are refitted on every window's history.",
                hint="Use refit=True (the default).",
            )
        clean, spec = validate_frame(df, id_col, time_col, target_col, self.freq)
        panel = build_panel(clean, spec, self.season_length, self._periods())
        needed = windows_needed(h, n_windows, step)
        why = f"h {h} + (n_windows {n_windows} - 1) x step_size {step} + 1 training value"
        if levels:
            needed += self.conformal_windows * h
            why += f" + conformal_windows {self.conformal_windows} x h {h} for the intervals"
        check_lengths(
            panel.ids,
            panel.lengths,
            needed,
            f"cross_validation with h={h}, n_windows={n_windows}",
            why,
            "Use fewer windows, a smaller h (or fewer conformal_windows with level), or drop these series.",
        )
        frames = []
        ds = panel.extra["ds"]
        for w in range(n_windows):
            end = panel.lengths - (n_windows - 1 - w) * step
            train, actual, X_future = split_panel(panel, h, end)
            shared = levels or self._can_share(models, train, h)
            backtest = self._conformal_backtest(models, train, h) if shared else None
            fitted = self._fit_models(models, train)
            preds, widths = self._forecast(models, fitted, train, h, X_future, levels, backtest)
            rows = (panel.indptr[:-1] + end - h)[:, None] + np.arange(h)[None, :]
            index = pd.DataFrame(
                {
                    spec.id_col: np.repeat(panel.ids, h),
                    spec.time_col: ds[rows.ravel()],
                    "cutoff": ds[np.repeat(rows[:, 0] - 1, h)],
                    spec.target_col: actual.ravel(),
                }
            )
            frames.append(self._assemble(index, preds, widths))
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values([spec.id_col, "cutoff", spec.time_col], kind="stable").reset_index(drop=True)

    @property
    def aliases(self) -> list[str]:
        """Output column names of the models, in order."""
        return [m.name for m in self._resolve_models()]

    # ------------------------------------------------------------------------------------------------ set-up
    def _periods(self) -> tuple[int, ...]:
        periods = tuple(int(p) for p in (self.seasonal_periods or ()) if int(p) > 1)
        main = int(self.season_length)
        if periods and main > 1 and periods[0] != main:
            periods = (main, *[p for p in periods if p != main])
        return periods

    def _resolve_models(self) -> list[ForecastModel]:
        """Models from the ``models`` argument; every problem with the arguments is reported at once."""
        problems: list[str] = []
        items = self.models
        if isinstance(items, (str, ForecastModel)) or not isinstance(items, Sequence) or len(items) == 0:
            problems.append(
                f"models must be a non-empty list of model names or ForecastModel instances, got {items!r}"
            )
            items = []
        models: list[ForecastModel] = []
        unknown = []
        for item in items:
            if isinstance(item, ForecastModel):
                models.append(item)
            elif isinstance(item, str):
                try:
                    models.append(make_model(item))
                except InputError:
                    unknown.append(item)
            else:
                problems.append(f"{item!r} in models is neither a ForecastModel nor a model name")
        if unknown:
            from stackml.forecasting.models import MODELS

            problems.append(f"unknown model names {unknown}; known names: {', '.join(MODELS)}")
        # a member-less ensemble combines every other model of this forecaster
        singles = [m for m in models if not isinstance(m, _Ensemble)]
        for i, m in enumerate(models):
            if isinstance(m, _Ensemble) and not m.models:
                if not singles:
                    problems.append(f"{m.name} has no members and there are no other models to combine")
                else:
                    models[i] = type(m)(**{**m.get_params(), "models": list(singles)})
        names = [m.name for m in models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"several models share the aliases {dup}; give them distinct alias= values")
        for arg, value, low in (
            ("season_length", self.season_length, 1),
            ("conformal_windows", self.conformal_windows, 1),
        ):
            if not is_int(value) or value < low:
                problems.append(f"{arg} must be a positive integer, got {value!r}")
        periods = self.seasonal_periods
        if periods is not None and (
            isinstance(periods, (str, bytes))
            or not isinstance(periods, Sequence)
            or not all(is_int(p) and p >= 1 for p in periods)
        ):
            problems.append(f"seasonal_periods must be positive integers or None, got {periods!r}")
        if not is_int(self.n_jobs) or self.n_jobs == 0:
            problems.append(f"n_jobs must be a non-zero integer (-1 = all cores), got {self.n_jobs!r}")
        if problems:
            raise InputError(
                "Forecaster got invalid arguments:\n- " + "\n- ".join(problems),
                hint="e.g. Forecaster(models=['snaive', 'ets'], freq='h', season_length=24).",
            )
        return models

    # -------------------------------------------------------------------------------------------- fitting
    def _chunks(self, n_series: int) -> list[tuple[int, int]]:
        if self.n_jobs == 1 or n_series < 2:
            return [(0, n_series)]
        from stackml._deps import require

        workers = require("joblib", extra="forecast").effective_n_jobs(self.n_jobs)
        # a few chunks per worker balance uneven series lengths without much pickling
        n_chunks = min(n_series, 2 * workers)
        bounds = np.linspace(0, n_series, n_chunks + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]

    def _fit_models(self, models: list[ForecastModel], panel: Panel) -> dict[str, _Fitted]:
        """Fit single models first, then ensembles reusing those fits; local models in parallel chunks."""
        chunks = self._chunks(panel.n_series)
        fitted: dict[str, _Fitted] = {}
        for group in (
            [m for m in models if not isinstance(m, _Ensemble)],
            [m for m in models if isinstance(m, _Ensemble)],
        ):
            tasks = []
            for model in group:
                parts = [(0, panel.n_series)] if model.is_global else chunks
                for a, b in parts:
                    copy = model.clone()
                    if isinstance(copy, _Ensemble):
                        copy.use_prefitted(
                            {
                                repr(m): m
                                for f in fitted.values()
                                for pa, pb, m in f.parts
                                if (pa, pb) == (a, b)
                            }
                        )
                    sub = panel if (a, b) == (0, panel.n_series) else take_panel(panel, np.arange(a, b))
                    tasks.append((model.name, a, b, copy, sub))
            done = self._run(tasks)
            for (alias, a, b, _, _), model in zip(tasks, done):
                fitted.setdefault(alias, _Fitted([])).parts.append((a, b, model))
        return fitted

    def _run(self, tasks: list[tuple]) -> list[ForecastModel]:
        """Fit each task's model on its panel: local ones through joblib when ``n_jobs != 1``."""
        results: list[ForecastModel | None] = [None] * len(tasks)
        local = [i for i, t in enumerate(tasks) if not t[3].is_global]
        if self.n_jobs != 1 and len(local) > 1:
            from stackml._deps import require

            joblib = require("joblib", extra="forecast")
            jobs = (joblib.delayed(_fit_part)(tasks[i][3], tasks[i][4]) for i in local)
            for i, model in zip(local, joblib.Parallel(n_jobs=self.n_jobs)(jobs)):
                results[i] = model
        for i, task in enumerate(tasks):
            if results[i] is None:
                # global models train on the whole panel in this process, with their own threads
                results[i] = _fit_part(task[3], task[4])
        return results  # type: ignore[return-value]

    # ----------------------------------------------------------------------------------------- forecasting
    def _conformal_backtest(
        self, models: list[ForecastModel], panel: Panel, h: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Backtest on ``conformal_windows`` back-to-back windows of ``h``: alias -> (forecasts, actuals).

        Both arrays have shape ``(n_windows, n_series, h)``.
        """
        n = self.conformal_windows
        check_lengths(
            panel.ids,
            panel.lengths,
            windows_needed(h, n, h),
            f"conformal intervals with h={h}",
            f"conformal_windows {n} x h {h} + 1 training value",
            "Use fewer conformal_windows (Forecaster(conformal_windows=1)), a smaller h, "
            "or drop these series.",
        )
        forecasts: dict[str, list[np.ndarray]] = {m.name: [] for m in models}
        actuals = []
        for w in range(n):
            train, actual, X_future = split_panel(panel, h, panel.lengths - (n - 1 - w) * h)
            fitted = self._fit_models(models, train)
            preds, _ = self._forecast(models, fitted, train, h, X_future, [], None)
            for alias, values in preds.items():
                forecasts[alias].append(values)
            actuals.append(actual)
        stacked = np.stack(actuals)
        return {alias: (np.stack(values), stacked) for alias, values in forecasts.items()}

    def _forecast(
        self,
        models: list[ForecastModel],
        fitted: dict[str, _Fitted],
        panel: Panel,
        h: int,
        X_future: np.ndarray | None,
        levels: list[float],
        backtest: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    ) -> tuple[dict[str, np.ndarray], Widths]:
        """Point forecasts per alias and, with ``levels``, conformal half-widths per alias
        from ``backtest``."""
        scales = panel_scales(panel) if backtest is not None else None
        if backtest is not None:
            self._share_backtest(models, fitted, backtest, scales, h)
        preds = {m.name: fitted[m.name].predict(h, X_future if m.uses_exogenous else None) for m in models}
        widths: Widths = {}
        if levels:
            residuals = {alias: backtest[alias][1] - backtest[alias][0] for alias in preds}
            widths = conformal_widths(residuals, scales, levels)
        return preds, widths

    def _can_share(self, models: list[ForecastModel], panel: Panel, h: int) -> bool:
        """Whether a combination can take its errors from the front door's backtest (see ``_share_backtest``).

        Sharing whenever possible, not only when intervals are asked for, keeps point forecasts the same with
        and without ``level``.
        """
        reprs = {repr(m) for m in models}
        sharable = any(
            isinstance(m, BestOnBacktest) and all(repr(x) in reprs for x in m.members()) for m in models
        )
        needed = windows_needed(h, self.conformal_windows, h)
        return sharable and bool(np.all(panel.lengths >= needed))

    @staticmethod
    def _share_backtest(
        models: list[ForecastModel],
        fitted: dict[str, _Fitted],
        backtest: dict[str, tuple[np.ndarray, np.ndarray]],
        scales: np.ndarray,
        h: int,
    ) -> None:
        """Give combinations chosen on backtest error the errors of the front door's own backtest.

        Only when every member of the combination is also one of the forecaster's models (same parameters), so
        the errors belong to the same models.
        """
        alias_of = {repr(m): m.name for m in models}
        for model in models:
            if not isinstance(model, BestOnBacktest):
                continue
            members = model.members()
            if not all(repr(m) in alias_of for m in members):
                continue
            errors = {
                m.name: scaled_errors(
                    backtest[alias_of[repr(m)]][1], backtest[alias_of[repr(m)]][0], scales, model.metric
                )
                for m in members
            }
            for a, b, part in fitted[model.name].parts:
                part.set_backtest_errors(h, {name: e[a:b] for name, e in errors.items()})

    # ------------------------------------------------------------------------------------------------ frames
    def _future_exog(self, h: int, X_df: pd.DataFrame | None) -> np.ndarray | None:
        """Future exogenous values as ``(n_series * h, n_exog)``, or ``None`` when no model uses them."""
        spec: FrameSpec = self.spec_
        if not spec.exog_cols or not any(m.uses_exogenous for m in self._models):
            return None
        cols = list(spec.exog_cols)
        hint = (
            f"Pass X_df with columns {[spec.id_col, spec.time_col, *cols]} and one row per series "
            f"for each of the {h} future steps."
        )
        if X_df is None:
            raise InputError(
                f"The models were fitted with exogenous columns {cols}; "
                "predict needs their future values in X_df.",
                hint=hint,
            )
        if not isinstance(X_df, pd.DataFrame):
            raise InputError(f"X_df must be a pandas DataFrame, got {type(X_df).__name__}.", hint=hint)
        missing = [c for c in [spec.id_col, spec.time_col, *cols] if c not in X_df.columns]
        if missing:
            raise InputError(f"X_df: The following columns are missing: {missing}", hint=hint)
        X = X_df[[spec.id_col, spec.time_col, *cols]].copy()
        if spec.is_timestamp:
            X[spec.time_col] = pd.to_datetime(X[spec.time_col]).dt.as_unit("ns")
        else:
            X[spec.time_col] = X[spec.time_col].astype(np.int64)
        if X.duplicated([spec.id_col, spec.time_col]).any():
            raise InputError(f"X_df has duplicate ({spec.id_col}, {spec.time_col}) rows.", hint=hint)
        panel = self._panel
        last = panel.extra["ds"][panel.indptr[1:] - 1]
        times = future_ds(last, h, spec.freq)
        if spec.is_timestamp:
            times = pd.DatetimeIndex(times).as_unit("ns")
        grid = pd.DataFrame({spec.id_col: np.repeat(panel.ids, h), spec.time_col: times})
        merged = grid.merge(X, how="left", on=[spec.id_col, spec.time_col])
        values = merged[cols].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            first = merged.loc[bad].groupby(spec.id_col, sort=False)[spec.time_col].first()
            shown = ", ".join(f"{k!r} at {v}" for k, v in first.head(5).items())
            raise InputError(
                f"X_df lacks future values (or has missing ones) for {len(first)} series (first missing "
                f"'{spec.time_col}'): {shown}.",
                hint=hint,
            )
        return values

    @staticmethod
    def _assemble(index: pd.DataFrame, preds: dict[str, np.ndarray], widths: Widths) -> pd.DataFrame:
        """Columns per model: ``alias``, then ``-lo-`` from the widest level in, then ``-hi-`` outwards."""
        points = pd.DataFrame({alias: mean.ravel() for alias, mean in preds.items()})
        return with_intervals(pd.concat([index.reset_index(drop=True), points], axis=1), widths)
