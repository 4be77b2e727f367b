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
_RUN_INTERRUPTED = "Workflow interrupted"  # the runtime caught a Ctrl-C and is stopping its tasks


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
                TextColumn("steps"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar = self._progress.add_task(f"{flow_name}: starting", total=len(tracker.steps) or None)

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
