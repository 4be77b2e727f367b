"""Path credit beside the media-mix model and, on simulated data, the truth: the triangulation view.

Path methods split observed conversions along journeys; a media-mix model (MMM) reads channel effects off
weekly spend and outcome; neither is the truth, and they fail in different ways (paths credit whatever users
touched on the way to a purchase they would have made anyway; an MMM cannot separate channels whose spend
moves together). Putting them side by side shows where they agree, which is where a decision is safe.

Shares are compared among the channels the views have in common: each path method credits every channel,
the baseline's too (``"direct"``, organic), while an MMM's contributions and a simulator's incremental
shares count only paid media; so each view's shares are rescaled to sum to 1 over the common channels.

Example:
    >>> shares = {"last_touch": {"search": 0.5, "social": 0.3, "direct": 0.2}}
    >>> truth = pd.DataFrame({"channel": ["search", "social"], "share": [0.8, 0.2]})
    >>> round(credit_error(shares, read_truth(truth)).loc["last_touch", "total_abs_error"], 4)
    0.35
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.checks import missing_columns_problem
from stackml.errors import InputError, raise_if_problems

if TYPE_CHECKING:
    from stackml.attribution.config import AttributionConfig

__all__ = [
    "MMMView",
    "References",
    "credit_error",
    "load_mmm",
    "load_references",
    "read_truth",
    "triangulation_table",
]

_RUN_ID = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids
_TRUTH_HINT = (
    "A truth file has one row per paid channel with columns channel and share (the true incremental share, "
    ">= 0, summing to 1), and optionally roas; `stackml attribution simulate` writes one."
)


@dataclass(frozen=True)
class MMMView:
    """What a registered media-mix model says about each channel over the period it was fitted on.

    Attributes:
        model, version, run_id: the registered version (empty and 0 when named by its run) and the run that
            fitted it.
        target: what the model explains (its ROAS is target units per spend unit).
        roas: index ``channel``; ``spend, contribution, mean, hdi_low, hdi_high`` and, where the model
            judged it, ``identified``.
    """

    model: str
    version: int
    run_id: str
    target: str
    roas: pd.DataFrame

    @property
    def shares(self) -> pd.Series:
        """Each channel's share of all channels' mean contributions."""
        contribution = self.roas["contribution"].clip(lower=0.0)
        total = float(contribution.sum())
        return contribution / total if total > 0 else contribution * 0.0

    def summary(self) -> dict[str, Any]:
        roas = {
            channel: {k: round(float(row[k]), 6) for k in ("mean", "hdi_low", "hdi_high")}
            for channel, row in self.roas.iterrows()
        }
        return {
            "model": self.model or None,
            "version": self.version or None,
            "run_id": self.run_id,
            "target": self.target,
            "share": {c: round(float(s), 6) for c, s in self.shares.items()},
            "roas": roas,
        }


@dataclass(frozen=True)
class References:
    """What a run's credit is compared with: the true shares (simulated data) and an MMM, either optional."""

    truth: pd.DataFrame | None = None
    mmm: MMMView | None = None


def load_references(config: AttributionConfig) -> References:
    """The truth file and the MMM ``config`` names, read and checked (both optional)."""
    truth = read_truth(config.truth_file) if config.truth_file else None
    mmm = load_mmm(config.mmm_model) if config.mmm_model else None
    return References(truth=truth, mmm=mmm)


