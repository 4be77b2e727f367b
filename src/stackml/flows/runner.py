"""Run a Metaflow flow file through Metaflow's ``Runner``, with progress, and read its run back.

The runner gives every flow the same surroundings: a user name (Metaflow refuses to run without
one, and refuses ``root``), Metaflow's local datastore under the stackml home instead of the current
directory, the caller's settings as ``STACKML_*`` variables so steps calling ``get_settings()`` see
the same home, warehouse and tracking store, and MLflow telemetry switched off.

A failed run raises :class:`~stackml.errors.FlowFailedError` naming the flow, the run id, the failing
step and its exception, with the exact shell command that resumes the run from that step.

Example:
    >>> from stackml.flows import flow_path, run_flow
    >>> result = run_flow(flow_path("forecast"), {"horizon": 14})  # doctest: +SKIP
    >>> result.run["end"].task.data.metrics  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import shlex
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stackml._deps import require
from stackml.config import Settings, get_settings
from stackml.errors import FlowFailedError, InputError

__all__ = ["FlowResult", "available_flows", "flow_path", "load_run", "run_flow"]

FLOWS_DIR = Path(__file__).resolve().parent
FLOW_FILE_SUFFIX = "_flow.py"
# Metaflow's local datastore root: it writes to "<root>/.metaflow" (metaflow_config.DATASTORE_SYSROOT_LOCAL).
DATASTORE_ROOT_ENV = "METAFLOW_DATASTORE_SYSROOT_LOCAL"
FALLBACK_USER = "stackml"
# Settings handed to the flow's processes; api_token is a secret and never printed in a hint.
_SETTINGS_FIELDS = (
    "home",
    "warehouse_url",
    "tracking_uri",
    "artifact_location",
    "postgres_url",
    "reports_dir",
)


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


# --------------------------------------------------------------------------- environment


def _default_user(environ: dict[str, str]) -> str:
    """The user Metaflow will record: an explicit one, else the login, else ``stackml``.

    Metaflow refuses ``root``, the usual login in containers, so it counts as no user.
    """
    for key in ("METAFLOW_USER", "USERNAME"):
        if environ.get(key) and environ[key] != "root":
            return environ[key]
    try:
        login = getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError when there is no passwd entry (containers)
        login = ""
    return login if login and login != "root" else FALLBACK_USER


def _ensure_client_user(user: str) -> None:
    """Give this process a user name when it has none Metaflow accepts.

    Metaflow's client resolves a default namespace from the user name when it reads a run back, and
    raises ``MetaflowUnknownUser`` without one, so the caller's process needs it as much as the flow's.
    """
    if not any(
        os.environ.get(k) not in (None, "", "root")
        for k in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")
    ):
        os.environ["USERNAME"] = user


def _settings_env(settings: Settings) -> dict[str, str]:
    """``STACKML_*`` variables reproducing ``settings`` in the flow's processes."""
    env = {f"STACKML_{name.upper()}": str(getattr(settings, name)) for name in _SETTINGS_FIELDS}
    env = {k: v for k, v in env.items() if v != "None"}
    if settings.api_token is not None:
        env["STACKML_API_TOKEN"] = settings.api_token.get_secret_value()
    return env


