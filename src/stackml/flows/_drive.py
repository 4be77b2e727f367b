"""Drive Metaflow's ``Runner`` subprocess: launch the run, follow its log, and collect the outcome.

Metaflow is imported only inside :func:`drive`, when a flow actually runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackml.errors import FlowFailedError, InputError
from stackml.flows._environment import DATASTORE_ROOT_ENV
from stackml.flows._progress import Display, ProgressTracker, flow_graph

#: the module of stackml's own errors: their messages say what to fix, so their traceback is not shown
OWN_ERRORS_MODULE = "stackml.errors."


@dataclass(frozen=True)
class Failure:
    """The first failed task of a run."""

    step: str
    pathspec: str  # the task's
    lines: list[str]  # what went wrong: ``Type: message`` and, unless it is one of ours, the innermost frame
    exception_type: str | None = None  # qualified, e.g. "stackml.errors.InputError"; None when unread
    exception_message: str | None = None  # ``str()`` of the exception; for ours, the message and its hint


@dataclass
class Outcome:
    """What the async driver brings back from inside the Runner's context."""

    flow_name: str
    run_id: str
    run: Any
    returncode: int | None
    timed_out: bool
    stderr: str
    failure: Failure | None
    running_steps: list[str]
    duration_s: float
    interrupted: bool = False


# Stopping an interrupted run: how long the runtime gets to report that it saw the interrupt itself (a
# terminal's Ctrl-C reaches every process of the group), then to stop its tasks, before it is killed.
NOTICE_S = 1.0
STOP_S = 20.0


@dataclass
class _Interrupt:
    """Ctrl-C while a flow runs: the first stops the run (its tasks may end their runs), a second kills it."""

    count: int = 0
    steps: list[str] | None = None  # the steps running when it came
    command: Any = None
    stopping: Any = None  # the task that stops the run

    def take(self, tracker: ProgressTracker) -> None:
        self.count += 1
        if self.steps is None:
            self.steps = tracker.current_steps
        if self.command is None:  # the run has no id yet; stopped as soon as it has one
            return
        if self.count == 1:
            self.stopping = asyncio.get_running_loop().create_task(_stop(self.command, tracker))
        else:
            _signal_all(self.command, tracker, signal.SIGKILL)

    def start_if_requested(self, tracker: ProgressTracker) -> None:
        if self.count and self.stopping is None:
            self.count -= 1
            self.take(tracker)


def _signal_all(command: Any, tracker: ProgressTracker, signum: int) -> None:
    for pid in [command.process.pid, *tracker.running_pids]:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:  # already gone
            continue


async def _stop(command: Any, tracker: ProgressTracker) -> None:
    """Interrupt the runtime and its tasks once each, then wait for them; kill what does not stop."""
    process = command.process
    waited = 0.0
    while process.returncode is None and not tracker.runtime_interrupted and waited < NOTICE_S:
        await asyncio.sleep(0.05)
        waited += 0.05
    if process.returncode is None and not tracker.runtime_interrupted:
        # Only this process was interrupted (e.g. `kill -INT`): pass it on, as a terminal would have.
        _signal_all(command, tracker, signal.SIGINT)
    pids = tracker.running_pids
    try:
        await asyncio.wait_for(process.wait(), STOP_S)
    except TimeoutError:
        _signal_all(command, tracker, signal.SIGKILL)
        await process.wait()
    # Tasks outlive a runtime killed before them; nothing may write to the store once we clean up.
    deadline = time.monotonic() + 5
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process: ours is gone
        return False
    return True


def _take_sigint(interrupt: _Interrupt, tracker: ProgressTracker) -> None:
    """Handle Ctrl-C ourselves: Metaflow's handler terminates the tasks at once, so none can close its run."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupt.take, tracker)
    except (ValueError, RuntimeError):  # not the main thread (Jupyter, a web handler): no signals to take
        pass


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


def _exception_lines(exc: Any) -> list[str]:
    """``Type: message`` and the innermost frame of a failed task's ``_exception`` artifact.

    Our own errors (``stackml.errors.*``) say what to fix: their internal file and line are left out.
    """
    if exc is None or not getattr(exc, "type", None):
        return []
    ours = exc.type.startswith(OWN_ERRORS_MODULE)
    kind = exc.type.removeprefix(OWN_ERRORS_MODULE if ours else "builtins.")
    lines = [f"{kind}: {exc.exception}"]
    frames = [ln.strip() for ln in (exc.stacktrace or "").splitlines() if ln.strip().startswith('File "')]
    if frames and not ours:
        lines.append(frames[-1])
    return lines


def tail_of_stderr(text: str, n: int = 6) -> list[str]:
    """Last lines of a task's stderr, ending with the exception line when it holds a traceback."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Task failed."]
    return lines[-n:]


def _failure(tracker: ProgressTracker, run: Any) -> Failure | None:
    """The first failed task: its step, pathspec, the lines that say what went wrong and the error's type."""
    if not tracker.failed:
        return None
    step, task_id = next(iter(tracker.failed))
    pathspec = f"{run.pathspec}/{step}/{task_id}"
    lines: list[str] = []
    exception_type = exception_message = None
    try:
        task = run[step][task_id]
        exc = task.exception
        exception_type = getattr(exc, "type", None) or None
        exception_message = getattr(exc, "exception", None)
        lines = _exception_lines(exc) or tail_of_stderr(task.stderr)
    except Exception:  # the client could not read the task back; the streamed log still has its traceback
        lines = []
    if not lines:
        lines = tail_of_stderr("\n".join(tracker.lines.get((step, task_id), [])))
    return Failure(step, pathspec, lines, exception_type, exception_message)


async def drive(
    flow_file: Path,
    parameters: dict[str, Any],
    env: dict[str, str],
    display_factory: Callable[[str, ProgressTracker], Display],
    timeout: float | None,
) -> Outcome:
    """Run the flow under Metaflow's ``Runner`` to its end (or ``timeout``), showing its progress."""
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
        flow_name, steps, successors = flow_graph(flow_file)
    except Exception:  # progress is a nicety: never fail a run because the graph could not be read
        flow_name, steps, successors = flow_file.stem, [], {}
    tracker = ProgressTracker(steps, successors)
    interrupt = _Interrupt()
    _take_sigint(interrupt, tracker)

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
                if interrupt.count:
                    raise KeyboardInterrupt from exc
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
            interrupt.command = command
            interrupt.start_if_requested(tracker)
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
            if interrupt.stopping is not None:
                await interrupt.stopping
            duration = time.monotonic() - started
            ok = not timed_out and command.process.returncode == 0
            display.update(final=True, ok=ok)
            stderr = executing.stderr  # read now: the Runner deletes its log files on exit
        failure = None if ok else _failure(tracker, run)
        if ok:
            display.print(f"{run.pathspec} finished in {duration:.1f} s")
    return Outcome(
        flow_name=run.pathspec.split("/")[0],
        run_id=run.id,
        run=run,
        returncode=command.process.returncode,
        timed_out=timed_out,
        stderr=stderr,
        failure=failure,
        running_steps=interrupt.steps if interrupt.count else tracker.current_steps,
        duration_s=duration,
        interrupted=interrupt.count > 0,
    )


def run_coroutine(factory: Callable[[], Any]) -> Any:
    """``asyncio.run`` the coroutine, in a worker thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:  # e.g. called from Jupyter or an async web handler
        return pool.submit(lambda: asyncio.run(factory())).result()
