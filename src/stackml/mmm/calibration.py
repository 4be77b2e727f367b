"""Calibration with lift tests: each experiment becomes a likelihood term on the model's own counterfactual.

A lift test row says: during ``start_date..end_date``, changing ``channel``'s spend by ``spend_change`` in
total moved the target by ``incremental_target`` (standard error ``incremental_target_sd``). A go-dark test
has ``spend_change`` equal to minus the window's spend.

Inside the PyMC graph we recompute the channel's contribution twice over the whole series, with the actual
spend and with the spend changed in the window, and sum the difference from the window's first period until
``l_max - 1`` periods after its last. The full series is used so that carryover is counted both ways: spend
before the window still carries into it, and the changed spend keeps acting after the window ends.
``incremental_target`` is therefore the total effect of the change, lagged effects included.

The change is spread over the window in proportion to the actual spend (so a go-dark test zeroes the window
exactly); when the window had no spend, it is spread evenly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.errors import InputError, raise_if_problems
from stackml.mmm.amounts import gap, is_above, is_below, precise
from stackml.mmm.transforms import lag_matrix

if TYPE_CHECKING:
    from stackml.mmm._design import Design

__all__ = ["LIFT_TEST_COLUMNS", "LiftDesign", "build_lift_design", "counterfactual_spend", "load_lift_tests"]

LIFT_TEST_COLUMNS = (
    "channel",
    "start_date",
    "end_date",
    "spend_change",
    "incremental_target",
    "incremental_target_sd",
)
_NUMERIC = ("spend_change", "incremental_target", "incremental_target_sd")
_HINT = (
    "A lift-test CSV needs the columns channel,start_date,end_date,spend_change,incremental_target,"
    "incremental_target_sd with one experiment per row; "
    "a go-dark test has spend_change = -(the window's spend)."
)


def load_lift_tests(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and check lift tests from a CSV path or a DataFrame.

    Returns:
        A frame with exactly :data:`LIFT_TEST_COLUMNS`, dates parsed, numbers as floats.

    Example:
        >>> rows = pd.DataFrame({"channel": ["tv"], "start_date": ["2024-01-01"], "end_date": ["2024-01-28"],
        ...     "spend_change": [-1000.0], "incremental_target": [-2500.0], "incremental_target_sd": [300.0]})
        >>> load_lift_tests(rows).shape
        (1, 6)
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"Lift-test file not found: '{source}'.", hint=_HINT)
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read the lift-test CSV '{source}': {exc}", hint=_HINT) from exc
    problems = []
    missing = [c for c in LIFT_TEST_COLUMNS if c not in frame.columns]
    if missing:
        problems.append(f"missing columns {missing} (got {list(frame.columns)})")
        raise_if_problems(problems, what="the lift tests", hint=_HINT)
    if frame.empty:
        raise_if_problems(["no rows"], what="the lift tests", hint=_HINT)
    frame = frame[list(LIFT_TEST_COLUMNS)].copy()
    frame["channel"] = frame["channel"].astype(str)
    for column in ("start_date", "end_date"):
        parsed = pd.to_datetime(frame[column], errors="coerce")
        for row in np.flatnonzero(parsed.isna()):
            problems.append(f"row {row + 1}: '{column}' is not a date ({frame[column].iloc[row]!r})")
        frame[column] = parsed
    for column in _NUMERIC:
        parsed = pd.to_numeric(frame[column], errors="coerce")
        for row in np.flatnonzero(~np.isfinite(parsed.to_numpy(dtype=float))):
            problems.append(f"row {row + 1}: '{column}' is not a finite number ({frame[column].iloc[row]!r})")
        frame[column] = parsed.astype(float)
    for row in range(len(frame)):
        r = frame.iloc[row]
        if pd.notna(r.start_date) and pd.notna(r.end_date) and r.end_date < r.start_date:
            problems.append(
                f"row {row + 1}: end_date {r.end_date.date()} is before start_date {r.start_date.date()}"
            )
        if np.isfinite(r.incremental_target_sd) and r.incremental_target_sd <= 0:
            problems.append(
                f"row {row + 1}: incremental_target_sd must be > 0, got {r.incremental_target_sd:g}"
            )
        if np.isfinite(r.spend_change) and not is_above(abs(r.spend_change), 0.0):
            problems.append(
                f"row {row + 1}: spend_change is 0 (got {precise(r.spend_change)}), so the test says nothing "
                "about the channel"
            )
    raise_if_problems(problems, what="the lift tests", hint=_HINT)
    return frame.reset_index(drop=True)


def counterfactual_spend(spend: np.ndarray, in_window: np.ndarray, spend_change: float) -> np.ndarray:
    """One channel's spend ``(T,)`` with ``spend_change`` added over the window (see the module docstring)."""
    window_spend = float(spend[in_window].sum())
    changed = spend.astype(float).copy()
    if window_spend > 0:
        changed[in_window] *= 1.0 + spend_change / window_spend
    else:
        changed[in_window] += spend_change / in_window.sum()
    # A go-dark test written with a few decimals may remove a hair more than was spent (accepted within
    # amounts.REL_TOL): the window goes dark, never negative.
    return np.clip(changed, 0.0, None)


