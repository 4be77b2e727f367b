"""The fitted posterior as flat NumPy draws, and the model's equations evaluated on them for any spend.

Everything downstream (predictions, contributions, ROAS, response curves, the budget optimiser) goes through
:class:`PosteriorDraws`, so the NumPy twins of the transforms are the only second implementation of the model;
:func:`hdi` summarises any array of draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stackml.mmm._design import Design
from stackml.mmm.transforms import Adstock, Saturation, lag_matrix


def flatten_draws(idata: Any, name: str) -> np.ndarray:
    """``posterior[name]`` as ``(n_draws, ...)``, chains concatenated."""
    values = np.asarray(idata.posterior[name].values, dtype=float)
    return values.reshape(-1, *values.shape[2:])


def hdi(draws: np.ndarray, prob: float = 0.94) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval along the first axis (draws) of ``draws``.

    Example:
        >>> low, high = hdi(np.arange(100.0), 0.9)
        >>> float(high - low)
        90.0
    """
    draws = np.sort(np.asarray(draws, dtype=float), axis=0)
    n = draws.shape[0]
    width = max(int(np.floor(prob * n)), 1) if n > 1 else 0
    if width == 0:
        return draws[0], draws[0]
    spans = draws[width:] - draws[: n - width]
    start = np.expand_dims(np.argmin(spans, axis=0), 0)
    low = np.take_along_axis(draws, start, axis=0)[0]
    high = np.take_along_axis(draws, start + width, axis=0)[0]
    return low, high


@dataclass
class PosteriorDraws:
    """Posterior draws of every parameter, flattened over chains, with the design to evaluate them on."""

    design: Design
    adstock: Adstock
    saturation: Saturation
    adstock_params: dict[str, np.ndarray]  # each (S, K)
    saturation_params: dict[str, np.ndarray]  # each (S, K)
    beta: np.ndarray  # (S, K)
    intercept: np.ndarray  # (S,)
    trend_slope: np.ndarray  # (S,)
    gamma_fourier: np.ndarray  # (S, F)
    gamma_control: np.ndarray  # (S, C)
    sigma: np.ndarray  # (S,)
    level: np.ndarray | None = None  # (S, J) the time-varying level at its knots, None without one

    @classmethod
    def from_idata(
        cls, idata: Any, design: Design, adstock: Adstock, saturation: Saturation
    ) -> PosteriorDraws:
        names = set(idata.posterior.data_vars)
        n = flatten_draws(idata, "intercept").shape[0]

        def get(name: str, width: int) -> np.ndarray:
            return flatten_draws(idata, name) if name in names else np.zeros((n, width))

        return cls(
            design=design,
            adstock=adstock,
            saturation=saturation,
            adstock_params={p: flatten_draws(idata, f"adstock_{p}") for p in adstock.param_names},
            saturation_params={p: flatten_draws(idata, f"saturation_{p}") for p in saturation.param_names},
            beta=flatten_draws(idata, "beta"),
            intercept=flatten_draws(idata, "intercept"),
            trend_slope=flatten_draws(idata, "trend_slope") if "trend_slope" in names else np.zeros(n),
            gamma_fourier=get("gamma_fourier", 0),
            gamma_control=get("gamma_control", 0),
            sigma=flatten_draws(idata, "sigma"),
            level=flatten_draws(idata, "level") if "level" in names else None,
        )

    @property
    def n_draws(self) -> int:
        return self.beta.shape[0]

    def media(self, spend: np.ndarray) -> np.ndarray:
        """Saturated adstocked media ``(S, T, K)`` for raw ``spend`` ``(T, K)`` (zeros before its first
        row)."""
        lagged = lag_matrix(self.design.scaled_spend(spend), self.adstock.l_max)
        adstocked = self.adstock.apply_lagged_np(lagged, **self.adstock_params)
        return self.saturation.apply_np(adstocked, **self.saturation_params)

    def contributions(self, spend: np.ndarray) -> np.ndarray:
        """Channel contributions ``(S, T, K)`` in target units for raw ``spend`` ``(T, K)``."""
        return self.media(spend) * self.beta[:, None, :] * self.design.target_scale

    def baseline(self, dates: pd.DatetimeIndex, control_values: np.ndarray | None) -> np.ndarray:
        """Everything but media, ``(S, T)`` in target units: intercept, trend, seasonality and controls."""
        d = self.design
        base = np.repeat(self.intercept[:, None], len(dates), axis=1)
        if d.trend:
            base = base + self.trend_slope[:, None] * d.time_index(dates)[None, :]
        if d.fourier_order:
            base = base + self.gamma_fourier @ d.fourier(dates).T
        if d.controls:
            base = base + self.gamma_control @ d.scaled_controls(control_values).T
        if self.level is not None:
            base = base + self.level @ d.level_basis(dates).T
        return base * d.target_scale

    def baseline_parts(
        self, dates: pd.DatetimeIndex, control_values: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """The baseline split into ``intercept``, ``trend``, ``seasonality``, ``level`` (with a time-varying
        level) and one entry per control."""
        d = self.design
        scale = d.target_scale
        parts = {"intercept": np.repeat(self.intercept[:, None], len(dates), axis=1) * scale}
        if d.trend:
            parts["trend"] = self.trend_slope[:, None] * d.time_index(dates)[None, :] * scale
        if d.fourier_order:
            parts["seasonality"] = (self.gamma_fourier @ d.fourier(dates).T) * scale
        if self.level is not None:
            parts["level"] = (self.level @ d.level_basis(dates).T) * scale
        for j, name in enumerate(d.controls):
            parts[name] = (
                self.gamma_control[:, j : j + 1] * d.scaled_controls(control_values)[None, :, j] * scale
            )
        return parts

    def expected(
        self, dates: pd.DatetimeIndex, spend: np.ndarray, control_values: np.ndarray | None
    ) -> np.ndarray:
        """Expected target ``(S, T)`` in target units."""
        return self.baseline(dates, control_values) + self.contributions(spend).sum(axis=2)
