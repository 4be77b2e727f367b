"""Unit tests of stackml.tracking that need no tracking store: provenance, names, settings plumbing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stackml.config import get_settings
from stackml.errors import InputError
from stackml.tracking import data_fingerprint, git_commit

FRAME = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "t": pd.to_datetime(["2024-01-01"] * 3)})


# --- data_fingerprint -------------------------------------------------------------------------


def test_fingerprint_is_short_hex_and_stable_across_copies():
    fp = data_fingerprint(FRAME)
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert data_fingerprint(FRAME.copy(deep=True)) == fp
    rebuilt = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "t": pd.to_datetime(["2024-01-01"] * 3)})
    assert data_fingerprint(rebuilt) == fp


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.assign(a=[1, 2, 4]), id="one value"),
        pytest.param(lambda f: f.rename(columns={"a": "A"}), id="column name"),
        pytest.param(lambda f: f.astype({"a": "float64"}), id="dtype with equal values"),
        pytest.param(lambda f: f.iloc[::-1].reset_index(drop=True), id="row order"),
        pytest.param(lambda f: f.set_index(pd.Index([5, 6, 7])), id="index"),
        pytest.param(lambda f: f[["b", "a", "t"]], id="column order"),
        pytest.param(lambda f: f.iloc[:2], id="fewer rows"),
    ],
)
def test_fingerprint_changes_with_the_data(change):
    assert data_fingerprint(change(FRAME)) != data_fingerprint(FRAME)


def test_fingerprint_of_series_unhashable_cells_and_numpy_values():
    assert data_fingerprint(FRAME["a"]) == data_fingerprint(FRAME[["a"]])
    nested = pd.DataFrame({"tokens": [["a", "b"], ["c"]]})
    assert data_fingerprint(nested) == data_fingerprint(nested.copy())
    assert data_fingerprint(nested) != data_fingerprint(pd.DataFrame({"tokens": [["a"], ["c"]]}))
    ints, floats = pd.DataFrame({"v": np.arange(3)}), pd.DataFrame({"v": np.ones(3)})
    assert data_fingerprint(ints) != data_fingerprint(floats)


def test_fingerprint_of_files_streams_and_compares_bytes(tmp_path):
    payload = os.urandom(2_500_000)  # larger than one read chunk, so chunking is exercised
    one, two, other = tmp_path / "one.bin", tmp_path / "two.bin", tmp_path / "other.bin"
    one.write_bytes(payload)
    two.write_bytes(payload)
    other.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert data_fingerprint(one) == data_fingerprint(str(two))  # same bytes, any name, str or Path
    assert data_fingerprint(one) != data_fingerprint(other)


def test_fingerprint_of_folders_sees_names_and_contents(tmp_path):
    for folder in ("p", "q"):
        (tmp_path / folder / "part=1").mkdir(parents=True)
        (tmp_path / folder / "part=1" / "data.csv").write_text("y\n1\n")
    assert data_fingerprint(tmp_path / "p") == data_fingerprint(tmp_path / "q")
    (tmp_path / "q" / "part=1" / "data.csv").rename(tmp_path / "q" / "part=1" / "other.csv")
    assert data_fingerprint(tmp_path / "p") != data_fingerprint(tmp_path / "q")


def test_fingerprint_of_collections():
    a, b = FRAME, FRAME.iloc[:1]
    assert data_fingerprint([a, b]) != data_fingerprint([b, a])
    assert data_fingerprint({"train": a, "test": b}) == data_fingerprint({"test": b, "train": a})
    assert data_fingerprint({"train": a, "test": b}) != data_fingerprint({"train": b, "test": a})
    assert data_fingerprint([a]) != data_fingerprint(a)


def test_fingerprint_rejects_missing_paths_and_unknown_types(tmp_path):
    with pytest.raises(InputError, match="path '.*missing.csv', which does not exist"):
        data_fingerprint(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="cannot fingerprint an object of type int"):
        data_fingerprint([FRAME, 3])


# --- git_commit -------------------------------------------------------------------------------


def _git(repo, *args):
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_git_commit_reads_head_and_dirty_state(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert git_commit(repo) == "unknown"  # no commit yet
    (repo / "a.txt").write_text("1")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    assert git_commit(repo) == head and re.fullmatch(r"[0-9a-f]{40}", head)
    (repo / "untracked.txt").write_text("x")
    assert git_commit(repo) == head  # untracked files do not make a checkout dirty
    (repo / "a.txt").write_text("2")
    assert git_commit(repo) == f"{head}-dirty"


def test_git_commit_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == "unknown"


# --- names, settings and requirements (MLflow imported, no store touched) ---------------------


def test_start_run_rejects_unsafe_pipeline_names():
    pytest.importorskip("mlflow")
    from stackml.tracking import start_run

    for bad in ["", "../escape", "has space", "a/b"]:
        with pytest.raises(InputError, match="pipeline name must be letters"):
            with start_run(bad):
                pass


def test_log_helpers_need_an_active_run():
    pytest.importorskip("mlflow")
    from stackml.tracking import log_figure, log_metrics, log_params, log_reference_data

    for call in [
        lambda: log_metrics({"m": 1.0}),
        lambda: log_params({"p": 1}),
        lambda: log_figure(None, "f"),
        lambda: log_reference_data(FRAME),
    ]:
        with pytest.raises(InputError, match="needs an active run"):
            call()


def test_sqlite_path_of_tracking_uris():
    pytest.importorskip("mlflow")
    from stackml.tracking._setup import _sqlite_path

    assert str(_sqlite_path("sqlite:////tmp/a b/mlflow.db")) == "/tmp/a b/mlflow.db"
    assert str(_sqlite_path("sqlite:///rel/mlflow.db?timeout=5")) == "rel/mlflow.db"
    assert _sqlite_path("sqlite:///:memory:") is None
    assert _sqlite_path("postgresql://u@h/db") is None and _sqlite_path("http://mlflow:5000") is None


def test_experiment_artifact_location():
    pytest.importorskip("mlflow")
    from stackml.tracking._setup import experiment_artifact_location

    local = get_settings(home="/tmp/h")
    assert experiment_artifact_location(local, "forecast") == "file:///tmp/h/mlartifacts/forecast"
    server = get_settings(home="/tmp/h", tracking_uri="http://mlflow:5000")
    assert experiment_artifact_location(server, "forecast") is None  # the server picks its own store
    s3 = get_settings(home="/tmp/h", tracking_uri="http://mlflow:5000", artifact_location="s3://b/ml/")
    assert experiment_artifact_location(s3, "forecast") == "s3://b/ml/forecast"


def test_pinned_requirements_pin_installed_versions():
    mlflow = pytest.importorskip("mlflow")
    from stackml.tracking import pinned_requirements

    reqs = pinned_requirements("pandas", "surely-not-installed-pkg")
    assert reqs[0] == f"mlflow=={mlflow.__version__}"
    assert f"pandas=={pd.__version__}" in reqs and reqs.count(f"pandas=={pd.__version__}") == 1
    assert any(r.startswith("stackml==") for r in reqs)
    assert reqs[-1] == "surely-not-installed-pkg"


def test_importing_tracking_does_not_import_mlflow():
    # The CLI imports stackml.tracking on start-up; MLflow alone takes about a second to import.
    code = "import sys, stackml.tracking; print('mlflow' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
