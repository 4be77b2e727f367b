"""Unit tests of stackml.reports: self-contained pages, escaping, atomic writes and the index."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackml.errors import ConfigError, InputError
from stackml.reports import Report, build_index, list_reports
from stackml.reports._files import atomic_write_text

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror="pwned()">&amp;'
# Every tag a report or index may contain; anything else got in through unescaped user text.
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "script",
    "body",
    "div",
    "nav",
    "a",
    "header",
    "span",
    "h1",
    "dl",
    "dt",
    "dd",
    "time",
    "section",
    "p",
    "br",
    "main",
    "h2",
    "figure",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "figcaption",
    "b",
    "code",
    "footer",
}


class _Tags(HTMLParser):
    """Collects tags, attributes and the text of <script> elements, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        else:
            self.text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def figure(name: str = "trace", kind: str = "scatter"):
    import plotly.graph_objects as go

    trace = (
        go.Bar(x=["a", "b"], y=[1, 2], name=name)
        if kind == "bar"
        else go.Scatter(x=[1, 2], y=[3, 4], name=name)
    )
    return go.Figure(trace)


def full_report(title: str = "Weekly forecast", n_figures: int = 3, **kwargs) -> Report:
    report = Report(
        title, "Demand rises next week.", pipeline="forecast", run_id="abc123", created_at=T0, **kwargs
    )
    report.add_metrics({"MASE": 0.8123, "Series": 120})
    report.add_table(pd.DataFrame({"store": ["A", "B"], "y": [1.5, 2.25]}), caption="Totals")
    for i in range(n_figures):
        report.add_figure(figure(kind="bar" if i % 2 else "scatter"), caption=f"Figure {i}")
    return report


def index_titles(reports_dir: Path) -> list[str]:
    page = parse((reports_dir / "index.html").read_text())
    hrefs = [a["href"] for tag, a in page.tags if tag == "a"]
    return [json.loads((reports_dir / h.replace(".html", ".meta.json")).read_text())["title"] for h in hrefs]


# --- self-contained -------------------------------------------------------------------------------


def test_page_is_self_contained_with_plotly_once():
    from plotly.offline import get_plotlyjs

    page = full_report(n_figures=3).to_html()
    parsed = parse(page)

    urls = [v for _, attrs in parsed.tags for k, v in attrs.items() if k in {"src", "href", "action"} and v]
    assert all(not re.match(r"(?i)(https?:)?//", u) for u in urls), urls
    assert not any(tag in {"link", "img", "iframe", "object", "embed"} for tag, _ in parsed.tags)
    (css,) = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    assert "@import" not in css and "url(" not in css and "@font-face" not in css

    assert page.count(get_plotlyjs()[:500]) == 1  # the bundle, inline, once for three figures
    code_scripts = [text for attrs, text in parsed.scripts if not attrs]
    assert len(code_scripts) == 2  # plotly.js in <head>, the drawing loop at the end
    data_scripts = [
        json.loads(text) for attrs, text in parsed.scripts if attrs.get("type") == "application/json"
    ]
    assert len(data_scripts) == 3
    assert [spec["data"][0]["type"] for spec in data_scripts] == ["scatter", "bar", "scatter"]


def test_page_without_figures_has_no_plotly():
    report = Report("Numbers only", created_at=T0).add_table(pd.DataFrame({"a": [1, 2]}))
    page = report.to_html()
    assert "Plotly" not in page and len(page) < 50_000


def test_figure_is_a_snapshot_of_the_figure_when_added():
    fig = figure(name="before")
    report = Report("Snapshot", created_at=T0).add_figure(fig)
    fig.data[0].name = "after"
    (spec,) = [
        json.loads(t) for a, t in parse(report.to_html()).scripts if a.get("type") == "application/json"
    ]
    assert spec["data"][0]["name"] == "before"


# --- escaping -------------------------------------------------------------------------------------