def read_truth(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """True incremental shares from a CSV/Parquet file or a frame: ``channel, share`` (+ ``roas``).

    Returns:
        Index ``channel``; column ``share`` (and ``roas`` when given), floats.

    Raises:
        InputError: a missing file or column, a duplicate channel, a negative or non-finite share, shares
            that do not sum to 1; every problem at once.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        from stackml.warehouse.sources import read_file

        frame = read_file(source)
    what = "the truth" if isinstance(source, pd.DataFrame) else f"the truth file '{source}'"
    missing = missing_columns_problem(frame.columns, ["channel", "share"])
    if missing:
        raise_if_problems([missing], what=what, hint=_TRUTH_HINT)
    columns = ["channel", "share"] + (["roas"] if "roas" in frame.columns else [])
    table = frame[columns].copy()
    table["channel"] = table["channel"].astype(str)
    problems = []
    if table.empty:
        problems.append("no rows")
    for dup in sorted(set(table.loc[table["channel"].duplicated(), "channel"])):
        problems.append(f"channel {dup!r} appears more than once")
    for column in columns[1:]:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(~np.isfinite(values) | (values < 0)):
            got = _shown(frame[column].iloc[row])
            problems.append(f"row {row + 1}: '{column}' must be a finite number >= 0, got {got!r}")
        table[column] = values
    if not problems and not np.isclose(table["share"].sum(), 1.0, atol=1e-6):
        problems.append(f"the shares sum to {table['share'].sum():.6g}, not 1")
    raise_if_problems(problems, what=what, hint=_TRUTH_HINT)
    return table.set_index("channel")


def credit_error(shares: dict[str, dict[str, float]], truth: pd.DataFrame) -> pd.DataFrame:
    """How far each method's credit is from the true incremental shares.

    Each method's shares of the truth's channels are rescaled to sum to 1 (a channel the method never
    credited counts 0) and compared with the truth.

    Args:
        shares: ``{method: {channel: share}}``, as :meth:`AttributionResult.shares` returns it.
        truth: :func:`read_truth`'s frame.

    Returns:
        One row per method: ``credit - truth`` per channel and ``total_abs_error`` (the sum of their
        absolute values, 0 to 2), sorted by it.
    """
    true = truth["share"]
    rows = {}
    for method, credit in shares.items():
        diff = _rescaled(credit, true.index) - true
        rows[method] = {**diff.to_dict(), "total_abs_error": float(diff.abs().sum())}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    return table.sort_values("total_abs_error")


def load_mmm(spec: str) -> MMMView:
    """The ROAS table of a media-mix model: a registered version (``name``, ``name@alias``, ``name/3``) or
    the id of the run that fitted it (a run that failed its gates registers nothing but keeps its tables).

    Raises:
        RegistryError: no such model, alias, version or run.
        InputError: the run is not a media-mix run (it logged no ROAS table).
    """
    from stackml.tracking import configure, load_tables, resolve_version

    text = str(spec).strip()
    if _RUN_ID.fullmatch(text):
        model, version, run_id = "", 0, text
    else:
        found = resolve_version(text)
        model, version, run_id = found.name, found.version, found.run_id
    tables = load_tables(run_id)
    roas = tables.get("roas")
    if roas is None or missing_columns_problem(roas.columns, ["channel", "contribution", "mean"]):
        what = f"Model '{spec}' (version {version}, run {run_id})" if model else f"Run '{run_id}'"
        raise InputError(
            f"{what} is not a media-mix model: its run logged the tables {sorted(tables)}, no ROAS table.",
            hint="Name a model or run of `stackml mmm fit` with --mmm.",
        )
    params = configure().get_run(run_id).data.params
    return MMMView(
        model=model,
        version=version,
        run_id=run_id,
        target=params.get("target", "target"),
        roas=roas.set_index("channel"),
    )


def triangulation_table(shares: dict[str, dict[str, float]], references: References) -> pd.DataFrame:
    """Every view's share of each common channel, long: ``channel, view, kind, share, roas, roas_low,
    roas_high``.

    ``kind`` is ``truth``, ``path`` (one view per method) or ``mmm``. The channels are the truth's when
    there is one, else the MMM's, kept to those the paths hold. ROAS is filled for the truth (when its file
    gives it) and the MMM (posterior mean and 94% interval).
    """
    channels = _common_channels(shares, references)
    rows = []
    truth, mmm = references.truth, references.mmm
    if truth is not None:
        true_share = _rescaled(truth["share"].to_dict(), channels)
        for channel in channels:
            roas = truth["roas"].get(channel, np.nan) if "roas" in truth.columns else np.nan
            rows.append((channel, "truth", "truth", true_share[channel], roas, np.nan, np.nan))
    for method, credit in shares.items():
        for channel, share in _rescaled(credit, channels).items():
            rows.append((channel, method, "path", share, np.nan, np.nan, np.nan))
    if mmm is not None:
        mmm_share = _rescaled(mmm.shares.to_dict(), channels)
        for channel in channels:
            row = mmm.roas.loc[channel] if channel in mmm.roas.index else None
            values = [np.nan] * 3 if row is None else [row["mean"], row["hdi_low"], row["hdi_high"]]
            rows.append((channel, "mmm", "mmm", mmm_share[channel], *values))
    return pd.DataFrame(
        rows, columns=["channel", "view", "kind", "share", "roas", "roas_low", "roas_high"]
    ).astype({"share": float, "roas": float, "roas_low": float, "roas_high": float})


def unmatched_channels(shares: dict[str, dict[str, float]], references: References) -> dict[str, list[str]]:
    """Channels one view has and the comparison leaves out, by view (``paths``, ``truth``, ``mmm``)."""
    common = set(_common_channels(shares, references))
    path_channels = {c for credit in shares.values() for c in credit}
    out = {"paths": sorted(path_channels - common)}
    if references.truth is not None:
        out["truth"] = sorted(set(references.truth.index) - common)
    if references.mmm is not None:
        out["mmm"] = sorted(set(references.mmm.roas.index) - common)
    return {view: names for view, names in out.items() if names}


def _common_channels(shares: dict[str, dict[str, float]], references: References) -> list[str]:
    path_channels = {c for credit in shares.values() for c in credit}
    if references.truth is not None:
        base = list(references.truth.index)
    elif references.mmm is not None:
        base = list(references.mmm.roas.index)
    else:
        return sorted(path_channels)
    return [c for c in base if c in path_channels]


def _shown(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value  # -0.1, not np.float64(-0.1)


def _rescaled(credit: dict[str, float], channels: Any) -> pd.Series:
    got = pd.Series({c: float(credit.get(c, 0.0)) for c in channels}, dtype=float)
    total = float(got.sum())
    return got / total if total > 0 else got
