"""Adstock and saturation: NumPy twins against textbook oracles, and PyTensor twins against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.errors import InputError
from stackml.mmm.transforms import (
    ADSTOCKS,
    SATURATIONS,
    GeometricAdstock,
    get_adstock,
    get_saturation,
    lag_matrix,
)

RNG = np.random.default_rng(0)
SPEND = np.abs(RNG.normal(size=(12, 3)))
SPEND[3:5, 1] = 0.0  # zero spend must stay finite everywhere (Hill's log)

ADSTOCK_PARAMS = {
    "geometric": {"alpha": np.array([0.2, 0.5, 0.8])},
    "delayed": {"alpha": np.array([0.3, 0.5, 0.7]), "theta": np.array([0.0, 1.5, 3.0])},
    "weibull": {"lam": np.array([0.5, 2.0, 4.0]), "k": np.array([0.7, 1.0, 2.5])},
    "weibull_pdf": {"lam": np.array([1.0, 2.0, 4.0]), "k": np.array([0.7, 1.5, 3.0])},
}
SATURATION_PARAMS = {
    "logistic": {"lam": np.array([0.5, 2.0, 6.0])},
    "hill": {"k": np.array([0.3, 0.8, 1.5]), "s": np.array([0.7, 1.0, 3.0])},
    "michaelis_menten": {"k": np.array([0.2, 1.0, 3.0])},
}


def naive_adstock(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The definition, one loop per period and lag."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for lag in range(weights.shape[0]):
            if t - lag >= 0:
                out[t] += weights[lag] * x[t - lag]
    return out


def pt_eval(expr):
    import pytensor

    return pytensor.function([], expr, mode="FAST_COMPILE")()


def test_registries_cover_the_issue() -> None:
    assert {"geometric", "delayed", "weibull"} <= set(ADSTOCKS)
    assert {"hill", "logistic", "michaelis_menten"} <= set(SATURATIONS)


def test_lag_matrix_shifts_with_zero_padding() -> None:
    x = np.arange(1.0, 5.0)[:, None]
    lagged = lag_matrix(x, 3)[:, :, 0]
    assert lagged.tolist() == [[1, 2, 3, 4], [0, 1, 2, 3], [0, 0, 1, 2]]
    assert lag_matrix(x, 6)[5].sum() == 0  # lags longer than the series are all zero


def test_geometric_weights_match_the_formula() -> None:
    raw = GeometricAdstock(l_max=4, normalize=False).weights_np(alpha=np.array([0.5]))[:, 0]
    assert raw.tolist() == [1.0, 0.5, 0.25, 0.125]
    normalised = GeometricAdstock(l_max=4).weights_np(alpha=np.array([0.5]))[:, 0]
    np.testing.assert_allclose(normalised, raw / raw.sum())


@pytest.mark.parametrize("name", sorted(ADSTOCK_PARAMS))
def test_adstock_numpy_matches_the_loop_oracle(name: str) -> None:
    adstock = get_adstock(name, l_max=5)
    params = ADSTOCK_PARAMS[name]
    weights = adstock.weights_np(**params)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)  # normalised by default
    got = adstock.apply_np(SPEND, **params)
    for k in range(3):
        np.testing.assert_allclose(got[:, k], naive_adstock(SPEND[:, k], weights[:, k]))


@pytest.mark.parametrize("name", sorted(ADSTOCK_PARAMS))
def test_adstock_pytensor_matches_numpy(name: str) -> None:
    adstock = get_adstock(name, l_max=5)
    params = ADSTOCK_PARAMS[name]
    got = pt_eval(adstock.apply_pt(lag_matrix(SPEND, 5), **params))
    np.testing.assert_allclose(got, adstock.apply_np(SPEND, **params), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(ADSTOCK_PARAMS))
def test_adstock_broadcasts_over_posterior_draws(name: str) -> None:
    adstock = get_adstock(name, l_max=5)
    params = {k: np.stack([v, v * 0.9]) for k, v in ADSTOCK_PARAMS[name].items()}  # (2 draws, 3 channels)
    batched = adstock.apply_np(SPEND, **params)
    assert batched.shape == (2, 12, 3)
    single = adstock.apply_np(SPEND, **{k: v[1] for k, v in params.items()})
    np.testing.assert_allclose(batched[1], single)


def test_saturation_numpy_matches_textbook_formulas() -> None:
    x = np.linspace(0.0, 2.0, 9)[:, None]
    lam, k, s = 2.0, 0.7, 1.8
    logistic = get_saturation("logistic").apply_np(x, lam=np.array([lam]))
    np.testing.assert_allclose(logistic[:, 0], (1 - np.exp(-lam * x[:, 0])) / (1 + np.exp(-lam * x[:, 0])))
    hill = get_saturation("hill").apply_np(x, k=np.array([k]), s=np.array([s]))
    np.testing.assert_allclose(hill[:, 0], x[:, 0] ** s / (x[:, 0] ** s + k**s))
    mm = get_saturation("michaelis_menten").apply_np(x, k=np.array([k]))
    np.testing.assert_allclose(mm[:, 0], x[:, 0] / (k + x[:, 0]))


@pytest.mark.parametrize("name", sorted(SATURATION_PARAMS))
def test_saturation_pytensor_matches_numpy(name: str) -> None:
    saturation = get_saturation(name)
    params = SATURATION_PARAMS[name]
    got = pt_eval(saturation.apply_pt(SPEND, **params))
    np.testing.assert_allclose(got, saturation.apply_np(SPEND, **params), rtol=1e-10)
    assert got[3, 1] == 0.0  # no spend, no effect


def test_hill_gradient_is_finite_at_zero_spend() -> None:
    import pytensor.tensor as pt

    s = pt.dscalar("s")
    value = get_saturation("hill").apply_pt(np.array([[0.0], [0.5]]), k=np.array([0.5]), s=s[None]).sum()
    import pytensor

    grad = pytensor.function([s], pt.grad(value, s), mode="FAST_COMPILE")(1.3)
    assert np.isfinite(grad)


@pytest.mark.parametrize("name", sorted(SATURATION_PARAMS))
def test_saturation_is_increasing_and_bounded(name: str) -> None:
    x = np.linspace(0.0, 50.0, 200)[:, None].repeat(3, axis=1)
    y = get_saturation(name).apply_np(x, **SATURATION_PARAMS[name])
    assert (np.diff(y, axis=0) >= -1e-12).all()
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_unknown_names_and_bad_l_max_are_rejected() -> None:
    with pytest.raises(InputError, match=r"'adstock' parameter must be one of .*Got 'exponential'"):
        get_adstock("exponential")
    with pytest.raises(InputError, match=r"'saturation' parameter must be one of .*Got 'tanh'"):
        get_saturation("tanh")
    with pytest.raises(InputError, match=r"'l_max' parameter of GeometricAdstock must be an int >= 1. Got 0"):
        GeometricAdstock(l_max=0)
