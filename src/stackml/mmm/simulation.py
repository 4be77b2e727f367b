"""A seeded simulator of marketing data with known truth, for tests, the demo and benchmarks.

Weekly revenue is generated as ``baseline + trend + seasonality + controls + media + noise (+ confounder)``
where each channel's media effect is a geometric adstock of its spend followed by a logistic saturation of
(spend / max spend), the same family :class:`~stackml.mmm.MediaMixModel` fits by default. Channel effects are
set from chosen true ROAS values, so the truth is exact: ``truth.loc[channel, "roas"]`` is the channel's
contribution over the simulated period divided by its spend.

The result holds the raw touchpoints (one row per day and channel, the shape a warehouse table would have),
the weekly model frame those touchpoints aggregate to, a weekly controls table, the truth, and one go-dark
lift test per channel.

:func:`simulate_geo` makes the same kind of data as a long geographic panel: markets of different
sizes, national adstock, saturation and ROAS per channel with per-geo deviations, and the truth per geo
and nationally.

Example:
    >>> sim = simulate("2y_3ch", seed=7)
    >>> sim.frame.shape
    (104, 8)
    >>> sorted(sim.truth.columns)[:3]
    ['adstock_alpha', 'contribution', 'roas']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import int_problem, is_int, number_problem
from stackml.errors import InputError, raise_if_problems
from stackml.mmm.calibration import LIFT_TEST_COLUMNS, counterfactual_spend
from stackml.mmm.transforms import GeometricAdstock, LogisticSaturation

__all__ = ["PRESETS", "SimulatedGeoMMM", "SimulatedMMM", "simulate", "simulate_geo"]

PRESETS: dict[str, dict[str, Any]] = {
    "2y_3ch": {"n_periods": 104, "channels": ("search", "social", "tv"), "correlation": 0.0},
    "3y_8ch_correlated": {
        "n_periods": 156,
        "channels": ("search", "social", "display", "video", "tv", "radio", "print", "affiliate"),
        "correlation": 0.7,
    },
}
CONTROLS = ("promo", "price_index")
L_MAX = 8
_AOV = 50.0  # average order value: conversions = revenue / AOV
_GEO_COLUMNS = ("date", "geo", *CONTROLS, "revenue")  # the geo frame's columns besides the channels
_SPREADS = ("market_size_spread", "roas_spread", "shape_spread")
_GEO_CHANNEL_SPEND = 10_000.0  # mean weekly spend per channel of an average-sized geo


@dataclass
class SimulatedMMM:
    """Simulated marketing data and the truth behind it.

    Attributes:
        frame: weekly model frame ``date, <channels>, promo, price_index, revenue, conversions``.
        touchpoints: raw rows ``date, channel, spend, impressions, clicks, conversions, revenue`` per day and
            channel, plus an ``organic`` channel (no spend) holding revenue not attributed to paid media.
        controls_frame: weekly ``date, promo, price_index``.
        truth: per channel ``adstock_alpha, saturation_lam, roas, contribution, share, spend``.
        contributions: weekly true contribution of each channel (``date`` + one column per channel).
        lift_tests: one go-dark experiment per channel, in the lift-test CSV layout.
        confounder: the hidden weekly demand shock (zeros unless ``confounder=True``); never a model input.
    """

    frame: pd.DataFrame
    touchpoints: pd.DataFrame
    controls_frame: pd.DataFrame
    truth: pd.DataFrame
    contributions: pd.DataFrame
    lift_tests: pd.DataFrame
    confounder: np.ndarray
    channels: tuple[str, ...]
    controls: tuple[str, ...] = CONTROLS
    date_column: str = "date"
    target_column: str = "revenue"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimulatedGeoMMM:
    """A simulated geographic panel and the truth behind it, per geo and nationally.

    Attributes:
        frame: long model frame ``date, geo, <channels>, promo, price_index, revenue``, sorted by geo, then
            date.
        truth: one row per geo and channel: ``geo, channel, adstock_alpha, saturation_lam, roas, contribution,
            spend`` (ROAS and totals over that geo's rows).
        national_truth: per channel (index ``channel``) ``roas, contribution, spend, share`` summed over geos;
            ``share`` is the contribution as a share of all revenue.
        contributions: long ``date, geo, channel, contribution``: the true weekly effect of each channel.
        lift_tests: one go-dark experiment per channel in each of the first two geos: ``geo`` followed by the
            lift-test CSV layout.
        channels: the paid channels, in column order.
        geos: the geo names, biggest market first.
        settings: the arguments the panel was simulated with.
    """

    frame: pd.DataFrame
    truth: pd.DataFrame
    national_truth: pd.DataFrame
    contributions: pd.DataFrame
    lift_tests: pd.DataFrame
    channels: tuple[str, ...]
    geos: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    controls: tuple[str, ...] = CONTROLS
    date_column: str = "date"
    geo_column: str = "geo"
    target_column: str = "revenue"


def simulate(
    preset: str | None = "2y_3ch",
    *,
    seed: int = 0,
    n_periods: int | None = None,
    channels: tuple[str, ...] | None = None,
    correlation: float | None = None,
    confounder: bool = False,
    noise: float = 0.05,
    experiment_sd: float = 0.1,
    start: str = "2022-01-03",
) -> SimulatedMMM:
    """Simulate weekly marketing data with known adstock, saturation, ROAS, seasonality, trend and controls.

    Args:
        preset: ``"2y_3ch"`` (104 weeks, 3 channels) or ``"3y_8ch_correlated"`` (156 weeks, 8 channels whose
            spend shares a common factor), or None to give ``n_periods`` and ``channels`` yourself.
        seed: makes everything reproducible.
        n_periods, channels, correlation: override the preset (correlation of log-spend across channels,
            0..1).
        confounder: add a hidden demand shock that raises both the first channel's spend and revenue, which
            biases an uncalibrated model's ROAS for that channel upwards.
        noise: sd of the revenue noise as a share of the baseline level.
        experiment_sd: standard error of each lift test as a share of its true effect; the reported result is
            drawn around the truth with that error.
        start: first Monday.
    """
    settings = _resolve(preset, n_periods=n_periods, channels=channels, correlation=correlation)
    rng = np.random.default_rng(seed)
    n, chans = settings["n_periods"], settings["channels"]
    k = len(chans)
    dates = pd.date_range(pd.Timestamp(start), periods=n, freq="7D")
    confound = _confounder(rng, n) if confounder else np.zeros(n)
    spend = _spend(rng, dates, k, settings["correlation"], confound)

    alpha = rng.uniform(0.1, 0.7, k)
    lam = rng.uniform(1.0, 4.0, k)
    roas = rng.uniform(0.8, 4.0, k)
    media = _media(spend, alpha, lam)  # (T, K) saturated adstock, unit-free
    coef = roas * spend.sum(axis=0) / media.sum(axis=0)  # revenue per unit of saturated media
    contributions = media * coef

    level = float(spend.sum(axis=1).mean() * roas.mean() * 2.5)  # baseline sales are a multiple of media
    t = np.arange(n) / max(n - 1, 1)
    year = (dates.dayofyear.to_numpy() - 1) / 365.25
    trend = level * 0.25 * t
    seasonality = level * (0.12 * np.sin(2 * np.pi * year) + 0.06 * np.cos(4 * np.pi * year))
    promo = (rng.uniform(size=n) < 0.12).astype(float)
    price = 1.0 + 0.04 * rng.standard_normal(n)
    controls_effect = level * (0.15 * promo - 1.5 * (price - 1.0))
    revenue = (
        level
        + trend
        + seasonality
        + controls_effect
        + contributions.sum(axis=1)
        + level * 0.3 * confound
        + level * noise * rng.standard_normal(n)
    )

    frame = pd.DataFrame({"date": dates, **{c: spend[:, j] for j, c in enumerate(chans)}})
    frame["promo"], frame["price_index"] = promo, price
    frame["revenue"], frame["conversions"] = revenue, revenue / _AOV
    truth = pd.DataFrame(
        {
            "adstock_alpha": alpha,
            "saturation_lam": lam,
            "roas": contributions.sum(axis=0) / spend.sum(axis=0),
            "contribution": contributions.sum(axis=0),
            "share": contributions.sum(axis=0) / revenue.sum(),
            "spend": spend.sum(axis=0),
        },
        index=pd.Index(chans, name="channel"),
    )
    return SimulatedMMM(
        frame=frame,
        touchpoints=_touchpoints(rng, frame, chans),
        controls_frame=frame[["date", *CONTROLS]].copy(),
        truth=truth,
        contributions=pd.DataFrame({"date": dates, **{c: contributions[:, j] for j, c in enumerate(chans)}}),
        lift_tests=_lift_tests(rng, dates, spend, alpha, lam, coef, chans, experiment_sd),
        confounder=confound,
        channels=tuple(chans),
        settings={"preset": preset, "seed": seed, "confounder": confounder, "noise": noise, **settings},
    )


def _resolve(preset: str | None, **overrides: Any) -> dict[str, Any]:
    if preset is not None and preset not in PRESETS:
        raise InputError(
            f"Unknown simulator preset {preset!r}; choose one of {sorted(PRESETS)} or None.",
            hint="With preset=None pass n_periods and channels yourself.",
        )
    settings = {"n_periods": 104, "channels": ("search", "social", "tv"), "correlation": 0.0}
    settings |= PRESETS.get(preset or "", {})
    settings |= {key: value for key, value in overrides.items() if value is not None}
    problems = []
    if not isinstance(settings["n_periods"], int) or settings["n_periods"] < 2 * L_MAX:
        problems.append(f"n_periods must be an int >= {2 * L_MAX}, got {settings['n_periods']!r}")
    chans = settings["channels"]
    if not chans or len(set(chans)) != len(chans) or "organic" in chans:
        problems.append(f"channels must be distinct names other than 'organic', got {chans!r}")
    if not 0.0 <= settings["correlation"] < 1.0:
        problems.append(f"correlation must be in [0, 1), got {settings['correlation']!r}")
    if problems:
        raise InputError("; ".join(problems) + ".", hint="Fix the simulator arguments.")
    settings["channels"] = tuple(chans)
    return settings


def simulate_geo(
    *,
    n_geos: int = 8,
    n_periods: int = 156,
    channels: tuple[str, ...] = ("search", "social", "display", "tv"),
    seed: int = 0,
    market_size_spread: float = 1.0,
    roas_spread: float = 0.3,
    shape_spread: float = 0.0,
    correlation: float = 0.3,
    noise: float = 0.05,
    experiment_sd: float = 0.1,
    start: str = "2022-01-03",
    small_geos: int = 0,
) -> SimulatedGeoMMM:
    """Simulate a weekly geo panel with shared and per-geo media effects and markets of different sizes.

    Each channel has a national adstock, saturation and ROAS; each geo's ROAS is drawn around the national
    one (its mean over geos stays the national value) and, with ``shape_spread > 0``, so are its adstock and
    saturation. A geo's spend and baseline revenue scale with its market size. Each geo's media effect is
    computed on its own rows, with saturation relative to its own maximum spend per channel, as a geo model
    scales spend, so ``truth`` is exact per geo and ``national_truth`` sums it.

    Args:
        n_geos: number of geos, named ``geo_01``, ``geo_02``, ... from the biggest market down.
        n_periods: weeks per geo (at least ``2 * L_MAX``).
        channels: distinct paid channel names (not ``"organic"``).
        seed: makes everything reproducible; each geo draws from its own stream.
        market_size_spread: sd of the log market sizes (0: all geos the same size).
        roas_spread: sd of a geo's log ROAS around the national ROAS (0: every geo has the national ROAS).
        shape_spread: sd of a geo's log adstock alpha and log saturation lam around the national ones
            (0: every geo has the national shapes).
        correlation: correlation of log-spend across channels within a geo, in [0, 1).
        noise: sd of the revenue noise as a share of the geo's baseline level.
        experiment_sd: standard error of each lift test as a share of its true effect.
        start: first Monday.
        small_geos: the last ``small_geos`` geos only have the last third of the weeks (a geo that launched
            late), to test how a hierarchical model borrows strength; their truth covers the weeks they have.

    Returns:
        A :class:`SimulatedGeoMMM`.

    Raises:
        InputError: listing every invalid argument.

    Example:
        >>> sim = simulate_geo(n_geos=3, n_periods=52, seed=1)
        >>> sim.frame.shape
        (156, 9)
        >>> sim.geos
        ('geo_01', 'geo_02', 'geo_03')
    """
    settings = {
        "n_geos": n_geos,
        "n_periods": n_periods,
        "channels": tuple(channels) if isinstance(channels, (list, tuple)) else channels,
        "seed": seed,
        "market_size_spread": market_size_spread,
        "roas_spread": roas_spread,
        "shape_spread": shape_spread,
        "correlation": correlation,
        "noise": noise,
        "experiment_sd": experiment_sd,
        "start": start,
        "small_geos": small_geos,
    }
    _check_geo_settings(settings)
    chans, k = settings["channels"], len(settings["channels"])
    dates = pd.date_range(pd.Timestamp(start), periods=n_periods, freq="7D")
    # One stream for the national draws and one per geo: a geo's data does not shift when a setting that
    # concerns another geo changes.
    shared_seed, *geo_seeds = np.random.SeedSequence(seed).spawn(n_geos + 1)
    rng = np.random.default_rng(shared_seed)
    alpha, lam, roas = rng.uniform(0.1, 0.7, k), rng.uniform(1.0, 4.0, k), rng.uniform(0.8, 4.0, k)
    sizes = np.sort(np.exp(market_size_spread * rng.standard_normal(n_geos)))[::-1]
    sizes = sizes / sizes.mean()  # the average geo spends like the national simulator's market
    t = np.arange(n_periods) / max(n_periods - 1, 1)
    year = (dates.dayofyear.to_numpy() - 1) / 365.25
    late_start = n_periods - _small_geo_periods(n_periods)
    geos = tuple(f"geo_{g + 1:02d}" for g in range(n_geos))

    frames, truths, contribution_frames, lift_frames = [], [], [], []
    for g, (geo, size) in enumerate(zip(geos, sizes, strict=True)):
        geo_rng = np.random.default_rng(geo_seeds[g])
        rows = slice(late_start if g >= n_geos - small_geos else 0, n_periods)
        geo_dates, n = dates[rows], len(dates[rows])
        unit = _spend(geo_rng, geo_dates, k, correlation, np.zeros(n))
        # _spend draws each channel's budget over a 15x range, which would swamp the market size; the geo
        # keeps its own mix, flights and noise while its weekly total follows its size.
        spend = np.round(unit * (size * k * _GEO_CHANNEL_SPEND / unit.sum(axis=1).mean()), 2)

        # The geo draws all its deviations even when a spread is 0, so spreads change effects, not the data.
        z_roas, z_alpha, z_lam = geo_rng.standard_normal((3, k))
        geo_roas = roas * np.exp(roas_spread * z_roas - roas_spread**2 / 2)  # mean over geos: national
        geo_alpha = np.clip(alpha * np.exp(shape_spread * z_alpha), 0.02, 0.9)
        geo_lam = lam * np.exp(shape_spread * z_lam)
        media = _media(spend, geo_alpha, geo_lam)
        coef = geo_roas * spend.sum(axis=0) / media.sum(axis=0)
        contributions = media * coef

        level = float(spend.sum(axis=1).mean() * roas.mean() * 2.5)  # proportional to the market size
        z_trend, z_sin, z_cos = geo_rng.standard_normal(3)
        trend = level * 0.25 * (1.0 + 0.3 * z_trend) * t[rows]
        seasonality = level * (
            0.12 * (1.0 + 0.3 * z_sin) * np.sin(2 * np.pi * year[rows])
            + 0.06 * (1.0 + 0.3 * z_cos) * np.cos(4 * np.pi * year[rows])
        )
        promo = (geo_rng.uniform(size=n) < 0.12).astype(float)
        price = 1.0 + 0.04 * geo_rng.standard_normal(n)
        controls_effect = level * (0.15 * promo - 1.5 * (price - 1.0))
        revenue = (
            level
            + trend
            + seasonality
            + controls_effect
            + contributions.sum(axis=1)
            + level * noise * geo_rng.standard_normal(n)
        )

        frame = pd.DataFrame({"date": geo_dates, "geo": geo, **{c: spend[:, j] for j, c in enumerate(chans)}})
        frame["promo"], frame["price_index"], frame["revenue"] = promo, price, revenue
        frames.append(frame)
        truths.append(
            pd.DataFrame(
                {
                    "geo": geo,
                    "channel": chans,
                    "adstock_alpha": geo_alpha,
                    "saturation_lam": geo_lam,
                    "roas": contributions.sum(axis=0) / spend.sum(axis=0),
                    "contribution": contributions.sum(axis=0),
                    "spend": spend.sum(axis=0),
                }
            )
        )
        contribution_frames.append(
            pd.DataFrame(
                {
                    "date": np.repeat(geo_dates, k),
                    "geo": geo,
                    "channel": np.tile(np.asarray(chans), n),
                    "contribution": contributions.ravel(),
                }
            )
        )
        if g < 2:
            tests = _lift_tests(geo_rng, geo_dates, spend, geo_alpha, geo_lam, coef, chans, experiment_sd)
            lift_frames.append(tests.assign(geo=geo)[["geo", *LIFT_TEST_COLUMNS]])

    frame = pd.concat(frames, ignore_index=True)
    truth = pd.concat(truths, ignore_index=True)
    national = truth.groupby("channel", sort=False)[["contribution", "spend"]].sum()
    national.insert(0, "roas", national["contribution"] / national["spend"])
    national["share"] = national["contribution"] / frame["revenue"].sum()
    return SimulatedGeoMMM(
        frame=frame,
        truth=truth,
        national_truth=national,
        contributions=pd.concat(contribution_frames, ignore_index=True),
        lift_tests=pd.concat(lift_frames, ignore_index=True),
        channels=chans,
        geos=geos,
        settings=settings,
    )


def _small_geo_periods(n_periods: int) -> int:
    """Weeks a small geo keeps: the last third, rounded up."""
    return -(-n_periods // 3)


def _check_geo_settings(settings: dict[str, Any]) -> None:
    n_geos, n_periods, small = settings["n_geos"], settings["n_periods"], settings["small_geos"]
    problems = [
        int_problem("n_geos", n_geos, low=1),
        int_problem("n_periods", n_periods, low=2 * L_MAX),
        int_problem("seed", settings["seed"], low=0),
        int_problem("small_geos", small, low=0),
        *(number_problem(name, settings[name], low=0.0) for name in _SPREADS),
        number_problem("correlation", settings["correlation"], low=0.0, high=1.0, high_open=True),
        number_problem("noise", settings["noise"], low=0.0),
        number_problem("experiment_sd", settings["experiment_sd"], low=0.0),
    ]
    if all(is_int(v) for v in (n_geos, n_periods, small)) and small > 0:
        if small >= n_geos:
            problems.append(
                f"'small_geos' must be < n_geos ({n_geos}) so one geo has every week, got {small}"
            )
        if _small_geo_periods(n_periods) < 2 * L_MAX:
            problems.append(
                f"'n_periods' must be >= {6 * L_MAX - 2} when small_geos > 0, so that a small geo's last "
                f"third keeps {2 * L_MAX} weeks, got {n_periods}"
            )
    chans = settings["channels"]
    named = isinstance(chans, tuple) and all(isinstance(c, str) for c in chans)
    if not named or not chans or len(set(chans)) != len(chans) or set(chans) & {"organic", *_GEO_COLUMNS}:
        problems.append(
            f"'channels' must be a tuple of distinct names other than 'organic' and the frame's columns "
            f"{list(_GEO_COLUMNS)}, got {chans!r}"
        )
    try:
        start_ok = not pd.isna(pd.Timestamp(settings["start"]))
    except (TypeError, ValueError):  # pandas raises either, depending on the input
        start_ok = False
    if not start_ok:
        problems.append(f"'start' must be a date such as '2022-01-03', got {settings['start']!r}")
    raise_if_problems(
        [p for p in problems if p is not None],
        what="the geo simulator arguments",
        hint="Fix the simulate_geo arguments; see help(stackml.mmm.simulate_geo).",
    )


def _confounder(rng: np.random.Generator, n: int) -> np.ndarray:
    """A positive, persistent demand shock (AR(1) on the log scale)."""
    z = np.zeros(n)
    for i in range(1, n):
        z[i] = 0.7 * z[i - 1] + 0.5 * rng.standard_normal()
    return np.exp(z) / np.exp(z).mean() - 1.0


def _spend(
    rng: np.random.Generator, dates: pd.DatetimeIndex, k: int, rho: float, confound: np.ndarray
) -> np.ndarray:
    n = len(dates)
    base = np.exp(rng.uniform(np.log(2_000), np.log(30_000), k))
    common = rng.standard_normal(n)
    own = rng.standard_normal((n, k))
    log_noise = 0.35 * (np.sqrt(rho) * common[:, None] + np.sqrt(1 - rho) * own)
    year = (dates.dayofyear.to_numpy() - 1) / 365.25
    season = 1.0 + 0.2 * np.sin(2 * np.pi * year)  # marketers spend more when demand is high
    spend = base * np.exp(log_noise) * season[:, None]
    # Every third channel runs in flights: weeks on air alternate with weeks dark.
    for j in range(2, k, 3):
        on_air = np.zeros(n, dtype=bool)
        week = int(rng.integers(0, 4))
        while week < n:
            length = int(rng.integers(3, 8))
            on_air[week : week + length] = True
            week += length + int(rng.integers(2, 6))
        spend[:, j] = np.where(on_air, spend[:, j] * 1.8, 0.0)
    spend[:, 0] *= 1.0 + 0.8 * np.clip(confound, -0.9, None)  # the confounder also drives channel 0's budget
    return np.round(spend, 2)


def _media(
    spend: np.ndarray, alpha: np.ndarray, lam: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """Saturated adstock of ``spend / scale`` (default: each channel's maximum), as the model sees it."""
    scale = spend.max(axis=0) if scale is None else scale
    adstocked = GeometricAdstock(l_max=L_MAX).apply_np(spend / scale, alpha=alpha)
    return LogisticSaturation().apply_np(adstocked, lam=lam)


def _lift_tests(rng, dates, spend, alpha, lam, coef, chans, experiment_sd) -> pd.DataFrame:
    """One six-week go-dark test per channel, in a window with spend, measured with error."""
    rows = []
    n, weeks = len(dates), 6
    for j, channel in enumerate(chans):
        candidates = [s for s in range(L_MAX, n - weeks - L_MAX) if spend[s : s + weeks, j].sum() > 0]
        first = int(rng.choice(candidates)) if candidates else L_MAX
        window = np.zeros(n, dtype=bool)
        window[first : first + weeks] = True
        dark = spend.copy()
        dark[:, j] = counterfactual_spend(spend[:, j], window, -spend[window, j].sum())
        # The observed maxima scale both arms, so the counterfactual runs along the same response curve.
        actual = _media(spend, alpha, lam)[:, j].sum()
        true_lift = float((_media(dark, alpha, lam, scale=spend.max(axis=0))[:, j].sum() - actual) * coef[j])
        sd = abs(true_lift) * experiment_sd
        rows.append(
            (
                channel,
                dates[first],
                dates[first + weeks - 1],
                -spend[window, j].sum(),
                true_lift + sd * rng.standard_normal(),
                sd,
            )
        )
    return pd.DataFrame(rows, columns=list(LIFT_TEST_COLUMNS))


def _touchpoints(rng: np.random.Generator, frame: pd.DataFrame, chans: tuple[str, ...]) -> pd.DataFrame:
    """Split each week into days and channels, as ad platforms and a shop would report them."""
    n, k = len(frame), len(chans)
    day_share = rng.dirichlet(np.full(7, 20.0), size=n)  # (T, 7) revenue by weekday
    spend_share = rng.dirichlet(np.full(7, 5.0), size=(n, k))  # (T, K, 7) spend by weekday
    cpm = rng.uniform(4.0, 30.0, k)
    ctr = rng.uniform(0.004, 0.03, k)
    days = frame["date"].to_numpy()[:, None] + np.arange(7)[None, :] * np.timedelta64(1, "D")
    revenue = frame["revenue"].to_numpy()[:, None] * day_share  # (T, 7)
    spend = frame[list(chans)].to_numpy()[:, :, None] * spend_share  # (T, K, 7)
    impressions = np.round(spend / cpm[None, :, None] * 1000 * rng.lognormal(0, 0.1, spend.shape))
    clicks = np.round(impressions * ctr[None, :, None] * rng.lognormal(0, 0.15, spend.shape))
    # Platforms report last-click revenue: a day's revenue split by clicks, against organic visits.
    organic = np.maximum(clicks.sum(axis=1).mean(), 1.0) * 2.0 * np.ones((n, 7))
    share = clicks / (clicks.sum(axis=1, keepdims=True) + organic[:, None, :])
    paid_revenue = revenue[:, None, :] * share
    rows = {
        "date": np.concatenate([np.repeat(days[:, None, :], k, axis=1).ravel(), days.ravel()]),
        "channel": np.concatenate([np.tile(np.repeat(np.asarray(chans), 7), n), np.full(n * 7, "organic")]),
        "spend": np.concatenate([spend.ravel(), np.zeros(n * 7)]),
        "impressions": np.concatenate([impressions.ravel(), np.zeros(n * 7)]),
        "clicks": np.concatenate([clicks.ravel(), organic.ravel()]),
        "revenue": np.concatenate([paid_revenue.ravel(), (revenue - paid_revenue.sum(axis=1)).ravel()]),
    }
    out = pd.DataFrame(rows)
    out["conversions"] = out["revenue"] / _AOV
    out["date"] = pd.to_datetime(out["date"])
    return out[["date", "channel", "spend", "impressions", "clicks", "conversions", "revenue"]].sort_values(
        ["date", "channel"], ignore_index=True
    )
