"""A report and the index open in headless Chromium: figures draw, no errors, no network."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from stackml.reports import Report

pytestmark = pytest.mark.browser


def _load_browser_helpers():
    # tests/ is not a package; load the shared helper by path so any way of running pytest finds it.
    name = "stackml_tests_browser"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "browser.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


browser = _load_browser_helpers()

TABLE = pd.DataFrame(
    {"channel": ["search", "social", "tv"], "spend": [1200.0, 800.5, 2500.0], "roas": [3.1, 1.8, 0.9]}
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    import plotly.graph_objects as go

    out = tmp_path_factory.mktemp("reports")
    older = Report(
        "Older forecast", pipeline="forecast", run_id="run-1", created_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    older_path = older.add_paragraph("Nothing to see.").write(out)
    line = go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[3, 1, 4, 1], name="</script><b>demand</b>"))
    bars = go.Figure(go.Bar(x=["search", "social", "tv"], y=[3.1, 1.8, 0.9]))
    newer = Report(
        "Marketing mix <b>week 7</b>",
        "Search returns the most per dollar.",
        pipeline="mmm",
        run_id="run-2",
        created_at=datetime(2024, 2, 1, tzinfo=UTC),
    )
    newer.add_metrics({"ROAS": 2.4, "Channels": 3}).add_figure(line, caption="Demand").add_figure(bars)
    newer_path = newer.add_table(TABLE, caption="Per channel").write(out)
    return {"dir": out, "older": older_path, "newer": newer_path, "index": out / "index.html"}


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    with browser.chromium_context(tmp_path_factory.mktemp("chromium-profile")) as ctx:
        yield ctx


@pytest.fixture
def page(context):
    page = context.new_page()
    yield page
    page.close()


def test_report_renders_figures_offline(reports, page):
    log = browser.watch(page)
    url = reports["newer"].as_uri()

    page.goto(url, wait_until="load")
    page.wait_for_selector("#figure-2 .main-svg", timeout=15_000)

    assert page.locator(".js-plotly-plot").count() == 2
    assert page.locator("#figure-1 .main-svg").count() >= 1
    assert page.locator("#figure-1 .scatterlayer .trace").count() == 1  # the line was drawn
    assert page.locator("#figure-2 .barlayer .point").count() == 3  # one bar per channel
    assert page.locator("table.data tbody tr").count() == len(TABLE)
    assert page.locator("h1").inner_text() == "Marketing mix <b>week 7</b>"  # shown as text, not markup
    assert page.locator(".metric").count() == 2
    assert log.console_errors == [] and log.page_errors == []
    assert log.requests == [url], f"the page made network requests: {log.requests}"
    assert log.failed_requests == []


def test_index_lists_reports_and_links_work(reports, page):
    log = browser.watch(page)
    index_url = reports["index"].as_uri()

    page.goto(index_url, wait_until="load")
    links = page.locator("table.data tbody a")
    assert links.all_inner_texts() == ["Marketing mix <b>week 7</b>", "Older forecast"]  # newest first

    links.nth(1).click()
    page.wait_for_url(reports["older"].as_uri())
    assert page.locator("h1").inner_text() == "Older forecast"
    page.locator("nav.crumbs a").click()  # back to the index through the page's own link
    page.wait_for_url(index_url)

    assert log.console_errors == [] and log.page_errors == []
    assert log.requests == [index_url, reports["older"].as_uri(), index_url]
    assert log.failed_requests == []
