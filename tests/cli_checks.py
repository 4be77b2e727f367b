"""How the CLI tests run ``stackml`` and check a clean failure (import it as ``from cli_checks import ...``:
pytest puts ``tests/`` on the path, beside ``conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STACKML = [sys.executable, "-m", "stackml"]


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m stackml ARGS`` in a subprocess, with this test's environment plus ``env``."""
    return subprocess.run(
        [*STACKML, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def assert_clean_error(
    proc: subprocess.CompletedProcess[str], *fragments: str, empty_stdout: bool = False
) -> str:
    """Exit code 2, one line on stderr, no traceback, the fragments in that line (and, with
    ``empty_stdout``, nothing on stdout); the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    if empty_stdout:
        assert proc.stdout == "", proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
