"""Input checks for the media-mix model that collect every problem before raising once."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stackml.checks import int_problem, is_number
from stackml.errors import raise_if_problems  # noqa: F401 - re-exported for mmm/pipeline.py
from stackml.mmm._graph import DEFAULT_PRIORS
from stackml.mmm.amounts import precise
from stackml.mmm.selection import AUTO, CANDIDATES
from stackml.mmm.transforms import ADSTOCKS, SATURATIONS, Adstock, Saturation, saturation_choices

SAMPLERS = ("nutpie", "pymc")


def check_settings(model: Any) -> list[str]:
    """Problems with the constructor arguments of a ``MediaMixModel`` (checked at fit time, scikit-learn
    style)."""
    problems = []
    if not isinstance(model.adstock, Adstock) and model.adstock not in ADSTOCKS:
        problems.append(f"unknown adstock {model.adstock!r}; choose one of {sorted(ADSTOCKS)}")
    if not isinstance(model.saturation, Saturation) and model.saturation not in saturation_choices():
        problems.append(
            f"unknown saturation {model.saturation!r}; "
            f"choose 'default', 'auto' or one of {sorted(SATURATIONS)}"
        )
    ints = (
        None if model.l_max is None else int_problem("l_max", model.l_max, low=1),
        int_problem("yearly_seasonality", model.yearly_seasonality, low=0, extra=" (the Fourier order)"),
    )
    problems.extend(p for p in ints if p)
    for flag in ("trend", "time_varying_intercept"):
        if not isinstance(getattr(model, flag), (bool, np.bool_)):
            problems.append(f"'{flag}' must be True or False, got {getattr(model, flag)!r}")
    channels = list(model.channel_columns) if is_names(model.channel_columns) else None
    if not channels:
        problems.append(
            f"'channel_columns' must be a non-empty list of column names, got {model.channel_columns!r}"
        )
    if not is_names(model.control_columns):
        problems.append(f"'control_columns' must be a list of column names, got {model.control_columns!r}")
    names = [model.date_column, model.target_column, *(channels or []), *list(model.control_columns or ())]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"columns named in more than one role: {duplicated}")
    problems.extend(check_roas_prior(model.roas_prior, channels or []))
    problems.extend(check_priors(model))
    return problems


def check_priors(model: Any) -> list[str]:
    """``priors`` maps known variable names to ``(pymc distribution name, kwargs)``."""
    if model.priors is None:
        return []
    if not isinstance(model.priors, dict):
        return [
            f"'priors' must be a dict of name -> (distribution, kwargs), got {type(model.priors).__name__}"
        ]
    known = set(DEFAULT_PRIORS)
    for prefix, registry, chosen in (
        ("adstock", ADSTOCKS, model.adstock),
        ("saturation", SATURATIONS, model.saturation),
    ):
        if chosen == AUTO:  # a prior may concern any of the candidate families
            transforms = [SATURATIONS[name] for name in CANDIDATES]
        else:
            transforms = [chosen if not isinstance(chosen, str) else registry.get(chosen)]
        for transform in transforms:
            if transform is not None:
                known |= {f"{prefix}_{p}" for p in transform.param_names}
    problems = []
    for name, value in model.priors.items():
        if name not in known:
            problems.append(f"priors names unknown variable {name!r}; known: {sorted(known)}")
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str)
        if not ok or not isinstance(value[1], dict):
            problems.append(f"prior for {name!r} must be (distribution name, kwargs dict), got {value!r}")
    return problems


def check_roas_prior(roas_prior: Any, channels: list[str]) -> list[str]:
    """``roas_prior`` is None, ``(mean, sd)``, or ``{channel: (mean, sd)}`` with positive numbers."""
    if roas_prior is None:
        return []
    items = roas_prior.items() if isinstance(roas_prior, dict) else [("*", roas_prior)]
    problems = []
    for channel, value in items:
        if channel != "*" and channel not in channels:
            problems.append(
                f"roas_prior names channel {channel!r}, which is not in channel_columns {channels}"
            )
        ok = (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(is_number(v) and v > 0 for v in value)
        )
        if not ok:
            problems.append(f"roas_prior for {channel!r} must be (mean, sd) with both > 0, got {value!r}")
    if isinstance(roas_prior, dict):
        missing = [c for c in channels if c not in roas_prior]
        if missing:
            problems.append(f"roas_prior has no (mean, sd) for channels {missing}")
    return problems


def check_fit_args(draws: Any, tune: Any, chains: Any, sampler: Any) -> list[str]:
    problems = []
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if problem := int_problem(name, value, low=low):
            problems.append(problem)
    if sampler not in SAMPLERS:
        problems.append(f"'sampler' must be one of {list(SAMPLERS)}, got {sampler!r}")
    return problems


def check_frame(
    df: Any,
    *,
    date_column: str,
    channels: Sequence[str],
    controls: Sequence[str],
    target_column: str | None,
    min_rows: int,
    require_spend: bool = True,
) -> list[str]:
    """Every problem with a model frame: missing or non-numeric columns, gaps, negative spend, too few
    rows."""
    if not isinstance(df, pd.DataFrame):
        return [f"the data must be a pandas DataFrame, got {type(df).__name__}"]
    problems = []
    wanted = [date_column, *channels, *controls, *([target_column] if target_column else [])]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        problems.append(f"missing columns {missing} (the frame has {list(df.columns)})")
    if date_column in df.columns:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # "could not infer format": we report bad values below
            dates = pd.to_datetime(df[date_column], errors="coerce")
        if dates.isna().any():
            bad = df.loc[dates.isna(), date_column].head(3).tolist()
            problems.append(f"column '{date_column}' has values that are not dates, e.g. {bad}")
        elif dates.duplicated().any():
            dup = dates[dates.duplicated()].head(3).dt.strftime("%Y-%m-%d").tolist()
            problems.append(
                f"column '{date_column}' has repeated dates, e.g. {dup}; expected one row per period"
            )
    numeric = [
        c for c in [*channels, *controls, *([target_column] if target_column else [])] if c in df.columns
    ]
    for column in numeric:
        values = df[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            problems.append(f"column '{column}' is not numeric (dtype {values.dtype})")
            continue
        n_missing = int(values.isna().sum() + np.isinf(values.to_numpy(dtype=float)).sum())
        if n_missing:
            problems.append(f"column '{column}' has {n_missing} missing or infinite values")
        elif column in channels:
            negative = int((values < 0).sum())  # a sign check: -0.0 passes, any real negative does not
            if negative:
                problems.append(
                    f"channel '{column}' has {negative} negative spend values (min {precise(values.min())}); "
                    "spend cannot be negative: fix or drop those rows"
                )
            elif require_spend and not (values > 0).any():
                problems.append(f"channel '{column}' has no positive spend; its effect cannot be estimated")
    if len(df) < min_rows:
        problems.append(f"too few rows: {len(df)}; this model needs at least {min_rows}")
    return problems


def min_rows_for(n_channels: int, n_controls: int, fourier_order: int, l_max: int) -> int:
    """A floor on the number of periods: more than the parameters, and a few carryover windows."""
    n_params = 3 + 3 * n_channels + n_controls + 2 * fourier_order
    return max(2 * n_params, 2 * l_max, 20)


def is_names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
