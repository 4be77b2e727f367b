"""Drift per column and per dataset: Evidently's default choices and numbers, planted shifts, bad input.

Golden numbers were produced by Evidently 0.7.23 (``Report([DataDriftPreset()])``, and with ``method="psi"``)
on the deterministic frames of :func:`golden_frames`; the oracles are SciPy's own functions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from stackml.errors import InputError
from stackml.monitoring.drift import (
    STATTESTS,
    DriftOptions,
    _sturges_edges,
    _wasserstein_sorted,
    column_drift,
    column_kind,
    dataset_drift,
)


def golden_frames(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """No random numbers, so Evidently's scores on them stay valid on any machine."""
    i = np.arange(n)
    reference = pd.DataFrame(
        {
            "wave": np.sin(i) * 10.0,
            "level": (i % 4).astype(float),
            "color": np.array(["red", "green", "blue"])[i % 3],
            "flag": np.array(["yes", "no"])[(i % 5 == 0).astype(int)],
            "count": (i * 7) % 23,
        }
    )
    current = pd.DataFrame(
        {
            "wave": np.sin(i * 1.1) * 10.0 + 1.5,
            "level": ((i * 7) % 5 % 4).astype(float),
            "color": np.array(["red", "green", "blue", "pink"])[(i * 5) % 7 % 4],
            "flag": np.array(["yes", "no"])[(i % 3 == 0).astype(int)],
            "count": (i * 11) % 29,
        }
    )
    return reference, current


# Evidently 0.7.23: column -> (test, score)
EVIDENTLY_SMALL = {
    "wave": ("ks", 0.0030098470801667434),
    "level": ("chisquare", 2.4979977724652003e-05),
    "count": ("ks", 0.0004306111484986726),
    "color": ("chisquare", 0.0),
    "flag": ("z", 0.0022901146815317297),
}
EVIDENTLY_LARGE = {
    "wave": ("wasserstein", 0.2124455487232891),
    "level": ("jensenshannon", 0.11361171846241193),
    "count": ("wasserstein", 0.451452144104134),
    "color": ("jensenshannon", 0.22844471885678377),
    "flag": ("jensenshannon", 0.10703679508281454),
}
EVIDENTLY_PSI = {
    200: {
        "wave": 0.14723256789234457,
        "level": 0.1039720770839918,
        "count": 1.4680717243650212,
        "color": 1.0775617517919676,
        "flag": 0.09458611005902891,
    },  # fmt: skip
    1500: {
        "wave": 0.3680692387691086,
        "level": 0.1039720770839918,
        "count": 1.2225236947137996,
        "color": 1.0574369733819666,
        "flag": 0.09241962407465937,
    },  # fmt: skip
}


# -- Evidently's choices and numbers -------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "expected"), [(200, EVIDENTLY_SMALL), (1500, EVIDENTLY_LARGE)])
def test_default_tests_and_scores_match_evidently(n: int, expected: dict) -> None:
    result = dataset_drift(*golden_frames(n))
    for column, (test, score) in expected.items():
        got = result.columns[column]
        assert got.test == test, column
        assert got.score == pytest.approx(score, rel=1e-9, abs=1e-15), column
        assert got.threshold == STATTESTS[test].threshold


@pytest.mark.parametrize("n", [200, 1500])
def test_psi_matches_evidently(n: int) -> None:
    forced = dataset_drift(*golden_frames(n), options=DriftOptions(stattest="psi"))
    default = dataset_drift(*golden_frames(n))
    for column, psi in EVIDENTLY_PSI[n].items():
        assert forced.columns[column].test == "psi"
        assert forced.columns[column].score == pytest.approx(psi, rel=1e-9)
        assert default.columns[column].psi == pytest.approx(psi, rel=1e-9)  # always computed
        assert forced.columns[column].drifted == (psi >= 0.1)


