"""Progress of a running flow, read from Metaflow's log lines, and the Rich bar that shows it.

Metaflow and Rich are imported only inside the functions that need them, when a flow runs.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

# "2026-01-01 10:00:00.000 [1712/train/3 (pid 123)] Task is starting." -- timestamp optional.
_TASK_LINE = re.compile(
    r"\[(?P<run>[^/\]\s]+)/(?P<step>[^/\]\s]+)/(?P<task>[^\]\s]+)(?: \(pid (?P<pid>\d+)\))?\] (?P<msg>.*)$"
)
_RUN_START = re.compile(r"Workflow starting \(run-id (?P<run>[^),\s]+)")
# A step's own progress (epochs, trials, series), as :func:`step_progress` prints it.
_STEP_PROGRESS = re.compile(r"^progress: (?P<label>.+?) (?P<done>\d+)/(?P<total>\d+)(?: \| (?P<detail>.*))?$")
_RUN_INTERRUPTED = "Workflow interrupted"  # the runtime caught a Ctrl-C and is stopping its tasks


def progress_line(label: str, done: int, total: int, detail: str = "") -> str:
    """The line a step prints to report its own progress; the CLI's bar shows it under the step's."""
    label = " ".join(str(label).split()) or "progress"
    return f"progress: {label} {int(done)}/{max(int(total), 0)}" + (f" | {detail}" if detail else "")


def step_progress(label: str, done: int, total: int, detail: str = "") -> None:
    """Report a step's own progress (``done`` of ``total`` epochs, trials, ...) from inside a flow step.

    Metaflow passes the printed line to the runner, whose progress display draws a bar for ``label`` under
    the step's own until the task ends. Outside a flow it is a plain log line.
    """
    print(progress_line(label, done, total, detail), flush=True)


class ProgressTracker:
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
        self.pids: dict[tuple[str, str], int] = {}  # process of each running task
        self.runtime_interrupted = False
        # step -> label -> (done, total, detail): the progress running tasks reported of their own
        self.step_bars: dict[str, dict[str, tuple[int, int, str]]] = {}

    def feed(self, line: str) -> bool:
        """Take one line of the run's stdout; return whether the progress changed."""
        if self.run_id is None and (start := _RUN_START.search(line)):
            self.run_id = start["run"]
            return True
        match = _TASK_LINE.search(line)
        if match is None:
            self.runtime_interrupted = self.runtime_interrupted or _RUN_INTERRUPTED in line
            return False
        step, task, msg = match["step"], match["task"], match["msg"]
        if match["pid"]:
            self.pids[(step, task)] = int(match["pid"])
        if step not in self.steps:
            self.steps.append(step)
        self.lines.setdefault((step, task), deque(maxlen=40)).append(msg)
        running = self.running.setdefault(step, set())
        if inner := _STEP_PROGRESS.match(msg):
            bars = self.step_bars.setdefault(step, {})
            bars[inner["label"]] = (int(inner["done"]), int(inner["total"]), inner["detail"] or "")
            return True
        if msg.startswith(("Task finished successfully", "Task failed")):
            self.step_bars.pop(step, None)  # its bars end with the task
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
    def running_pids(self) -> list[int]:
        """Processes of the tasks running now."""
        return [pid for (step, task), pid in self.pids.items() if task in self.running.get(step, ())]

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


def flow_graph(flow_file: Path) -> tuple[str, list[str], dict[str, list[str]]]:
    """Flow name, steps in topological order and each step's successors, from the loaded flow class."""
    from metaflow.graph import FlowGraph
    from metaflow.runner.click_api import extract_flow_class_from_file

    flow_cls = extract_flow_class_from_file(str(flow_file))  # cached: Runner() has imported it already
    graph = FlowGraph(flow_cls)
    return flow_cls.__name__, list(graph.sorted_nodes), {n.name: list(n.out_funcs) for n in graph}


class Display:
    """A Rich progress bar of finished steps, naming the running ones; silent when disabled."""

    def __init__(self, flow_name: str, tracker: ProgressTracker, enabled: bool, console: Any) -> None:
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
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar = self._progress.add_task(
                f"{flow_name}: starting", total=len(tracker.steps) or None, unit="steps"
            )
        self._step_bars: dict[tuple[str, str], Any] = {}  # (step, label) -> the bar's task id

    def __enter__(self) -> Display:
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
        self._update_step_bars({} if final else t.step_bars)

    def _update_step_bars(self, reported: dict[str, dict[str, tuple[int, int, str]]]) -> None:
        """One bar per label a running step reports, under the flow's bar; gone when the task ends."""
        live = {(step, label): value for step, bars in reported.items() for label, value in bars.items()}
        for key in [k for k in self._step_bars if k not in live]:
            self._progress.remove_task(self._step_bars.pop(key))
        for (step, label), (done, total, detail) in live.items():
            # "minilm epochs" -> "minilm", counted in "epochs"
            name, _, unit = label.rpartition(" ") if " " in label else (label, "", "")
            words = f"  {step}: {name}" + (f" ({detail})" if detail else "")
            if (step, label) not in self._step_bars:
                self._step_bars[(step, label)] = self._progress.add_task(
                    words, total=total or None, unit=unit
                )
            self._progress.update(
                self._step_bars[(step, label)], description=words, completed=done, total=total or None
            )
