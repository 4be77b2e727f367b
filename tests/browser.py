"""Headless Chromium for browser tests: find it, launch it with this machine's flags, or skip.

A missing browser or driver skips the test with the reason, unless ``STACKML_REQUIRE_BROWSER=1``
(set in CI), where it fails instead, so CI can never go green by silently skipping.

``tests`` is not a package, so test modules load this file by path (see test_reports_browser.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ENV = "STACKML_TEST_CHROMIUM"  # override the binary, e.g. /usr/bin/chromium-browser
REQUIRE_ENV = "STACKML_REQUIRE_BROWSER"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers run as root), no GPU, and nothing that phones home on start-up, so that
# any request the test records comes from the page itself.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium binary to use, or None when there is none."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package 'playwright' is not installed (pip install 'playwright>=1.45')"
    if chromium_path() is None:
        return (
            f"no Chromium binary at {DEFAULT_CHROMIUM} or on PATH "
            f"(apt-get install chromium, or set {CHROMIUM_ENV})"
        )
    return None


def require_browser() -> str:
    """Return the Chromium path; skip the test when there is none, or fail when the browser is required."""
    reason = missing_browser_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"Browser tests are required ({REQUIRE_ENV}=1) but {reason}.", pytrace=False)
        pytest.skip(f"Browser test skipped: {reason}.")
    return chromium_path()  # type: ignore[return-value]


@contextmanager
def chromium_context(profile_dir: Path) -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of headless Chromium with a fresh profile in ``profile_dir``.

    Uses the system Chromium: ``playwright install`` needs the internet, which CI does not have.
    """
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class PageLog:
    """Everything a page did that a test may want to forbid."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


def watch(page: Any) -> PageLog:
    """Record every request, console error and uncaught exception of ``page``.

    Requests include navigations, scripts, images and fetches, so one log shows any network use.
    """
    log = PageLog()
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("requestfailed", lambda request: log.failed_requests.append(request.url))
    page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    return log