@pytest.mark.parametrize(
    ("reference", "current", "test"),
    [
        (np.linspace(0, 1, 1000), np.linspace(0, 1, 50), "ks"),  # exactly 1,000 rows is still small
        (np.linspace(0, 1, 1001), np.linspace(0, 1, 50), "wasserstein"),
        (np.r_[np.linspace(0, 1, 995), [np.nan] * 10], np.linspace(0, 1, 50), "ks"),  # NaN not counted
        (np.tile([0.5, 1.5, 2.5], 100), np.tile([0.5, 1.5], 50), "chisquare"),  # <= 5 values
        (np.tile([0.5, 1.5], 100), np.tile([0.5, 1.5], 50), "z"),  # <= 2 values
        (np.tile([0.5, 1.5], 100), np.tile([0.5, 2.5], 50), "chisquare"),  # 3 values over both samples
        (np.tile([0.5, 1.5, 2.5], 1000), np.tile([0.5, 1.5], 50), "jensenshannon"),
        (np.tile(np.arange(8) + 0.5, 50), np.tile(np.arange(8) + 0.5, 5), "ks"),  # float with 8 values
        (np.tile(np.arange(8), 50), np.tile(np.arange(8), 5), "chisquare"),  # int with 8 values: categorical
        (np.tile(np.arange(8), 500), np.tile(np.arange(8), 5), "jensenshannon"),
        (np.tile(np.arange(12), 50), np.tile(np.arange(12), 5), "ks"),  # int with 12 values: numeric
        (np.tile(np.arange(12), 500), np.tile(np.arange(12), 5), "wasserstein"),
        (np.array(["a", "b", "c"] * 100, dtype=object), np.array(["a", "b"] * 9, dtype=object), "chisquare"),
        (np.array(["a", "b"] * 100, dtype=object), np.array(["a", "b"] * 9, dtype=object), "z"),
        (np.array(["a", "b"] * 1000, dtype=object), np.array(["a"] * 9, dtype=object), "jensenshannon"),
        (np.array([True, False] * 100), np.array([True, False] * 9), "z"),
    ],
)
def test_default_choice_follows_evidently(reference: np.ndarray, current: np.ndarray, test: str) -> None:
    assert column_drift(reference, current).test == test


def test_kind_follows_evidently_types() -> None:
    assert column_kind(pd.Series([1.0, 2.0, 3.0])) == "numeric"  # floats are numeric whatever their count
    assert column_kind(pd.Series(range(10))) == "categorical"  # Evidently 0.7: ints with <= 10 values
    assert column_kind(pd.Series(range(11))) == "numeric"
    assert column_kind(pd.Series(range(6)), categorical_max_unique=5) == "numeric"  # the legacy limit
    assert column_kind(pd.Series(["a", None])) == "categorical"
    assert column_kind(pd.Series(["a", "b"], dtype="category")) == "categorical"
    assert column_kind(pd.Series([True, False])) == "categorical"
    assert column_kind(pd.Series(pd.to_datetime(["2024-01-01"]))) is None


# -- oracles -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_is_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=400), rng.normal(0.1 * seed, 1, size=250)
    result = column_drift(ref, cur)
    assert result.test == "ks"
    assert result.score == pytest.approx(stats.ks_2samp(ref, cur).pvalue, rel=1e-12)
    assert result.drifted == (result.score <= 0.05)


def test_chisquare_is_scipys() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    cur = np.array(["a"] * 20 + ["b"] * 25 + ["c"] * 15, dtype=object)
    expected = stats.chisquare([20, 25, 15], np.array([50, 30, 20]) * 60 / 100).pvalue
    assert column_drift(ref, cur).score == pytest.approx(expected, rel=1e-12)


def test_chisquare_new_category_gives_zero_p_value() -> None:
    ref = np.array(["a", "b", "c"] * 30, dtype=object)
    cur = np.array(["a", "b", "c", "new"] * 10, dtype=object)
    result = column_drift(ref, cur)
    assert (result.test, result.score, result.drifted) == ("chisquare", 0.0, True)