def _flow_env(settings: Settings, extra: dict[str, str] | None) -> dict[str, str]:
    """Variables added to the current environment for the flow; ``extra`` (the caller's) wins."""
    user = _default_user({**os.environ, **(extra or {})})
    env = {"USERNAME": user, "METAFLOW_USER": user}
    # Keep an explicit, non-root choice of the user; only fill in what Metaflow would lack.
    env = {k: v for k, v in env.items() if not os.environ.get(k) or os.environ[k] == "root"}
    env[DATASTORE_ROOT_ENV] = str(settings.home)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(_settings_env(settings))
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def _resume_env(settings: Settings, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The variables a resume needs, and the names left out because their value holds a password.

    Settings that ``home`` alone implies are left out to keep the command short.
    """
    implied = _settings_env(type(settings).model_construct(home=settings.home)._derive_defaults())
    needed = {
        "USERNAME": env.get("USERNAME") or _default_user(dict(os.environ)),
        DATASTORE_ROOT_ENV: env[DATASTORE_ROOT_ENV],
    }
    withheld = []
    for key, value in _settings_env(settings).items():
        if key == "STACKML_API_TOKEN" or implied.get(key) == value:
            continue
        if urlsplit(value).password:
            withheld.append(key)
        else:
            needed[key] = env.get(key, value)
    needed["STACKML_HOME"] = env.get("STACKML_HOME", str(settings.home))
    return needed, withheld


def _resume_command(flow_file: Path, run_id: str, resume_env: dict[str, str]) -> str:
    assignments = [f"{k}={shlex.quote(v)}" for k, v in resume_env.items()]
    argv = [sys.executable, str(flow_file), "resume", "--origin-run-id", run_id]
    return " ".join(assignments + [shlex.quote(a) for a in argv])


# --------------------------------------------------------------------------- progress from the log

# "2026-01-01 10:00:00.000 [1712/train/3 (pid 123)] Task is starting." -- timestamp optional.
_TASK_LINE = re.compile(
    r"\[(?P<run>[^/\]\s]+)/(?P<step>[^/\]\s]+)/(?P<task>[^\]\s]+)(?: \(pid \d+\))?\] (?P<msg>.*)$"
)
_RUN_START = re.compile(r"Workflow starting \(run-id (?P<run>[^),\s]+)")


class _ProgressTracker:
    """Follows Metaflow's log lines to know which steps run, which finished and which task failed.

    A step counts as finished once none of its tasks runs and a successor has started (a foreach
    step's tasks start one by one, so "all started tasks done" alone would finish it too early);
    the ``end`` step, which has no successor, once its task finished.
    """

    def __init__(self, steps: list[str], successors: dict[str, list[str]]) -> None:
        self.steps = list(steps)
        self.successors = successors
        self.run_id: str | None = None
        self.tasks_done = 0
        self.started: set[str] = set()
        self.running: dict[str, set[str]] = {}
        self.failed: dict[tuple[str, str], None] = {}  # (step, task id) in the order they failed
        self.lines: dict[tuple[str, str], deque[str]] = {}  # last lines of each task, for errors

    def feed(self, line: str) -> bool:
        """Take one line of the run's stdout; return whether the progress changed."""
        if self.run_id is None and (start := _RUN_START.search(line)):
            self.run_id = start["run"]
            return True
        match = _TASK_LINE.search(line)
        if match is None:
            return False
        step, task, msg = match["step"], match["task"], match["msg"]
        if step not in self.steps:
            self.steps.append(step)
        self.lines.setdefault((step, task), deque(maxlen=40)).append(msg)
        running = self.running.setdefault(step, set())
        if msg.startswith("Task is starting"):
            self.started.add(step)
            running.add(task)
            self.failed.pop((step, task), None)  # a retry of a failed task
        elif msg.startswith("Task finished successfully"):
            running.discard(task)
            self.tasks_done += 1
        elif msg.startswith("Task failed"):
            running.discard(task)
            self.failed[(step, task)] = None
        elif msg.startswith("Cloning previously run task"):  # resume reuses a finished task
            self.started.add(step)
            self.tasks_done += 1
        else:
            return False
        return True

    @property
    def current_steps(self) -> list[str]:
        return [s for s in self.steps if self.running.get(s)]

    @property
    def finished_steps(self) -> list[str]:
        def finished(step: str) -> bool:
            if step not in self.started or self.running.get(step) or any(s == step for s, _ in self.failed):
                return False
            nexts = self.successors.get(step, [])
            return any(s in self.started for s in nexts) if nexts else self.tasks_done > 0

        return [s for s in self.steps if finished(s)]


def _flow_graph(flow_file: Path) -> tuple[str, list[str], dict[str, list[str]]]:
    """Flow name, steps in topological order and each step's successors, from the loaded flow class."""
    from metaflow.graph import FlowGraph
    from metaflow.runner.click_api import extract_flow_class_from_file

    flow_cls = extract_flow_class_from_file(str(flow_file))  # cached: Runner() has imported it already
    graph = FlowGraph(flow_cls)
    return flow_cls.__name__, list(graph.sorted_nodes), {n.name: list(n.out_funcs) for n in graph}


class _Display:
    """A Rich progress bar of finished steps, naming the running ones; silent when disabled."""

    def __init__(self, flow_name: str, tracker: _ProgressTracker, enabled: bool, console: Any) -> None:
        self.flow_name, self.tracker, self.enabled = flow_name, tracker, enabled
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.console = console or Console(stderr=True)
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar = self._progress.add_task(f"{flow_name}: starting", total=len(tracker.steps) or None)

    def __enter__(self) -> _Display:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)

    def update(self, *, final: bool = False, ok: bool = False) -> None:
        if self._progress is None:
            return
        t = self.tracker
        done = len(t.finished_steps)
        if final:
            state = "done" if ok else "failed"
            done = len(t.steps) if ok else done
        else:
            running = t.current_steps
            state = f"step {', '.join(running)}" if running else "starting"
        label = f"{self.flow_name}/{t.run_id}" if t.run_id else self.flow_name
        self._progress.update(
            self._bar, description=f"{label}: {state}", completed=done, total=max(len(t.steps), done) or None
        )


# --------------------------------------------------------------------------- running


@dataclass
class _Outcome:
    """What the async driver brings back from inside the Runner's context."""

    flow_name: str
    run_id: str
    run: Any
    returncode: int | None
    timed_out: bool
    stderr: str
    failure: tuple[str, str, list[str]] | None  # step, task pathspec, error lines
    running_steps: list[str]
    duration_s: float


async def _tail(path: str, process: Any, on_line: Callable[[str], None]) -> None:
    """Feed complete lines of a growing log file until its process has exited and the file is read.

    Metaflow's own ``stream_log`` sleeps 10 ms before every line, too slow for chatty flows.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        pending = ""
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    on_line(pending.rstrip("\n"))
                    pending = ""
                continue
            if process.returncode is not None:
                if pending:
                    on_line(pending)
                return
            await asyncio.sleep(0.05)


def _exception_lines(task: Any) -> list[str]:
    """``Type: message`` and the innermost frame of a failed task, from its ``_exception`` artifact."""
    exc = task.exception
    if exc is None or not getattr(exc, "type", None):
        return []
    kind = exc.type.removeprefix("builtins.")
    lines = [f"{kind}: {exc.exception}"]
    frames = [ln.strip() for ln in (exc.stacktrace or "").splitlines() if ln.strip().startswith('File "')]
    if frames:
        lines.append(frames[-1])
    return lines


def _tail_of_stderr(text: str, n: int = 6) -> list[str]:
    """Last lines of a task's stderr, ending with the exception line when it holds a traceback."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Task failed."]
    return lines[-n:]


def _failure(tracker: _ProgressTracker, run: Any) -> tuple[str, str, list[str]] | None:
    """The first failed task: its step, pathspec and the lines that say what went wrong."""
    if not tracker.failed:
        return None
    step, task_id = next(iter(tracker.failed))
    pathspec = f"{run.pathspec}/{step}/{task_id}"
    lines: list[str] = []
    try:
        task = run[step][task_id]
        lines = _exception_lines(task) or _tail_of_stderr(task.stderr)
    except Exception:  # the client could not read the task back; the streamed log still has its traceback
        lines = []
    if not lines:
        lines = _tail_of_stderr("\n".join(tracker.lines.get((step, task_id), [])))
    return step, pathspec, lines


async def _drive(
    flow_file: Path,
    parameters: dict[str, Any],
    env: dict[str, str],
    display_factory: Callable[[str, _ProgressTracker], _Display],
    timeout: float | None,
) -> _Outcome:
    from metaflow import Runner

    try:
        runner = Runner(
            str(flow_file), show_output=False, env=env, file_read_timeout=int(timeout or 3600) + 5
        )
    except Exception as exc:  # anything the flow module raises on import, or "no FlowSpec class found"
        raise InputError(
            f"Could not load a flow from {flow_file}: {type(exc).__name__}: {exc}",
            hint=f"Check that it runs on its own: {sys.executable} {flow_file} show",
        ) from exc
    try:
        flow_name, steps, successors = _flow_graph(flow_file)
    except Exception:  # progress is a nicety: never fail a run because the graph could not be read
        flow_name, steps, successors = flow_file.stem, [], {}
    tracker = _ProgressTracker(steps, successors)

    async with runner:
        started = time.monotonic()
        with display_factory(flow_name, tracker) as display:
            try:
                executing = await runner.async_run(**parameters)
            except (ValueError, TypeError) as exc:  # Metaflow's check of parameter names and types
                raise InputError(
                    f"Invalid parameters for flow {flow_name} ({flow_file}): {exc}",
                    hint=f"See the flow's parameters with: {sys.executable} {flow_file} run --help",
                ) from exc
            except RuntimeError as exc:  # the process ended before it had a run id
                tail = "\n    ".join(str(exc).strip().splitlines()[-8:])
                raise FlowFailedError(
                    f"Flow {flow_name} ({flow_file}) failed before it started a run:\n    {tail}",
                    hint=f"Run it directly to see the whole output: {sys.executable} {flow_file} run",
                ) from exc
            run = executing.run
            tracker.run_id = run.id
            display.print(f"Running {run.pathspec} (datastore {env[DATASTORE_ROOT_ENV]}/.metaflow)")

            def on_line(line: str) -> None:
                if tracker.feed(line):
                    display.update()

            command = executing.command_obj
            timed_out = False
            remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
            try:
                await asyncio.wait_for(
                    asyncio.gather(
                        command.process.wait(), _tail(command.log_files["stdout"], command.process, on_line)
                    ),
                    remaining,
                )
            except TimeoutError:
                timed_out = True
                command.kill(termination_timeout=2)  # the run and the task processes it started
                await command.process.wait()
            duration = time.monotonic() - started
            ok = not timed_out and command.process.returncode == 0
            display.update(final=True, ok=ok)
            stderr = executing.stderr  # read now: the Runner deletes its log files on exit
        failure = None if ok else _failure(tracker, run)
        if ok:
            display.print(f"{run.pathspec} finished in {duration:.1f} s")
    return _Outcome(
        flow_name=run.pathspec.split("/")[0],
        run_id=run.id,
        run=run,
        returncode=command.process.returncode,
        timed_out=timed_out,
        stderr=stderr,
        failure=failure,
        running_steps=tracker.current_steps,
        duration_s=duration,
    )


def _run_coroutine(factory: Callable[[], Any]) -> Any:
    """``asyncio.run`` the coroutine, in a worker thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:  # e.g. called from Jupyter or an async web handler
        return pool.submit(lambda: asyncio.run(factory())).result()


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
            the hint holds the command that resumes the run. The error also carries ``flow_name``,
            ``run_id``, ``step``, ``resume_command`` and ``resume_env``.

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
    flow_env = _flow_env(settings, env)
    _ensure_client_user(flow_env.get("USERNAME") or _default_user(dict(os.environ)))

    def display_factory(flow_name: str, tracker: _ProgressTracker) -> _Display:
        return _Display(flow_name, tracker, show_progress, console)

    outcome: _Outcome = _run_coroutine(
        lambda: _drive(path, dict(parameters or {}), flow_env, display_factory, timeout)
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
    raise _failed_error(path, outcome, settings, flow_env, timeout)


def _failed_error(
    path: Path, outcome: _Outcome, settings: Settings, env: dict[str, str], timeout: float | None
) -> FlowFailedError:
    resume_env, withheld = _resume_env(settings, env)
    command = _resume_command(path, outcome.run_id, resume_env)
    pathspec = f"{outcome.flow_name}/{outcome.run_id}"
    step = None
    if outcome.timed_out:
        where = f" in step '{', '.join(outcome.running_steps)}'" if outcome.running_steps else ""
        step = outcome.running_steps[0] if outcome.running_steps else None
        message = (
            f"Flow {outcome.flow_name} (run {outcome.run_id}) did not finish within {timeout:g} s "
            f"and was stopped{where}."
        )
    elif outcome.failure is not None:
        step, task_pathspec, lines = outcome.failure
        detail = "".join(f"\n    {ln}" for ln in lines) or "\n    (the task left no error output)"
        message = (
            f"Flow {outcome.flow_name} (run {outcome.run_id}) failed in step '{step}' "
            f"(task {task_pathspec}):{detail}"
        )
    else:  # the runtime itself died, e.g. killed, or failed between tasks
        tail = "".join(f"\n    {ln}" for ln in _tail_of_stderr(outcome.stderr))
        code = outcome.returncode
        message = f"Flow {outcome.flow_name} (run {outcome.run_id}) failed with exit code {code}.{tail}"
    hint = f"Fix the cause, then resume {pathspec} from the failed step with:\n    {command}"
    if withheld:
        hint += f"\nAlso set {', '.join(withheld)} as for the original run (left out: it holds a password)."
    error = FlowFailedError(message, hint=hint)
    # Structured fields for the CLI's --json output and for callers that resume programmatically.
    error.flow_name, error.run_id, error.step = outcome.flow_name, outcome.run_id, step
    error.resume_command, error.resume_env = command, resume_env
    return error


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
    _ensure_client_user(_default_user(dict(os.environ)))
    try:
        # The local metadata provider takes the folder holding ".metaflow", as the datastore root does.
        return Run(pathspec, _namespace_check=False, _current_metadata=f"local@{settings.home}")
    except MetaflowNotFound as exc:
        raise InputError(
            f"No run {pathspec} in the Metaflow datastore under {settings.home}.",
            hint="Check the run id, and that STACKML_HOME points to the home the flow ran with.",
        ) from exc
