"""`stackml export` through a real subprocess, on tables logged in a real MLflow run of an isolated home."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from cli_checks import assert_clean_error as clean_error
from cli_checks import run_cli

pytest.importorskip("mlflow")
pytest.importorskip("tableauhyperapi")

import mlflow.pyfunc  # noqa: E402  (after importorskip)

from stackml.reports import read_extract  # noqa: E402

ROAS = pd.DataFrame({"roas": [1.8, 0.6]}, index=pd.Index(["tv", "search"], name="channel"))
CONTRIBUTIONS = pd.DataFrame(
    {
        "week": pd.to_datetime(["2024-01-01", "2024-01-08"]),
        "channel": ["tv", "search"],
        "contribution": [120.5, None],
        "lower": [100, 3],
    }
)

# these commands print nothing on stdout when they fail
assert_clean_error = partial(clean_error, empty_stdout=True)


class Identity(mlflow.pyfunc.PythonModel):
    """A real pyfunc model, the least one: a registered version needs one."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        return model_input


def log_run(*, with_tables: bool = True, model: str | None = None) -> str:
    """A real run of the default store in the test's home, with two result tables (and a registered model)."""
    from stackml import tracking
    from stackml.config import get_settings

    # explicit settings: tracking keeps the last explicit ones, which an earlier test pointed elsewhere
    settings = get_settings()
    with tracking.start_run("cli_export", settings=settings) as run:
        if with_tables:
            tracking.log_table(ROAS, "roas")
            tracking.log_table(CONTRIBUTIONS, "contributions")
        if model is not None:
            example = pd.DataFrame({"x": [1.0]})
            version = tracking.register_model(Identity(), model, input_example=example, settings=settings)
    if model is not None:
        tracking.move_alias(model, int(version.version), reason="test", settings=settings)
    return run.info.run_id


def test_export_a_run_to_a_tableau_extract_then_to_csv(tmp_path: Path) -> None:
    run_id = log_run()
    proc = run_cli("export", "--run", run_id, "--to", "hyper", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    extract = tmp_path / f"{run_id}.hyper"
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Wrote 2 table(s) of run {run_id} to {extract}:"
    assert [line.split() for line in lines[1:]] == [["contributions", "2", "rows"], ["roas", "2", "rows"]]

    tables = read_extract(extract)
    assert list(tables) == ["contributions", "roas"]
    pd.testing.assert_frame_equal(tables["roas"], ROAS.reset_index())
    expected = CONTRIBUTIONS.assign(week=CONTRIBUTIONS["week"].astype("datetime64[us]"))
    pd.testing.assert_frame_equal(tables["contributions"], expected)

    again = run_cli("export", "--run", run_id, "--to", "hyper", cwd=tmp_path)
    assert_clean_error(again, f"Error: '{extract}' exists.", "Pass --force to replace it")
    assert run_cli("export", "--run", run_id, "--to", "hyper", "--force", cwd=tmp_path).returncode == 0

    csv = run_cli("export", "--run", run_id, "--to", "csv", "--json", cwd=tmp_path)
    assert csv.returncode == 0, csv.stderr
    folder = tmp_path / run_id
    assert json.loads(csv.stdout) == {
        "run_id": run_id,
        "format": "csv",
        "path": str(folder),
        "tables": [
            {"name": "contributions", "rows": 2, "file": str(folder / "contributions.csv")},
            {"name": "roas", "rows": 2, "file": str(folder / "roas.csv")},
        ],
    }
    pd.testing.assert_frame_equal(pd.read_csv(folder / "roas.csv"), ROAS.reset_index())
    back = pd.read_csv(folder / "contributions.csv", parse_dates=["week"])
    pd.testing.assert_frame_equal(back, CONTRIBUTIONS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([extract.name, run_id, "stackml-home"])

    # without the Hyper API (None in sys.modules is how Python marks a module as not importable)
    code = "import sys; sys.modules['tableauhyperapi'] = None; from stackml.cli import main; main()"
    args = ["export", "--run", run_id, "--to", "hyper", "--out", "other.hyper"]
    blocked = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    assert_clean_error(blocked, "optional package 'tableauhyperapi'", "pip install 'stackml[tableau]'")
    assert not (tmp_path / "other.hyper").exists()


def test_export_the_run_of_a_model_version_to_parquet(tmp_path: Path) -> None:
    run_id = log_run(model="cli_export_model")
    out = tmp_path / "exports" / "mmm"
    proc = run_cli(
        "export",
        "--model",
        "cli_export_model@champion",
        "--to",
        "parquet",
        "--out",
        str(out),
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["run_id"], summary["path"]) == (run_id, str(out))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "roas.parquet"), ROAS.reset_index())
    pd.testing.assert_frame_equal(pd.read_parquet(out / "contributions.parquet"), CONTRIBUTIONS)


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    assert_clean_error(
        run_cli("export", "--to", "hyper", cwd=tmp_path), "Name exactly one of --run and --model"
    )
    both = run_cli("export", "--run", "abc", "--model", "m", "--to", "hyper", cwd=tmp_path)
    assert_clean_error(both, "Name exactly one of --run and --model")
    assert_clean_error(
        run_cli("export", "--run", "abc", "--to", "xlsx", cwd=tmp_path),
        "--to must be one of hyper, parquet, csv; got 'xlsx'",
    )
    before = set(tmp_path.iterdir())  # the checks above need no store; the ones below create it
    assert_clean_error(
        run_cli("export", "--run", "0" * 32, "--to", "hyper", cwd=tmp_path),
        f"Run '{'0' * 32}' does not exist",
    )
    no_tables = log_run(with_tables=False)
    assert_clean_error(
        run_cli("export", "--run", no_tables, "--to", "csv", cwd=tmp_path),
        f"Run '{no_tables}' logged no tables",
    )
    assert_clean_error(run_cli("export", "--model", "nope", "--to", "hyper", cwd=tmp_path), "nope")
    assert {p.name for p in set(tmp_path.iterdir()) - before} <= {"stackml-home"}
    assert not list(tmp_path.glob("*.hyper"))
