"""The forecasting report: accuracy per model, error by horizon step, and the best and worst series drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from stackml.forecasting.pipeline import PipelineResult
    from stackml.reports import Report

METRIC_COLUMNS = ["model", "smape", "mase", "owa", "rmse"]


def forecast_report(
    result: PipelineResult,
    train: pd.DataFrame,
    test: pd.DataFrame | None = None,
    *,
    title: str = "Forecast",
    run_id: str | None = None,
    registry_note: str | None = None,
) -> Report:
    """Build the report of one forecasting run (nothing is written; call ``.write()``)."""
    from stackml.reports import Report

    cfg, choice = result.config, result.choice
    best = result.scores.set_index("model").loc[choice.alias]
    n_series = train["unique_id"].nunique()
    what = f"the mean of {', '.join(result.members)}" if choice.is_ensemble else choice.alias
    periods = ", ".join(map(str, cfg.seasonal_periods or ())) or "none"
    narrative = (
        f"{n_series:,} series were forecast {cfg.horizon} steps ahead (scored with season length "
        f"{cfg.season_length}; seasonal periods the models use: {periods}). "
        f"{len(result.alias_names)} candidate models were backtested on the last {cfg.n_windows} windows of "
        f"{cfg.horizon} values of every series, scored in the warehouse with sMAPE, MASE and OWA "
        f"against Naive2 (OWA below 1 beats Naive2), and mean ensembles of the best models were scored "
        f"on the same windows. "
        f"The chosen configuration is {what}, with a backtest OWA of {best['owa']:.3f} "
        f"({choice.why or 'the lowest backtest OWA'}). "
        "Prediction intervals are conformal, taken from the backtest errors"
    )
    cover = result.backtest_coverage.get(choice.alias, {})
    if cover:
        shown = ", ".join(f"{share:.0%} of the {level:g}% intervals" for level, share in cover.items())
        narrative += f"; on backtest errors they were not calibrated on, they held {shown}"
    narrative += "."
    for name, why in result.skipped.items():
        narrative += f" Not used: {name}, {why}."
    if result.holdout is not None:
        held = result.holdout.set_index("model").loc[choice.alias]
        narrative += (
            f" On the held-out data it scores sMAPE {held['smape']:.3f}, MASE {held['mase']:.3f}, "
            f"OWA {held['owa']:.3f}."
        )
    if registry_note:
        narrative += f"\n\n{registry_note}"
    report = Report(title=title, narrative=narrative, pipeline="forecasting", run_id=run_id)
    cards = {
        "series": f"{n_series:,}",
        "horizon": cfg.horizon,
        "chosen": choice.alias,
        "backtest OWA": f"{best['owa']:.3f}",
    }
    if result.holdout is not None:
        cards["holdout OWA"] = f"{result.holdout.set_index('model').loc[choice.alias, 'owa']:.3f}"
    report.add_metrics(cards)

    report.add_heading("Accuracy")
    report.add_table(
        _metrics_table(result.scores), caption="Backtest accuracy per model, best first (computed in SQL)"
    )
    if result.holdout is not None:
        report.add_table(
            _metrics_table(result.holdout), caption="Accuracy on the held-out data (official M4 metrics)"
        )
    report.add_figure(_by_step_figure(result.by_step), caption="Backtest sMAPE by horizon step")

    report.add_heading("Forecasts")
    chosen = result.by_series[result.by_series["model"] == choice.alias].sort_values("mase")
    if len(chosen):
        best_id, worst_id = str(chosen["unique_id"].iloc[0]), str(chosen["unique_id"].iloc[-1])
        for label, uid in (("best", best_id), ("worst", worst_id)):
            report.add_figure(
                _series_figure(result, train, test, uid),
                caption=f"Series {uid}, the {label} of {choice.alias} on the backtest (by MASE), "
                "with its intervals",
            )
    report.add_table(
        pd.DataFrame(
            {"step": list(result.seconds), "seconds": [round(v, 2) for v in result.seconds.values()]}
        ),
        caption="Wall time of each candidate (backtest + final fit) and of the evaluation",
    )
    return report


def _metrics_table(scores: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in [*METRIC_COLUMNS, *[c for c in scores if c.startswith("coverage_")]] if c in scores]
    return scores[columns].reset_index(drop=True)


def _by_step_figure(by_step: pd.DataFrame):  # noqa: ANN202 - a plotly Figure
    import plotly.graph_objects as go

    figure = go.Figure()
    for model, rows in by_step.groupby("model", sort=False):
        figure.add_trace(go.Scatter(x=rows["h"], y=rows["smape"], mode="lines", name=str(model)))
    figure.update_layout(xaxis_title="horizon step", yaxis_title="sMAPE", height=380, legend_title="model")
    return figure


def _series_figure(result: PipelineResult, train: pd.DataFrame, test: pd.DataFrame | None, uid: str):  # noqa: ANN202
    import plotly.graph_objects as go

    from stackml.forecasting.selection import interval_column

    alias, cfg = result.choice.alias, result.config
    history = train[train["unique_id"].astype(str) == uid].tail(max(4 * cfg.horizon, 3 * cfg.season_length))
    fc = result.forecasts[result.forecasts["unique_id"].astype(str) == uid]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=history["ds"], y=history["y"], mode="lines", name="history", line={"color": "#334155"})
    )
    for level, opacity in sorted(
        ((lv, 0.18 if lv == max(cfg.level) else 0.3) for lv in cfg.level), reverse=True
    ):
        lo, hi = fc[interval_column(alias, "lo", level)], fc[interval_column(alias, "hi", level)]
        figure.add_trace(
            go.Scatter(
                x=list(fc["ds"]) + list(fc["ds"])[::-1],
                y=list(hi) + list(lo)[::-1],
                fill="toself",
                fillcolor=f"rgba(37, 99, 235, {opacity})",
                line={"width": 0},
                name=f"{level:g}% interval",
                hoverinfo="skip",
            )
        )
    figure.add_trace(go.Scatter(x=fc["ds"], y=fc[alias], mode="lines", name=alias, line={"color": "#2563eb"}))
    if test is not None:
        actual = test[test["unique_id"].astype(str) == uid]
        figure.add_trace(
            go.Scatter(
                x=actual["ds"],
                y=actual["y"],
                mode="lines",
                name="actual",
                line={"color": "#dc2626", "dash": "dot"},
            )
        )
    figure.update_layout(xaxis_title="ds", yaxis_title="y", height=380)
    return figure
