"""stackml.tracking against a real MLflow SQLite store in a temporary home (no server)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("mlflow")

import mlflow  # noqa: E402  (after importorskip)

from stackml.config import get_settings  # noqa: E402
from stackml.errors import InputError, RegistryError  # noqa: E402
from stackml.tracking import (  # noqa: E402
    configure,
    data_fingerprint,
    git_commit,
    list_models,
    list_runs,
    load_model,
    load_reference_data,
    load_tables,
    log_figure,
    log_metrics,
    log_reference_data,
    log_table,
    promote,
    register_model,
    start_run,
)

MODEL = "addk"
TRAIN = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"]})


class AddConstant(mlflow.pyfunc.PythonModel):
    """Predicts x + k: tiny, but a real pyfunc model with state that survives pickling."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"y": model_input["x"] + self.k})


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The module's store, plus a copy of it taken while still empty.

    Creating an MLflow SQLite schema costs one to several seconds (many committed migrations);
    copying the fresh file gives a second, empty store for free.
    """
    # The home does not exist yet: configure must create it, or SQLite cannot open its file.
    main = get_settings(home=tmp_path_factory.mktemp("tracking") / "home")
    configure(main)
    empty = get_settings(home=tmp_path_factory.mktemp("tracking-empty"))
    shutil.copyfile(main.home / "mlflow.db", empty.home / "mlflow.db")
    return main, empty


@pytest.fixture(scope="module")
def settings(stores):
    return stores[0]


@pytest.fixture(scope="module")
def versions(settings):
    """Three versions of one model, registered once for the module: rmse 1.1, 1.2 (worse), 0.9 (better)."""
    registered, seconds = [], []
    for k, rmse in [(1.0, 1.1), (2.0, 1.2), (3.0, 0.9)]:
        with start_run("demo", data=TRAIN, run_name=f"k{k:g}", settings=settings):
            started = time.perf_counter()
            mv = register_model(
                AddConstant(k), MODEL, input_example=TRAIN.head(2), metrics={"rmse": rmse}, settings=settings
            )
            seconds.append(time.perf_counter() - started)
        registered.append(mv)
    return registered, seconds


def _client(settings):
    return configure(settings)


def test_configure_points_mlflow_at_the_home_and_keeps_explicit_settings(settings, tmp_path, monkeypatch):
    from stackml.tracking import _setup

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setattr(_setup, "_state", None)  # as in a fresh process
    # Every call below stays on the module's database: creating a fresh MLflow schema costs seconds.
    monkeypatch.setenv("STACKML_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("STACKML_HOME", str(tmp_path / "first"))

    client = configure()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == settings.tracking_uri
    assert configure() is client  # unchanged settings: cheap, same client
    # Defaults are re-read while nothing was passed explicitly, so a changed STACKML_HOME is followed...
    monkeypatch.setenv("STACKML_HOME", str(tmp_path / "second"))
    configure()
    assert _setup.current_settings().home == tmp_path / "second"
    # ...but settings passed once stay in force for calls without settings.
    explicit = get_settings(home=tmp_path / "explicit")
    explicit_client = configure(explicit)
    monkeypatch.setenv("STACKML_HOME", str(tmp_path / "third"))
    assert configure() is explicit_client
    assert _setup.current_settings() == explicit
    # Someone re-pointing MLflow behind our back is noticed and undone.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    configure()
    assert mlflow.get_tracking_uri() == explicit.tracking_uri


def test_start_run_tags_params_and_artifact_location(settings):
    with start_run(
        "demo", data=TRAIN, params={"horizon": 7}, tags={"team": "growth"}, run_name="r1", settings=settings
    ) as run:
        run_id = run.info.run_id
    got = _client(settings).get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "r1"
    assert got.data.params == {"horizon": "7"}
    tags = got.data.tags
    assert tags["stackml.pipeline"] == "demo"
    assert tags["stackml.git_commit"] == git_commit()
    assert tags["stackml.data_fingerprint"] == data_fingerprint(TRAIN)
    assert tags["team"] == "growth"
    experiment = _client(settings).get_experiment(got.info.experiment_id)
    assert experiment.name == "stackml/demo"
    # Artifacts must land under the stackml home, one folder per pipeline.
    assert got.info.artifact_uri.startswith(f"{settings.artifact_location}/demo/")


def test_start_run_marks_failed_and_reraises(settings):
    with pytest.raises(ZeroDivisionError):
        with start_run("demo", settings=settings) as run:
            run_id = run.info.run_id
            _ = 1 / 0
    assert _client(settings).get_run(run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_nested_start_run_is_a_child(settings):
    with start_run("demo", settings=settings) as parent:
        with start_run("demo", settings=settings) as child:
            child_id = child.info.run_id
    assert _client(settings).get_run(child_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_logging_round_trip(settings, tmp_path):
    go = pytest.importorskip("plotly.graph_objects")
    table = pd.DataFrame({"unique_id": ["a", "b"], "y": [1.5, 2.5]})
    with start_run("demo", settings=settings) as run:
        log_metrics({"rmse": 1.0}, step=0)
        log_metrics({"rmse": 0.5}, step=1)
        fig_path = log_figure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "curve")
        table_path = log_table(table, "scores.parquet")
        ref_path = log_reference_data(TRAIN)
        with pytest.raises(InputError, match="not a number|needs numbers"):
            log_metrics({"rmse": "low", "mae": [1]})
    run_id = run.info.run_id
    assert (fig_path, table_path, ref_path) == (
        "figures/curve.html",
        "tables/scores.parquet",
        "reference/reference.parquet",
    )
    client = _client(settings)
    history = client.get_metric_history(run_id, "rmse")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]

    html = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=fig_path, dst_path=tmp_path))
    text = html.read_text()
    assert "<html>" in text and "<script src=" not in text
    assert len(text) > 1_000_000  # plotly.js is inlined so the file opens offline

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=table_path, dst_path=tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(local), table)

    reference = load_reference_data(run_id, settings=settings)
    pd.testing.assert_frame_equal(reference, TRAIN)
    assert client.get_run(run_id).data.tags["stackml.reference.reference"] == data_fingerprint(reference)
    with pytest.raises(RegistryError, match=r"no reference data named 'holdout'; it has \['reference'\]"):
        load_reference_data(run_id, "holdout", settings=settings)
    with pytest.raises(RegistryError, match="does not exist"):
        load_reference_data("0" * 32, settings=settings)


def test_load_tables_reads_back_every_logged_table(settings):
    roas = pd.DataFrame({"roas": [1.8, 0.6]}, index=pd.Index(["tv", "search"], name="channel"))
    with start_run("demo", settings=settings) as run:
        log_table(TRAIN, "train")
        log_table(roas, "roas.parquet")
        log_reference_data(TRAIN)  # reference data is not a result table
    tables = load_tables(run.info.run_id, settings=settings)
    assert list(tables) == ["roas", "train"]
    pd.testing.assert_frame_equal(tables["roas"], roas)
    pd.testing.assert_frame_equal(tables["train"], TRAIN)

    with start_run("demo", settings=settings) as empty:
        log_metrics({"rmse": 1.0})
    with pytest.raises(RegistryError, match=f"Run '{empty.info.run_id}' logged no tables"):
        load_tables(empty.info.run_id, settings=settings)
    with pytest.raises(RegistryError, match="does not exist"):
        load_tables("0" * 32, settings=settings)


def test_log_outside_a_run_is_refused(settings):
    with pytest.raises(InputError, match="log_table needs an active run"):
        log_table(TRAIN, "t")


def test_register_model_logs_signature_example_and_requirements(settings, versions):
    registered, seconds = versions
    assert [int(mv.version) for mv in registered] == [1, 2, 3]
    assert all(mv.name == MODEL and mv.run_id for mv in registered)
    # Explicit pip requirements keep log_model fast; MLflow's inference takes ~20 s.
    assert max(seconds) < 5, seconds
    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["x", "g"]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["y"]
    requirements_file = mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1/requirements.txt")
    requirements = Path(requirements_file).read_text()
    assert f"mlflow=={mlflow.__version__}" in requirements
    assert _client(settings).get_run(registered[0].run_id).data.metrics == {"rmse": 1.1}


def test_register_model_outside_a_run_starts_one(settings):
    mv = register_model(AddConstant(0.0), "addk-solo", input_example=TRAIN, settings=settings)
    run = _client(settings).get_run(mv.run_id)
    assert run.data.tags["stackml.pipeline"] == "models"
    assert run.info.status == "FINISHED"


def test_register_model_rejects_bad_arguments_together(settings):
    with pytest.raises(InputError, match="'python_model' must be.*'input_example' must be.*'metrics' must"):
        register_model(
            object(), MODEL, input_example=pd.DataFrame(), metrics={"rmse": "low"}, settings=settings
        )
    with pytest.raises(InputError, match="could not infer the signature.*KeyError"):
        register_model(AddConstant(1.0), MODEL, input_example=pd.DataFrame({"z": [1]}), settings=settings)


def test_promote_sequence_and_load(settings, versions):
    client = _client(settings)

    first = promote(MODEL, 1, "rmse", higher_is_better=False, settings=settings)
    assert first.promoted and first.champion_version is None and first.candidate_value == pytest.approx(1.1)
    assert client.get_registered_model(MODEL).aliases == {"champion": 1}

    worse = promote(MODEL, "2", "rmse", higher_is_better=False, settings=settings)
    assert not worse.promoted
    assert worse.reason == ("candidate v2 rmse=1.2 does not beat champion v1 rmse=1.1 (lower is better)")
    assert (worse.champion_version, worse.champion_value) == (1, pytest.approx(1.1))
    assert client.get_registered_model(MODEL).aliases == {"champion": 1}
    v1_tags = client.get_model_version(MODEL, "1").tags
    v2_tags = client.get_model_version(MODEL, "2").tags
    assert v1_tags["stackml.promotion.v2"] == v2_tags["stackml.promotion.v2"]
    assert '"decision": "kept"' in v2_tags["stackml.promotion.v2"]
    assert (v2_tags["stackml.promotion_decision"], v2_tags["stackml.compared_with"]) == ("kept", "v1")

    again = promote(MODEL, 1, "rmse", higher_is_better=False, settings=settings)
    assert not again.promoted and "already holds the alias 'champion'" in again.reason

    better = promote(MODEL, 3, "rmse", higher_is_better=False, settings=settings)
    assert better.promoted and "beats champion v1" in better.reason
    assert client.get_registered_model(MODEL).aliases == {"champion": 3}
    assert client.get_model_version(MODEL, "3").tags["stackml.promotion_decision"] == "promoted"

    # Higher-is-better flips the comparison: 1.2 beats 0.9 on a score where bigger wins.
    flipped = promote(MODEL, 2, "rmse", higher_is_better=True, alias="by_score", settings=settings)
    assert flipped.promoted and "first 'by_score'" in flipped.reason

    model = load_model(MODEL, settings=settings)
    assert model.predict(pd.DataFrame({"x": [1.0], "g": ["a"]}))["y"].tolist() == [4.0]
    assert load_model(f"{MODEL}@by_score", settings=settings).predict(TRAIN.head(1))["y"].tolist() == [3.0]

    models = list_models(settings=settings)
    assert list(models.columns) == ["name", "version", "aliases", "run_id", "metrics", "created"]
    mine = models[models["name"] == MODEL]
    assert mine["version"].tolist() == [3, 2, 1]
    assert mine["aliases"].tolist() == [["champion"], ["by_score"], []]
    assert mine["metrics"].tolist() == [{"rmse": 0.9}, {"rmse": 1.2}, {"rmse": 1.1}]


def test_promote_errors(settings, versions):
    with pytest.raises(RegistryError, match=r"no metric 'mae'.*available metrics: \['rmse'\]"):
        promote(MODEL, 1, "mae", higher_is_better=False, settings=settings)
    with pytest.raises(RegistryError, match=r"Registered model 'nope' does not exist"):
        promote("nope", 1, "rmse", higher_is_better=False, settings=settings)
    with pytest.raises(RegistryError, match=r"has no version '9'; its versions are \[1, 2, 3\]"):
        promote(MODEL, "9", "rmse", higher_is_better=False, settings=settings)
    with pytest.raises(RegistryError, match="does not exist"):
        load_model("nope", settings=settings)


def test_list_runs(settings, versions):
    runs = list_runs(limit=50, pipeline="demo", settings=settings)
    assert list(runs.columns) == [
        "run_id",
        "experiment",
        "pipeline",
        "run_name",
        "status",
        "start_time",
        "duration_s",
        "metrics",
    ]
    assert set(runs["experiment"]) == {"stackml/demo"}
    assert runs["start_time"].is_monotonic_decreasing
    by_name = runs.set_index("run_name")
    assert by_name.loc["k3", "metrics"] == {"rmse": 0.9}
    assert by_name.loc["k3", "status"] == "FINISHED"
    assert len(list_runs(limit=2, settings=settings)) == 2
    assert list_runs(pipeline="never_ran", settings=settings).empty
    with pytest.raises(InputError, match="'limit' of list_runs must be a positive integer; got 0"):
        list_runs(limit=0, settings=settings)


def test_empty_store_lists_nothing(stores):
    empty = stores[1]
    runs, models = list_runs(settings=empty), list_models(settings=empty)
    assert runs.empty and "run_id" in runs.columns
    assert models.empty and list(models.columns) == [
        "name",
        "version",
        "aliases",
        "run_id",
        "metrics",
        "created",
    ]


def test_promote_never_compares_metrics_measured_on_other_data(settings):
    name = "comparable_model"
    registered = []
    for k, rmse, evaluation in [(1.0, 1.0, "backtest-a"), (2.0, 0.5, "backtest-b"), (3.0, 0.8, "backtest-a")]:
        with start_run("demo", data=TRAIN, settings=settings):
            mv = register_model(
                AddConstant(k), name, input_example=TRAIN.head(2), metrics={"rmse": rmse}, settings=settings
            )
        registered.append((mv, evaluation))
    first = promote(
        name, registered[0][0].version, "rmse", False, comparable_on="backtest-a", settings=settings
    )
    assert first.promoted
    other = promote(
        name, registered[1][0].version, "rmse", False, comparable_on="backtest-b", settings=settings
    )
    assert (
        not other.promoted
        and "was not compared" in other.reason
        and "backtest-a vs backtest-b" in other.reason
    )
    same = promote(
        name, registered[2][0].version, "rmse", False, comparable_on="backtest-a", settings=settings
    )
    assert same.promoted and same.champion_version == int(registered[0][0].version)
    tags = _client(settings).get_model_version(name, str(registered[1][0].version)).tags
    assert tags["stackml.evaluation_id"] == "backtest-b" and tags["stackml.promotion_decision"] == "kept"


def test_move_alias_and_rollback_record_who_and_why(settings):
    import getpass
    import math

    from stackml.tracking import alias_history, move_alias, rollback

    name = "handmoved"
    versions = []
    for k, rmse in [(1.0, 1.0), (2.0, 0.8), (3.0, math.nan)]:
        with start_run("demo", data=TRAIN, settings=settings):
            mv = register_model(
                AddConstant(k), name, input_example=TRAIN.head(2), metrics={"rmse": rmse}, settings=settings
            )
        versions.append(int(mv.version))
        promote(name, mv.version, "rmse", higher_is_better=False, settings=settings)
    client = _client(settings)
    assert client.get_registered_model(name).aliases == {"champion": versions[1]}

    back = rollback(name, reason="v2 drifts on new stores", settings=settings)
    assert (back.version, back.previous, back.action) == (versions[0], versions[1], "rollback")
    assert (back.by, back.reason) == (getpass.getuser(), "v2 drifts on new stores")
    assert client.get_registered_model(name).aliases == {"champion": versions[0]}
    with pytest.raises(RegistryError, match=r"no earlier 'champion' to roll back to: v1 is the first"):
        rollback(name, reason="again", settings=settings)

    moved = move_alias(name, versions[1], reason="drift fixed", settings=settings)
    assert moved.moved and (moved.version, moved.previous) == (versions[1], versions[0])
    assert not move_alias(name, versions[1], reason="twice", settings=settings).moved
    with pytest.raises(RegistryError, match=r"v3 cannot take an alias: rmse=nan is not a finite number"):
        move_alias(name, versions[2], reason="try", settings=settings)
    with pytest.raises(RegistryError, match=r"has no version 9; its versions are \[1, 2, 3\]"):
        move_alias(name, 9, reason="try", settings=settings)
    with pytest.raises(InputError, match="A reason is required"):
        move_alias(name, versions[0], reason=" ", settings=settings)
    # The rollback stack is an undo: after v1 -> v2 by hand, a rollback returns to v1.
    assert rollback(name, reason="undo", settings=settings).version == versions[0]

    history = alias_history(name, settings=settings)
    assert [(m.action, m.version, m.previous) for m in history] == [
        ("compared", 1, None),
        ("compared", 2, 1),
        ("rollback", 1, 2),
        ("promote", 2, 1),
        ("rollback", 1, 2),
    ]


def test_abandon_launch_kills_open_runs_and_removes_half_made_versions(settings, tmp_path):
    """A process killed between registering and promoting, as an interrupted flow task is."""
    import subprocess
    import sys

    from stackml.tracking import LAUNCH_ENV, abandon_launch

    script = tmp_path / "killed_task.py"
    script.write_text(
        "import os, signal, sys\n"
        "import mlflow, pandas as pd\n"
        "from stackml.config import get_settings\n"
        "from stackml.tracking import register_model, start_run\n"
        "class M(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        return model_input\n"
        "frame = pd.DataFrame({'x': [1.0]})\n"
        "with start_run('demo', settings=get_settings(home=sys.argv[1], tracking_uri=sys.argv[2])) as run:\n"
        "    register_model(M(), 'abandoned', input_example=frame, metrics={'rmse': 1.0})\n"
        "    print(run.info.run_id, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, LAUNCH_ENV: "launch-abandoned", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run(
        [sys.executable, str(script), str(settings.home), settings.tracking_uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[-1]
    client = _client(settings)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(run_id).data.tags["stackml.launch"] == "launch-abandoned"
    assert len(client.search_model_versions("name = 'abandoned'")) == 1

    closed = abandon_launch("launch-abandoned", settings=settings)
    assert closed.runs == [run_id] and closed.removed_versions == ["abandoned v1"]
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.search_model_versions("name = 'abandoned'") == []
    assert abandon_launch("launch-abandoned", settings=settings).runs == []  # nothing left open


def test_a_new_store_is_created_whole_in_one_step(tmp_path):
    settings = get_settings(home=tmp_path / "fresh")
    configure(settings)
    assert (settings.home / "mlflow.db").is_file()
    assert [p.name for p in settings.home.iterdir() if p.name.endswith(".partial")] == []
    assert list_runs(settings=settings).empty
