"""Run a Metaflow flow file through Metaflow's ``Runner``, with progress, and read its run back.

The runner gives every flow the same surroundings: a user name (Metaflow refuses to run without
one, and refuses ``root``), Metaflow's local datastore under the stackml home instead of the current
directory, the caller's settings as ``STACKML_*`` variables so steps calling ``get_settings()`` see
the same home, warehouse and tracking store, and MLflow telemetry switched off.

A failed run raises :class:`~stackml.errors.FlowFailedError` naming the flow, the run id, the failing
step and its exception, with the exact shell command that resumes the run from that step; a step that
failed on bad data or options gives only that error's message, since a resume cannot fix them.

Example:
    >>> from stackml.flows import flow_path, run_flow
    >>> result = run_flow(flow_path("forecast"), {"horizon": 14})  # doctest: +SKIP
    >>> result.run["end"].task.data.metrics  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackml import errors
from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.errors import FlowFailedError, FlowInterruptedError, InputError
from stackml.flows._drive import OWN_ERRORS_MODULE, Failure, Outcome, drive, run_coroutine, tail_of_stderr
from stackml.flows._environment import (
    default_user,
    ensure_client_user,
    flow_env,
    resume_command,
    resume_env,
)
from stackml.flows._progress import Display, ProgressTracker

__all__ = ["FlowInterruptedError", "FlowResult", "available_flows", "flow_path", "load_run", "run_flow"]

FLOWS_DIR = Path(__file__).resolve().parent
FLOW_FILE_SUFFIX = "_flow.py"


@dataclass(frozen=True)
class FlowResult:
    """The outcome of :func:`run_flow`.

    Attributes:
        flow_name: name of the ``FlowSpec`` class, e.g. ``"HelloFlow"``.
        run_id: Metaflow run id.
        pathspec: ``"<flow_name>/<run_id>"``.
        successful: whether every step finished.
        run: the ``metaflow.Run`` client object, for reading artifacts (``run["end"].task.data.x``).
        duration_s: wall-clock seconds from launch to the end of the run.
    """

    flow_name: str
    run_id: str
    pathspec: str
    successful: bool
    run: Any = field(repr=False)
    duration_s: float


# --------------------------------------------------------------------------- built-in flows


def available_flows(flows_dir: str | Path | None = None) -> list[str]:
    """Names of the flows in ``flows_dir`` (default: the built-in ones), i.e. ``<name>_flow.py`` files."""
    folder = Path(flows_dir) if flows_dir is not None else FLOWS_DIR
    return sorted(
        p.name[: -len(FLOW_FILE_SUFFIX)] for p in folder.glob(f"*{FLOW_FILE_SUFFIX}") if p.is_file()
    )


def flow_path(name: str, flows_dir: str | Path | None = None) -> Path:
    """Resolve a flow name such as ``"forecast"`` to its file ``<flows_dir>/forecast_flow.py``.

    Args:
        name: the flow's name; a trailing ``_flow`` or ``_flow.py`` and dashes are tolerated.
        flows_dir: folder to look in; default the built-in flows of ``stackml.flows``.

    Raises:
        InputError: no such flow; the message lists the available ones.
    """
    stem = name.strip().replace("-", "_").removesuffix(".py").removesuffix("_flow")
    folder = Path(flows_dir) if flows_dir is not None else FLOWS_DIR
    path = folder / f"{stem}{FLOW_FILE_SUFFIX}"
    if stem.isidentifier() and path.is_file():
        return path.resolve()
    names = available_flows(folder)
    raise InputError(
        f"Unknown flow {name!r}: there is no {path.name} in {folder}.",
        hint=f"Use one of: {', '.join(names)}." if names else "No flows are available there yet.",
    )


# --------------------------------------------------------------------------- running


def _resolve_flow_file(flow_file: str | Path) -> Path:
    path = Path(flow_file).expanduser()
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise InputError(
            f"Flow file '{flow_file}' is {what} (looked at {path.absolute()}).",
            hint="Pass the path of a Python file holding one FlowSpec, or flow_path(name) for a built-in.",
        )
    if path.suffix != ".py":
        raise InputError(
            f"Flow file '{flow_file}' must be a Python file ending in .py, got suffix {path.suffix!r}.",
            hint="Pass the path of the .py file that defines the FlowSpec.",
        )
    return path.resolve()


def run_flow(
    flow_file: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    show_progress: bool = True,
    console: Any = None,
    settings: Settings | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> FlowResult:
    """Run a Metaflow flow file to the end and return its run.

    Args:
        flow_file: path of the flow's ``.py`` file (see :func:`flow_path` for built-in flows).
        parameters: the flow's ``Parameter`` values by name; Metaflow's run options (``max_workers``,
            ``tags``, ...) are accepted too.
        show_progress: show a Rich progress bar of the steps; nothing is printed when false.
        console: the ``rich.console.Console`` to draw on; default one on stderr.
        settings: stackml settings; the datastore goes to ``<settings.home>/.metaflow`` and the flow's
            steps see these settings as ``STACKML_*`` variables. Default :func:`get_settings`.
        env: extra environment variables for the flow's processes; they win over the defaults.
            They are not repeated in the resume hint of a failure.
        timeout: seconds after which the run is stopped and reported as failed.

    Returns:
        The finished run.

    Raises:
        InputError: the flow file is missing or cannot be loaded, or a parameter is unknown or invalid.
        FlowFailedError: the run failed or timed out; the message names the step and its exception,
            the hint holds the command that resumes the run. A step that failed on bad data or options
            (an ``InputError`` or ``ConfigError``) gives just that error's message and no resume hint, as
            a resume reuses them. The error also carries ``flow_name``, ``run_id``, ``step``,
            ``resume_command`` and ``resume_env``.
        FlowInterruptedError: Ctrl-C stopped the run (its tasks were interrupted and have exited); the
            same fields as a failure.

    Example:
        >>> result = run_flow("tests/flows/sample_flows/hello_flow.py", {"n": 3})  # doctest: +SKIP
        >>> result.run["end"].task.data.total  # doctest: +SKIP
        5
    """
    path = _resolve_flow_file(flow_file)
    if parameters is not None and not isinstance(parameters, dict):
        raise InputError(
            f"'parameters' must be a dict of flow parameter values, got {type(parameters).__name__}.",
            hint="Pass e.g. parameters={'horizon': 14}.",
        )
    if timeout is not None and timeout <= 0:
        raise InputError(
            f"'timeout' must be a positive number of seconds, got {timeout!r}.", hint="Or pass None."
        )
    require("metaflow")
    settings = settings or get_settings()
    settings.ensure_home()
    run_env = flow_env(settings, env)
    ensure_client_user(run_env.get("USERNAME") or default_user(dict(os.environ)))

    def display_factory(flow_name: str, tracker: ProgressTracker) -> Display:
        return Display(flow_name, tracker, show_progress, console)

    outcome: Outcome = run_coroutine(
        lambda: drive(path, dict(parameters or {}), run_env, display_factory, timeout)
    )
    if outcome.returncode == 0 and not outcome.timed_out:
        return FlowResult(
            flow_name=outcome.flow_name,
            run_id=outcome.run_id,
            pathspec=f"{outcome.flow_name}/{outcome.run_id}",
            successful=True,
            run=outcome.run,
            duration_s=outcome.duration_s,
        )
    raise _failed_error(path, outcome, settings, run_env, timeout)


def _failed_error(
    path: Path, outcome: Outcome, settings: Settings, env: dict[str, str], timeout: float | None
) -> FlowFailedError:
    needed_env, withheld = resume_env(settings, env)
    command = resume_command(path, outcome.run_id, needed_env)
    pathspec = f"{outcome.flow_name}/{outcome.run_id}"
    step = None
    # Bad data or options (one of our InputError/ConfigError): a resume reuses them, so it cannot help.
    bad_input = not outcome.interrupted and outcome.failure is not None and _is_input_error(outcome.failure)
    if outcome.interrupted:
        step = outcome.running_steps[0] if outcome.running_steps else None
        where = f" in step '{', '.join(outcome.running_steps)}'" if outcome.running_steps else ""
        message = f"Flow {outcome.flow_name} (run {outcome.run_id}) was interrupted{where} and stopped."
    elif outcome.timed_out:
        where = f" in step '{', '.join(outcome.running_steps)}'" if outcome.running_steps else ""
        step = outcome.running_steps[0] if outcome.running_steps else None
        message = (
            f"Flow {outcome.flow_name} (run {outcome.run_id}) did not finish within {timeout:g} s "
            f"and was stopped{where}."
        )
    elif bad_input:
        step = outcome.failure.step
        message = outcome.failure.exception_message  # the error's message and hint, as a direct call gives
    elif outcome.failure is not None:
        step, lines = outcome.failure.step, outcome.failure.lines
        detail = "".join(f"\n    {ln}" for ln in lines) or "\n    (the task left no error output)"
        message = (
            f"Flow {outcome.flow_name} (run {outcome.run_id}) failed in step '{step}' "
            f"(task {outcome.failure.pathspec}):{detail}"
        )
    else:  # the runtime itself died, e.g. killed, or failed between tasks
        tail = "".join(f"\n    {ln}" for ln in tail_of_stderr(outcome.stderr))
        code = outcome.returncode
        message = f"Flow {outcome.flow_name} (run {outcome.run_id}) failed with exit code {code}.{tail}"
    if outcome.interrupted:
        hint = f"Resume {pathspec} from that step with:\n    {command}"
    elif bad_input:
        hint = None
    else:
        hint = f"Fix the cause, then resume {pathspec} from the failed step with:\n    {command}"
    if withheld and hint:
        hint += f"\nAlso set {', '.join(withheld)} as for the original run (left out: it holds a password)."
    error = (FlowInterruptedError if outcome.interrupted else FlowFailedError)(message, hint=hint)
    # Structured fields for the CLI's --json output and for callers that resume programmatically.
    error.flow_name, error.run_id, error.step = outcome.flow_name, outcome.run_id, step
    error.resume_command, error.resume_env = command, needed_env
    return error


def _is_input_error(failure: Failure) -> bool:
    """Whether the task failed on one of our errors about the data or the options (``InputError``,
    ``ConfigError`` and their subclasses)."""
    qualified = failure.exception_type or ""
    if not qualified.startswith(OWN_ERRORS_MODULE) or not failure.exception_message:
        return False
    kind = getattr(errors, qualified.removeprefix(OWN_ERRORS_MODULE), None)
    return isinstance(kind, type) and issubclass(kind, (errors.InputError, errors.ConfigError))


def load_run(pathspec: str, settings: Settings | None = None) -> Any:
    """Read a finished or running run back from the datastore under the stackml home.

    Args:
        pathspec: ``"<FlowName>/<run_id>"``, as in :attr:`FlowResult.pathspec`.
        settings: whose ``home`` holds the datastore; default :func:`get_settings`.

    Raises:
        InputError: the pathspec is malformed or no such run is stored there.
    """
    require("metaflow")
    from metaflow import Run
    from metaflow.exception import MetaflowNotFound

    if not re.fullmatch(r"[A-Za-z_]\w*/[^/\s]+", pathspec or ""):
        raise InputError(
            f"Run pathspec must look like 'FlowName/run_id', got {pathspec!r}.", hint="E.g. 'HelloFlow/17'."
        )
    settings = settings or get_settings()
    ensure_client_user(default_user(dict(os.environ)))
    try:
        # The local metadata provider takes the folder holding ".metaflow", as the datastore root does.
        return Run(pathspec, _namespace_check=False, _current_metadata=f"local@{settings.home}")
    except MetaflowNotFound as exc:
        raise InputError(
            f"No run {pathspec} in the Metaflow datastore under {settings.home}.",
            hint="Check the run id, and that STACKML_HOME points to the home the flow ran with.",
        ) from exc
