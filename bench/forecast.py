"""Forecasting on M4 Hourly, M3 and tourism: our default run vs statsforecast and mlforecast, side by side.

For every data set and subset, the real command a new user would type (``stackml forecast run --data
train.csv --test test.csv --horizon H --no-register --json``, through Metaflow, in a subprocess with a fresh
STACKML_HOME) runs next to statsforecast's AutoETS / AutoTheta / SeasonalNaive, mlforecast's LightGBM on the
same lags, and our Naive2 (the OWA reference), all on the same training data. One NumPy function scores every
forecast: sMAPE, MASE (competition m), OWA against Naive2, and the coverage of the 80% and 95% intervals.
Published references: the M4 winner and Theta benchmark (official table), M3's original THETA forecasts
(scored here) and Tcomp's ETS / Theta MASE for tourism. First, the demo's forecast step is timed twice in one
new home (``demo`` in ``--datasets``), with each Metaflow task's seconds: where a short run's time goes.

Peers are installed only for the benchmark (``pip install -c constraints.txt -e '.[bench]'``). Data: the
folders ``../shared/data/{m4,m3,tourism}`` (see their SOURCE.md), or STACKML_M4_DIR / STACKML_M3_DIR /
STACKML_TOURISM_DIR.

    .venv/bin/python bench/forecast.py                     # everything; an estimated 1-2 h on 2 cores
    .venv/bin/python bench/forecast.py --datasets m3 --subsets Yearly,Quarterly --skip ets
    .venv/bin/python bench/forecast.py --sample 20 --no-write   # plumbing check: 5-8 min per data set

Nearly all of the time goes to our default runs (each a whole Metaflow run) and to statsforecast's AutoETS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DATA_DIRS = {
    name: Path(os.environ.get(f"STACKML_{name.upper()}_DIR", SHARED / name))
    for name in ("m4", "m3", "tourism")
}
TITLES = {"m4": "M4", "m3": "M3", "tourism": "Tourism"}
# subset -> (horizon h, competition seasonality m)
SPECS = {
    "m4": {"Hourly": (48, 24)},
    "m3": {"Yearly": (6, 1), "Quarterly": (8, 4), "Monthly": (18, 12), "Other": (8, 1)},
    "tourism": {"Monthly": (24, 12), "Quarterly": (8, 4), "Yearly": (4, 1)},
}
LEVELS = (80, 95)
PEERS = ("ets", "theta", "lgbm", "snaive")  # what --skip may name, with "default" (our run)
SEED = 0
SYNTHETIC_START = "1990-01-01"  # for the 29 undated M3 Monthly series (N2801-N2829)
# Tcomp's re-run of the tourism paper's Tables 4-6 (tourism/SOURCE.md, tcomp_reproduction_scores.csv), MASE
TCOMP_MASE = {
    "Monthly": {"ETS": 1.54, "Theta": 1.65},
    "Quarterly": {"ETS": 1.59, "Theta": 1.66},
    "Yearly": {"ETS": 3.00, "Theta": 2.73},
}
NOTES = """
- Our default run is the real command, `stackml forecast run --data train.csv --test test.csv --horizon H
  --no-register --json` (M4: `--format m4-wide --season 24` on the competition files), through Metaflow in a
  subprocess with a fresh STACKML_HOME per subset; its wall time is the whole subprocess (start, backtests,
  choice, final fits, report). Its chosen forecast and intervals are read back from the run's `end` step
  (`pipeline.forecasts`, column `pipeline.choice.alias`).
- As a new user would give them: M3 and tourism get real calendar dates,
  `pd.date_range(start_date, periods=n_total, freq=freq)` from the info files (train the first n_train dates,
  test the rest), and no `--season`, so the pipeline works out frequency and season itself. The 29 undated
  M3 Monthly series (N2801-N2829) get synthetic monthly dates from {synthetic_start} (the simpler route:
  Monthly is one run over all its series). M3 Other has no dates at all: integer steps and `--season 1` (its
  competition m).
- Peers run in-process on the same training frames: statsforecast AutoETS / AutoTheta / SeasonalNaive
  (season_length = competition m, all cores, SeasonalNaive as the fallback model, intervals level=[80, 95]);
  mlforecast LightGBM with our default lags cut to below (shortest series - h - 1) and half the median length,
  rolling means of the last season and the one before when they fit, the position in the season,
  LocalStandardScaler + Differences([1]) and our LightGBM settings (l1, 255 leaves, 300 trees, learning rate
  0.1, one thread); its intervals are conformal (PredictionIntervals(n_windows=2, h=H)) when every series is
  longer than 2h, else n/a. Naive2 is ours (`Forecaster(models=['naive2'])`), the OWA reference; it has no
  intervals here.
