"""Issue 17: the media-mix tables and lines print amounts at the data's scale (no all-zero spends, no
5.03e+03).

In process, with a registered model replaced by one whose posterior is set by hand (no sampling, no
registry): what is under test is the rendering, not the fit.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from stackml.mmm import MediaMixModel, simulate
from stackml.mmm._design import build_design
from stackml.mmm._posterior import PosteriorDraws
from stackml.mmm.amounts import format_amount
from stackml.mmm.transforms import get_adstock, get_saturation

SMALL_UNITS = 1e-5  # spend in units 100,000 times larger than the simulator's: a few hundredths per week


def small_unit_model(n_draws: int = 8) -> MediaMixModel:
    """A two-channel model on spends of a few hundredths per period, with a hand-set posterior."""
    rng = np.random.default_rng(0)
    frame = simulate(None, seed=1, n_periods=40, channels=("a", "b")).frame
    frame[["a", "b"]] *= SMALL_UNITS
    mmm = MediaMixModel("date", ["a", "b"], "revenue", yearly_seasonality=0, trend=False)
    design = build_design(
        frame,
        date_column="date",
        channels=("a", "b"),
        controls=(),
        target_column="revenue",
        fourier_order=0,
        trend=False,
    )
    adstock, saturation = get_adstock("geometric", l_max=4), get_saturation("logistic")

    def scatter(values: list[float]) -> np.ndarray:
        return np.asarray(values)[None, :] * np.exp(0.05 * rng.standard_normal((n_draws, 2)))

    zeros = np.zeros(n_draws)
    mmm.design_, mmm.adstock_, mmm.saturation_ = design, adstock, saturation
    mmm.posterior_ = PosteriorDraws(
        design,
        adstock,
        saturation,
        {"alpha": scatter([0.3, 0.6])},
        {"lam": scatter([1.0, 3.0])},
        scatter([0.5, 0.3]),
        zeros,
        zeros,
        np.zeros((n_draws, 0)),
        np.zeros((n_draws, 0)),
        zeros + 1.0,
    )
    return mmm


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``stackml ARGS`` in process against the small-unit model; returns (exit code, stdout)."""
    monkeypatch.setenv("COLUMNS", "200")  # Rich folds narrow cells, which would split the numbers
    cli_main = importlib.import_module("stackml.cli.main")
    mmm_cli = importlib.import_module("stackml.cli.mmm")
    model = small_unit_model()
    monkeypatch.setattr(mmm_cli, "_load_mmm", lambda name, alias: (model, 1))

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as caught:
            cli_main.main(list(args))
        captured = capsys.readouterr()
        return caught.value.code or 0, captured.out + captured.err

    return run


def test_optimize_prints_small_spends_with_their_digits(cli) -> None:
    budget = f"{small_unit_model().design_.spend.mean(axis=0).sum() * 4:.6f}"  # about 1.4 over 4 periods
    code, raw = cli("mmm", "optimize", "--model", "m", "--budget", budget, "--horizon", "4", "--json")
    assert code == 0, raw
    plan = json.loads(raw)
    code, text = cli("mmm", "optimize", "--model", "m", "--budget", budget, "--horizon", "4")
    assert code == 0, text
    assert f"Budget plan: {format_amount(float(budget))} over 4 periods" in text
    for channel, row in plan["allocation"].items():
        assert 0 < row["per_period"] < 1  # the case that printed as 0 with ',.0f'
        shown = format_amount(row["per_period"])
        assert shown != "0" and shown in text, (channel, shown, text)
        assert format_amount(row["baseline_per_period"]) in text
    uplift = plan["uplift"]
    assert f"Expected uplift over the historical mix: {format_amount(uplift['mean'], sign=True)} " in text
    assert (
        f"{format_amount(uplift['hdi_low'], sign=True)} .. {format_amount(uplift['hdi_high'], sign=True)}"
        in (text)
    )
    assert "e+" not in text and "e-" not in text


def test_fit_summary_prints_large_roas_without_scientific_notation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ROAS of small spend units is large (5,030 per unit): it printed as 5.03e+03."""
    from stackml.mmm.optimize import optimize_budget

    monkeypatch.setenv("COLUMNS", "200")
    mmm_cli = importlib.import_module("stackml.cli.mmm")
    model = small_unit_model()
    plan = optimize_budget(model, float(model.design_.spend.mean(axis=0).sum() * 4), 4)
    roas = {"a": (5030.4, 4100.0, 6020.0), "b": (0.0123, 0.0041, 0.0215)}
    summary = {
        "roas": {c: {"mean": m, "hdi_low": lo, "hdi_high": hi} for c, (m, lo, hi) in roas.items()},
        "contribution_share": {c: {"mean": 0.2, "hdi_low": 0.1, "hdi_high": 0.3} for c in roas},
        "diagnostics": {
            "divergences": 0,
            "max_rhat": 1.001,
            "min_ess": 800.0,
            "r2": 0.95,
            "holdout_mape": None,
            "passed": True,
            "failed_gates": [],
        },
        "budget_plan": plan.as_dict(),
        "registry_note": "Registered as m v1.",
        "report": "report.html",
    }
    mmm_cli._print_fit(summary)
    text = capsys.readouterr().out
    assert "5,030" in text and "4,100 .. 6,020" in text
    assert "0.0123" in text and "0.0041 .. 0.0215" in text
    assert "e+0" not in text
    assert "Budget plan:" in text and format_amount(plan.allocation.loc["a", "per_period"]) in text


def test_fit_summary_says_which_channels_the_data_do_not_identify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    mmm_cli = importlib.import_module("stackml.cli.mmm")
    flags = {"a": (True, ""), "b": (False, "not identified: ...")}
    summary = {
        "roas": {
            c: {"mean": 2.0, "hdi_low": 1.0, "hdi_high": 3.0, "identified": ok, "note": note}
            for c, (ok, note) in flags.items()
        },
        "contribution_share": {c: {"mean": 0.2, "hdi_low": 0.1, "hdi_high": 0.3} for c in flags},
        "diagnostics": {
            "divergences": 0,
            "max_rhat": 1.001,
            "min_ess": 800.0,
            "r2": 0.95,
            "holdout_mape": None,
            "passed": True,
            "failed_gates": [],
        },
        "budget_plan": None,
        "registry_note": "Registered as m v1.",
        "report": "report.html",
    }
    mmm_cli._print_fit(summary)
    text = " ".join(capsys.readouterr().out.split())
    assert "NO: prior" in text and "yes" in text
    assert "The data do not identify the ROAS of b: their intervals mostly restate the prior" in text