def test_z_test_is_the_two_proportion_test() -> None:
    ref = np.array(["x"] * 70 + ["y"] * 30, dtype=object)
    cur = np.array(["x"] * 45 + ["y"] * 35, dtype=object)
    p1, p2, n1, n2 = 0.3, 35 / 80, 100, 80
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    result = column_drift(ref, cur)
    assert result.test == "z"
    assert result.score == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    same = column_drift(np.array(["x"] * 10, dtype=object), np.array(["x"] * 5, dtype=object))
    assert (same.test, same.score, same.drifted) == ("z", 1.0, False)


def test_jensenshannon_is_scipys() -> None:
    rng = np.random.default_rng(3)
    ref = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "e"], 2000, p=[0.25, 0.25, 0.25, 0.25])
    keys = ["a", "b", "c", "d", "e"]
    p = np.array([(ref == k).mean() for k in keys])
    q = np.array([(cur == k).mean() for k in keys])
    result = column_drift(ref.astype(object), cur.astype(object))
    assert result.test == "jensenshannon"
    assert result.score == pytest.approx(distance.jensenshannon(p, q), rel=1e-12)


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "ties"), [(1, 1, False), (5, 3, True), (300, 211, False), (2000, 2000, True)]
)
def test_wasserstein_is_scipys(n_ref: int, n_cur: int, ties: bool) -> None:
    rng = np.random.default_rng(n_ref)
    draw = (lambda n: rng.integers(0, 6, n).astype(float)) if ties else (lambda n: rng.gamma(2.0, 3.0, n))
    u, v = np.sort(draw(n_ref)), np.sort(draw(n_cur) + 0.4)
    assert _wasserstein_sorted(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12, abs=1e-15)


def test_wasserstein_score_is_normed_by_the_reference_std() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(5, 3, 4000), rng.normal(5.5, 3, 3000)
    result = column_drift(ref, cur)
    assert result.test == "wasserstein"
    assert result.score == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-12)
    flat = np.full(2000, 1.0)  # std 0: Evidently divides by 0.001 instead
    spike = np.r_[np.full(1990, 1.0), np.arange(10.0)]
    constant = column_drift(flat, spike, kind="numeric")
    assert constant.test == "wasserstein"  # 11 values over both samples
    assert constant.score == pytest.approx(stats.wasserstein_distance(flat, spike) / 0.001)


@pytest.mark.parametrize("size", [2, 17, 1000, 123_457])
def test_sturges_edges_are_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    values = rng.normal(size=size)
    expected = np.histogram_bin_edges(values, bins="sturges")
    np.testing.assert_array_equal(_sturges_edges(values.min(), values.max(), size), expected)


# -- planted shifts and clean data ---------------------------------------------------------------------------
def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mean": rng.normal(10, 2, n),
            "spread": rng.normal(0, 1, n),
            "kind": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "gaps": rng.exponential(1.0, n),
            "steady": rng.uniform(0, 1, n),
        }
    )


@pytest.mark.parametrize("n", [600, 20_000])
def test_planted_shifts_are_found_and_clean_data_is_not_flagged(n: int) -> None:
    rng = np.random.default_rng(11)
    reference, clean, shifted = _frame(rng, n), _frame(rng, n), _frame(rng, n)
    shifted["mean"] += 1.0  # half a standard deviation
    shifted["spread"] *= 1.6
    shifted.loc[rng.random(n) < 0.15, "kind"] = "new"
    shifted.loc[rng.random(n) < 0.3, "gaps"] = np.nan  # missing at random: the rest does not drift

    quiet = dataset_drift(reference, clean)
    assert quiet.drifted_columns == [] and not quiet.drifted
    found = dataset_drift(reference, shifted)
    assert found.drifted_columns == ["mean", "spread", "kind"]
    assert found.share == pytest.approx(3 / 5) and found.drifted
    gaps = found.columns["gaps"]
    assert gaps.reason is None and not gaps.drifted and gaps.n_current < n  # NaNs dropped before testing