- One NumPy function scores every row against the official test values: sMAPE = mean over h, then over series,
  of 200|y-f|/(|y|+|f|); MASE with the in-sample mean |y_t - y_(t-m)| as scale (competition m; lag 1 when a
  series is not longer than m); OWA = 0.5 (sMAPE/sMAPE_Naive2 + MASE/MASE_Naive2) over the subset; coverage =
  share of test points inside the 80% / 95% interval.
- References: M4 Hourly from the official results table (m4_official_point_results.csv); M3 THETA's original
  forecasts (m3_original_forecasts.csv.gz) scored by the same function (on all series it gives SOURCE.md's
  16.97 / 8.96 / 13.90 / 4.41); tourism MASE of ETS and Theta from Tcomp's re-run of the paper's tables
  (tourism/SOURCE.md), quoted, not recomputed.
- Targets: tourism compares with the sf_AutoETS row measured in the same run (Tcomp's published ETS is shown
  beside it for reference); M3 compares with THETA scored on the same series; coverage is pooled over every
  test point of a data set's subsets.
"""
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:8.1f} s] {message}", file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------------------------
@dataclass
class Subset:
    """One table's data: long frames (``unique_id`` as text, ``ds`` dates or integer steps) and constants."""

    dataset: str
    name: str
    h: int
    m: int
    train: pd.DataFrame
    test: pd.DataFrame
    freq: str | int  # pandas frequency of dated ds, or 1 for integer steps
    season_arg: int | None  # --season for our run; None lets the pipeline decide from the dates
    m4_files: tuple[Path, Path] | None = None  # the wide files for --format m4-wide
    ids: list[str] = field(init=False)
    actuals: np.ndarray = field(init=False)  # (series, h), in ids order
    scale: np.ndarray = field(init=False)  # MASE scale per series

    def __post_init__(self) -> None:
        self.train = self.train.sort_values(["unique_id", "ds"], ignore_index=True)
        self.test = self.test.sort_values(["unique_id", "ds"], ignore_index=True)
        self.ids = sorted(self.train["unique_id"].unique())
        self.actuals = _matrix(self.test, "y", self.ids, self.h)
        self.scale = mase_scale(self.train, self.ids, self.m)
        if not np.isfinite(self.actuals).all():
            raise SystemExit(f"{self.title}: the test data do not give {self.h} values for every series")

    @property
    def title(self) -> str:
        return f"{TITLES[self.dataset]} {self.name}"

    @property
    def min_length(self) -> int:
        return int(self.train.groupby("unique_id").size().min())


def sample_ids(ids: list[str], sample: int | None) -> list[str]:
    """All ids, or ``sample`` of them drawn with a fixed seed (kept in their original order)."""
    if not sample or sample >= len(ids):
        return list(ids)
    chosen = set(np.random.default_rng(SEED).choice(ids, size=sample, replace=False))
    return [i for i in ids if i in chosen]


def load_m4(subsets: set[str] | None, sample: int | None, tmp: Path) -> list[Subset]:
    """M4 Hourly from the competition's wide files (sampled rows rewritten to ``tmp`` for the CLI)."""
    from stackml.forecasting.m4 import load_m4_wide

    if subsets and "hourly" not in subsets:
        return []
    folder = DATA_DIRS["m4"]
    files = (folder / "Hourly-train.csv", folder / "Hourly-test.csv")
    if sample:
        wide = [pd.read_csv(f, index_col=0) for f in files]
        keep = sample_ids(list(wide[0].index), sample)
        files = (tmp / "Hourly-train.csv", tmp / "Hourly-test.csv")
        for frame, path in zip(wide, files):
            frame.loc[keep].dropna(axis=1, how="all").to_csv(path)
    train, test = load_m4_wide(*files)
    h, m = SPECS["m4"]["Hourly"]
    return [Subset("m4", "Hourly", h, m, _text_ids(train), _text_ids(test), 1, m, files)]


def load_long(dataset: str, subsets: set[str] | None, sample: int | None) -> list[Subset]:
    """M3 or tourism: one Subset per competition subset, with calendar dates rebuilt from the info file."""
    folder = DATA_DIRS[dataset]
    info = pd.read_csv(folder / f"{dataset}_info.csv", dtype={"unique_id": str})
    train = _text_ids(pd.read_csv(folder / f"{dataset}_train.csv"))
    test = _text_ids(pd.read_csv(folder / f"{dataset}_test.csv"))
    out = []
    for name, (h, m) in SPECS[dataset].items():
        if subsets and name.lower() not in subsets:
            continue
        part = info[info["subset"] == name]
        if not ((part["horizon"] == h) & (part["seasonality"] == m)).all():
            raise SystemExit(f"{dataset}_info.csv disagrees with h={h}, m={m} for {name}")
        part = part.set_index("unique_id").loc[sample_ids(list(part["unique_id"]), sample)]
        tr, te = (f[f["unique_id"].isin(part.index)] for f in (train, test))
        if part["start_date"].notna().any():
            start = part["start_date"].fillna(SYNTHETIC_START)
            (freq,) = part["freq"].unique()
            tr, te = with_dates(tr, start, freq), with_dates(te, start, freq)
            out.append(Subset(dataset, name, h, m, tr, te, freq, None))
        else:  # no dates at all (M3 Other): integer steps, so the season has to be given
            out.append(Subset(dataset, name, h, m, tr, te, 1, m))
    return out