@dataclass(frozen=True)
class LiftDesign:
    """Lift tests as arrays for the graph, all in the model's scaled units."""

    channel_index: np.ndarray  # (R,) int
    actual_lagged: np.ndarray  # (l_max, T, R) scaled actual spend of each test's channel
    changed_lagged: np.ndarray  # (l_max, T, R) scaled spend with the test's change
    mask: np.ndarray  # (T, R) 1 where the test's effect is counted
    observed: np.ndarray  # (R,) incremental target / target scale
    sd: np.ndarray  # (R,)

    @property
    def n_tests(self) -> int:
        return len(self.channel_index)


def build_lift_design(tests: pd.DataFrame, design: Design, l_max: int) -> LiftDesign:
    """Turn checked lift tests into :class:`LiftDesign`, reporting every test that does not fit the data."""
    problems = []
    channel_index, actual, changed, masks = [], [], [], []
    dates = design.dates
    for row, test in enumerate(tests.itertuples(index=False), start=1):
        if test.channel not in design.channels:
            problems.append(
                f"row {row}: channel {test.channel!r} is not one of the model's {list(design.channels)}"
            )
            continue
        in_window = np.asarray((dates >= test.start_date) & (dates <= test.end_date))
        if not in_window.any():
            problems.append(
                f"row {row}: the window {test.start_date.date()}..{test.end_date.date()} "
                f"holds no period of the data ({dates[0].date()}..{dates[-1].date()})"
            )
            continue
        k = design.channels.index(test.channel)
        spend = design.spend[:, k]
        window_spend = float(spend[in_window].sum())
        if is_below(test.spend_change, -window_spend):  # a go-dark test written with a few decimals passes
            problems.append(
                f"row {row}: spend_change {precise(test.spend_change)} is below minus the window's spend "
                f"({precise(-window_spend)}) {gap(test.spend_change, -window_spend)}; a test cannot remove "
                "more than was spent: use spend_change >= -(the channel's spend from start_date to end_date)"
            )
            continue
        first, last = np.flatnonzero(in_window)[[0, -1]]
        mask = np.zeros(design.n_periods)
        mask[first : min(last + l_max, design.n_periods)] = 1.0  # the window plus its carryover tail
        channel_index.append(k)
        actual.append(spend / design.spend_scale[k])
        changed.append(counterfactual_spend(spend, in_window, test.spend_change) / design.spend_scale[k])
        masks.append(mask)
    raise_if_problems(problems, what="the lift tests against the data", hint=_HINT)
    scale = design.target_scale
    return LiftDesign(
        channel_index=np.asarray(channel_index, dtype=int),
        actual_lagged=lag_matrix(np.stack(actual, axis=1), l_max),
        changed_lagged=lag_matrix(np.stack(changed, axis=1), l_max),
        mask=np.stack(masks, axis=1),
        observed=tests["incremental_target"].to_numpy(dtype=float) / scale,
        sd=tests["incremental_target_sd"].to_numpy(dtype=float) / scale,
    )


def add_lift_likelihood(pm: Any, lift: LiftDesign, contribution: Any) -> Any:
    """Add ``lift_measured`` (observed) and ``lift_predicted`` to the current PyMC model.

    Args:
        pm: the pymc module.
        lift: the tests.
        contribution: ``f(x_lagged, channel_index) -> (T, R)`` scaled contribution in PyTensor, with the
            channel parameters picked per column by ``channel_index``.
    """
    delta = contribution(lift.changed_lagged, lift.channel_index) - contribution(
        lift.actual_lagged, lift.channel_index
    )
    predicted = (delta * lift.mask).sum(axis=0)
    pm.Deterministic("lift_predicted", predicted, dims="lift_test")
    return pm.Normal("lift_measured", mu=predicted, sigma=lift.sd, observed=lift.observed, dims="lift_test")
