"""Features and target transforms against plain-loop oracles, and exact inversion of every transform."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stackml.errors import InputError, NotFittedError
from stackml.forecasting import features
from stackml.forecasting.features import (
    Differences,
    FeatureSpec,
    LocalScaler,
    RollingSpec,
    TransformChain,
    _grouped_median,
    default_lags,
    lag_features,
    positions,
    rolling_features,
    series_codes,
    tails,
)

LENGTHS = (3, 17, 40, 1, 25)


@pytest.fixture(scope="module")
def packed() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(7)
    series = [100 + rng.normal(0, 5, n).cumsum() * (i + 1) for i, n in enumerate(LENGTHS)]
    indptr = np.concatenate([[0], np.cumsum(LENGTHS)])
    return np.concatenate(series), indptr, series


# ---------------------------------------------------------------------------------------------------- oracles
def _oracle_lags(series: list[np.ndarray], lags: list[int]) -> np.ndarray:
    rows = []
    for s in series:
        for t in range(len(s)):
            rows.append([s[t - lag] if t - lag >= 0 else np.nan for lag in lags])
    return np.array(rows)


def _oracle_rolling(series: list[np.ndarray], spec: RollingSpec) -> np.ndarray:
    fn = {"mean": np.mean, "std": lambda w: np.std(w, ddof=1), "min": np.min, "max": np.max}[spec.stat]
    out = []
    for s in series:
        for t in range(len(s)):
            lo, hi = t - spec.lag - spec.window + 1, t - spec.lag + 1
            window = s[lo:hi] if lo >= 0 else None
            out.append(np.nan if window is None or np.isnan(window).any() else fn(window))
    return np.array(out)


# --------------------------------------------------------------------------------------------------- features
def test_indexing_helpers(packed) -> None:
    _, indptr, series = packed
    assert series_codes(indptr).tolist() == [i for i, s in enumerate(series) for _ in s]
    assert positions(indptr).tolist() == [t for s in series for t in range(len(s))]


def test_lags_match_a_loop(packed) -> None:
    y, indptr, series = packed
    lags = [1, 2, 5, 24]
    np.testing.assert_array_equal(lag_features(y, indptr, lags), _oracle_lags(series, lags))


@pytest.mark.parametrize("stat", ["mean", "std", "min", "max"])
def test_rolling_matches_a_loop(packed, stat: str) -> None:
    y, indptr, series = packed
    specs = [RollingSpec(1, 4, stat), RollingSpec(3, 2, stat), RollingSpec(12, 6, stat)]
    got = rolling_features(y, indptr, specs)
    for j, spec in enumerate(specs):
        np.testing.assert_allclose(got[:, j], _oracle_rolling(series, spec), rtol=1e-10, atol=1e-9)


def test_rolling_in_small_chunks_gives_the_same(packed, monkeypatch) -> None:
    y, indptr, _ = packed
    specs = [RollingSpec(1, 4, "std"), RollingSpec(2, 3, "max")]
    whole = rolling_features(y, indptr, specs)
    monkeypatch.setattr(features, "_CHUNK_VALUES", 7)  # a few rows per chunk
    np.testing.assert_array_equal(rolling_features(y, indptr, specs), whole)


def test_rolling_is_nan_over_undefined_values(packed) -> None:
    # after differencing, the first values of each series are NaN: a window over them must be NaN too
    y, indptr, _ = packed
    z = Differences(2).fit_transform(y, indptr)
    spec = RollingSpec(1, 3, "mean")
    zs = [z[a:b] for a, b in itertools.pairwise(indptr)]
    np.testing.assert_allclose(
        rolling_features(z, indptr, [spec])[:, 0], _oracle_rolling(zs, spec), rtol=1e-10
    )


def test_rolling_mean_keeps_precision_on_large_levels() -> None:
    # cumulative sums over a long panel of big numbers would lose digits without per-series centring
    rng = np.random.default_rng(0)
    series = [1e9 + rng.normal(0, 1, 5000) for _ in range(20)]
    y, indptr = np.concatenate(series), np.concatenate([[0], np.cumsum([5000] * 20)])
    got = rolling_features(y, indptr, [RollingSpec(1, 3)])[:, 0].reshape(20, 5000)
    # per series: mean of the 3 values before t (exact enough: the sums never leave one series)
    want = np.stack([np.convolve(s - 1e9, np.ones(3) / 3, mode="valid")[:-1] + 1e9 for s in series])
    assert np.isnan(got[:, :3]).all()
    assert np.max(np.abs(got[:, 3:] - want)) < 1e-5


def test_tails_left_pad_short_series(packed) -> None:
    y, indptr, series = packed
    got = tails(y, indptr, 5)
    for i, s in enumerate(series):
        want = np.concatenate([np.full(max(5 - len(s), 0), np.nan), s[-5:]])
        np.testing.assert_array_equal(got[i], want)


def test_next_row_equals_the_training_row_of_the_next_step(packed) -> None:
    """The recursive path (2-D tail buffer) and the training path (packed arrays) must agree exactly."""
    y, indptr, series = packed
    spec = FeatureSpec(
        lags=(1, 3, 12),
        rolling=(RollingSpec(1, 4), RollingSpec(2, 5, "std"), RollingSpec(6, 3, "max")),
        season_length=12,
        season_position=True,
    )
    # append one arbitrary value to every series; its training row is what next_row must produce
    extended = [np.append(s, -1.0) for s in series]
    ext_indptr = np.concatenate([[0], np.cumsum([len(s) for s in extended])])
    full = spec.transform(np.concatenate(extended), ext_indptr)
    want = full[ext_indptr[1:] - 1]
    start = np.array([0, 5, 11, 2, 7])
    full = spec.transform(np.concatenate(extended), ext_indptr, start=start)
    want = full[ext_indptr[1:] - 1]
    got = spec.next_row(tails(y, indptr, spec.history + 3), np.diff(indptr) + start)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    assert len(spec.names) == got.shape[1] == 7


def test_feature_spec_carries_calendar_and_exogenous_columns(packed) -> None:
    y, indptr, _ = packed
    n = len(y)
    tf, X = np.arange(n, dtype=float)[:, None], np.ones((n, 2))
    spec = FeatureSpec(
        lags=(1,), n_time_features=1, n_exog=2, time_feature_names=("hour",), exog_names=("a", "b")
    )
    out = spec.transform(y, indptr, time_features=tf, X=X)
    assert spec.names == ["lag1", "hour", "a", "b"]
    np.testing.assert_array_equal(out[:, 1], tf[:, 0])
    row = spec.next_row(
        tails(y, indptr, 1), np.zeros(5), time_features=np.full((5, 1), 3.0), X=np.zeros((5, 2))
    )
    assert row.shape == (5, 4) and (row[:, 1] == 3).all()


def test_default_lags_scale_with_the_season() -> None:
    assert default_lags(24) == list(range(1, 25)) + [48, 72, 96, 120, 144, 168]
    assert default_lags(12, max_lag=30) == list(range(1, 13)) + [24]
    assert default_lags(1) == [1, 2, 3, 4, 5, 6, 7]
    assert default_lags(1, max_lag=0) == [1]


def test_bad_feature_arguments_are_named() -> None:
    with pytest.raises(InputError, match="RollingSpec needs lag >= 1 and window >= 1, got lag=0"):
        RollingSpec(0, 3)
    with pytest.raises(InputError, match="stat must be one of"):
        RollingSpec(1, 3, "median")
    with pytest.raises(InputError, match="stat='std' needs window >= 2"):
        RollingSpec(1, 1, "std")
    with pytest.raises(InputError, match=r"Lags must be positive integers, got \[0\]"):
        FeatureSpec(lags=(0,))


# ------------------------------------------------------------------------------------------------- transforms
TRANSFORMS = {
    "mean": lambda: LocalScaler("mean"),
    "mean-window": lambda: LocalScaler("mean", window=8),
    "standard": lambda: LocalScaler("standard"),
    "robust": lambda: LocalScaler("robust", window=10),
    "mase": lambda: LocalScaler("mase", season_length=4),
    "diff1": lambda: Differences(1),
    "diff-season": lambda: Differences(12),
    "chain": lambda: TransformChain([LocalScaler("mean"), Differences(1), Differences(6)]),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transforms_invert_in_sample(packed, name: str) -> None:
    y, indptr, _ = packed
    transform = TRANSFORMS[name]()
    z = transform.fit_transform(y, indptr)
    assert z.shape == y.shape
    np.testing.assert_allclose(transform.inverse_transform(z), y, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transforms_invert_forecasts(name: str) -> None:
    """Transform a known continuation with the fitted state;
    inverse_forecast must give the continuation back."""
    rng = np.random.default_rng(3)
    h, lengths = 9, (30, 44, 51)
    full = [50 + rng.normal(0, 3, n + h).cumsum() for n in lengths]
    train = [s[:-h] for s in full]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    transform = TRANSFORMS[name]()
    transform.fit_transform(np.concatenate(train), indptr)
    future_z = np.vstack([_continue(transform, i, s, len(s) - h) for i, s in enumerate(full)])
    np.testing.assert_allclose(
        transform.inverse_forecast(future_z), np.vstack([s[-h:] for s in full]), rtol=1e-12
    )


def _continue(transform, i: int, s: np.ndarray, n: int) -> np.ndarray:
    """The transformed values of positions n.. of series i, computed by hand from the fitted state."""
    steps = transform.steps if isinstance(transform, TransformChain) else [transform]
    z = s.copy()
    for step in steps:
        if isinstance(step, LocalScaler):
            z = (z - step.loc_[i]) / step.scale_[i]
        else:
            z = np.concatenate([np.full(step.lag, np.nan), z[step.lag :] - z[: -step.lag]])
    return z[n:]


def test_scaler_statistics_match_numpy(packed) -> None:
    y, indptr, series = packed
    scaler = LocalScaler("robust")
    scaler.fit_transform(y, indptr)
    for i, s in enumerate(series):
        med = np.median(s)
        assert scaler.loc_[i] == pytest.approx(med)
        mad = np.mean(np.abs(s - med))
        assert scaler.scale_[i] == pytest.approx(mad if mad > 1e-12 else 1.0)
    std = LocalScaler("standard", window=5)
    std.fit_transform(y, indptr)
    assert std.loc_[2] == pytest.approx(series[2][-5:].mean())
    assert std.scale_[2] == pytest.approx(series[2][-5:].std())


def test_mase_scale_is_the_in_sample_seasonal_naive_error(packed) -> None:
    y, indptr, series = packed
    scaler = LocalScaler("mase", season_length=4)
    scaler.fit_transform(y, indptr)
    assert scaler.scale_[2] == pytest.approx(np.mean(np.abs(series[2][4:] - series[2][:-4])))
    # shorter than a season: the naive (lag 1) error; a single value: its absolute level
    assert scaler.scale_[0] == pytest.approx(np.mean(np.abs(np.diff(series[0]))))
    assert scaler.scale_[3] == pytest.approx(abs(series[3][0]))


def test_constant_series_keep_unit_scale() -> None:
    y, indptr = np.array([0.0, 0.0, 0.0, 5.0, 5.0]), np.array([0, 3, 5])
    scaler = LocalScaler("standard")
    z = scaler.fit_transform(y, indptr)
    assert np.isfinite(z).all() and scaler.scale_.tolist() == [1.0, 1.0]


def test_grouped_median_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    codes = np.sort(rng.integers(0, 6, 200))
    values = rng.normal(size=200)
    values[::17] = np.nan
    got = _grouped_median(values, codes, 7)
    for g in range(7):
        vals = values[(codes == g) & np.isfinite(values)]
        assert (np.isnan(got[g]) and len(vals) == 0) or got[g] == pytest.approx(np.median(vals))


def test_transform_errors() -> None:
    with pytest.raises(InputError, match="LocalScaler method must be"):
        LocalScaler("minmax")
    with pytest.raises(InputError, match="Differences lag must be >= 1, got 0"):
        Differences(0)
    with pytest.raises(NotFittedError, match="Differences is not fitted"):
        Differences(1).inverse_forecast(np.zeros((1, 2)))