def with_dates(frame: pd.DataFrame, start: pd.Series, freq: str) -> pd.DataFrame:
    """Replace the integer step ``ds`` (1, 2, ...) by ``pd.date_range(start_date, periods=n, freq=freq)``."""
    n_steps = int(frame["ds"].max())
    parts = []
    for uid, rows in frame.groupby("unique_id", sort=False):
        dates = pd.date_range(start[uid], periods=n_steps, freq=freq)
        parts.append(rows.assign(ds=dates[rows["ds"].to_numpy() - 1]))
    return pd.concat(parts, ignore_index=True)


def _text_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(unique_id=frame["unique_id"].astype(str))


# -- scoring: one function for every row ---------------------------------------------------------------------
@dataclass
class Row:
    """One line of a table; None is shown as n/a."""

    label: str
    smape: float | None = None
    mase: float | None = None
    owa: float | None = None
    inside: dict[int, int | None] = field(default_factory=dict)  # level -> test points inside the interval
    points: int = 0
    seconds: float | None = None
    error: str | None = None

    def coverage(self, level: int) -> float | None:
        inside = self.inside.get(level)
        return None if inside is None or not self.points else 100 * inside / self.points


def mase_scale(train: pd.DataFrame, ids: list[str], m: int) -> np.ndarray:
    """In-sample mean |y_t - y_{t-m}| per series (lag 1 when a series is not longer than m)."""
    scales = {}
    for uid, y in train.groupby("unique_id", sort=False)["y"]:
        values = y.to_numpy(float)
        lag = m if len(values) > m else 1
        scales[uid] = np.mean(np.abs(values[lag:] - values[:-lag]))
    return np.array([scales[i] for i in ids])


def score(label: str, frame: pd.DataFrame, column: str, sub: Subset, seconds: float | None) -> Row:
    """sMAPE, MASE and interval coverage of ``frame[column]`` (and its ``-lo-/-hi-`` columns) on the test."""
    y, f = sub.actuals, _matrix(frame, column, sub.ids, sub.h)
    if not np.isfinite(f).all():
        missing = int((~np.isfinite(f)).sum())
        return Row(label, seconds=seconds, error=f"{missing} of {f.size} forecasts missing or not finite")
    denominator = np.abs(y) + np.abs(f)
    smape = 200 * np.abs(y - f) / np.where(denominator > 0, denominator, 1)
    mase = np.abs(y - f) / sub.scale[:, None]
    inside = {}
    for level in LEVELS:
        lo, hi = _interval_columns(frame, column, level)
        if lo is None:
            inside[level] = None
            continue
        low, high = _matrix(frame, lo, sub.ids, sub.h), _matrix(frame, hi, sub.ids, sub.h)
        inside[level] = int(((y >= low) & (y <= high)).sum())
    return Row(
        label,
        smape=float(smape.mean(axis=1).mean()),
        mase=float(mase.mean(axis=1).mean()),
        inside=inside,
        points=y.size,
        seconds=seconds,
    )


def _matrix(frame: pd.DataFrame, column: str, ids: list[str], h: int) -> np.ndarray:
    """``frame[column]`` as (series, step): the k-th value of a series in time order is step k."""
    part = frame[["unique_id", "ds", column]].assign(unique_id=frame["unique_id"].astype(str))
    part = part.sort_values(["unique_id", "ds"], kind="stable")
    part["step"] = part.groupby("unique_id").cumcount()
    wide = part.pivot(index="unique_id", columns="step", values=column)
    return wide.reindex(index=ids, columns=range(h)).to_numpy(float)


def _interval_columns(frame: pd.DataFrame, alias: str, level: int) -> tuple[str | None, str | None]:
    found = {}
    for column in frame.columns:
        match = re.fullmatch(rf"{re.escape(alias)}-(lo|hi)-(\d+(?:\.\d+)?)", str(column))
        if match and float(match.group(2)) == level:
            found[match.group(1)] = column
    return (found["lo"], found["hi"]) if len(found) == 2 else (None, None)


def add_owa(rows: list[Row], reference: Row | None) -> None:
    """OWA = 0.5 (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2), over the whole subset."""
    if reference is None or reference.smape is None:
        return
    for row in rows:
        if row.smape is not None and row.mase is not None:
            row.owa = 0.5 * (row.smape / reference.smape + row.mase / reference.mase)


