"""Fixtures of the end-to-end flow tests: a stackml home and a working directory of their own."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
