"""The media-mix report: contributions over time, ROAS with intervals, response curves, the budget plan,
diagnostics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.mmm.amounts import format_amount

if TYPE_CHECKING:
    from stackml.mmm.result import MMMResult
    from stackml.reports import Report

# Lag-1 residual autocorrelation above this (or above two standard errors of zero, on short series) is
# reported: the likelihood assumes independent periods, so streaky errors make intervals too narrow.
AUTOCORRELATED = 0.3
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")


def mmm_report(
    result: MMMResult,
    *,
    title: str = "Media mix",
    run_id: str | None = None,
    registry_note: str | None = None,
) -> Report:
    """Build the report of one media-mix run (nothing is written; call ``.write()``)."""
    from stackml.reports import Report

    pct = f"{result.config.hdi_prob:.0%}"
    report = Report(
        title=title, narrative=_narrative(result, pct, registry_note), pipeline="mmm", run_id=run_id
    )
    d = result.diagnostics
    cards: dict[str, Any] = {
        "periods": result.model.design_.n_periods,
        "channels": len(result.config.channels),
        "media share": f"{result.contribution_share['mean'].sum():.1%}",
        "gates": "passed" if result.passed else f"{len(d.failures)} failed",
        "in-sample R²": f"{d.r2:.3f}",
    }
    if d.oos_mape is not None:
        cards["holdout MAPE"] = f"{d.oos_mape:.1%}"
    if result.plan is not None:
        cards["plan uplift"] = f"{result.plan.uplift_ratio:+.1%}"
    report.add_metrics(cards)

    report.add_heading("Contributions")
    report.add_figure(
        _contributions_figure(result),
        caption="Expected target by component (posterior means, stacked) and the observed target",
    )
    # Amounts go through format_amount, not one format per column: channels' ROAS and spend can differ by
    # orders of magnitude, and a column format set by the largest would print the smallest as 0.
    report.add_table(
        _channel_table(result),
        caption=f"Per channel over the fitted period, with {pct} HDIs",
        float_format=format_amount,
    )

    report.add_heading("Return on ad spend")
    report.add_figure(
        _roas_figure(result, pct),
        caption=f"ROAS (contribution / spend) with {pct} HDIs, and marginal ROAS of 1 % more spend",
    )
    report.add_figure(
        _response_figure(result, pct),
        caption=f"Response curves: steady-state contribution per period"
        f" for a constant spend per period, with {pct} HDIs; the marker is the average spend",
    )

    if result.config.geo_column:
        from stackml.mmm.geo_report import add_geo_section

        add_geo_section(report, result, pct)

    report.add_heading("Budget plan")
    if result.plan is None:
        if not result.passed:
            reason = "the model failed its diagnostics gates"
        elif result.config.geo_column:
            reason = "the pipeline does not plan a geo model's budget yet (plan one geo with optimize_budget"
            reason += "(model.geo_models_[geo], ...))"
        else:
            reason = "no planning horizon was asked for"
        report.add_paragraph(f"No budget plan: {reason}.")
    else:
        report.add_paragraph(_plan_text(result, pct))
        report.add_figure(
            _plan_figure(result), caption="Spend per period: historical mix vs the optimised plan"
        )
        report.add_table(
            _plan_table(result),
            caption="The optimised allocation; 'bound' names a bound the plan sits on",
            float_format=format_amount,
        )

    report.add_heading("Posterior predictive check")
    report.add_paragraph(_predictive_check_text(result))
    report.add_figure(
        _predictive_figure(result),
        caption="The observed target against the model's posterior-predictive distribution (its mean, "
        "50% and 94% intervals): a model that fits leaves about half the periods inside the inner band "
        "and all but a few inside the outer one, with no long runs on one side",
    )

    report.add_heading("Diagnostics")
    report.add_table(
        _gates_table(result), caption="Diagnostics gates: a model failing any of them is not registered"
    )
    comparison = getattr(result.model, "saturation_comparison_", None)
    if comparison is not None:
        report.add_table(
            comparison.reset_index().round(3),
            caption="Saturation families compared by PSIS-LOO (higher elpd predicts held-out periods "
            "better); the simplest is kept unless another wins by more than 2 standard errors",
        )
    stats = result.model.fit_stats_
    timing = {
        "sampler": stats["sampler"],
        "target_accept": stats.get("target_accept"),
        **{f"{k} (s)": round(v, 1) for k, v in result.seconds.items()},
    }
    report.add_table(pd.DataFrame([timing]), caption="How the posterior was sampled, and where the time went")
    return report


# -- text ----------------------------------------------------------------------------------------------------
def _period_word(days: float) -> str:
    return {7.0: "weekly", 1.0: "daily"}.get(float(days), f"{days:g}-day")


def _narrative(result: MMMResult, pct: str, registry_note: str | None) -> str:
    cfg, model, d = result.config, result.model, result.diagnostics
    design = model.design_
    lift = model.lift_tests_
    controls = f", controls {', '.join(cfg.controls)}" if cfg.controls else ""
    parts = [
        f"{design.n_periods} {_period_word(design.period_days)} periods from {design.dates[0].date()} to "
        f"{design.dates[-1].date()}: target {cfg.target}, channels {', '.join(cfg.channels)}{controls}. "
        f"A Bayesian media-mix model ({cfg.adstock} adstock, {_saturation_text(model)}, trend"
        + (", a level that drifts over quarterly knots" if design.level_knots else "")
        + " and yearly "
        f"seasonality) was sampled with {model.fit_stats_['sampler']} "
        f"({cfg.chains} chains x {cfg.draws} draws)"
        + (f" and calibrated with {len(lift)} lift test(s)." if lift is not None else ".")
    ]
    retry = model.fit_stats_.get("divergence_retry")
    if retry:
        parts.append(
            f"The first sampling had {retry['divergences']} divergent transition(s) at target acceptance "
            f"{retry['target_accept']:g}, so it was sampled again at {model.fit_stats_['target_accept']:g} "
            f"({retry['divergences_after']} divergence(s) then); the draws reported are the second run's."
        )
    roas = result.roas
    settled = roas[roas["identified"]] if "identified" in roas else roas
    if result.passed:
        parts.append(_headline(result, settled, pct))
        relaxed = _relaxed_gates(cfg)
        if relaxed:
            parts.append(
                f"Note that its gates were relaxed from the defaults ({relaxed}); "
                "treat the intervals as rough."
            )
        if d.oos_mape is not None:
            parts.append(
                f"Refitted without the last {d.holdout_periods} periods "
                f"it forecast them with a MAPE of {d.oos_mape:.1%}."
            )
        if result.plan is not None:
            parts.append(_plan_text(result, pct))
    else:
        failed = "; ".join(result.failed_gates())
        parts.append(
            f"The model FAILED {len(d.failures)} diagnostics gate(s) and was not registered, "
            f"and no budget plan was made: {failed}. "
            "The estimates below are shown to help diagnose the fit; do not use them for decisions."
        )
    if len(settled) < len(roas):
        vague = [c for c in roas.index if c not in settled.index]
        parts.append(
            f"The data do not identify the return of {', '.join(vague)}: "
            + "; ".join(f"{c} is {roas.loc[c, 'note']}" for c in vague)
            + ". Their intervals are wide on purpose: read them as what the prior allows, not as a finding."
        )
    parts.append(_what_intervals_mean(pct))
    text = " ".join(parts)
    return f"{text}\n\n{registry_note}" if registry_note else text


def _predictive_check_text(result: MMMResult) -> str:
    d = result.diagnostics
    n = result.model.design_.n_periods
    text = (
        f"Of the {n} observed periods, {d.coverage50:.0%} lie inside the model's 50% predictive interval "
        f"and {d.coverage:.0%} inside its 94% one (nominal 50% and 94%)."
    )
    if d.coverage < 0.85 or d.coverage50 < 0.35:
        text += (
            " Fewer than nominal: the target varies more than the model allows, so its intervals, ROAS "
            "included, are too narrow; look for events the controls miss."
        )
    r = d.residual_acf1
    if np.isfinite(r) and r > max(AUTOCORRELATED, 2.0 / np.sqrt(n)):
        text += (
            f" The residuals are autocorrelated (lag-1 correlation {r:.2f}): errors run in streaks, which "
            "the model, assuming independent periods, counts as more evidence than they are; intervals "
            f"are then about {np.sqrt((1 + r) / (1 - r)):.1f}x too narrow. A missing control, seasonality "
            "or a trend break is the usual cause."
        )
    elif np.isfinite(r):
        text += f" The residuals show no marked autocorrelation (lag-1 correlation {r:.2f})."
    return text


def _headline(result: MMMResult, settled: pd.DataFrame, pct: str) -> str:
    share = result.contribution_share["mean"].sum()
    text = f"It passed every diagnostics gate. Media drove {share:.1%} of the target"
    if not len(settled):
        return text + "."
    best = settled["mean"].idxmax()
    row = settled.loc[best]
    return text + (
        f"; the highest return the data identify is {best}'s, {format_amount(row['mean'])} per unit "
        f"of spend ({pct} HDI {format_amount(row['hdi_low'])} to {format_amount(row['hdi_high'])})."
    )


def _relaxed_gates(config: Any) -> str:
    """The gates set looser than the defaults, as ``"min_ess ≥ 100 (default 400), ..."``."""
    from stackml.mmm.config import config_default

    defaults = {name: config_default(name) for name in ("max_divergences", "max_rhat", "min_ess", "min_r2")}
    looser = [
        (name, sign, getattr(config, name), defaults[name])
        for name, sign, worse in (
            ("max_divergences", "≤", 1),
            ("max_rhat", "≤", 1),
            ("min_ess", "≥", -1),
            ("min_r2", "≥", -1),
        )
        if (getattr(config, name) - defaults[name]) * worse > 0
    ]
    return ", ".join(
        f"{name} {sign} {value:g} (default {default:g})" for name, sign, value, default in looser
    )


def _plan_text(result: MMMResult, pct: str) -> str:
    plan = result.plan
    assert plan is not None
    low, high = plan.uplift_hdi
    binding = ", ".join(f"{c} ({side})" for c, side in plan.binding.items()) or "none"
    return (
        f"Spending {format_amount(plan.total_budget)} over the next {plan.horizon_periods} periods as "
        f"optimised is expected to return {format_amount(plan.expected_response)} from media, "
        f"{format_amount(plan.uplift, sign=True)} ({plan.uplift_ratio:+.1%}; {pct} HDI "
        f"{format_amount(low, sign=True)} to {format_amount(high, sign=True)}) "
        "against the same budget in the historical mix, which it beats in "
        f"{plan.uplift_probability:.0%} of posterior draws. Bounds that bind: {binding}."
    )


def _saturation_text(model: Any) -> str:
    chosen = model.fit_stats_.get("saturation", model.saturation_.name)
    table = getattr(model, "saturation_comparison_", None)
    if table is None and model.saturation in ("auto", "default") and model.lift_tests_ is not None:
        # see stackml.mmm.selection
        return f"{chosen} saturation (with lift tests the simplest family carries them to the whole curve)"
    if table is None and model.saturation == "default":
        return f"{chosen} saturation (the default: concave and S-shaped curves alike)"
    if table is None:
        return f"{chosen} saturation"
    others = ", ".join(name for name in table.index if name != chosen)
    return f"{chosen} saturation, chosen by PSIS-LOO over {others}"


def _what_intervals_mean(pct: str) -> str:
    return (
        f"Each {pct} interval holds the value with {pct} probability under the model and its priors; it "
        "does not count the risk that the model's form is wrong (saturation, carryover, a missing control), "
        "which a lift test checks. On simulated worlds the model was not built on, the 94% ROAS intervals "
        "cover the true ROAS of identified channels in the share that bench/results/mmm_calibration.md "
        "reports."
    )


# -- tables --------------------------------------------------------------------------------------------------
def _channel_table(result: MMMResult) -> pd.DataFrame:
    roas, share, mroas = result.roas, result.contribution_share, result.marginal_roas
    return pd.DataFrame(
        {
            "channel": roas.index,
            "spend": roas["spend"].to_numpy(),
            "contribution": roas["contribution"].to_numpy(),
            "share": share["mean"].to_numpy(),
            "share low": share["hdi_low"].to_numpy(),
            "share high": share["hdi_high"].to_numpy(),
            "ROAS": roas["mean"].to_numpy(),
            "ROAS low": roas["hdi_low"].to_numpy(),
            "ROAS high": roas["hdi_high"].to_numpy(),
            "marginal ROAS": mroas.loc[roas.index, "mean"].to_numpy(),
            "identified": roas["identified"].map({True: "yes", False: "no"}).to_numpy()
            if "identified" in roas
            else "n/a",
        }
    )


def _plan_table(result: MMMResult) -> pd.DataFrame:
    plan = result.plan
    assert plan is not None
    names = {
        "per_period": "per period",
        "total": "total",
        "share": "share",
        "lower": "min per period",
        "upper": "max per period",
        "bound": "bound",
        "response": "response",
        "baseline_per_period": "historical mix per period",
        "baseline_response": "historical mix response",
    }
    return plan.allocation.reset_index()[["channel", *names]].rename(columns=names)


def _gates_table(result: MMMResult) -> pd.DataFrame:
    d = result.diagnostics
    rows = [
        {
            "measure": g.name,
            "value": f"{g.value:.4g}",
            "limit": f"{g.threshold:.4g}",
            "passed": "yes" if g.passed else "NO",
            "what to try": "" if g.passed else g.advice,
        }
        for g in d.gates
    ]
    extra = {
        "in-sample MAPE": d.mape,
        "94% predictive interval coverage": d.coverage,
        "50% predictive interval coverage": d.coverage50,
        "residual lag-1 autocorrelation": d.residual_acf1,
    }
    if d.oos_mape is not None and not any(g.name == "oos_mape" for g in d.gates):
        extra[f"holdout MAPE (last {d.holdout_periods} periods)"] = d.oos_mape
    for name, value in extra.items():
        rows.append(
            {
                "measure": name,
                "value": f"{value:.4g}",
                "limit": "",
                "passed": "(not gated)",
                "what to try": "",
            }
        )
    return pd.DataFrame(rows)


# -- figures -------------------------------------------------------------------------------------------------
def _colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def _contributions_figure(result: MMMResult):
    import plotly.graph_objects as go

    parts = result.contributions
    baseline = parts[parts["kind"] == "baseline"].groupby("date", sort=True)["mean"].sum()
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=baseline.index,
            y=baseline.to_numpy(),
            name="baseline",
            stackgroup="one",
            line={"width": 0.5, "color": PALETTE[-1]},
        )
    )
    for k, channel in enumerate(result.config.channels):
        rows = parts[(parts["kind"] == "channel") & (parts["component"] == channel)].sort_values("date")
        figure.add_trace(
            go.Scatter(
                x=rows["date"],
                y=rows["mean"],
                name=channel,
                stackgroup="one",
                line={"width": 0.5, "color": _colour(k)},
            )
        )
    design = result.model.design_
    figure.add_trace(
        go.Scatter(
            x=design.dates,
            y=design.target,
            name="observed",
            mode="lines",
            line={"color": "#111827", "width": 1.5, "dash": "dot"},
        )
    )
    figure.update_layout(
        xaxis_title="period", yaxis_title=result.config.target, height=420, hovermode="x unified"
    )
    return figure


def _predictive_figure(result: MMMResult):
    import plotly.graph_objects as go

    from stackml.mmm._posterior import hdi
    from stackml.mmm.diagnostics import predictive_draws

    model = result.model
    design = model.design_
    expected = model.posterior_.expected(design.dates, design.spend, design.control_values)
    predictive = predictive_draws(expected, model.posterior_.sigma * design.target_scale)
    figure = go.Figure()
    for prob, alpha in ((0.94, 0.15), (0.50, 0.3)):
        low, high = hdi(predictive, prob)
        figure.add_trace(
            go.Scatter(x=design.dates, y=high, mode="lines", line={"width": 0}, showlegend=False)
        )
        figure.add_trace(
            go.Scatter(
                x=design.dates,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_rgba(PALETTE[0], alpha),
                name=f"{prob:.0%} predictive interval",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=design.dates,
            y=predictive.mean(axis=0),
            name="predictive mean",
            mode="lines",
            line={"color": PALETTE[0], "width": 1.5},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=design.dates,
            y=design.target,
            name="observed",
            mode="markers",
            marker={"color": "#111827", "size": 4},
        )
    )
    figure.update_layout(
        xaxis_title="period", yaxis_title=result.config.target, height=380, hovermode="x unified"
    )
    return figure


def _roas_figure(result: MMMResult, pct: str):
    import plotly.graph_objects as go

    roas, mroas = result.roas, result.marginal_roas.loc[result.roas.index]
    figure = go.Figure()
    for name, frame, colour in (
        (f"ROAS ({pct} HDI)", roas, PALETTE[0]),
        ("marginal ROAS", mroas, PALETTE[3]),
    ):
        figure.add_trace(
            go.Bar(
                x=list(frame.index),
                y=frame["mean"],
                name=name,
                marker_color=colour,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": frame["hdi_high"] - frame["mean"],
                    "arrayminus": frame["mean"] - frame["hdi_low"],
                },
            )
        )
    figure.add_hline(y=1.0, line_dash="dot", line_color="#6b7280", annotation_text="break-even")
    figure.update_layout(
        barmode="group", xaxis_title="channel", yaxis_title="target per unit of spend", height=380
    )
    return figure


def _response_figure(result: MMMResult, pct: str):
    import plotly.graph_objects as go

    curves = result.response_curves
    figure = go.Figure()
    for k, channel in enumerate(result.config.channels):
        rows = curves[curves["channel"] == channel].sort_values("spend")
        colour = _colour(k)
        figure.add_trace(
            go.Scatter(
                x=list(rows["spend"]) + list(rows["spend"])[::-1],
                y=list(rows["hdi_high"]) + list(rows["hdi_low"])[::-1],
                fill="toself",
                fillcolor=_rgba(colour, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{channel} {pct} HDI",
                showlegend=False,
            )
        )
        figure.add_trace(
            go.Scatter(x=rows["spend"], y=rows["mean"], mode="lines", name=channel, line={"color": colour})
        )
        current = rows.iloc[(rows["multiple"] - 1.0).abs().argsort()[:1]]
        figure.add_trace(
            go.Scatter(
                x=current["spend"],
                y=current["mean"],
                mode="markers",
                showlegend=False,
                marker={"color": colour, "size": 9},
                name=f"{channel} average spend",
            )
        )
    figure.update_layout(xaxis_title="spend per period", yaxis_title="contribution per period", height=420)
    return figure


def _plan_figure(result: MMMResult):
    import plotly.graph_objects as go

    allocation = result.plan.allocation  # type: ignore[union-attr]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=list(allocation.index),
            y=allocation["baseline_per_period"],
            name="historical mix",
            marker_color=PALETTE[-1],
        )
    )
    figure.add_trace(
        go.Bar(
            x=list(allocation.index), y=allocation["per_period"], name="optimised", marker_color=PALETTE[0]
        )
    )
    figure.update_layout(barmode="group", xaxis_title="channel", yaxis_title="spend per period", height=360)
    return figure


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"