def test_dataset_rule_counts_tested_columns() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({c: rng.normal(size=3000) for c in "abcd"})
    current = pd.DataFrame({c: rng.normal(size=3000) for c in "abcd"})
    current["a"] += 1
    one = dataset_drift(reference, current)
    assert (one.share, one.drifted) == (0.25, False)
    current["b"] += 1
    assert dataset_drift(reference, current).drifted  # 2 of 4: exactly the default half
    assert not dataset_drift(reference, current, options=DriftOptions(dataset_share=0.75)).drifted
    current["c"] = np.nan  # untested columns are not in the denominator
    result = dataset_drift(reference, current, options=DriftOptions(dataset_share=0.6))
    assert (result.n_tested, result.n_drifted, result.drifted) == (3, 2, True)


def test_forced_test_and_threshold() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=5000), rng.normal(0.05, 1, size=5000)
    default = column_drift(ref, cur)
    assert default.test == "wasserstein" and not default.drifted
    strict = column_drift(ref, cur, options=DriftOptions(threshold=0.01))
    assert strict.score == default.score and strict.threshold == 0.01 and strict.drifted
    ks = column_drift(ref, cur, options=DriftOptions(stattest="ks"))
    assert ks.test == "ks" and ks.score == pytest.approx(stats.ks_2samp(ref, cur).pvalue)
    assert ks.drifted == (ks.score <= 0.05)
    small = column_drift(ref[:500], cur[:500], options=DriftOptions(small_sample_rows=100))
    assert small.test == "wasserstein"


def test_psi_bins_option() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=3000), rng.normal(0.3, 1, size=3000)
    ten = column_drift(ref, cur, options=DriftOptions(psi_bins=10))
    edges = np.linspace(min(ref.min(), cur.min()), max(ref.max(), cur.max()), 11)
    p, q = np.histogram(ref, edges)[0] / 3000, np.histogram(cur, edges)[0] / 3000
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    assert ten.psi == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-9)


def test_threads_give_the_same_answer() -> None:
    reference, current = golden_frames(1500)
    one = dataset_drift(reference, current, n_jobs=1)
    two = dataset_drift(reference, current, n_jobs=2)
    assert one == two


# -- bad input: a reason per column, the others still run ---------------------------------------------------
def test_bad_columns_get_reasons_and_the_rest_runs() -> None:
    rng = np.random.default_rng(8)
    n = 2000
    reference = pd.DataFrame(
        {
            "good": rng.normal(size=n),
            "dark_now": rng.normal(size=n),
            "dark_before": np.full(n, np.nan),
            "gone": rng.normal(size=n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "text_now": rng.normal(size=n),
            "infinite": np.r_[rng.normal(size=n - 5), [np.inf] * 5],
        }
    )
    current = pd.DataFrame(
        {
            "good": rng.normal(2, 1, size=n),
            "dark_now": np.full(n, np.nan),
            "dark_before": rng.normal(size=n),
            "when": pd.date_range("2025-01-01", periods=n, freq="h"),
            "text_now": ["x"] * n,
            "infinite": rng.normal(size=n),
            "extra": rng.normal(size=n),
        }
    )
    result = dataset_drift(reference, current)
    assert result.columns["good"].drifted and result.columns["good"].reason is None
    assert result.columns["infinite"].reason is None and result.columns["infinite"].n_reference == n - 5
    reasons = {name: c.reason for name, c in result.columns.items() if c.reason}
    assert set(reasons) == {"dark_now", "dark_before", "gone", "when", "text_now", "extra"}
    assert "all 2,000 current values are missing" in reasons["dark_now"]
    assert "all 2,000 reference values are missing" in reasons["dark_before"]
    assert "missing from the current data" in reasons["gone"]
    assert "missing from the reference" in reasons["extra"]
    assert "not tested for drift" in reasons["when"]
    assert "not numbers" in reasons["text_now"]
    for name in reasons:
        column = result.columns[name]
        assert not column.drifted and math.isnan(column.score) and column.test is None
    assert len(result.problems) == len(reasons) and all(repr(n) in " ".join(result.problems) for n in reasons)
    assert (result.n_tested, result.n_drifted, result.share, result.drifted) == (2, 1, 0.5, True)


def test_empty_frames_do_not_crash() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    result = dataset_drift(reference, reference.iloc[:0])
    assert all("the current has no rows" in c.reason for c in result.columns.values())
    assert result.n_tested == 0 and not result.drifted
    assert "no column could be tested" in result.problems[-1]
    assert dataset_drift(pd.DataFrame(), pd.DataFrame()).columns == {}


def test_listed_columns_and_duplicates() -> None:
    reference = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0)})
    current = pd.DataFrame([[1.0, 2.0, 3.0]] * 5, columns=["a", "b", "b"])
    result = dataset_drift(reference, current, columns=["a", "b", "nowhere"])
    assert set(result.columns) == {"a", "nowhere"}
    assert "missing from either frame" in result.columns["nowhere"].reason
    assert any("appear more than once" in p for p in result.problems)


