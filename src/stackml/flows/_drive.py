"""Drive Metaflow's ``Runner`` subprocess: launch the run, follow its log, and collect the outcome.

Metaflow is imported only inside :func:`drive`, when a flow actually runs.
"""

from __future__ import annotations

import asyncio
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


@dataclass
class Outcome:
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


def tail_of_stderr(text: str, n: int = 6) -> list[str]:
    """Last lines of a task's stderr, ending with the exception line when it holds a traceback."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Task failed."]
    return lines[-n:]


def _failure(tracker: ProgressTracker, run: Any) -> tuple[str, str, list[str]] | None:
    """The first failed task: its step, pathspec and the lines that say what went wrong."""
    if not tracker.failed:
        return None
    step, task_id = next(iter(tracker.failed))
    pathspec = f"{run.pathspec}/{step}/{task_id}"
    lines: list[str] = []
    try:
        task = run[step][task_id]
        lines = _exception_lines(task) or tail_of_stderr(task.stderr)
    except Exception:  # the client could not read the task back; the streamed log still has its traceback
        lines = []
    if not lines:
        lines = tail_of_stderr("\n".join(tracker.lines.get((step, task_id), [])))
    return step, pathspec, lines


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
    return Outcome(
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


def run_coroutine(factory: Callable[[], Any]) -> Any:
    """``asyncio.run`` the coroutine, in a worker thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:  # e.g. called from Jupyter or an async web handler
        return pool.submit(lambda: asyncio.run(factory())).result()
