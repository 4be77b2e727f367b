"""The attribution report: every method's credit side by side, the triangulation with a media-mix model and
the truth (when given), the Markov chain's transitions and removal effects, Shapley's exactness, and the
input's size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from stackml.attribution.result import AttributionRun
    from stackml.reports import Report

__all__ = ["attribution_report"]

HEATMAP_CHANNELS = 25  # the transition heatmap shows at most this many channels (the busiest)
DISAGREEMENT = 0.10  # the report names a channel whose path shares all differ from the MMM's by more


def attribution_report(
    run: AttributionRun,
    *,
    title: str = "Path attribution",
    run_id: str | None = None,
    registry_note: str = "",
) -> Report:
    """Build the report of one run (nothing is written; call ``.write()``)."""
    from stackml.attribution.paths import journeys_summary
    from stackml.reports import Report

    summary = journeys_summary(run.paths)
    report = Report(title=title, narrative=_narrative(run, summary), pipeline="attribution", run_id=run_id)
    report.add_metrics(
        {
            "paths": summary["paths"],
            "journeys": round(summary["journeys"]),
            "conversions": round(summary["conversions"]),
            "channels": len(summary["channels"]),
            "mean path length": round(summary["mean_length"], 2),
            "longest path": summary["longest"],
        }
    )
    if registry_note:
        report.add_paragraph(registry_note)
    report.add_heading("Credit by method")
    report.add_figure(_credit_figure(run), caption="Share of conversions credited to each channel, by method")
    shares = run.fitted.table("share").round(4)
    report.add_table(shares.reset_index(), caption="Share of conversions (each method's column sums to 1)")
    conversions = run.fitted.table("conversions").round(1)
    report.add_table(conversions.reset_index(), caption="Conversions credited")
    if run.references.truth is not None or run.references.mmm is not None:
        _add_triangulation(report, run)
    if run.fitted.markov is not None:
        markov = run.fitted.markov
        report.add_heading(f"Markov chain (order {run.config.markov_order})")
        report.add_paragraph(
            f"{markov.states} states; a journey converts with probability "
            f"{markov.conversion_probability:.4f} "
            "(solved exactly). A channel's removal effect is the share of that probability lost when every "
            "state holding the channel leads to no conversion instead."
        )
        report.add_table(markov.removal_effects.round(4), caption="Removal effects (conversions and value)")
        report.add_figure(
            _transition_figure(markov.transitions), caption="First-order transition probabilities"
        )
    if run.fitted.shapley is not None:
        shapley = run.fitted.shapley
        report.add_heading("Shapley values")
        report.add_paragraph(
            "Exact: every coalition of channels counted."
            if shapley.exact
            else f"Sampled over {shapley.permutations:,} random orders; standard errors in the table."
        )
        if not shapley.exact:
            report.add_table(shapley.credit.round(3), caption="Shapley credit with standard errors")
    if run.fitted.neural is not None:
        neural = run.fitted.neural
        report.add_heading("Sequence model")
        report.add_paragraph(
            f"A GRU over channel embeddings and the time to the journey's end, trained {neural.epochs_run} "
            f"epoch(s) (weights of epoch {neural.best_epoch} kept); credit per touch by integrated gradients "
            "of its calibrated conversion probability."
        )
        report.add_figure(_learning_curve(neural.learning_curve), caption="Training and validation log-loss")
        calibration = pd.DataFrame(
            {
                "measure": ["log-loss", "Brier score", "expected calibration error"],
                "before calibration": [
                    neural.calibration[f"{k}_before"] for k in ("log_loss", "brier", "ece")
                ],
                "after": [neural.calibration[f"{k}_after"] for k in ("log_loss", "brier", "ece")],
            }
        ).round(4)
        report.add_table(calibration, caption="Validation journeys, before and after calibration")
    report.add_heading("Timings")
    report.add_table(
        pd.DataFrame({"step": list(run.seconds), "seconds": [round(v, 3) for v in run.seconds.values()]}),
        caption="Seconds per method",
    )
    return report


def _add_triangulation(report: Report, run: AttributionRun) -> None:
    """Path credit beside the MMM's contribution shares and ROAS, and the truth's shares."""
    from stackml.attribution.triangulation import unmatched_channels

    table = run.triangulation()
    truth, mmm = run.references.truth, run.references.mmm
    against = " and ".join(
        name
        for name, ref in (("the media-mix model", mmm), ("the true incremental shares", truth))
        if ref is not None
    )
    report.add_heading("Triangulation: path credit beside " + against)
    channels = list(dict.fromkeys(table["channel"]))
    lines = [
        f"Shares among the {len(channels)} channel(s) the views have in common ({', '.join(channels)}), each "
        "view rescaled to sum to 1 over them: path methods also credit the baseline's conversions, which an "
        "MMM and the truth leave out."
    ]
    if truth is not None:
        errors = run.credit_errors()
        best, worst = min(errors, key=errors.get), max(errors, key=errors.get)
        lines.append(
            f"Closest to the truth among the path methods: {best} (total absolute error {errors[best]:.2f}, "
            f"0 best, 2 worst); farthest: {worst} ({errors[worst]:.2f})."
        )
        if mmm is not None:
            lines.append(f"The MMM's contribution shares are {run.mmm_truth_error():.2f} away.")
    if mmm is not None:
        named = f"{mmm.model} version {mmm.version} (run {mmm.run_id})" if mmm.model else f"run {mmm.run_id}"
        lines.append(
            f"The MMM is {named}; its ROAS is {mmm.target} per spend unit over the period it was fitted on, "
            "with 94% intervals."
        )
        lines.extend(_disagreements(table))
    left_out = unmatched_channels(run.fitted.shares(), run.references)
    if left_out:
        lines.append(
            "Left out of the comparison: "
            + "; ".join(f"{view}: {', '.join(names)}" for view, names in left_out.items())
            + "."
        )
    report.add_paragraph(" ".join(lines))
    report.add_figure(_triangulation_figure(table), caption="Share of the common channels, by view")
    wide = table.pivot(index="channel", columns="view", values="share")[list(dict.fromkeys(table["view"]))]
    roas = table[table["roas"].notna()].pivot(
        index="channel", columns="view", values=["roas", "roas_low", "roas_high"]
    )
    roas.columns = [f"{view} {what.replace('roas', 'ROAS').replace('_', ' ')}" for what, view in roas.columns]
    report.add_table(
        wide.join(roas).reindex(channels).round(4).reset_index(),
        caption="Shares by view; ROAS of the MMM (mean, 94% interval) and of the truth where known",
    )


def _disagreements(table: pd.DataFrame) -> list[str]:
    """One sentence per channel that every path method credits 10 points more, or less, than the MMM."""
    shares = table.pivot(index="channel", columns="view", values="share")
    paths = table.loc[table["kind"] == "path", "view"].unique()
    lines = []
    for channel, row in shares.iterrows():
        low, high, mmm = row[paths].min(), row[paths].max(), row["mmm"]
        span = f"({low:.0%}-{high:.0%} against {mmm:.0%})"
        if low - mmm > DISAGREEMENT:
            lines.append(
                f"Every path method credits {channel} more than the MMM {span}: a channel users touch on the "
                "way to a purchase they would have made anyway gets path credit that spend does not explain."
            )
        elif mmm - high > DISAGREEMENT:
            lines.append(
                f"Every path method credits {channel} less than the MMM {span}: its effect may come without "
                "a tracked touch (offline, view-through), or the MMM confuses it with a channel whose "
                "spend moves with it."
            )
    return lines


def _triangulation_figure(table: pd.DataFrame):  # noqa: ANN202 - a plotly Figure
    import plotly.graph_objects as go

    colours = {"truth": "black", "mmm": "#d62728"}  # the references stand out from the path methods
    fig = go.Figure()
    for view, rows in table.groupby("view", sort=False):
        colour = colours.get(rows["kind"].iloc[0])
        fig.add_bar(
            name=view,
            x=rows["channel"].tolist(),
            y=rows["share"].round(4).tolist(),
            marker={"color": colour} if colour else None,
        )
    fig.update_layout(
        barmode="group", yaxis_title="share of the common channels", xaxis_title="channel", height=420
    )
    return fig


def _narrative(run: AttributionRun, summary: dict) -> str:
    shares = run.fitted.shares()
    method = "markov" if "markov" in shares else next(iter(shares))
    top = sorted(shares[method].items(), key=lambda kv: -kv[1])[:3]
    named = ", ".join(f"{c} {s:.0%}" for c, s in top)
    return (
        f"{summary['conversions']:,.0f} conversions over {summary['journeys']:,.0f} journeys and "
        f"{len(summary['channels'])} channels, credited by {len(shares)} method(s). By {method}, the "
        "largest "
        f"shares go to {named}. Rule-based methods credit positions, not causes; the Markov chain and "
        "Shapley values weigh what each channel adds to converting paths."
    )


def _credit_figure(run: AttributionRun):  # noqa: ANN202 - a plotly Figure
    import plotly.graph_objects as go

    table = run.fitted.table("share")
    fig = go.Figure()
    for method in table.columns:
        fig.add_bar(name=method, x=list(table.index), y=table[method].round(4).tolist())
    fig.update_layout(barmode="group", yaxis_title="share of conversions", xaxis_title="channel", height=420)
    return fig


def _transition_figure(transitions: pd.DataFrame):  # noqa: ANN202 - a plotly Figure
    import plotly.graph_objects as go

    busiest = (
        transitions.groupby("source")["probability"]
        .size()
        .sort_values(ascending=False)
        .index[:HEATMAP_CHANNELS]
    )
    kept = transitions[transitions["source"].isin(busiest)]
    grid = kept.pivot(index="source", columns="target", values="probability").fillna(0.0)
    fig = go.Figure(
        go.Heatmap(z=grid.round(3).to_numpy(), x=list(grid.columns), y=list(grid.index), colorscale="Blues")
    )
    fig.update_layout(xaxis_title="to", yaxis_title="from", height=480)
    return fig


def _learning_curve(curve: pd.DataFrame):  # noqa: ANN202 - a plotly Figure
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, name in (("train_loss", "training"), ("valid_loss", "validation")):
        fig.add_scatter(
            x=curve["epoch"].tolist(), y=curve[column].round(5).tolist(), mode="lines+markers", name=name
        )
    fig.update_layout(xaxis_title="epoch", yaxis_title="weighted log-loss", height=360)
    return fig