def test_hostile_text_is_escaped_everywhere(tmp_path):
    table = pd.DataFrame(
        {HOSTILE: [HOSTILE, "ok"], "n": [1, 2]}, index=pd.Index(["r1", HOSTILE], name=HOSTILE)
    )
    report = Report(HOSTILE, HOSTILE, pipeline=HOSTILE, run_id=HOSTILE, created_at=T0)
    report.add_heading(HOSTILE).add_paragraph(HOSTILE).add_metrics({HOSTILE: HOSTILE})
    report.add_table(table, caption=HOSTILE).add_figure(figure(name=HOSTILE), caption=HOSTILE)
    path = report.write(tmp_path, slug="hostile")

    for page_path in (path, tmp_path / "index.html"):
        page = page_path.read_text()
        parsed = parse(page)
        assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
        assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
        assert all(
            attrs in ({}, {"type": "application/json", "id": attrs.get("id")}) for attrs, _ in parsed.scripts
        )
        assert HOSTILE not in page
    # The reader still sees the text exactly as written, in every place it was given.
    assert "".join(parse(path.read_text()).text).count(HOSTILE) == 15
    index_text = "".join(parse((tmp_path / "index.html").read_text()).text)
    assert index_text.count(HOSTILE) == 3  # title, pipeline, run id

    # User text inside figure JSON survives the trip and cannot close its <script> element early.
    specs = [json.loads(t) for a, t in parse(path.read_text()).scripts if a.get("type") == "application/json"]
    assert specs[0]["data"][0]["name"] == HOSTILE


# --- writing files --------------------------------------------------------------------------------


def test_write_names_file_by_utc_time_and_slug_and_writes_sidecar(tmp_path):
    created = datetime(2024, 3, 1, 13, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    path = Report("Weekly ROAS: all channels!", pipeline="mmm", run_id="r1", created_at=created).write(
        tmp_path
    )

    assert path.name == "20240301T120405Z-weekly-roas-all-channels.html"
    meta = json.loads(path.with_name(path.stem + ".meta.json").read_text())
    assert meta | {"stackml_version": None} == {
        "title": "Weekly ROAS: all channels!",
        "pipeline": "mmm",
        "run_id": "r1",
        "created_at": "2024-03-01T12:04:05+00:00",
        "figures": 0,
        "tables": 0,
        "stackml_version": None,
        "file": path.name,
    }
    again = Report("Weekly ROAS: all channels!", created_at=created).write(tmp_path)
    assert again.name == "20240301T120405Z-weekly-roas-all-channels-2.html"


def test_atomic_write_leaves_only_final_files(tmp_path):
    full_report().write(tmp_path, slug="one")
    full_report().write(tmp_path, slug="two")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "20240301T120000Z-one.html",
        "20240301T120000Z-one.meta.json",
        "20240301T120000Z-two.html",
        "20240301T120000Z-two.meta.json",
        "index.html",
    ]


