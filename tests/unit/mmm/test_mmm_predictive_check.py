"""The posterior-predictive check: interval coverage and residual autocorrelation, on draws with a known
answer (no sampling needed)."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.mmm.diagnostics import fit_metrics, residual_autocorrelation


def _draws(observed_noise: np.ndarray, sd: float, n_draws: int = 2000):
    """A model that knows the expected target exactly (zero) and believes the noise sd is ``sd``."""
    expected = np.zeros((n_draws, observed_noise.size))
    return expected, np.full(n_draws, sd)


def test_a_right_model_covers_about_nominal_and_shows_no_autocorrelation() -> None:
    rng = np.random.default_rng(0)
    observed = rng.normal(0.0, 1.0, 2000)
    expected, sigma = _draws(observed, 1.0)
    metrics = fit_metrics(observed + 10.0, expected + 10.0, sigma)
    assert metrics["coverage"] == pytest.approx(0.94, abs=0.02)
    assert metrics["coverage50"] == pytest.approx(0.50, abs=0.04)
    assert abs(metrics["residual_acf1"]) < 0.06


def test_a_model_that_underrates_the_noise_covers_too_little() -> None:
    rng = np.random.default_rng(1)
    observed = rng.normal(0.0, 2.0, 2000)
    expected, sigma = _draws(observed, 1.0)
    metrics = fit_metrics(observed + 10.0, expected + 10.0, sigma)
    assert metrics["coverage"] < 0.75 and metrics["coverage50"] < 0.35


def test_streaky_errors_show_as_residual_autocorrelation() -> None:
    rng = np.random.default_rng(2)
    shocks = rng.normal(size=3000)
    ar = np.zeros_like(shocks)
    for t in range(1, ar.size):
        ar[t] = 0.7 * ar[t - 1] + shocks[t]
    assert residual_autocorrelation(ar) == pytest.approx(0.7, abs=0.05)
    assert np.isnan(residual_autocorrelation(np.array([1.0, 2.0])))
    assert np.isnan(residual_autocorrelation(np.ones(10)))
