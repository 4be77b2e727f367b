"""Simulated media-mix worlds with exact truth, for the calibration benchmark (bench-only, written apart from
``stackml.mmm.simulation`` so the model is scored on data it was not built beside).

A world is ``revenue = level + trend + yearly seasonality + price effect + promo effect + media + noise``:

* 2-8 channels (never more than the data can carry: weekly worlds keep ``n_periods >= 20 + 8 * channels``).
* Media: each channel's spend, divided by its maximum, is adstocked (geometric, or delayed with a peak after
  1-3 periods; normalised weights) and then saturated (logistic ``(1 - exp(-lam x)) / (1 + exp(-lam x))`` or
  Hill ``x^s / (x^s + k^s)``), times a coefficient set from the channel's true ROAS. Carryover runs
  ``L_MAX["W"] = 8`` weeks in weekly worlds and ``L_MAX["D"] = 14`` days in daily ones (the default model
  has 8 periods, so part of a long daily carryover lies beyond it; ``tail_beyond_8`` says how much).
* Spend: log-normal around a per-channel level with smooth AR(1) variation, a share ``rho`` of it from a
  factor common to all channels, a seasonal push (more spend when demand is high), and in ``flighted``
  worlds some channels on air in bursts with zero spend between them.
* 1-4 years, weekly or daily; Gaussian noise of 3-15% of the level; a price index (negative effect) and a
  promo flag (positive effect) with real effects.

Truth is exact by construction: spend before the first period is zero (as the model assumes), a channel's
contribution is its media term, and true ROAS is the contribution summed over the simulated period divided by
the spend summed over it (``stackml.mmm.outputs.roas``'s definition). Each channel also gets one go-dark lift
test: its spend set to zero over a 4-8 week window (28-56 days in daily worlds), the true
``incremental_target`` being the total change of that channel's contribution, carryover after the window
included (``stackml.mmm.calibration``'s definition), reported with a 10% standard error.

Example:
    >>> import numpy as np
    >>> world = draw_world(np.random.default_rng(0), "W-logistic-independent")
    >>> check_world(world)
    >>> world.frame.columns[:2].tolist()
    ['date', 'search']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stackml.mmm.calibration import LIFT_TEST_COLUMNS, counterfactual_spend, load_lift_tests

FREQS = ("W", "D")
SATURATIONS = ("logistic", "hill")
SPEND_PATTERNS = ("independent", "correlated", "flighted")
KINDS = tuple(f"{f}-{s}-{p}" for f in FREQS for s in SATURATIONS for p in SPEND_PATTERNS)
# the order a run draws kinds in: every 12 consecutive worlds hold each kind once, and any stretch of worlds
# alternates weekly and daily, cycles the spend patterns and switches the saturation every second world
SEQUENCE = tuple(f"{FREQS[i % 2]}-{SATURATIONS[i // 2 % 2]}-{SPEND_PATTERNS[i % 3]}" for i in range(12))
L_MAX = {"W": 8, "D": 14}  # carryover of the true adstock, in periods
PERIODS_PER_YEAR = {"W": 52, "D": 365}
MODEL_L_MAX = 8  # MediaMixModel's default l_max, in periods; used only to describe the world
CHANNEL_NAMES = ("search", "social", "display", "video", "tv", "radio", "print", "affiliate")
CONTROLS = ("price_index", "promo")
LIFT_SE = 0.10  # standard error of a lift test, as a share of its true effect


@dataclass
class World:
    """One simulated world, its truth and its experiments.

    Attributes:
        frame: ``date, <channels>, price_index, promo, revenue``: all a model may see.
        spend: ``(T, K)`` the spend columns as floats.
        contributions: ``(T, K)`` the true contribution of each channel per period.
        components: everything else in the revenue, each ``(T,)``: level, trend, seasonality, price, promo,
            noise.
        truth: per channel: roas, contribution, spend, the transform parameters, flighted, tail_beyond_8.
        lift_tests: one go-dark test per channel in :data:`LIFT_TEST_COLUMNS`, plus ``true_effect``.
        settings: the world's draws (kind, years, noise, rho, media share, ...).
    """

    kind: str
    frame: pd.DataFrame
    channels: tuple[str, ...]
    spend: np.ndarray
    contributions: np.ndarray
    components: dict[str, np.ndarray]
    truth: pd.DataFrame
    lift_tests: pd.DataFrame
    channel_params: list[dict[str, Any]]
    coef: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    controls: tuple[str, ...] = CONTROLS
    date_column: str = "date"
    target_column: str = "revenue"


# -- the media transforms ------------------------------------------------------------------------------------
def adstock_weights(shape: str, l_max: int, *, alpha: float, theta: float = 0.0) -> np.ndarray:
    """Normalised lag weights ``(l_max,)``: geometric ``alpha^l`` or delayed ``alpha^((l - theta)^2)``."""
    lags = np.arange(l_max, dtype=float)
    raw = alpha**lags if shape == "geometric" else alpha ** ((lags - theta) ** 2)
    return raw / raw.sum()


def adstock(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``out[t] = sum_l weights[l] * x[t - l]``, zeros before the first period."""
    return np.convolve(x, weights)[: len(x)]


