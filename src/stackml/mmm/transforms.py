"""Media transforms: adstock (carryover) and saturation (diminishing returns), found by name.

Every transform has two twins that must agree: a NumPy one (used for predictions, outputs and the budget
optimiser, broadcasting over posterior draws) and a PyTensor one (used inside the PyMC graph). Parameters are
per-channel vectors of shape ``(..., n_channels)``; spend arrays are ``(..., n_periods, n_channels)`` and
already scaled.

Adstock is a finite convolution: ``adstocked[t] = sum_l w[l] * x[t - l]`` for ``l < l_max``, with zeros before
the first period. Because the spend is data, the lagged copies ``x[t - l]`` are built once
(:func:`lag_matrix`) and the graph only computes the weights, which keeps the model cheap to differentiate.

Example:
    >>> import numpy as np
    >>> ad = get_adstock("geometric", l_max=3, normalize=False)
    >>> ad.apply_np(np.array([[1.0], [0.0], [0.0]]), alpha=np.array([0.5]))[:, 0].tolist()
    [1.0, 0.5, 0.25]
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from stackml.errors import InputError

__all__ = [
    "ADSTOCKS",
    "SATURATIONS",
    "Adstock",
    "DelayedAdstock",
    "GeometricAdstock",
    "HillSaturation",
    "LogisticSaturation",
    "MichaelisMentenSaturation",
    "Saturation",
    "WeibullAdstock",
    "WeibullPDFAdstock",
    "get_adstock",
    "get_saturation",
    "lag_matrix",
]

# parameter -> (PyMC distribution name, its keyword arguments)
PriorSpec = dict[str, tuple[str, dict[str, float]]]


DEFAULT_L_MAX = 8  # periods of carryover a named adstock gets by default: two months of weeks
MIN_CARRYOVER_DAYS = 21  # but at least three weeks, so a slow daily decay is not cut after 8 days


def lag_matrix(x: np.ndarray, l_max: int) -> np.ndarray:
    """Stack ``x`` shifted by ``0..l_max-1`` periods along a new first axis, padding with zeros.

    Args:
        x: array ``(n_periods, ...)``.
        l_max: number of lags.

    Returns:
        ``(l_max, n_periods, ...)`` where ``out[l, t] = x[t - l]`` (0 for ``t < l``).
    """
    x = np.asarray(x, dtype=float)
    out = np.zeros((l_max, *x.shape))
    for lag in range(l_max):
        out[lag, lag:] = x[: x.shape[0] - lag] if lag < x.shape[0] else 0.0
    return out


class _Transform(abc.ABC):
    """Shared machinery: parameter names, priors and the PyMC variables that hold them."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    _default_priors: ClassVar[PriorSpec] = {}

    def priors(self) -> PriorSpec:
        """Default priors as ``{param: (pymc distribution name, kwargs)}``, on scaled inputs."""
        return dict(self._default_priors)

    def create_variables(
        self, pm: Any, prefix: str, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create one PyMC variable per parameter with dims ``channel`` (inside a model context)."""
        priors = self.priors()
        for key, value in (overrides or {}).items():
            if key in priors:
                priors[key] = value
        variables = {}
        for param in self.param_names:
            dist, kwargs = priors[param]
            variables[param] = getattr(pm, dist)(f"{prefix}_{param}", dims="channel", **kwargs)
        return variables

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Adstock(_Transform):
    """Carryover of spend into later periods, as normalised (or raw) lag weights.

    Args:
        l_max: the longest carryover in periods (weights beyond it are zero).
        normalize: scale the weights to sum to one, so adstock keeps the spend's scale and the channel
            coefficient alone carries the effect size (which makes priors portable across data sets).
    """

    def __init__(self, l_max: int = 8, normalize: bool = True) -> None:
        if not isinstance(l_max, (int, np.integer)) or l_max < 1:
            raise InputError(
                f"The 'l_max' parameter of {type(self).__name__} must be an int >= 1. Got {l_max!r} instead.",
                hint="Use the longest carryover you expect in periods, e.g. l_max=8 for weekly data.",
            )
        self.l_max = int(l_max)
        self.normalize = normalize

    @abc.abstractmethod
    def _raw_weights(self, xp: Any, lags: Any, **params: Any) -> Any:
        """Unnormalised weights ``(..., l_max, n_channels)`` from params ``(..., n_channels)``."""

    def weights_np(self, **params: np.ndarray) -> np.ndarray:
        """Lag weights ``(..., l_max, n_channels)`` in NumPy."""
        params = {k: np.asarray(v, dtype=float)[..., None, :] for k, v in params.items()}
        lags = np.arange(self.l_max, dtype=float)[:, None]
        w = self._raw_weights(np, lags, **params)
        return w / w.sum(axis=-2, keepdims=True) if self.normalize else w

    def weights_pt(self, **params: Any) -> Any:
        """Lag weights ``(l_max, n_channels)`` as a PyTensor expression of ``(n_channels,)`` params."""
        import pytensor.tensor as pt

        lags = pt.as_tensor_variable(np.arange(self.l_max, dtype=float)[:, None])
        w = self._raw_weights(pt, lags, **{k: pt.as_tensor_variable(v)[None, :] for k, v in params.items()})
        return w / w.sum(axis=0, keepdims=True) if self.normalize else w

    def apply_np(self, x: np.ndarray, **params: np.ndarray) -> np.ndarray:
        """Adstock ``x`` ``(n_periods, n_channels)``; params may carry leading draw axes."""
        return self.apply_lagged_np(lag_matrix(x, self.l_max), **params)

    def apply_lagged_np(self, x_lagged: np.ndarray, **params: np.ndarray) -> np.ndarray:
        """Adstock from precomputed lags ``(l_max, n_periods, n_channels)`` ->
        ``(..., n_periods, n_channels)``."""
        w = self.weights_np(**params)
        return np.einsum("...lk,ltk->...tk", w, x_lagged)

    def apply_pt(self, x_lagged: Any, **params: Any) -> Any:
        """Adstock from lags ``(l_max, n_periods, n_channels)`` -> ``(n_periods, n_channels)`` in PyTensor."""
        w = self.weights_pt(**params)
        return (x_lagged * w[:, None, :]).sum(axis=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l_max={self.l_max}, normalize={self.normalize})"


class GeometricAdstock(Adstock):
    """``w[l] = alpha ** l``: each period keeps a share ``alpha`` of the last one's effect."""

    name = "geometric"
    param_names = ("alpha",)
    _default_priors: ClassVar[PriorSpec] = {"alpha": ("Beta", {"alpha": 1.0, "beta": 3.0})}

    def _raw_weights(self, xp: Any, lags: Any, *, alpha: Any) -> Any:
        return alpha**lags


class DelayedAdstock(Adstock):
    """``w[l] = alpha ** ((l - theta) ** 2)``: the effect peaks ``theta`` periods after the spend."""

    name = "delayed"
    param_names = ("alpha", "theta")
    _default_priors: ClassVar[PriorSpec] = {
        "alpha": ("Beta", {"alpha": 1.0, "beta": 3.0}),
        "theta": ("HalfNormal", {"sigma": 1.5}),
    }

    def _raw_weights(self, xp: Any, lags: Any, *, alpha: Any, theta: Any) -> Any:
        return alpha ** ((lags - theta) ** 2)


class WeibullAdstock(Adstock):
    """Weibull survival kernel ``w[l] = exp(-(l / lam) ** k)``: a monotone decay whose shape ``k`` can be
    fast-then-slow (``k < 1``) or slow-then-fast (``k > 1``); ``lam`` is the scale in periods."""

    name = "weibull"
    param_names = ("lam", "k")
    _default_priors: ClassVar[PriorSpec] = {
        "lam": ("Gamma", {"alpha": 2.0, "beta": 1.0}),
        "k": ("Gamma", {"alpha": 3.0, "beta": 2.0}),
    }

    def _raw_weights(self, xp: Any, lags: Any, *, lam: Any, k: Any) -> Any:
        return xp.exp(-((lags / lam) ** k))


class WeibullPDFAdstock(Adstock):
    """Weibull density kernel ``w[l] ~ ((l+1)/lam) ** (k-1) * exp(-((l+1)/lam) ** k)``: can peak after a
    delay."""

    name = "weibull_pdf"
    param_names = ("lam", "k")
    _default_priors: ClassVar[PriorSpec] = {
        "lam": ("Gamma", {"alpha": 2.0, "beta": 1.0}),
        "k": ("Gamma", {"alpha": 3.0, "beta": 2.0}),
    }

    def _raw_weights(self, xp: Any, lags: Any, *, lam: Any, k: Any) -> Any:
        z = (lags + 1.0) / lam
        return xp.exp((k - 1.0) * xp.log(z) - z**k)


class Saturation(_Transform):
    """Diminishing returns of adstocked, scaled spend ``x >= 0``; returns values in ``[0, 1)``-ish, with the
    channel coefficient ``beta`` carrying the effect size."""

    @abc.abstractmethod
    def _curve(self, xp: Any, x: Any, **params: Any) -> Any: ...

    def apply_np(self, x: np.ndarray, **params: np.ndarray) -> np.ndarray:
        """Saturate ``x`` ``(..., n_periods, n_channels)`` with params ``(..., n_channels)``."""
        params = {k: np.asarray(v, dtype=float)[..., None, :] for k, v in params.items()}
        with np.errstate(divide="ignore"):
            return self._curve(np, np.asarray(x, dtype=float), **params)

    def apply_pt(self, x: Any, **params: Any) -> Any:
        """Saturate ``x`` ``(n_periods, n_channels)`` with ``(n_channels,)`` params in PyTensor."""
        import pytensor.tensor as pt

        return self._curve(pt, x, **{k: pt.as_tensor_variable(v)[None, :] for k, v in params.items()})


class LogisticSaturation(Saturation):
    """``(1 - exp(-lam x)) / (1 + exp(-lam x))``: linear near zero, flat at one; ``lam`` sets the bend."""

    name = "logistic"
    param_names = ("lam",)
    _default_priors: ClassVar[PriorSpec] = {"lam": ("Gamma", {"alpha": 3.0, "beta": 1.0})}

    def _curve(self, xp: Any, x: Any, *, lam: Any) -> Any:
        return xp.tanh(lam * x / 2.0)  # the same function, without overflow for large lam * x


class HillSaturation(Saturation):
    """``x ** s / (x ** s + k ** s)``: half of the maximum at ``x = k``; slope ``s`` > 1 gives an S-curve."""

    name = "hill"
    param_names = ("k", "s")
    _default_priors: ClassVar[PriorSpec] = {
        "k": ("Gamma", {"alpha": 2.0, "beta": 2.0}),
        "s": ("Gamma", {"alpha": 3.0, "beta": 2.0}),
    }

    def _curve(self, xp: Any, x: Any, *, k: Any, s: Any) -> Any:
        # sigmoid(s * (log x - log k)) equals the Hill curve for x > 0 and has a finite gradient at x = 0,
        # where the textbook form gives 0 * log(0) = nan for the gradient in s.
        positive = x > 0
        safe = xp.where(positive, x, 1.0)
        z = s * (xp.log(safe) - xp.log(k))
        value = 1.0 / (1.0 + xp.exp(-z))
        return xp.where(positive, value, 0.0)


class MichaelisMentenSaturation(Saturation):
    """``x / (k + x)``: half of the maximum at ``x = k``; concave everywhere."""

    name = "michaelis_menten"
    param_names = ("k",)
    _default_priors: ClassVar[PriorSpec] = {"k": ("Gamma", {"alpha": 2.0, "beta": 2.0})}

    def _curve(self, xp: Any, x: Any, *, k: Any) -> Any:
        return x / (k + x)


ADSTOCKS: dict[str, type[Adstock]] = {
    cls.name: cls for cls in (GeometricAdstock, DelayedAdstock, WeibullAdstock, WeibullPDFAdstock)
}
SATURATIONS: dict[str, type[Saturation]] = {
    cls.name: cls for cls in (LogisticSaturation, HillSaturation, MichaelisMentenSaturation)
}


def get_adstock(adstock: str | Adstock, **kwargs: Any) -> Adstock:
    """Return an adstock instance from its name (``geometric``, ``delayed``, ``weibull``, ``weibull_pdf``)."""
    if isinstance(adstock, Adstock):
        return adstock
    if adstock not in ADSTOCKS:
        raise InputError(
            f"The 'adstock' parameter must be one of {sorted(ADSTOCKS)}. Got {adstock!r} instead.",
            hint="Pass a name from that list, or an Adstock instance such as GeometricAdstock(l_max=12).",
        )
    return ADSTOCKS[adstock](**kwargs)


def saturation_choices() -> set[str]:
    """Every name ``saturation=`` takes: the families, ``"default"`` and ``"auto"`` (see
    :mod:`stackml.mmm.selection`)."""
    from stackml.mmm.selection import AUTO, DEFAULT

    return {AUTO, DEFAULT, *SATURATIONS}


def get_saturation(saturation: str | Saturation) -> Saturation:
    """Return a saturation instance from its name (``logistic``, ``hill``, ``michaelis_menten``)."""
    if isinstance(saturation, Saturation):
        return saturation
    if saturation not in SATURATIONS:
        raise InputError(
            f"The 'saturation' parameter must be one of {sorted(SATURATIONS)}. Got {saturation!r} instead.",
            hint="Pass a name from that list, or a Saturation instance.",
        )
    return SATURATIONS[saturation]()
