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


@pytest.fixture(scope="module")
def cluster_page(tmp_path_factory) -> dict:
    """A clustering report of a real run (three blobs, a PCA picture), its largest cluster made unstable."""
    import dataclasses

    import numpy as np

    pytest.importorskip("hdbscan")
    from sklearn.datasets import make_blobs

    from stackml.clustering.config import ClusterConfig
    from stackml.clustering.pipeline import run_pipeline
    from stackml.clustering.report import cluster_report

    X, y = make_blobs(n_samples=300, centers=3, n_features=3, random_state=0)
    frame = pd.DataFrame(X, columns=["spend", "visits", "tenure"]).assign(label=[f"c{v}" for v in y])
    frame.insert(0, "id", range(len(frame)))
    config = ClusterConfig(columns="spend,visits,tenure", labels_column="label", fast=True, n_boot=5)
    result = run_pipeline(frame, config)
    # flag one cluster, so the page must show the flag (the blobs themselves are all stable)
    shaken = result.cluster_table()["cluster"].iloc[0]
    table = result.stability.table.copy()
    table.loc[table["cluster"] == shaken, ["mean_jaccard", "unstable"]] = [0.3, True]
    per_boot = result.stability.per_boot.copy()
    per_boot[shaken] = np.linspace(0.1, 0.5, len(per_boot))
    stability = dataclasses.replace(result.stability, table=table, per_boot=per_boot)
    result = dataclasses.replace(result, stability=stability)
    path = cluster_report(result, title="Customer segments").write(tmp_path_factory.mktemp("cluster-reports"))
    return {"path": path, "result": result, "unstable": int(shaken)}


def test_cluster_report_draws_the_scatter_and_the_stability_table(cluster_page, page):
    log = browser.watch(page)
    url = cluster_page["path"].as_uri()
    result = cluster_page["result"]

    page.goto(url, wait_until="load")
    page.wait_for_selector("#figure-1 .main-svg", timeout=15_000)

    # the 2-D picture: a WebGL canvas holding every sampled point, one trace (and legend entry) per cluster
    scatter = page.locator("#figure-1")
    assert scatter.is_visible() and scatter.locator(".gl-container canvas").count() >= 1
    drawn = page.evaluate(
        "() => document.getElementById('figure-1')._fullData.map(t => [t.type, t._length, t.name])"
    )
    assert {kind for kind, _, _ in drawn} == {"scattergl"}
    assert sum(n for _, n, _ in drawn) == len(result.picture) == 300
    assert scatter.locator(".legend .traces").count() == result.model.n_clusters_
    assert scatter.locator(".legend .traces").first.text_content().startswith("0 · ")

    # the stability table, one row per cluster, the unstable one flagged
    stability = page.locator("table.data").first
    assert stability.is_visible()
    assert "mean Jaccard" in stability.locator("thead").inner_text()
    rows = stability.locator("tbody tr")
    assert rows.count() == result.model.n_clusters_
    flagged = rows.filter(has_text="unstable")
    assert flagged.count() == 1 and flagged.is_visible()
    assert flagged.locator("td").first.inner_text() == str(cluster_page["unstable"])

    # the sizes, the bootstrap Jaccards with their threshold, the silhouette profile and more drew too
    assert page.locator("#figure-2 .barlayer .point").count() == result.model.n_clusters_
    assert page.locator("#figure-3 .boxlayer .trace").count() == result.model.n_clusters_
    assert page.locator(".js-plotly-plot").count() == page.locator("div.plotly-figure").count() >= 5
    assert log.console_errors == [] and log.page_errors == []
    assert log.requests == [url], f"the page made network requests: {log.requests}"
    assert log.failed_requests == []


@pytest.fixture(scope="module")
def attribution_page(tmp_path_factory) -> dict:
    """An attribution report of ChannelAttribution-shaped paths (three channels, every method)."""
    from stackml.attribution import Paths
    from stackml.attribution.pipeline import run_pipeline
    from stackml.attribution.report import attribution_report

    paths = Paths.from_records(
        ["search > email", "display > search", "email", "display"],
        conversions=[30, 10, 12, 1],
        nulls=[70, 90, 30, 99],
    )
    result = run_pipeline(paths)
    path = attribution_report(result, title="Channel credit").write(
        tmp_path_factory.mktemp("attribution-reports")
    )
    return {"path": path, "result": result}


def test_attribution_report_draws_every_methods_credit_and_the_transitions(attribution_page, page):
    log = browser.watch(page)
    page.goto(attribution_page["path"].as_uri(), wait_until="load")
    page.wait_for_selector("#figure-1 .main-svg", timeout=15_000)
    bars = page.evaluate(
        "() => document.getElementById('figure-1')._fullData.map(t => [t.type, t.name, t._length])"
    )
    methods = list(attribution_page["result"].fitted.shares())
    assert [name for _, name, _ in bars] == methods and {kind for kind, _, _ in bars} == {"bar"}
    assert all(n == 3 for _, _, n in bars)  # one bar per channel
    heatmap = page.evaluate("() => document.getElementById('figure-2')._fullData.map(t => t.type)")
    assert heatmap == ["heatmap"]
    shares = page.locator("table.data").first
    assert "markov" in shares.locator("thead").inner_text() and shares.locator("tbody tr").count() == 3
    assert log.console_errors == [] and log.page_errors == [] and log.failed_requests == []
    assert log.requests == [attribution_page["path"].as_uri()], f"network requests: {log.requests}"