def saturate(shape: str, x: np.ndarray, *, lam: float = 0.0, k: float = 1.0, s: float = 1.0) -> np.ndarray:
    """Logistic ``(1 - e^(-lam x)) / (1 + e^(-lam x))`` or Hill ``x^s / (x^s + k^s)`` of ``x >= 0``."""
    if shape == "logistic":
        return np.tanh(lam * x / 2.0)  # the same function, written so a large lam * x cannot overflow
    return x**s / (x**s + k**s)


def channel_media(spend: np.ndarray, scale: float, params: dict[str, Any]) -> np.ndarray:
    """Saturated adstock of ``spend / scale`` for one channel: its contribution per unit of coefficient."""
    weights = adstock_weights(
        params["adstock"], params["l_max"], alpha=params["alpha"], theta=params.get("theta", 0.0)
    )
    return saturate(params["saturation"], adstock(spend / scale, weights), **_saturation_args(params))


def _saturation_args(params: dict[str, Any]) -> dict[str, float]:
    return (
        {"lam": params["lam"]} if params["saturation"] == "logistic" else {"k": params["k"], "s": params["s"]}
    )


# -- drawing a world -----------------------------------------------------------------------------------------
def draw_world(rng: np.random.Generator, kind: str) -> World:
    """Draw one world of ``kind`` (one of :data:`KINDS`, ``<W|D>-<logistic|hill>-<spend pattern>``)."""
    if kind not in KINDS:
        raise ValueError(f"The 'kind' parameter must be one of {list(KINDS)}. Got {kind!r} instead.")
    freq, saturation, pattern = kind.split("-")
    per_year = PERIODS_PER_YEAR[freq]
    years = float(rng.uniform(1.0, 4.0))
    n = int(round(years * per_year))
    max_channels = 8 if freq == "D" else int(np.clip((n - 20) // 8, 2, 8))
    k = int(rng.integers(2, max_channels + 1))
    channels = tuple(CHANNEL_NAMES[:k])
    start = pd.Timestamp("2019-01-07") + pd.Timedelta(weeks=int(rng.integers(0, 200)))  # a Monday
    dates = pd.date_range(start, periods=n, freq="7D" if freq == "W" else "D")
    year_fraction = (dates.dayofyear.to_numpy() - 1) / 365.25

    rho = {"independent": 0.0, "correlated": rng.uniform(0.3, 0.8), "flighted": rng.uniform(0.0, 0.8)}[
        pattern
    ]
    demand_phase = float(rng.uniform(0, 2 * np.pi))
    spend, flighted = _draw_spend(rng, freq, n, k, float(rho), pattern, year_fraction, demand_phase)

    l_max = L_MAX[freq]
    params = [_draw_channel(rng, freq, saturation, l_max) for _ in range(k)]
    scale = spend.max(axis=0)
    media = np.stack([channel_media(spend[:, j], scale[j], params[j]) for j in range(k)], axis=1)
    roas = rng.uniform(0.3, 6.0, k)
    coef = roas * spend.sum(axis=0) / media.sum(axis=0)
    contributions = media * coef

    # the level is set from the share of revenue media makes; the baseline's parts are shares of the level
    media_share = float(rng.uniform(0.1, 0.4))
    level = float(contributions.sum(axis=1).mean() * (1.0 - media_share) / media_share)
    t = np.arange(n) / max(n - 1, 1)
    a1, a2 = rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.06)
    phase2 = rng.uniform(0, 2 * np.pi)
    noise_share = float(rng.uniform(0.03, 0.15))
    price = _draw_price(rng, freq, n)
    promo = _draw_promo(rng, freq, n)
    components = {
        "level": np.full(n, level),
        "trend": level * rng.uniform(-0.2, 0.5) * t,
        "seasonality": level
        * (
            a1 * np.sin(2 * np.pi * year_fraction + demand_phase)
            + a2 * np.sin(4 * np.pi * year_fraction + phase2)
        ),
        "price": level * rng.uniform(-3.0, -0.8) * (price - 1.0),
        "promo": level * rng.uniform(0.05, 0.25) * promo,
        "noise": level * noise_share * rng.standard_normal(n),
    }
    revenue = sum(components.values()) + contributions.sum(axis=1)

    frame = pd.DataFrame({"date": dates, **{c: spend[:, j] for j, c in enumerate(channels)}})
    frame["price_index"], frame["promo"], frame["revenue"] = price, promo, revenue
    truth = pd.DataFrame(
        {
            "roas": contributions.sum(axis=0) / spend.sum(axis=0),
            "contribution": contributions.sum(axis=0),
            "spend": spend.sum(axis=0),
            "spend_share": spend.sum(axis=0) / spend.sum(),
            "contribution_share": contributions.sum(axis=0) / revenue.sum(),
            "adstock": [p["adstock"] for p in params],
            "alpha": [p["alpha"] for p in params],
            "theta": [p.get("theta", np.nan) for p in params],
            "lam": [p.get("lam", np.nan) for p in params],
            "k": [p.get("k", np.nan) for p in params],
            "s": [p.get("s", np.nan) for p in params],
            "flighted": flighted,
            "zero_share": (spend == 0).mean(axis=0),
            "tail_beyond_8": [_tail_beyond(p, MODEL_L_MAX) for p in params],
        },
        index=pd.Index(channels, name="channel"),
    )
    world = World(
        kind=kind,
        frame=frame,
        channels=channels,
        spend=spend,
        contributions=contributions,
        components=components,
        truth=truth,
        lift_tests=pd.DataFrame(),
        channel_params=params,
        coef=coef,
        settings={
            "kind": kind,
            "freq": freq,
            "saturation": saturation,
            "spend_pattern": pattern,
            "years": round(years, 2),
            "n_periods": n,
            "n_channels": k,
            "rho": round(float(rho), 3),
            "noise_share": round(noise_share, 4),
            "media_share": round(media_share, 4),
            "l_max": l_max,
        },
    )
    world.lift_tests = _go_dark_tests(rng, world)
    return world


def _draw_channel(rng: np.random.Generator, freq: str, saturation: str, l_max: int) -> dict[str, Any]:
    p: dict[str, Any] = {"saturation": saturation, "l_max": l_max}
    if rng.uniform() < 0.5:
        # weekly: 5-75% carried to the next week; daily: 30-85% carried to the next day
        p |= {
            "adstock": "geometric",
            "alpha": rng.uniform(0.05, 0.75) if freq == "W" else rng.uniform(0.3, 0.85),
        }
    else:
        # the effect peaks 1-3 weeks (1-4 days) after the spend
        p |= {
            "adstock": "delayed",
            "alpha": rng.uniform(0.3, 0.8),
            "theta": rng.uniform(1.0, 3.0) if freq == "W" else rng.uniform(1.0, 4.0),
        }
    if saturation == "logistic":
        p["lam"] = rng.uniform(0.5, 5.0)
    else:
        p |= {"k": rng.uniform(0.15, 0.9), "s": rng.uniform(0.8, 3.0)}
    return {key: float(v) if isinstance(v, np.floating) else v for key, v in p.items()}


def _tail_beyond(params: dict[str, Any], lags: int) -> float:
    weights = adstock_weights(
        params["adstock"], params["l_max"], alpha=params["alpha"], theta=params.get("theta", 0.0)
    )
    return float(weights[lags:].sum())


def _ar1(rng: np.random.Generator, n: int, phi: float, size: int = 1) -> np.ndarray:
    """Unit-variance AR(1) series, ``(n, size)``."""
    out = np.empty((n, size))
    out[0] = rng.standard_normal(size)
    innovation = np.sqrt(1.0 - phi**2)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + innovation * rng.standard_normal(size)
    return out


def _draw_spend(
    rng: np.random.Generator,
    freq: str,
    n: int,
    k: int,
    rho: float,
    pattern: str,
    year_fraction: np.ndarray,
    demand_phase: float,
) -> tuple[np.ndarray, np.ndarray]:
    per_period = 1.0 if freq == "W" else 1.0 / 7.0
    level = np.exp(rng.uniform(np.log(1_000), np.log(50_000), k)) * per_period
    phi = rng.uniform(0.3, 0.85) if freq == "W" else rng.uniform(0.85, 0.97)
    common = _ar1(rng, n, phi)
    own = _ar1(rng, n, phi, k)
    sd = rng.uniform(0.25, 0.6, k)
    log_variation = sd * (np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own)
    push = rng.uniform(0.0, 0.3, k)  # marketers spend more when demand is high
    season = 1.0 + push * np.sin(2 * np.pi * year_fraction + demand_phase)[:, None]
    spend = level * np.exp(log_variation) * season
    flighted = np.zeros(k, dtype=bool)
    if pattern == "flighted":
        n_flighted = max(1, int(round(k * rng.uniform(0.25, 0.6))))
        flighted[rng.choice(k, size=n_flighted, replace=False)] = True
        lo, hi = (2, 9) if freq == "W" else (7, 43)
        for j in np.flatnonzero(flighted):
            on_air = np.zeros(n, dtype=bool)
            i = int(rng.integers(0, hi))
            while i < n:
                length = int(rng.integers(lo, hi))
                on_air[i : i + length] = True
                i += length + int(rng.integers(lo, hi))
            spend[:, j] = np.where(on_air, spend[:, j] * 2.0, 0.0)
    return np.round(spend, 2), flighted


def _draw_price(rng: np.random.Generator, freq: str, n: int) -> np.ndarray:
    phi = rng.uniform(0.7, 0.95) if freq == "W" else rng.uniform(0.95, 0.995)
    return 1.0 + rng.uniform(0.02, 0.06) * _ar1(rng, n, phi)[:, 0]


def _draw_promo(rng: np.random.Generator, freq: str, n: int) -> np.ndarray:
    share = rng.uniform(0.05, 0.2)
    if freq == "W":
        return (rng.uniform(size=n) < share).astype(float)
    promo = np.zeros(n)
    i = int(rng.integers(0, 30))
    while i < n:  # daily promotions run 3-10 days
        length = int(rng.integers(3, 11))
        promo[i : i + length] = 1.0
        i += length + int(rng.integers(3, 11) * (1 - share) / share)
    return promo


def _go_dark_tests(rng: np.random.Generator, world: World) -> pd.DataFrame:
    """One go-dark test per channel, in a window with at least half the typical spend and room for the
    carryover inside the data."""
    n, l_max = len(world.frame), world.settings["l_max"]
    dates = world.frame["date"]
    rows = []
    for j, channel in enumerate(world.channels):
        length = int(rng.integers(4, 9)) if world.settings["freq"] == "W" else int(rng.integers(28, 57))
        starts = np.arange(l_max, n - length - l_max + 1)
        window_spend = np.array([world.spend[s : s + length, j].sum() for s in starts])
        good = starts[window_spend >= 0.5 * window_spend.mean()]
        first = int(rng.choice(good if good.size else starts[window_spend > 0]))
        window = np.zeros(n, dtype=bool)
        window[first : first + length] = True
        effect = go_dark_effect(world, j, window)
        sd = LIFT_SE * abs(effect)
        rows.append(
            {
                "channel": channel,
                "start_date": dates.iloc[first],
                "end_date": dates.iloc[first + length - 1],
                "spend_change": -float(world.spend[window, j].sum()),
                "incremental_target": effect + sd * rng.standard_normal(),
                "incremental_target_sd": sd,
                "true_effect": effect,
            }
        )
    return pd.DataFrame(rows, columns=[*LIFT_TEST_COLUMNS, "true_effect"])


def go_dark_effect(world: World, j: int, window: np.ndarray) -> float:
    """The true total change of channel ``j``'s contribution when its spend in ``window`` is zero."""
    spend = world.spend[:, j]
    dark = counterfactual_spend(spend, window, -float(spend[window].sum()))
    scale = spend.max()  # the observed maximum scales both arms: the same response curve
    params = world.channel_params[j]
    return float(
        world.coef[j] * (channel_media(dark, scale, params) - channel_media(spend, scale, params)).sum()
    )


# -- the truth, checked without fitting ----------------------------------------------------------------------
def _oracle_media(spend: np.ndarray, scale: float, p: dict[str, Any]) -> np.ndarray:
    """The media term written out loop by loop in textbook form, to check the vectorised one."""
    lags = range(p["l_max"])
    if p["adstock"] == "geometric":
        raw = [p["alpha"] ** lag for lag in lags]
    else:
        raw = [p["alpha"] ** ((lag - p["theta"]) ** 2) for lag in lags]
    weights = [w / sum(raw) for w in raw]
    out = np.zeros(len(spend))
    for t in range(len(spend)):
        x = sum(weights[lag] * spend[t - lag] / scale for lag in lags if t - lag >= 0)
        if p["saturation"] == "logistic":
            out[t] = (1 - np.exp(-p["lam"] * x)) / (1 + np.exp(-p["lam"] * x))
        else:
            out[t] = x ** p["s"] / (x ** p["s"] + p["k"] ** p["s"])
    return out


def check_world(world: World) -> None:
    """Assert the truth is what the docstring says: revenue adds up, ROAS is contribution / spend, and every
    lift test's true effect is the contribution recomputed with the go-dark spend. Raises AssertionError."""
    frame, n = world.frame, len(world.frame)
    np.testing.assert_allclose(
        frame["revenue"].to_numpy(),
        sum(world.components.values()) + world.contributions.sum(axis=1),
        rtol=1e-12,
        err_msg="revenue is not the sum of its components",
    )
    np.testing.assert_array_equal(frame[list(world.channels)].to_numpy(), world.spend)
    assert (world.spend >= 0).all() and (world.spend.sum(axis=0) > 0).all(), "spend must be >= 0, some > 0"
    np.testing.assert_allclose(
        world.truth["roas"].to_numpy(), world.contributions.sum(axis=0) / world.spend.sum(axis=0), rtol=1e-12
    )
    assert world.truth["roas"].between(0.3, 6.0).all(), "true ROAS outside the drawn range"
    scale = world.spend.max(axis=0)
    for j, channel in enumerate(world.channels):
        p = world.channel_params[j]
        np.testing.assert_allclose(
            world.coef[j] * _oracle_media(world.spend[:, j], scale[j], p),
            world.contributions[:, j],
            rtol=1e-9,
            atol=1e-12 * world.contributions[:, j].max(),
            err_msg=f"{channel}: contribution differs from the loop-by-loop oracle",
        )
    tests = world.lift_tests
    load_lift_tests(tests[list(LIFT_TEST_COLUMNS)])  # the package's own checks of the layout
    dates = frame["date"]
    for j, test in enumerate(tests.itertuples(index=False)):
        assert test.channel == world.channels[j]
        window = ((dates >= test.start_date) & (dates <= test.end_date)).to_numpy()
        spend = world.spend[:, j]
        assert test.spend_change == -spend[window].sum() < 0, (
            f"{test.channel}: spend_change is not -window spend"
        )
        dark = spend.copy()
        dark[window] = 0.0
        np.testing.assert_array_equal(counterfactual_spend(spend, window, test.spend_change), dark)
        p = world.channel_params[j]
        delta = world.coef[j] * (_oracle_media(dark, scale[j], p) - _oracle_media(spend, scale[j], p))
        first, last = np.flatnonzero(window)[[0, -1]]
        assert last + p["l_max"] <= n, f"{test.channel}: the carryover tail runs past the data"
        counted = np.zeros(n, dtype=bool)
        counted[first : last + p["l_max"]] = True  # the window plus l_max - 1 periods (calibration.py)
        assert np.abs(delta[~counted]).max(initial=0.0) <= 1e-9 * abs(delta).sum(), "effect outside the tail"
        np.testing.assert_allclose(test.true_effect, delta[counted].sum(), rtol=1e-9)
        assert test.true_effect < 0, f"{test.channel}: going dark must lower revenue"
        np.testing.assert_allclose(test.incremental_target_sd, LIFT_SE * abs(test.true_effect), rtol=1e-12)
