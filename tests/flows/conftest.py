"""Fixtures of the end-to-end flow tests: a stackml home and a working directory of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stackml.config import Settings, get_settings

SAMPLE_FLOWS = Path(__file__).resolve().parent / "sample_flows"


@pytest.fixture(scope="session")
def sample_flows() -> Path:
    """Folder of the small flows the runner is tested with."""
    return SAMPLE_FLOWS


@pytest.fixture(scope="module")
def flow_env() -> Iterator[None]:
    """An environment with no Metaflow user, restored afterwards: the runner must supply one itself."""
    pytest.importorskip("metaflow")
    saved = dict(os.environ)
    for key in ("METAFLOW_USER", "USERNAME", "SUDO_USER", "METAFLOW_DATASTORE_SYSROOT_LOCAL", "STACKML_HOME"):
        os.environ.pop(key, None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def flow_settings(tmp_path_factory: pytest.TempPathFactory, flow_env: None) -> Settings:
    """Settings whose home is a fresh temporary folder."""
    return get_settings(home=tmp_path_factory.mktemp("stackml_home"))


@pytest.fixture(scope="module")
def run_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run flows from an empty folder, to show Metaflow writes nothing to the working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        yield cwd


def run_stackml(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m stackml ARGS`` in a fresh process whose stackml home is ``home``, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKML_HOME", "METAFLOW_"))}
    env |= {"STACKML_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stackml", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def stackml_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run_stackml`, for the tests that drive the CLI."""
    return run_stackml