def test_forced_test_of_the_wrong_kind_is_a_reason() -> None:
    reference = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    result = dataset_drift(reference, reference, options=DriftOptions(stattest="ks"))
    assert result.columns["x"].test == "ks" and not result.columns["x"].drifted
    assert "applies to numeric columns and this column is categorical" in result.columns["c"].reason


# -- argument validation -------------------------------------------------------------------------------------
def test_options_are_validated_all_at_once() -> None:
    with pytest.raises(InputError) as caught:
        DriftOptions(
            stattest="anderson",
            threshold=-1,
            small_sample_rows=-5,
            categorical_max_unique=2.5,
            dataset_share=0,
            psi_bins=0,
        )
    message = str(caught.value)
    assert message.startswith("6 problem(s) with the drift options")
    for expected in [
        "'stattest' must be None or one of ['chisquare', 'jensenshannon', 'ks', 'psi', 'wasserstein', 'z'], "
        "got 'anderson'",
        "'threshold' must be a number > 0, got -1",
        "'small_sample_rows' must be an int >= 0, got -5",
        "'categorical_max_unique' must be an int >= 0, got 2.5",
        "'dataset_share' must be a number in (0, 1], got 0",
        "'psi_bins' must be an int >= 1 or None, got 0",
    ]:
        assert expected in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stattest": "ks", "threshold": 1.0}, r"'threshold' must be a number in \(0, 1\), got 1.0"),
        ({"threshold": True}, r"'threshold' must be a number > 0, got True"),
        ({"threshold": float("nan")}, r"'threshold' must be a number > 0, got nan"),
        ({"dataset_share": 1.5}, r"'dataset_share' must be a number in \(0, 1\]"),
    ],
)
def test_option_values(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        DriftOptions(**kwargs)


def test_arguments_are_validated_at_every_entry_point() -> None:
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(InputError, match=r"'reference' must be a pandas DataFrame, got list"):
        dataset_drift([1.0], frame)
    with pytest.raises(InputError, match=r"'n_jobs' must be an int >= 1 or None, got 0"):
        dataset_drift(frame, frame, n_jobs=0)
    with pytest.raises(InputError, match=r"'columns' must be a list of column names or None, got 'a'"):
        dataset_drift(frame, frame, columns="a")
    with pytest.raises(InputError, match=r"'options' must be a DriftOptions, got dict"):
        dataset_drift(frame, frame, options={"stattest": "ks"})
    with pytest.raises(InputError, match=r"'reference' must be one column .* got a DataFrame"):
        column_drift(frame, [1.0])
    with pytest.raises(InputError, match=r"'current' must be one-dimensional, got shape \(1, 2\)"):
        column_drift([1.0], np.ones((1, 2)))
    with pytest.raises(InputError, match=r"'kind' must be None, 'numeric' or 'categorical', got 'text'"):
        column_drift([1.0], [1.0], kind="text")