def test_failed_atomic_write_keeps_old_file_and_removes_temp(tmp_path):
    target = atomic_write_text(tmp_path / "index.html", "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "new \ud800")  # a lone surrogate cannot be encoded: fails mid-write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_failed_replace_removes_temp(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(f"cannot replace {dst}")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_write_text(tmp_path / "index.html", "new")
    assert list(tmp_path.iterdir()) == []


def test_write_to_a_file_instead_of_a_folder_is_a_config_error(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ConfigError, match="Cannot create the reports folder .*taken"):
        Report("x", created_at=T0).write(tmp_path / "taken")


def test_write_defaults_to_settings_reports_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STACKML_REPORTS_DIR", raising=False)
    monkeypatch.delenv("STACKML_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./stackml.yaml
    path = Report("Default place", created_at=T0).write()
    assert path.parent == tmp_path / "home" / "reports"
    assert (path.parent / "index.html").is_file()


# --- the index ------------------------------------------------------------------------------------


def test_index_is_newest_first(tmp_path):
    times = {"b": T0 + timedelta(days=2), "a": T0, "d": T0 + timedelta(days=3), "c": T0 + timedelta(hours=1)}
    for title, created in times.items():  # written out of order on purpose
        Report(title, created_at=created).write(tmp_path)
    assert index_titles(tmp_path) == ["d", "b", "c", "a"]
    assert [e.title for e in list_reports(tmp_path)] == ["d", "b", "c", "a"]


def test_index_lists_reports_from_several_runs(tmp_path):
    runs = [("forecast", "run-1"), ("mmm", "run-2"), ("forecast", "run-3")]
    for i, (pipeline, run_id) in enumerate(runs):
        report = Report(f"Report {i}", pipeline=pipeline, run_id=run_id, created_at=T0 + timedelta(minutes=i))
        report.add_table(pd.DataFrame({"x": [i]})).write(tmp_path)

    page = (tmp_path / "index.html").read_text()
    parsed = parse(page)
    hrefs = [a["href"] for tag, a in parsed.tags if tag == "a"]
    assert len(hrefs) == 3 and all((tmp_path / h).is_file() for h in hrefs)
    text = " ".join(parsed.text)
    for pipeline, run_id in runs:
        assert pipeline in text and run_id in text
    assert "3 reports, newest first." in text


def test_index_skips_broken_sidecars_and_handles_empty_folder(tmp_path, caplog):
    assert "No reports yet" in build_index(tmp_path / "new").read_text()
    Report("Good", created_at=T0).write(tmp_path)
    (tmp_path / "junk.meta.json").write_text("{not json")
    (tmp_path / "orphan.meta.json").write_text(
        json.dumps({"title": "x", "created_at": T0.isoformat(), "file": "gone.html"})
    )
    (tmp_path / "escape.meta.json").write_text(
        json.dumps({"title": "x", "created_at": T0.isoformat(), "file": "../index.html"})
    )
    build_index(tmp_path)
    assert index_titles(tmp_path) == ["Good"]
    assert caplog.text.count("Skipping report metadata") == 3


# --- content and formatting -----------------------------------------------------------------------


def test_table_formats_numbers_per_column_and_shows_missing():
    df = pd.DataFrame(
        {
            "spend": [120000.0, 80400.4, np.nan],
            "roas": [3.1234, 0.912, 4.2],
            "count": pd.array([5321, None, 7], dtype="Int64"),
            "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        }
    )
    cells = parse(Report("T", created_at=T0).add_table(df).to_html()).text
    for expected in ["120,000", "80,400", "3.123", "0.912", "4.200", "5,321", "2024-01-02"]:
        assert expected in cells
    assert cells.count("\u2014") == 2  # NaN and <NA> show as a dash


def test_table_float_format_index_and_row_limit():
    df = pd.DataFrame({"share": [0.1234, 0.5]}, index=pd.Index(["north", "south"], name="region"))
    page = Report("T", created_at=T0).add_table(df, float_format=".1%", max_rows=1).to_html()
    text = parse(page).text
    assert "12.3%" in text and "50.0%" not in text and "region" in text and "north" in text
    assert "Showing the first 1 of 2 rows." in text

    filtered = pd.DataFrame({"x": [10, 20, 30]}).iloc[[0, 2]]  # leftover row numbers 0 and 2
    headers = [
        t for t in parse(Report("T", created_at=T0).add_table(filtered).to_html()).tags if t[0] == "th"
    ]
    assert len(headers) == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: Report(""), "'title' of a report must be a non-empty string"),
        (lambda r: Report("t", created_at=datetime(2024, 1, 1)), "timezone-aware"),
        (lambda r: r.add_table([[1, 2]]), "expects a pandas DataFrame, got list"),
        (lambda r: r.add_table(pd.DataFrame({"a": [1.0]}), float_format="{:q}"), "not a valid format"),
        (lambda r: r.add_table(pd.DataFrame({"a": [1]}), max_rows=0), "'max_rows' must be an int >= 1"),
        (lambda r: r.add_figure({"data": []}), "expects a plotly Figure, got dict"),
        (lambda r: r.add_metrics({}), "non-empty mapping"),
        (lambda r: r.add_paragraph(None), "'paragraph' of a report must be a string"),
        (lambda r: r.write(slug="../escape"), "'slug' of a report must be"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(call, match):
    with pytest.raises(InputError, match=match):
        call(Report("ok", created_at=T0))