# -- our default run -----------------------------------------------------------------------------------------
@dataclass
class DefaultRun:
    row: Row
    alias: str | None = None
    notes: list[str] = field(default_factory=list)


def default_run(sub: Subset, tmp: Path) -> DefaultRun:
    """The real command through Metaflow, in a subprocess with a fresh STACKML_HOME; then read the chosen
    forecast and its intervals back from the run's ``end`` step."""
    command, home = _default_command(sub, tmp), Path(tempfile.mkdtemp(prefix="stackml-home-", dir=tmp))
    env = {**os.environ, "STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    log(f"{sub.title}: {' '.join(command[2:])}")
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    try:
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip())[-3000:]
            log(f"{sub.title}: default run failed (exit {proc.returncode}) after {seconds:.1f} s:\n{tail}")
            return DefaultRun(Row("stackml default", seconds=seconds, error=_error_summary(tail)))
        run_id = json.loads(proc.stdout)["run_id"]
        return _read_default(sub, home, run_id, seconds)
    except Exception as exc:  # reading the run back failed: say so in the table, keep the peers
        log(f"{sub.title}: reading the default run back failed:\n{traceback.format_exc()}")
        return DefaultRun(Row("stackml default", seconds=seconds, error=f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _default_command(sub: Subset, tmp: Path) -> list[str]:
    if sub.m4_files is not None:
        data, test = sub.m4_files
        extra = ["--format", "m4-wide"]
    else:
        data, test = tmp / f"{sub.dataset}-{sub.name}-train.csv", tmp / f"{sub.dataset}-{sub.name}-test.csv"
        for frame, path in ((sub.train, data), (sub.test, test)):
            frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        extra = []
    if sub.season_arg is not None:
        extra += ["--season", str(sub.season_arg)]
    return [
        *[sys.executable, "-m", "stackml", "forecast", "run", "--data", str(data), "--test", str(test)],
        *["--horizon", str(sub.h), *extra, "--no-register", "--json"],
    ]


def _read_default(sub: Subset, home: Path, run_id: str, seconds: float) -> DefaultRun:
    from stackml.config import get_settings
    from stackml.flows import load_run

    pipeline = load_run(f"ForecastFlow/{run_id}", get_settings(home=home))["end"].task.data.pipeline
    alias = pipeline.choice.alias
    members = getattr(pipeline, "members", [alias])
    chosen = alias + (f" (mean of {', '.join(members)})" if len(members) > 1 else "")
    row = score(f"stackml default: {chosen}", pipeline.forecasts, alias, sub, seconds)
    notes = [
        f"our run chose {chosen}; it ran with season_length {pipeline.config.season_length} "
        f"and freq {_run_freq(pipeline)}"
    ]
    gap = _gap(pipeline, alias)
    if gap:
        notes.append(gap)
    return DefaultRun(row, alias, notes)


def _run_freq(pipeline: object) -> str:
    """The frequency the run used: the configured one, else what its forecaster inferred."""
    freq = getattr(getattr(pipeline, "config", None), "freq", None)
    if freq is None:
        forecasters = getattr(pipeline, "forecasters", {}) or {}
        spec = getattr(next(iter(forecasters.values()), None), "spec_", None)
        freq = getattr(spec, "freq", None)
    return getattr(freq, "freqstr", None) or str(freq)


def _gap(pipeline: object, alias: str) -> str | None:
    """The backtest-vs-holdout gap of the chosen forecast, as the pipeline scored it (if it can say)."""
    gap = getattr(pipeline, "gap", None)
    if gap is not None:
        return f"backtest-vs-holdout gap reported by the pipeline: {gap}"
    scores, holdout = getattr(pipeline, "scores", None), getattr(pipeline, "holdout", None)
    try:
        backtest = float(scores.set_index("model").loc[alias, "owa"])
        held = float(holdout.set_index("model").loc[alias, "owa"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return (
        f"backtest OWA {backtest:.3f} vs holdout OWA {held:.3f} ({held - backtest:+.3f}), "
        "as the pipeline scored them with the season length it used"
    )


def _error_summary(text: str) -> str:
    """The failed step and the error from the CLI's message, without the resume hint."""
    text = " ".join(text.split())
    found = re.search(r"failed in step '(\w+)'.*?\): (.*?)(?: File \"| Fix the cause|$)", text)
    summary = f"step {found.group(1)}: {found.group(2)}" if found else text[-300:]
    return summary[:400] or "no output"


# -- peers ---------------------------------------------------------------------------------------------------
def statsforecast_peers(sub: Subset, keys: list[str]) -> list[Row]:
    """Some of AutoETS (ets), AutoTheta (theta) and SeasonalNaive (snaive), on all cores, each timed on its
    own, with 80/95% intervals."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    models = {
        "ets": AutoETS(season_length=sub.m, alias="sf_AutoETS"),
        "theta": AutoTheta(season_length=sub.m, alias="sf_AutoTheta"),
        "snaive": SeasonalNaive(season_length=sub.m, alias="sf_SeasonalNaive"),
    }
    rows = []
    for key in keys:
        model = models[key]
        fallback = None if key == "snaive" else SeasonalNaive(season_length=sub.m)
        sf = StatsForecast(models=[model], freq=sub.freq, n_jobs=-1, fallback_model=fallback)
        rows.append(
            _timed(model.alias, sub, lambda sf=sf: sf.forecast(df=sub.train, h=sub.h, level=list(LEVELS)))
        )
    return rows


def mlforecast_lgbm(sub: Subset) -> Row:
    """mlforecast with our LightGBM's lags (cut to what the shortest series allows), rolling means of the last
    seasons, the position in the season and our learner settings; intervals when the series are long enough
    for two calibration windows."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.target_transforms import Differences, LocalStandardScaler
    from mlforecast.utils import PredictionIntervals

    lags, rolling = lgbm_features(sub)
    intervals = PredictionIntervals(n_windows=2, h=sub.h) if sub.min_length > 2 * sub.h else None
    params = dict(
        objective="l1",
        learning_rate=0.1,
        n_estimators=300,
        num_leaves=255,
        min_data_in_leaf=20,
        feature_fraction=0.9,
        bagging_fraction=0.9,
        bagging_freq=1,
        random_state=0,
        n_jobs=1,
        verbosity=-1,
    )
    fcst = MLForecast(
        models={"mlforecast_LightGBM": lgb.LGBMRegressor(**params)},
        freq=sub.freq,
        lags=lags,
        lag_transforms=rolling,
        date_features=[_season_position(sub.m)] if sub.m > 1 else [],
        # mlforecast needs a scaler before differencing: without it, OWA is several times worse on M4
        target_transforms=[LocalStandardScaler(), Differences([1])],
    )

    def fit_predict() -> pd.DataFrame:
        with warnings.catch_warnings():  # short series: "dropped completely", "null values in lag7"
            warnings.simplefilter("ignore", UserWarning)
            fcst.fit(sub.train, static_features=[], prediction_intervals=intervals)
            return fcst.predict(sub.h, level=list(LEVELS) if intervals else None)

    return _timed("mlforecast_LightGBM", sub, fit_predict)


def lgbm_features(sub: Subset) -> tuple[list[int], dict]:
    """Our default lags and the mean of the last season and the one before, cut so that every lag is shorter
    than the shortest series minus h minus 1 (and half the median length, as ours)."""
    from mlforecast.lag_transforms import RollingMean

    from stackml.forecasting.features import default_lags

    lengths = sub.train.groupby("unique_id").size()
    cap = max(1, min(int(lengths.median()) // 2, int(lengths.min()) - sub.h - 1))
    lags = default_lags(sub.m, max_lag=cap)
    rolling = {}
    if sub.m > 1:
        for lag in (1, sub.m + 1):
            if lag + sub.m - 1 <= cap:
                rolling[lag] = [RollingMean(window_size=sub.m)]
    return lags, rolling


def _season_position(m: int) -> Callable:
    """Position in the season: from the calendar for dates, the step modulo m for integer steps."""

    def season_position(times: pd.Index) -> np.ndarray:
        if isinstance(times, pd.DatetimeIndex):
            if m == 24:
                return times.hour.to_numpy()
            if m == 4:
                return times.quarter.to_numpy()
            if m == 12:
                return times.month.to_numpy()
        return np.asarray(times) % m

    return season_position


def naive2(sub: Subset) -> Row:
    """Our Naive2 (the M4 reference): seasonally adjusted naive when the series are seasonal at lag m."""
    from stackml.forecasting import Forecaster

    freq = None if sub.freq == 1 else sub.freq
    return _timed(
        "Naive2",
        sub,
        lambda: Forecaster(models=["naive2"], season_length=sub.m, freq=freq).fit(sub.train).predict(sub.h),
    )


def _timed(alias: str, sub: Subset, fit_predict: Callable[[], pd.DataFrame]) -> Row:
    """Time ``fit_predict`` and score its ``alias`` column; a failure becomes a row that says so."""
    started = time.perf_counter()
    try:
        out = fit_predict()
    except Exception as exc:  # one peer failing must not lose the rest of the table
        log(f"{sub.title}: {alias} failed:\n{traceback.format_exc()}")
        return Row(alias, seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:300])
    seconds = time.perf_counter() - started
    log(f"{sub.title}: {alias} {seconds:.1f} s")
    out = out.reset_index() if "unique_id" not in out.columns else out
    return score(alias, out, alias, sub, seconds)


# -- published references ------------------------------------------------------------------------------------
def references(sub: Subset, sampled: bool) -> list[Row]:
    if sub.dataset == "m3":
        return [m3_theta(sub)]
    if sub.dataset == "tourism":
        scope = "all series" if not sampled else "all series, not this sample"
        return [
            Row(f"Tcomp {name} (published MASE, {scope})", mase=value)
            for name, value in TCOMP_MASE[sub.name].items()
        ]
    return m4_official(sampled)


def m3_theta(sub: Subset) -> Row:
    """The THETA method's original M3 submission (m3_original_forecasts.csv.gz), scored like every row."""
    original = pd.read_csv(DATA_DIRS["m3"] / "m3_original_forecasts.csv.gz")
    theta = original[(original["method"] == "THETA") & original["unique_id"].isin(sub.ids)]
    long = theta.melt(id_vars="unique_id", value_vars=[f"F{k}" for k in range(1, sub.h + 1)], var_name="step")
    long["ds"] = long.pop("step").str[1:].astype(int)
    return score("M3 THETA (original submission, scored here)", long, "value", sub, None)


def m4_official(sampled: bool) -> list[Row]:
    """The winner and the Theta benchmark on Hourly from the official results (all 414 series)."""
    table = pd.read_csv(DATA_DIRS["m4"] / "m4_official_point_results.csv", dtype={"method_id": str})
    scope = "official, all 414 series" + (", not this sample" if sampled else "")
    rows = []
    for label, mask in (
        ("M4 winner Smyl", table["team"].str.startswith("Smyl")),
        ("M4 Theta benchmark", table["method_id"] == "Theta"),
    ):
        best = table[mask].iloc[0]
        rows.append(
            Row(
                f"{label} ({scope})",
                smape=best["sMAPE_Hourly"],
                mase=best["MASE_Hourly"],
                owa=best["OWA_Hourly"],
            )
        )
    return rows


# -- one subset ----------------------------------------------------------------------------------------------
@dataclass
class Result:
    sub: Subset
    default: DefaultRun | None
    rows: list[Row]  # measured here
    references: list[Row]

    def row(self, label: str) -> Row | None:
        return next((r for r in self.rows if r.label == label), None)


def run_subset(sub: Subset, skip: set[str], tmp: Path, sampled: bool) -> Result:
    log(f"{sub.title}: {len(sub.ids)} series, h = {sub.h}, m = {sub.m}, freq {sub.freq}")
    default = None if "default" in skip else default_run(sub, tmp)
    rows = [default.row] if default else []
    rows += statsforecast_peers(sub, [k for k in ("ets", "theta") if k not in skip])
    if "lgbm" not in skip:
        rows.append(mlforecast_lgbm(sub))
    rows += statsforecast_peers(sub, [k for k in ("snaive",) if k not in skip])
    reference = naive2(sub)
    rows.append(reference)
    refs = references(sub, sampled)
    add_owa(rows + [r for r in refs if r.owa is None], reference)
    return Result(sub, default, rows, refs)


def subset_table(result: Result) -> str:
    sub = result.sub
    headers = ["model", "sMAPE", "MASE", "OWA", "cov80 %", "cov95 %", "wall s"]
    rows = [_cells(r) for r in result.rows + result.references]
    lines = [
        f"### {sub.title}: {len(sub.ids):,} series, h = {sub.h}, m = {sub.m}, "
        f"ds {'integer steps' if sub.freq == 1 else f'dates ({sub.freq})'}",
        "",
        markdown_table(headers, rows),
        "",
    ]
    if result.default:
        lines += [f"- {note}" for note in result.default.notes]
    if sub.dataset != "m4":
        lines.append("- OWA (against our Naive2) is M4's measure; M3 and tourism did not define it.")
    lines += [f"- {r.label}: {r.error}" for r in result.rows if r.error]
    return "\n".join(lines)


def _cells(row: Row) -> list[str]:
    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None or not np.isfinite(value) else format(value, spec)

    label = row.label + (" FAILED" if row.error else "")
    return [
        label,
        fmt(row.smape, ".2f"),
        fmt(row.mase, ".3f"),
        fmt(row.owa, ".3f"),
        fmt(row.coverage(80), ".1f"),
        fmt(row.coverage(95), ".1f"),
        fmt(row.seconds, ".1f"),
    ]


# -- the demo's forecast step: wall time and where it goes ---------------------------------------------------
@dataclass
class DemoTiming:
    label: str
    seconds: float
    steps: list[tuple[str, float]]  # (task, seconds) in the order they started
    chosen: str
    error: str | None = None
    span: float = 0.0  # the flow: first task's start to last task's end


def demo_timings(tmp: Path) -> list[DemoTiming]:
    """The demo's forecast step as a user runs it (``stackml forecast run`` on the bundled store sales,
    h = 14, season 7, registering), twice in one fresh home: the first run also creates the tracking store."""
    from stackml.demo.sample import sample_path

    home = Path(tempfile.mkdtemp(prefix="stackml-demo-", dir=tmp))
    env = {**os.environ, "STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [
        *[sys.executable, "-m", "stackml", "forecast", "run", "--data", str(sample_path())],
        *["--horizon", "14", "--season", "7", "--model-name", "forecast-demo-store-sales", "--json"],
    ]
    out = []
    for label in ("first run in a new home", "second run, same home"):
        log(f"Demo: {label}")
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
            out.append(DemoTiming(label, seconds, [], "", error=_error_summary(tail)))
            continue
        summary = json.loads(proc.stdout)
        steps, span = _step_seconds(home, summary["run_id"])
        out.append(DemoTiming(label, seconds, steps, summary["best"], span=span))
    shutil.rmtree(home, ignore_errors=True)
    return out


def _step_seconds(home: Path, run_id: str) -> tuple[list[tuple[str, float]], float]:
    """Each task's wall time from Metaflow's own records (begun: the attempt file; ended: the DONE lock)."""
    root = home / ".metaflow" / "ForecastFlow" / str(run_id)
    tasks = []
    for attempt in root.glob("*/*/0.attempt.json"):
        done = attempt.with_name("0.DONE.lock")
        if attempt.parent.parent.name.startswith("_") or not done.exists():
            continue
        begin, end = attempt.stat().st_mtime, done.stat().st_mtime
        tasks.append((begin, end, f"{attempt.parent.parent.name} {attempt.parent.name}"))
    tasks.sort()
    span = max(end for _, end, _ in tasks) - tasks[0][0] if tasks else 0.0
    return [(name, end - begin) for begin, end, name in tasks], span


def demo_table(timings: list[DemoTiming]) -> str:
    rows = []
    for t in timings:
        steps = ", ".join(f"{name} {s:.1f}" for name, s in t.steps) or (t.error or "")
        flow = t.span
        rows.append([t.label, f"{t.seconds:.1f}", f"{flow:.1f}", f"{t.seconds - flow:.1f}", t.chosen, steps])
    headers = ["run", "wall s", "flow s", "outside the flow s", "chose", "each task, s (step task-id)"]
    return (
        "### Demo forecast step: bundled store sales (5 series x 730 days), h = 14, season 7\n\n"
        + markdown_table(headers, rows)
        + "\n\n- flow: from the first task's start to the last task's end (the candidate tasks run side by "
        "side); outside the flow: starting the CLI, the data checks before the flow, creating the tracking "
        "store (first run only) and reading the result back."
    )


def demo_target(timings: list[DemoTiming]) -> list[list[str]]:
    if not timings:
        return []
    worst = max(timings, key=lambda t: t.seconds)
    if any(t.error for t in timings):
        return [["Demo forecast step under 30 s", "a run failed (see its table)", "FAIL"]]
    measured = " / ".join(f"{t.seconds:.1f} s" for t in timings) + " (first / second run)"
    return [["Demo forecast step under 30 s", measured, "PASS" if worst.seconds < 30 else "FAIL"]]


# -- targets -------------------------------------------------------------------------------------------------
def targets(results: list[Result]) -> list[list[str]]:
    out = []
    for result in results:
        sub, ours = result.sub, result.rows[0] if result.default else None
        if sub.dataset == "m4":
            out += _m4_targets(ours)
        elif sub.dataset == "m3":
            theta = result.references[0]
            out.append(_below(f"M3 {sub.name}: our sMAPE below THETA's", ours, theta, "smape", ".2f"))
        else:
            ets = result.row("sf_AutoETS")
            tcomp = f" (Tcomp ETS, published: {TCOMP_MASE[sub.name]['ETS']:.2f})"
            target = _below(
                f"Tourism {sub.name}: our MASE below sf_AutoETS's (this run)", ours, ets, "mase", ".3f"
            )
            out.append([target[0], target[1] + tcomp, target[2]])
    for dataset in dict.fromkeys(r.sub.dataset for r in results):
        out.append(_coverage_target(dataset, [r for r in results if r.sub.dataset == dataset]))
    return out


def _m4_targets(ours: Row | None) -> list[list[str]]:
    if ours is None or ours.error or ours.owa is None:
        return [["M4 Hourly: our OWA <= 0.42 and wall < 90 s", _failed(ours), "FAIL" if ours else "n/a"]]
    return [
        ["M4 Hourly: our OWA <= 0.42", f"{ours.owa:.3f}", "PASS" if ours.owa <= 0.42 else "FAIL"],
        [
            "M4 Hourly: our whole run under 90 s",
            f"{ours.seconds:.0f} s",
            "PASS" if ours.seconds < 90 else "FAIL",
        ],
    ]


def _below(target: str, ours: Row | None, peer: Row | None, metric: str, spec: str) -> list[str]:
    if ours is None or ours.error:
        return [target, _failed(ours), "FAIL" if ours else "n/a"]
    theirs = getattr(peer, metric, None) if peer is not None else None
    if theirs is None:
        return [target, "peer not run", "n/a"]
    mine = getattr(ours, metric)
    return [target, f"{format(mine, spec)} vs {format(theirs, spec)}", "PASS" if mine < theirs else "FAIL"]


def _coverage_target(dataset: str, results: list[Result]) -> list[str]:
    target = f"{TITLES[dataset]}: our 80% interval coverage in [75, 85] % (pooled over subsets)"
    ours = [r.rows[0] for r in results if r.default]
    if not ours:
        return [target, "default run skipped", "n/a"]
    if any(r.error or r.inside.get(80) is None for r in ours):
        return [target, "a run failed or has no 80% interval", "FAIL"]
    pooled = 100 * sum(r.inside[80] for r in ours) / sum(r.points for r in ours)
    return [target, f"{pooled:.1f} %", "PASS" if 75 <= pooled <= 85 else "FAIL"]


def _failed(row: Row | None) -> str:
    return "default run skipped" if row is None else "run failed (see its table)"


# -- main ----------------------------------------------------------------------------------------------------
def load(dataset: str, subsets: set[str] | None, sample: int | None, tmp: Path) -> list[Subset]:
    started = time.perf_counter()
    out = load_m4(subsets, sample, tmp) if dataset == "m4" else load_long(dataset, subsets, sample)
    log(f"{TITLES[dataset]}: loaded {len(out)} subset(s) in {time.perf_counter() - started:.1f} s")
    return out


def notes(results: list[Result], sample: int | None) -> str:
    load_avg = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [NOTES.strip().format(synthetic_start=SYNTHETIC_START)]
    if sample:
        lines.append(
            f"- **Sample run**: {sample} series per subset (seed {SEED}); published figures are for all."
        )
    lines.append(f"- Load average at the end (1/5/15 min): {load_avg}; {os.cpu_count()} cores.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="demo,m4,m3,tourism", help="comma-separated: demo, m4, m3, tourism"
    )
    parser.add_argument(
        "--subsets", default="", help="comma-separated subsets, e.g. Yearly,Monthly (default all)"
    )
    parser.add_argument(
        "--skip", default="", help=f"comma-separated runs to leave out: default, {', '.join(PEERS)}"
    )
    parser.add_argument("--sample", type=int, help=f"take N series per subset (seed {SEED}) for a quick look")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    args = parser.parse_args(argv)
    args.datasets = [d.strip().lower() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in args.datasets if d not in SPECS and d != "demo"]
    args.skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    unknown += sorted(args.skip - {"default", *PEERS})
    if unknown:
        parser.error(f"unknown data set or run: {', '.join(unknown)}")
    args.subsets = {s.strip().lower() for s in args.subsets.split(",") if s.strip()} or None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results, demo = [], []
    with tempfile.TemporaryDirectory(prefix="stackml-bench-") as tmp:
        if "demo" in args.datasets and "default" not in args.skip:
            demo = demo_timings(Path(tmp))
            print(demo_table(demo) + "\n", flush=True)
        for dataset in [d for d in args.datasets if d != "demo"]:
            for sub in load(dataset, args.subsets, args.sample, Path(tmp)):
                result = run_subset(sub, args.skip, Path(tmp), bool(args.sample))
                results.append(result)
                print(subset_table(result) + "\n", flush=True)
    verdicts = markdown_table(["target", "measured", "verdict"], demo_target(demo) + targets(results))
    print("## Targets\n\n" + verdicts, flush=True)
    log("done")
    if args.no_write:
        return
    body = (
        "## Targets\n\n"
        + verdicts
        + "\n\n## Results by data set\n\n"
        + "\n\n".join([demo_table(demo)] * bool(demo) + [subset_table(r) for r in results])
        + "\n\n## How it was measured\n\n"
        + notes(results, args.sample)
    )
    info = machine_info(["lightgbm", "statsforecast", "mlforecast", "metaflow", "torch", "pandas"])
    write_results(
        REPO / "bench" / "results" / "forecast.md",
        "Forecasting on M4 Hourly, M3 and tourism: stackml's default run vs statsforecast and mlforecast",
        [sys.executable.split("/")[-1], "bench/forecast.py", *(argv if argv is not None else sys.argv[1:])],
        info,
        body,
    )


if __name__ == "__main__":
    main()
