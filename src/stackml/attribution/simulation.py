"""User journeys with known incremental channel effects, from the same world as the MMM simulator.

Path attribution can only be judged against a truth, and observational logs never hold one. This module
simulates users inside the world of :func:`stackml.mmm.simulation.simulate` (its channels and their daily
spend), so one seed yields both the weekly media-mix table and the user-level touchpoints, and it knows what
each channel really caused.

The world, per user:

* **Arrival.** A user is active for ``active_days`` consecutive days starting on a uniform day; windows that
  stick out of the simulated period are cut, so every calendar day holds about the same number of users.
* **Exposure.** On each active day the user sees channel ``c`` with probability
  ``1 - exp(-rate * reach_u * spend_c(day) / mean spend_c)``: touches move with the day's spend, ``reach_u``
  (exponential, mean 1) lets some users see nothing and others a lot, and ``rate`` is set so a user sees
  about ``touches_per_user`` touches in all.
* **Intent.** Each user has a baseline propensity ``p_u`` (lognormal, mean 1) and on some days is "in the
  market" (``z_ud`` is 40 on 2% of days and 0.2 otherwise, mean 1). The baseline daily conversion
  probability is ``baseline * p_u * z_ud``.
* **Retargeting.** One channel (``retargeting``, by default the second one, whose default effect is 0) is
  shown in proportion to ``p_u * z_ud``: to users who would convert anyway, on the very days they are about
  to, and always as the day's last touch. It gets many touches, often the one that carries a conversion,
  and causes nothing. This is what makes last
  touch wrong, and the benchmark meaningful.
* **Conversion.** The daily conversion probability is
  ``min(0.9, baseline * p_u * z_ud + sum_c effect_c * adstock_c)``, where ``adstock_c`` is the user's
  exposures to ``c`` since their last conversion, each decaying with a half-life of ``half_life_days``
  (the day's own exposures count in full). A conversion resets the adstock: a new journey starts.
  Each conversion carries a lognormal value (mean 50).

The truth is exact, not a second noisy simulation. Exposures and intent never depend on conversions or on
the effects, so holding them fixed (common random numbers) and changing only ``effect_c`` is the true
counterfactual for the simulated users. Given them, the expected number of conversions is computed by a
forward recursion over the day of the user's last conversion, which is all the adstock depends on
(``adstock since r = adstock since arrival - decay^(t - r) * adstock at r``), so the expectation is a finite
sum, evaluated to floating-point precision. A channel's incremental conversions are the expected
conversions with every effect minus those with ``effect_c = 0``, and its true share is its incremental
conversions over the sum of all channels' incremental conversions. Because a conversion resets everybody's
adstock and the probability is capped, channels interact slightly, so the incremental conversions need not
add up to the conversions all media caused together (``expected_conversions - baseline_conversions``).

Touchpoints are ``user_id, ts, channel, conversion, value``, the layout
:func:`~stackml.attribution.paths.paths_from_touchpoints` cuts. Touches of one user never share a timestamp:
a day's touches fall in distinct slots between 06:00 and 22:00 (retargeting always last). A
conversion is flagged on the user's last touch of the conversion day; a conversion on a day without a touch
gets its own row, at 22:00 or later, of the channel ``"direct"``: no touch is invented for a paid channel.
``"direct"`` is in the truth with effect 0 and share 0; :meth:`SimulatedJourneys.credit_error` leaves it out
and compares each method's credit among the paid channels with the truth.

Example:
    >>> sim = simulate_journeys(2_000, seed=1)
    >>> list(sim.truth.columns)
    ['channel', 'effect', 'touches', 'incremental_conversions', 'share', 'spend', 'roas']
    >>> round(float(sim.truth["share"].sum()), 6)
    1.0
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError, raise_if_problems

if TYPE_CHECKING:
    from stackml.attribution.paths import Paths
    from stackml.mmm.simulation import SimulatedMMM

__all__ = ["DIRECT", "SimulatedJourneys", "simulate_journeys"]

DIRECT = "direct"  # the channel of a conversion on a day without a touch
CAP = 0.9  # a day's conversion probability never exceeds this
IN_MARKET_SHARE = 0.02  # share of user-days a user is "in the market"
IN_MARKET_LIFT = 40.0  # intent on such a day (0.2 otherwise, mean 1); conversion and retargeting follow it
PROPENSITY_SD = 0.5  # sd of the log baseline propensity across users
VALUE_MEAN, VALUE_SD = 50.0, 0.6  # lognormal conversion value: mean and sd of its log
EFFECT_HI, EFFECT_LO = 0.02, 0.005  # the seeded default effects span this range
_BLOCK = 4_096  # users per block of the exact recursion
_CHUNK = 50_000  # users simulated at once (bounds memory: a few (users, days, channels) arrays)
_DAY_START, _DAY_SPAN = 6 * 3600, 16 * 3600  # touches fall between 06:00 and 22:00


@dataclass
class SimulatedJourneys:
    """Simulated user journeys, the weekly table of the same world, and the truth behind them.

    Attributes:
        touchpoints: ``user_id, ts, channel, conversion, value``, one row per touch (plus a ``"direct"`` row
            for a conversion on a day without a touch), sorted by user and time.
        truth: ``channel, effect, touches, incremental_conversions, share, spend, roas``: the exact expected
            conversions each channel caused, its share of all channels', its spend over the simulated days
            and the conversions it caused per spend unit (``"direct"`` last, with 0 and no ROAS).
        weekly: ``date, <channel spend...>, conversions, revenue`` per week, the conversions and revenue
            summed from the simulated users (the media-mix view of the same journeys).
        mmm: the media-mix world the spend comes from (its own revenue and truth are not the users').
        channels: the paid channels, in the world's order.
        retargeting: the channel shown to users about to convert anyway (None without one).
        expected_conversions: expected conversions of these users, every effect on.
        baseline_conversions: expected conversions with every effect off (same exposures).
        settings: the arguments that made it.
    """

    touchpoints: pd.DataFrame
    truth: pd.DataFrame
    weekly: pd.DataFrame
    mmm: SimulatedMMM
    channels: tuple[str, ...]
    retargeting: str | None
    expected_conversions: float
    baseline_conversions: float
    settings: dict[str, Any] = field(default_factory=dict)

    def paths(self, lookback_days: float = 30.0) -> Paths:
        """The journeys, cut in SQL by :func:`paths_from_touchpoints` in a throwaway in-memory DuckDB."""
        from stackml.attribution.paths import paths_from_touchpoints
        from stackml.warehouse import connect

        with connect("duckdb:///:memory:") as wh:
            wh.ingest(self.touchpoints, "touchpoints")
            return paths_from_touchpoints(wh, "touchpoints", lookback_days=lookback_days)

    def write(self, folder: str | Path, *, force: bool = False) -> dict[str, Path]:
        """Write ``touchpoints.parquet``, ``weekly.csv`` and ``truth.csv`` (:attr:`paid_truth`) to ``folder``.

        The files are written into a new folder beside it that is then renamed, so a new ``folder`` holds
        all three or, after a failure, nothing. With ``force`` an existing folder keeps its other files and
        each of the three is replaced in one rename.

        Raises:
            InputError: ``folder`` exists and is not empty, and ``force`` is not set.
        """
        import shutil
        import tempfile

        target = Path(folder).expanduser()
        if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
            raise InputError(
                f"'{target}' already exists and is not an empty folder.",
                hint="Name a new folder, or pass --force to replace its simulation files.",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            self.touchpoints.to_parquet(staging / "touchpoints.parquet", index=False)
            self.weekly.to_csv(staging / "weekly.csv", index=False)
            self.paid_truth.to_csv(staging / "truth.csv", index=False)
            if target.is_dir():
                for written in staging.iterdir():
                    os.replace(written, target / written.name)
            else:
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {name: target / name for name in ("touchpoints.parquet", "weekly.csv", "truth.csv")}

    @property
    def paid_truth(self) -> pd.DataFrame:
        """The truth of the paid channels as a truth file holds it: ``channel, share, roas`` (``roas`` in
        incremental conversions per spend unit); what :func:`~stackml.attribution.triangulation.read_truth`
        reads and ``stackml attribution run --truth`` compares with."""
        paid = self.truth[self.truth["channel"].isin(self.channels)]
        return paid[["channel", "share", "roas"]].reset_index(drop=True)

    def credit_error(self, shares: dict[str, dict[str, float]]) -> pd.DataFrame:
        """How far each method's credit is from the true incremental shares.

        Every method splits all conversions, baseline ones included, while the truth splits only what media
        caused; so each method's shares are compared among the paid channels: ``"direct"`` (and any channel
        unknown to the truth) is dropped and the rest rescaled to sum to 1.

        Args:
            shares: ``{method: {channel: share}}``, as :meth:`AttributionResult.shares` returns it.

        Returns:
            One row per method: ``credit - truth`` per channel and ``total_abs_error`` (the sum of their
            absolute values, 0 to 2), sorted by it.
        """
        from stackml.attribution.triangulation import credit_error, read_truth

        return credit_error(shares, read_truth(self.paid_truth))


def simulate_journeys(
    n_users: int = 10_000,
    *,
    preset: str | None = "2y_3ch",
    seed: int = 0,
    days: int | None = None,
    effects: dict[str, float] | None = None,
    baseline: float = 0.004,
    retargeting: str | None = None,
    half_life_days: float = 3.0,
    active_days: int = 28,
    touches_per_user: float = 3.5,
    **mmm_overrides: Any,
) -> SimulatedJourneys:
    """Simulate ``n_users`` users' touches and conversions in the MMM world of ``preset`` and ``seed``.

    Args:
        n_users: users to simulate (about 0.2 s per 10,000, 15 s per million).
        preset, seed, mmm_overrides: passed to :func:`stackml.mmm.simulation.simulate` (e.g. ``n_periods``,
            ``channels``, ``correlation``, ``start``); the world's channels and daily spend drive exposure.
        days: simulate only the first ``days`` days of the world (default: all of it).
        effects: daily conversion probability added per unit of adstock, by channel (>= 0). Channels not
            named keep their seeded default: geometrically spaced from 0.02 down to 0.005 in a seeded order,
            and 0 for the retargeting channel.
        baseline: the mean daily conversion probability without media (0 <= baseline < 0.9).
        retargeting: the channel targeted at users about to convert (default: the second channel, or none
            when the world has one channel).
        half_life_days: how fast a touch's effect fades.
        active_days: how long each user is around.
        touches_per_user: the mean number of touches a user sees (before the world's edges cut windows).

    Raises:
        InputError: a bad count, an unknown preset, channel or option, a negative or non-finite effect.
    """
    from stackml.mmm.simulation import PRESETS, simulate

    _check_arguments(n_users, preset, days, baseline, half_life_days, active_days, touches_per_user)
    known = set(inspect.signature(simulate).parameters) - {"preset", "seed"}
    unknown = sorted(set(mmm_overrides) - known)
    if unknown:
        raise InputError(
            f"Unknown simulator option(s) {unknown}.",
            hint=f"simulate_journeys passes these on to the MMM simulator, which knows {sorted(known)}.",
        )
    if preset is not None and preset not in PRESETS:
        raise InputError(
            f"Unknown simulator preset {preset!r}; choose one of {sorted(PRESETS)} or None.",
            hint="With preset=None pass n_periods and channels yourself.",
        )
    mmm = simulate(preset, seed=seed, **mmm_overrides)
    channels = tuple(mmm.channels)
    if DIRECT in channels:
        raise InputError(
            f"A channel may not be called {DIRECT!r}: that name holds conversions on days without a touch.",
            hint="Rename the channel.",
        )
    daily = (
        mmm.touchpoints[mmm.touchpoints["channel"].isin(channels)]
        .pivot(index="date", columns="channel", values="spend")[list(channels)]
        .sort_index()
    )
    world_days = len(daily)
    if days is not None and days > world_days:
        raise InputError(
            f"days={days} is longer than the simulated world ({world_days} days).",
            hint="Lower days or pass a longer n_periods.",
        )
    days = world_days if days is None else days
    daily = daily.iloc[:days]
    target = _pick_retargeting(channels, retargeting)
    effect = _effects(channels, effects, target, seed)

    spend = daily.to_numpy(dtype=float)
    mean = spend.mean(axis=0)
    intensity = np.divide(spend, mean, out=np.zeros_like(spend), where=mean > 0)  # (days, K), mean 1
    world = _World(
        intensity=intensity,
        effect=np.array([effect[c] for c in channels]),
        target=None if target is None else channels.index(target),
        baseline=baseline,
        decay=0.5 ** (1.0 / half_life_days),
        active_days=active_days,
        rate=touches_per_user / (active_days * len(channels)),
    )
    rng = np.random.default_rng([seed, 20_260_101])  # its own stream: the MMM's draws stay as they were
    parts, expected = [], np.zeros(len(channels) + 2)
    for first in range(0, n_users, _CHUNK):
        rows, chunk_expected = _simulate_chunk(world, rng, first, min(_CHUNK, n_users - first))
        parts.append(rows)
        expected += chunk_expected
    start = pd.Timestamp(daily.index[0])
    touchpoints = _touchpoint_frame(parts, channels, start)
    truth = _truth(channels, effect, touchpoints, expected[0], expected[2:], daily.sum(axis=0))
    weekly = _weekly(daily, touchpoints, start)
    return SimulatedJourneys(
        touchpoints=touchpoints,
        truth=truth,
        weekly=weekly,
        mmm=mmm,
        channels=channels,
        retargeting=target,
        expected_conversions=float(expected[0]),
        baseline_conversions=float(expected[1]),
        settings={
            "n_users": n_users,
            "preset": preset,
            "seed": seed,
            "days": days,
            "effects": effect,
            "baseline": baseline,
            "retargeting": target,
            "half_life_days": half_life_days,
            "active_days": active_days,
            "touches_per_user": touches_per_user,
            **mmm_overrides,
        },
    )


# -- checks and defaults -------------------------------------------------------------------------------------


def _check_arguments(
    n_users: Any,
    preset: Any,
    days: Any,
    baseline: Any,
    half_life_days: Any,
    active_days: Any,
    touches_per_user: Any,
) -> None:
    problems = []
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        problems.append(f"n_users must be an int >= 1, got {n_users!r}")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1):
        problems.append(f"days must be an int >= 1 or None, got {days!r}")
    if not _finite(baseline) or not 0.0 <= baseline < CAP:
        problems.append(f"baseline must be a daily probability in [0, {CAP}), got {baseline!r}")
    if not _finite(half_life_days) or half_life_days <= 0:
        problems.append(f"half_life_days must be > 0, got {half_life_days!r}")
    if isinstance(active_days, bool) or not isinstance(active_days, (int, np.integer)) or active_days < 1:
        problems.append(f"active_days must be an int >= 1, got {active_days!r}")
    if not _finite(touches_per_user) or touches_per_user <= 0:
        problems.append(f"touches_per_user must be > 0, got {touches_per_user!r}")
    if preset is not None and not isinstance(preset, str):
        problems.append(f"preset must be a preset's name or None, got {preset!r}")
    raise_if_problems(problems, what="the journey simulator's arguments", hint="Fix the arguments.")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def _pick_retargeting(channels: tuple[str, ...], retargeting: str | None) -> str | None:
    if retargeting is None:
        return channels[1] if len(channels) > 1 else None
    if retargeting not in channels:
        raise InputError(
            f"The retargeting channel {retargeting!r} is not a channel of the world {list(channels)}.",
            hint="Name one of the world's channels.",
        )
    return retargeting


def _effects(
    channels: tuple[str, ...], given: dict[str, float] | None, target: str | None, seed: int
) -> dict[str, float]:
    """Seeded defaults that differ strongly (a fourfold range, retargeting at 0), then the caller's."""
    given = dict(given or {})
    problems = [f"{c!r} is not a channel of the world {list(channels)}" for c in given if c not in channels]
    problems += [
        f"the effect of {c!r} must be a finite number >= 0, got {v!r}"
        for c, v in given.items()
        if c in channels and (not _finite(v) or v < 0)
    ]
    raise_if_problems(
        problems, what="the channel effects", hint="Give {channel: effect >= 0} for the world's channels."
    )
    paid = [c for c in channels if c != target]
    order = np.random.default_rng([seed, 7]).permutation(len(paid))
    spaced = np.geomspace(EFFECT_HI, EFFECT_LO, len(paid)) if len(paid) > 1 else np.array([0.02])
    defaults = {c: float(spaced[order[i]]) for i, c in enumerate(paid)}
    if target is not None:
        defaults[target] = 0.0
    return {c: float(given.get(c, defaults[c])) for c in channels}


# -- the simulation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _World:
    intensity: np.ndarray  # (days, K) each channel's spend over its mean
    effect: np.ndarray  # (K,)
    target: int | None  # the retargeting channel's index
    baseline: float
    decay: float  # adstock carried to the next day
    active_days: int
    rate: float  # touches per user, channel and day at mean spend and reach


def _simulate_chunk(
    world: _World, rng: np.random.Generator, first: int, n: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Users ``first .. first + n``: their touch and conversion rows, and their expected conversions.

    The expectations are ``[all effects, no effect, without channel 0, without channel 1, ...]``.
    """
    n_days, k = world.intensity.shape
    a = world.active_days
    arrival = rng.integers(-(a - 1), n_days, n)
    day = arrival[:, None] + np.arange(a)[None, :]  # (n, a) calendar day
    active = (day >= 0) & (day < n_days)
    reach = rng.exponential(1.0, n)
    propensity = rng.lognormal(-(PROPENSITY_SD**2) / 2, PROPENSITY_SD, n)
    in_market = rng.random((n, a)) < IN_MARKET_SHARE
    low = (1.0 - IN_MARKET_SHARE * IN_MARKET_LIFT) / (1.0 - IN_MARKET_SHARE)
    intent = np.where(in_market, IN_MARKET_LIFT, low)  # mean 1
    base = world.baseline * propensity[:, None] * intent * active  # (n, a) baseline daily probability

    lam = world.rate * reach[:, None, None] * world.intensity[np.clip(day, 0, n_days - 1)]
    lam *= active[:, :, None]
    if world.target is not None:
        lam[:, :, world.target] *= propensity[:, None] * intent  # shown to whoever is about to convert
    exposed = rng.random((n, a, k)) < -np.expm1(-lam)  # (n, a, k)

    # Realised conversions: the adstock accumulates, converts with the day's probability, then resets.
    uniforms = rng.random((n, a))
    adstock = np.zeros((n, k))
    converted = np.zeros((n, a), dtype=bool)
    for t in range(a):
        adstock *= world.decay
        adstock += exposed[:, t]
        p = np.minimum(base[:, t] + adstock @ world.effect, CAP) * active[:, t]
        converted[:, t] = uniforms[:, t] < p
        adstock[converted[:, t]] = 0.0

    # Exact expectations under the same exposures, with each effect switched off in turn.
    stock = np.zeros((n, a, k))  # adstock since arrival, never reset
    for t in range(a):
        stock[:, t] = exposed[:, t] + (world.decay * stock[:, t - 1] if t else 0.0)
    media = stock @ world.effect  # (n, a)
    # Without media a day's probability does not depend on the past, so expectations just add up.
    plain = np.minimum(base, CAP).sum(axis=1)
    moved = (exposed & (world.effect > 0)).any(axis=(1, 2))  # users some effect reaches
    full = plain.copy()
    full[moved] = _expected(base[moved], media[moved], active[moved], world.decay)
    expected = np.zeros(k + 2)
    expected[0], expected[1] = full.sum(), plain.sum()
    for c in range(k):
        seen = exposed[:, :, c].any(axis=1) & moved  # the others' conversions do not change without c
        if world.effect[c] == 0 or not seen.any():
            expected[2 + c] = expected[0]
            continue
        without = media[seen] - world.effect[c] * stock[seen, :, c]
        expected[2 + c] = full[~seen].sum() + _expected(base[seen], without, active[seen], world.decay).sum()

    return _rows(world, rng, first, day, exposed, converted), expected


def _expected(base: np.ndarray, media: np.ndarray, active: np.ndarray, decay: float) -> np.ndarray:
    """Each user's expected conversions, exactly, by a forward recursion over their last conversion day.

    ``media[:, t]`` is ``sum_c effect_c * adstock_c`` counted from arrival. A user whose last conversion was
    on day ``r`` has ``media[:, t] - decay^(t - r) * media[:, r]`` of it on day ``t``, so the probability of
    each last-conversion day (``q``; column 0: none yet) is all the recursion carries.
    """
    n, a = base.shape
    powers = decay ** np.arange(a + 1)
    total = np.zeros(n)
    for lo in range(0, n, _BLOCK):  # blocks small enough for the CPU's cache
        hi = min(lo + _BLOCK, n)
        padded = np.concatenate([np.zeros((hi - lo, 1)), media[lo:hi]], axis=1)  # [:, r + 1]: day r
        level = base[lo:hi] + media[lo:hi]
        idle = ~active[lo:hi]
        q = np.zeros((hi - lo, a + 1))
        q[:, 0] = 1.0
        converted = np.zeros(hi - lo)
        for t in range(a):
            p = padded[:, : t + 1] * powers[t + 1 : 0 : -1]
            np.subtract(level[:, t, None], p, out=p)
            np.clip(p, 0.0, CAP, out=p)
            p[idle[:, t]] = 0.0
            held = q[:, : t + 1]
            p *= held  # now the chance of converting today from each last-conversion day
            held -= p
            q[:, t + 1] = p.sum(axis=1)
            converted += q[:, t + 1]
        total[lo:hi] = converted
    return total


def _rows(
    world: _World,
    rng: np.random.Generator,
    first: int,
    day: np.ndarray,
    exposed: np.ndarray,
    converted: np.ndarray,
) -> dict[str, np.ndarray]:
    """Touch rows (a distinct time slot per channel and day) and the conversion flags and values."""
    n, a, k = exposed.shape
    keys = rng.random((n, a, k))
    if world.target is not None:
        keys[:, :, world.target] += 1.0  # retargeting follows the day's visit: always its last touch
    slot = (keys[:, :, None, :] < keys[:, :, :, None]).sum(axis=3)  # each channel's rank in its user-day
    width = _DAY_SPAN // k
    seconds = _DAY_START + slot * width + (rng.random((n, a, k)) * width).astype(np.int64)

    user, t, channel = np.nonzero(exposed)
    flag = np.zeros(len(user), dtype=np.int8)
    last = np.where(exposed, slot, -1).argmax(axis=2)  # (n, a) the day's last touch, if any
    has_touch = exposed.any(axis=2)
    conv_user, conv_t = np.nonzero(converted)
    on_touch = has_touch[conv_user, conv_t]
    # Flag the day's last touch: its position among the nonzero (user, day, channel) triples.
    index = np.full((n, a, k), -1, dtype=np.int64)
    index[user, t, channel] = np.arange(len(user))
    cu, ct = conv_user[on_touch], conv_t[on_touch]
    flagged = index[cu, ct, last[cu, ct]]
    values = rng.lognormal(np.log(VALUE_MEAN) - VALUE_SD**2 / 2, VALUE_SD, len(conv_user))
    flag[flagged] = 1
    value = np.zeros(len(user))
    value[flagged] = values[on_touch]
    # Conversions on a day without a touch: a "direct" row after the day's touch slots.
    du, dt = conv_user[~on_touch], conv_t[~on_touch]
    direct_seconds = _DAY_START + _DAY_SPAN + (rng.random(len(du)) * 3600).astype(np.int64)
    return {
        "user": np.concatenate([user, du]) + first,
        "day": np.concatenate([day[user, t], day[du, dt]]),
        "seconds": np.concatenate([seconds[user, t, channel], direct_seconds]),
        "channel": np.concatenate([channel, np.full(len(du), k)]),
        "conversion": np.concatenate([flag, np.ones(len(du), dtype=np.int8)]),
        "value": np.concatenate([value, values[~on_touch]]),
    }


# -- the tables ----------------------------------------------------------------------------------------------


def _touchpoint_frame(
    parts: list[dict[str, np.ndarray]], channels: tuple[str, ...], start: pd.Timestamp
) -> pd.DataFrame:
    rows = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    clock = rows["day"].astype(np.int64) * 86_400 + rows["seconds"]
    order = np.lexsort((clock, rows["user"]))
    names = np.array([*channels, DIRECT], dtype=object)
    return pd.DataFrame(
        {
            "user_id": rows["user"][order].astype(np.int64),
            "ts": start + pd.to_timedelta(clock[order], unit="s"),
            "channel": names[rows["channel"][order]],
            "conversion": rows["conversion"][order].astype(np.int64),
            "value": rows["value"][order],
        }
    )


def _truth(
    channels: tuple[str, ...],
    effect: dict[str, float],
    touchpoints: pd.DataFrame,
    expected_all: float,
    without: np.ndarray,
    spend: pd.Series,
) -> pd.DataFrame:
    """Incremental conversions per channel (exact expectations), their shares and their return per spend
    unit; ``"direct"`` gets 0 (and no ROAS: it has no spend)."""
    incremental = np.maximum(expected_all - without, 0.0)  # >= 0 up to rounding: effects only add
    total = incremental.sum()
    touches = touchpoints["channel"].value_counts()
    names = [*channels, DIRECT]
    return pd.DataFrame(
        {
            "channel": names,
            "effect": [*(effect[c] for c in channels), 0.0],
            "touches": [int(touches.get(c, 0)) for c in names],
            "incremental_conversions": [*incremental, 0.0],
            "share": [*(incremental / total if total > 0 else np.zeros(len(channels))), 0.0],
            "spend": [*(float(spend[c]) for c in channels), 0.0],
            "roas": [
                *(
                    i / float(spend[c]) if spend[c] > 0 else 0.0
                    for i, c in zip(incremental, channels, strict=True)
                ),
                np.nan,
            ],
        }
    )


def _weekly(daily: pd.DataFrame, touchpoints: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Spend per channel and the users' conversions and revenue per week (weeks start on the first day)."""
    week_of_day = np.arange(len(daily)) // 7
    spend = daily.groupby(week_of_day).sum()
    weeks = pd.RangeIndex(len(spend))
    converted = touchpoints[touchpoints["conversion"] == 1]
    week = ((converted["ts"] - start) // pd.Timedelta(days=7)).to_numpy()
    sales = converted.assign(week=week).groupby("week")["value"].agg(["size", "sum"]).reindex(weeks)
    frame = pd.DataFrame({"date": start + pd.to_timedelta(7 * weeks.to_numpy(), unit="D")})
    for channel in daily.columns:
        frame[channel] = spend[channel].to_numpy()
    frame["conversions"] = sales["size"].fillna(0).astype(np.int64).to_numpy()
    frame["revenue"] = sales["sum"].fillna(0.0).to_numpy()
    return frame
