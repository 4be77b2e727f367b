"""Shared helpers for the benchmarks: run a measured subprocess, describe the machine, print and write tables.

Every benchmark runs each case in its own subprocess so that its wall time and peak resident memory belong to
that case alone (``os.wait4`` hands back the child's ``ru_maxrss``; no polling, no sampling gaps).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    """What one subprocess did: its exit status, output, wall-clock seconds and peak resident memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    def check(self, what: str) -> Measured:
        """Return self, or exit with the child's stderr when it failed
        (a benchmark must not report a failure)."""
        if self.returncode != 0:
            sys.exit(f"{what} failed with exit code {self.returncode}:\n{self.stderr.strip()[-3000:]}")
        return self


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Measured:
    """Run ``cmd`` to completion and measure its wall time and peak RSS (Linux/macOS).

    Output goes to temporary files rather than pipes, so a chatty child can never block on a full pipe while
    we wait for it in ``wait4``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(
            status
        )  # tell Popen it is reaped, so it does not wait again
        out.seek(0)
        err.seek(0)
        # ru_maxrss is KiB on Linux and bytes on macOS.
        rss_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return Measured(
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            peak_rss_mb=rss_bytes / 2**20,
        )


def machine_info(packages: list[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """Facts a reader needs to compare numbers: CPU, cores, RAM, OS, Python, package versions,
    date, commit."""
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{_total_ram_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for name in packages:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    info.update(extra or {})
    info["commit"] = _git_commit()
    return info


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; numbers are right-aligned, which also reads well in a terminal."""
    cells = [[_fmt(v) for v in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric))
        + "|"
    )
    return "\n".join([line(headers), rule] + [line(r) for r in cells])


def write_results(path: Path, title: str, command: list[str], info: dict[str, str], body: str) -> None:
    """Write a results page: title, the exact command, the body (tables, verdicts, notes) and the machine."""
    machine = markdown_table(["", ""], [[k, v] for k, v in info.items()]).split("\n", 2)[2]
    text = (
        f"# {title}\n\n"
        f"Command (from the repository root):\n\n```\n{shlex.join(command)}\n```\n\n"
        f"{body.strip()}\n\n"
        f"## Machine\n\n| | |\n|---|---|\n{machine}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _total_ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "none (uncommitted tree)"
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], check=False, cwd=REPO, capture_output=True, text=True
    ).stdout
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
