"""The flow runner: built-in flow lookup, input checks, progress parsing, and real Metaflow runs.

Four Metaflow runs in all (about 2 s each): HelloFlow with a progress bar, FailingFlow quietly, the
resume command that FailingFlow's error hands back, run in a clean shell environment, and BadInputFlow,
whose step raises our InputError.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from stackml.config import Settings, get_settings
from stackml.errors import FlowFailedError, InputError
from stackml.flows import _environment, available_flows, flow_path, load_run, run_flow
from stackml.flows._environment import DATASTORE_ROOT_ENV
from stackml.flows._progress import ProgressTracker

# --------------------------------------------------------------------------- no Metaflow run


def test_flow_path_resolves_names_and_lists_the_available_ones(tmp_path: Path) -> None:
    for stem in ("forecast", "nlp"):
        (tmp_path / f"{stem}_flow.py").write_text("# a flow\n")
    (tmp_path / "helpers.py").write_text("# not a flow\n")

    assert available_flows(tmp_path) == ["forecast", "nlp"]
    expected = (tmp_path / "forecast_flow.py").resolve()
    assert flow_path("forecast", tmp_path) == expected
    assert flow_path("forecast_flow", tmp_path) == expected
    with pytest.raises(InputError, match=r"Unknown flow 'helpers'.*Use one of: forecast, nlp\."):
        flow_path("helpers", tmp_path)
    with pytest.raises(InputError, match=r"Unknown flow '\.\./forecast'"):
        flow_path("../forecast", tmp_path)


def test_flow_path_looks_in_the_built_in_flows_by_default() -> None:
    with pytest.raises(InputError, match=r"Unknown flow 'no_such_pipeline'.*stackml/flows"):
        flow_path("no_such_pipeline")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing_flow.py", r"missing_flow\.py' is not found"),
        (lambda d: d, r"is a folder"),
        (lambda d: (d / "flow.txt", (d / "flow.txt").write_text("x"))[0], r"must be a Python file.*'\.txt'"),
    ],
    ids=["missing", "folder", "not-python"],
)
def test_run_flow_rejects_a_bad_flow_file(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_flow(make(tmp_path), show_progress=False, settings=get_settings(home=tmp_path / "home"))


def test_run_flow_rejects_a_file_without_a_flow(tmp_path: Path, flow_env: None) -> None:
    empty = tmp_path / "empty_flow.py"
    empty.write_text("x = 1\n")
    with pytest.raises(InputError, match=r"Could not load a flow from .*empty_flow\.py.*No FlowSpec class"):
        run_flow(empty, show_progress=False, settings=get_settings(home=tmp_path / "home"))


def test_run_flow_rejects_unknown_parameters_before_running(
    tmp_path: Path, sample_flows: Path, flow_env: None
) -> None:
    home = tmp_path / "home"
    with pytest.raises(InputError, match=r"Invalid parameters for flow HelloFlow.*Unknown argument: 'nope'"):
        run_flow(
            sample_flows / "hello_flow.py", {"nope": 1}, show_progress=False, settings=get_settings(home=home)
        )
    assert not (home / ".metaflow" / "HelloFlow").exists()


def test_flow_env_supplies_user_datastore_settings_and_lets_the_caller_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("METAFLOW_USER", "USERNAME", "SUDO_USER"):
        monkeypatch.delenv(key, raising=False)
    for key in ("USER", "LOGNAME"):  # getpass.getuser() reads these first; Metaflow refuses root
        monkeypatch.setenv(key, "root")
    settings = get_settings(home=tmp_path, warehouse_url="duckdb:///elsewhere.duckdb")

    env = _environment.flow_env(settings, {"EXTRA": "1", "MLFLOW_DISABLE_TELEMETRY": "false"})

    assert env["USERNAME"] == env["METAFLOW_USER"] == "stackml"
    assert env[DATASTORE_ROOT_ENV] == str(tmp_path)
    assert env["STACKML_HOME"] == str(tmp_path)
    assert env["STACKML_WAREHOUSE_URL"] == "duckdb:///elsewhere.duckdb"
    assert env["EXTRA"] == "1" and env["MLFLOW_DISABLE_TELEMETRY"] == "false"

    monkeypatch.setenv("USERNAME", "ada")
    assert "USERNAME" not in _environment.flow_env(settings, None)  # an explicit user is kept as it is
    assert _environment.flow_env(settings, None)["MLFLOW_DISABLE_TELEMETRY"] == "true"


# Lines as Metaflow 2.19 prints them, from a foreach run and from a failed run.
_FOREACH_LOG = """\
2026-11-26 05:37:25.044 Workflow starting (run-id 1795):
2026-11-26 05:37:25.093 [1795/start/1 (pid 10318)] Task is starting.
2026-11-26 05:37:25.370 [1795/start/1 (pid 10318)] Foreach yields 2 child steps.
2026-11-26 05:37:25.371 [1795/start/1 (pid 10318)] Task finished successfully.
2026-11-26 05:37:25.381 [1795/square/2 (pid 10332)] Task is starting.
2026-11-26 05:37:25.384 [1795/square/3 (pid 10333)] Task is starting.
2026-11-26 05:37:25.704 [1795/square/3 (pid 10333)] Task finished successfully."""
_FOREACH_REST = """\
2026-11-26 05:37:25.858 [1795/square/2 (pid 10332)] Task finished successfully.
2026-11-26 05:37:25.867 [1795/join/4 (pid 10345)] Task is starting.
2026-11-26 05:37:26.147 [1795/join/4 (pid 10345)] Task finished successfully.
2026-11-26 05:37:26.159 [1795/end/5 (pid 10353)] Task is starting.
2026-11-26 05:37:26.348 [1795/end/5 (pid 10353)] total 1
2026-11-26 05:37:26.397 [1795/end/5 (pid 10353)] Task finished successfully.
2026-11-26 05:37:26.398 Done!"""
_FAILED_LOG = """\
2026-11-26 05:37:28.602 Workflow starting (run-id 1796):
2026-11-26 05:37:28.621 [1796/start/1 (pid 10520)] Task is starting.
2026-11-26 05:37:28.855 [1796/start/1 (pid 10520)] Task finished successfully.
2026-11-26 05:37:28.861 [1796/middle/2 (pid 10523)] Task is starting.
2026-11-26 05:37:29.093 [1796/middle/2 (pid 10523)] raise ValueError("middle step broke on purpose")
2026-11-26 05:37:29.093 [1796/middle/2 (pid 10523)] ValueError: middle step broke on purpose
2026-11-26 05:37:29.094 [1796/middle/2 (pid 10523)] Task failed.
2026-11-26 05:37:29.094 Workflow failed."""


def test_progress_tracker_follows_steps_tasks_and_failures() -> None:
    hello = ProgressTracker(
        ["start", "square", "join", "end"], {"start": ["square"], "square": ["join"], "join": ["end"]}
    )
    for line in _FOREACH_LOG.splitlines():
        hello.feed(line)
    assert hello.run_id == "1795"
    # one foreach task still runs: 'square' is not finished although a task of it is
    assert hello.finished_steps == ["start"] and hello.current_steps == ["square"]
    for line in _FOREACH_REST.splitlines():
        hello.feed(line)
    assert hello.finished_steps == ["start", "square", "join", "end"] and hello.current_steps == []
    assert hello.tasks_done == 5 and not hello.failed

    failing = ProgressTracker(["start", "middle", "end"], {"start": ["middle"], "middle": ["end"]})
    for line in _FAILED_LOG.splitlines():
        failing.feed(line)
    assert list(failing.failed) == [("middle", "2")]
    assert failing.finished_steps == ["start"]
    assert "ValueError: middle step broke on purpose" in failing.lines[("middle", "2")]


def test_a_steps_own_progress_gets_a_bar_under_the_flows_until_its_task_ends() -> None:
    from rich.console import Console

    from stackml.flows._progress import Display, progress_line

    tracker = ProgressTracker(["start", "train", "end"], {"start": ["train"], "train": ["end"]})
    display = Display("NLPFlow", tracker, True, Console(file=io.StringIO(), width=120))
    lines = [
        "[7/train/2 (pid 11)] Task is starting.",
        f"[7/train/2 (pid 11)] {progress_line('tfidf trials', 4, 4, 'value 0.91')}",
        f"[7/train/2 (pid 11)] {progress_line('minilm epochs', 1, 10, 'val_accuracy 0.5')}",
        f"[7/train/2 (pid 11)] {progress_line('minilm  epochs', 2, 10, 'val_accuracy 0.7')}",
    ]
    with display:
        for line in lines:
            assert tracker.feed(line)
            display.update()
        bars = {t.description: (t.completed, t.total, t.fields["unit"]) for t in display._progress.tasks}
        assert bars["  train: minilm (val_accuracy 0.7)"] == (2, 10, "epochs")
        assert bars["  train: tfidf (value 0.91)"] == (4, 4, "trials") and len(bars) == 3
        assert tracker.step_bars["train"]["minilm epochs"] == (2, 10, "val_accuracy 0.7")
        tracker.feed("[7/train/2 (pid 11)] Task finished successfully.")
        display.update()
        assert [t.fields["unit"] for t in display._progress.tasks] == ["steps"] and not tracker.step_bars
    assert progress_line("a\nb", 1, 2) == "progress: a b 1/2"  # one line whatever the label holds


# --------------------------------------------------------------------------- real Metaflow runs


@pytest.fixture(scope="module")
def hello_run(sample_flows: Path, flow_settings: Settings, run_cwd: Path):
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    result = run_flow(sample_flows / "hello_flow.py", {"n": 4}, console=console, settings=flow_settings)
    return result, out.getvalue()


def test_hello_flow_runs_end_to_end(hello_run, flow_settings: Settings, run_cwd: Path) -> None:
    result, _ = hello_run
    assert result.successful and result.flow_name == "HelloFlow"
    assert re.fullmatch(r"\d+", result.run_id) and result.pathspec == f"HelloFlow/{result.run_id}"
    assert 0 < result.duration_s < 60
    end = result.run["end"].task.data
    assert end.total == 0 + 1 + 4 + 9
    assert end.stackml_home == str(flow_settings.home)  # steps see the caller's settings
    assert end.telemetry_off == "true"
    assert sorted(t.data.value for t in result.run["square"]) == [0, 1, 4, 9]


def test_datastore_lives_under_the_stackml_home_not_the_cwd(
    hello_run, flow_settings: Settings, run_cwd: Path
) -> None:
    result, _ = hello_run
    assert (flow_settings.home / ".metaflow" / "HelloFlow" / result.run_id).is_dir()
    assert list(run_cwd.iterdir()) == []
    again = load_run(result.pathspec, flow_settings)  # a fresh client finds it from the home alone
    assert again.successful and again["join"].task.data.total == 14
    with pytest.raises(InputError, match=r"No run HelloFlow/1 in the Metaflow datastore"):
        load_run("HelloFlow/1", flow_settings)


def test_progress_display_names_the_run_and_its_steps(hello_run) -> None:
    result, shown = hello_run
    assert f"Running {result.pathspec}" in shown
    assert f"{result.pathspec}: done" in shown and "4/4 steps" in shown
    assert f"{result.pathspec} finished in" in shown


@pytest.fixture(scope="module")
def failed_run(sample_flows: Path, flow_settings: Settings, run_cwd: Path, tmp_path_factory):
    marker = tmp_path_factory.mktemp("marker") / "failed_once"
    printed_out, printed_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed_out), contextlib.redirect_stderr(printed_err):
        with pytest.raises(FlowFailedError) as caught:
            run_flow(
                sample_flows / "failing_flow.py",
                {"marker": str(marker)},
                show_progress=False,
                settings=flow_settings,
            )
    return caught.value, printed_out.getvalue() + printed_err.getvalue()


def test_failed_flow_names_the_step_its_error_and_the_resume_command(
    failed_run, sample_flows: Path, flow_settings: Settings
) -> None:
    error, printed = failed_run
    assert printed == ""  # show_progress=False is quiet
    assert isinstance(error, RuntimeError)
    assert error.step == "middle" and error.flow_name == "FailingFlow" and re.fullmatch(r"\d+", error.run_id)
    assert re.search(
        rf"Flow FailingFlow \(run {error.run_id}\) failed in step 'middle' "
        rf"\(task FailingFlow/{error.run_id}/middle/\d+\):\n"
        r"    ConnectionError: warehouse went away on purpose\n"
        r'    File ".*failing_flow\.py", line \d+, in middle',
        error.message,
    ), error.message
    flow_file = shlex.quote(str((sample_flows / "failing_flow.py").resolve()))
    assert error.hint.endswith(f"{flow_file} resume --origin-run-id {error.run_id}")
    # not one of our errors, so resuming may help: the command on a line of its own (issue 18, item 13)
    assert error.hint.splitlines()[1] == f"    {error.resume_command}"
    assert f"{DATASTORE_ROOT_ENV}={flow_settings.home}" in error.hint
    assert "USERNAME=" in error.hint and error.resume_command in error.hint


def test_a_step_failing_on_our_input_error_gives_its_message_and_no_resume(
    sample_flows: Path, flow_settings: Settings, run_cwd: Path
) -> None:
    with pytest.raises(FlowFailedError) as caught:
        run_flow(sample_flows / "bad_input_flow.py", show_progress=False, settings=flow_settings)
    error = caught.value
    # a resume reuses the same input, so it cannot help; the internal file and line say nothing to a user
    assert str(error) == "'horizon' must be >= 1, got 0. Use --horizon 7."
    assert error.hint is None and 'File "' not in str(error) and "resume" not in str(error)
    assert error.step == "middle" and error.flow_name == "BadInputFlow" and re.fullmatch(r"\d+", error.run_id)


def test_resume_command_from_the_hint_finishes_the_run(
    failed_run, flow_settings: Settings, tmp_path: Path
) -> None:
    error, _ = failed_run
    words = shlex.split(error.resume_command)
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    argv = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    assert argv[0] == sys.executable and argv[-2:] == ["--origin-run-id", error.run_id]
    # A clean shell elsewhere: only what the hint states, no inherited USER/USERNAME or cwd datastore.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **assignments,
    }
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    resumed_id = re.search(r"Workflow starting \(run-id (\d+)\)", done.stdout)[1]
    resumed = load_run(f"FailingFlow/{resumed_id}", flow_settings)
    assert resumed.successful and resumed["middle"].task.data.y == 42
    assert resumed_id != error.run_id
    assert not (tmp_path / ".metaflow").exists()
