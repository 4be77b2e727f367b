"""Alert rules: the YAML format, every problem of a bad file at once, the Rule constructor, windows, globs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stackml.errors import InputError
from stackml.monitoring.rules import (
    DEFAULT_RULES,
    Rule,
    format_window,
    load_rules,
    parse_window,
)

VALID = """\
rules:
  - name: share_drifted
    metric: drift.share
    above: 0.3
    window: 24h
    severity: warning
  - name: column_score
    metric: drift.column.*.score
    outside_band: 3
    window: 7d
    severity: critical
    subject: "{subject}/{match}"
  - name: accuracy_low
    metric: performance.accuracy
    below: 0.8
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_valid_file(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, VALID))
    assert rules == [
        Rule("share_drifted", "drift.share", above=0.3, window=timedelta(hours=24), severity="warning"),
        Rule(
            "column_score",
            "drift.column.*.score",
            outside_band=3.0,
            window=timedelta(days=7),
            severity="critical",
            subject="{subject}/{match}",
        ),
        Rule("accuracy_low", "performance.accuracy", below=0.8),
    ]
    band, low = rules[1], rules[2]
    assert isinstance(band.outside_band, float) and band.condition == "outside mean +- 3 sd"
    assert (low.window, low.severity, low.subject) == (timedelta(hours=24), "warning", "{subject}")
    assert low.condition == "below 0.8"


def test_the_documented_example_loads(tmp_path: Path) -> None:
    import stackml.monitoring.rules as module

    doc = module.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    example = "\n".join(line[4:] for line in block.splitlines())
    assert [r.name for r in load_rules(write(tmp_path, example))] == [
        "share_drifted",
        "column_score",
        "accuracy_low",
    ]


def test_no_file_means_the_default_rules() -> None:
    rules = load_rules(None)
    assert rules == list(DEFAULT_RULES)
    assert {r.name: (r.metric, r.severity) for r in rules} == {
        "column_drifted": ("drift.column.*.drifted", "warning"),
        "dataset_drift": ("drift.dataset", "critical"),
        "quality_broken": ("quality.broken", "critical"),
        "table_stale": ("freshness.*.stale", "critical"),
    }


BAD = """\
rules:
  - name: a
    metric: drift.share
    above: 0.3
    treshold: 2
  - name: b
    metric: drift.share
    above: "0.3"
  - name: c
    metric: drift.share
    below: 1
    severity: fatal
  - name: d
    metric: drift.share
    above: 1
    below: 2
  - name: e
    metric: drift.share
  - name: a
    metric: drift.share
    above: 1
  - name: g
    metric: drift.share
    outside_band: -3
    window: 1 day
  - name: h
    metric: drift.share
    above: .nan
    subject: "{model}"
  - metric: quality.broken
    above: true
  - just a string
extra: 1
"""


def test_every_problem_of_a_bad_file_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(InputError) as caught:
        load_rules(path)
    error = caught.value
    message = error.message
    expected = [
        "unknown top-level key 'extra' (expected only 'rules')",
        "rule 1 ('a'): unknown keys ['treshold']",
        "rule 2 ('b'): 'above' must be a number, got '0.3' (a text: write the number without quotes;",
        "rule 3 ('c'): 'severity' must be one of ['info', 'warning', 'critical'], got 'fatal'",
        "rule 4 ('d'): a rule needs exactly one condition of ['above', 'below', 'outside_band'], got 2",
        "rule 5 ('e'): a rule needs exactly one condition of ['above', 'below', 'outside_band'], got none",
        "rule 6 ('a'): the name 'a' is already used by rule 1",
        "rule 7 ('g'): 'outside_band' must be a number > 0, got -3",
        "rule 7 ('g'): 'window' must be a duration such as '30m', '24h' or '7d'",
        "rule 8 ('h'): 'above' must be a number, got nan",
        "rule 8 ('h'): 'subject' must be a text using only {subject}, {rule}, {metric}, {match}",
        "rule 9: missing keys ['name']",
        "rule 9: 'above' must be a number, got True",
        "rule 10: must be a mapping of",
    ]
    for line in expected:
        assert line in message, f"{line!r} missing from:\n{message}"
    assert message.startswith(f"14 problem(s) with the alert rules in '{path}':")
    assert "rules:\n  - name: share_drifted" in (error.hint or "")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rules: [\n  - name: a\n", "is not valid YAML"),
        ("", "must hold a mapping with a 'rules' list, got NoneType None"),
        ("- name: a\n", "must hold a mapping with a 'rules' list, got list"),
        ("rule:\n  - name: a\n", "must hold a mapping with a 'rules' list"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_rules(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="rules file '.*nope.yaml' does not exist") as caught:
        load_rules(tmp_path / "nope.yaml")
    assert "default rules" in (caught.value.hint or "")


def test_an_empty_rules_list_turns_alerts_off(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "rules: []\n")) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one condition .* got none"),
        ({"above": 1, "below": 2}, "exactly one condition .* got 2"),
        ({"above": True}, "'above' must be a number, got True"),
        ({"above": 1, "severity": "fatal"}, "'severity' must be one of"),
        ({"above": 1, "window": "1 day"}, "'window' must be a duration"),
        ({"above": 1, "window": timedelta(0)}, "'window' must be a positive duration"),
        ({"outside_band": 0}, "'outside_band' must be a number > 0, got 0"),
        ({"above": 1, "subject": "{model}"}, "'subject' must be a text using only"),
        ({"above": 1, "subject": "{subject:>10}"}, "no format specs"),
        ({"above": 1, "subject": "{match}"}, "'subject' must contain {subject}"),
        ({"above": 1, "subject": "{subject"}, "not a valid template"),
    ],
)
def test_the_constructor_checks_what_the_file_checks(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=f"with the alert rule 'r'(.|\n)*{match}"):
        Rule("r", "drift.share", **kwargs)


def test_bad_name_and_metric() -> None:
    with pytest.raises(InputError) as caught:
        Rule("has space", "", above=1)
    assert "'name' must be a non-empty text" in caught.value.message
    assert "'metric' must be a metric name" in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("1.5h", timedelta(minutes=90)),
        (" 7d ", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_parse_window(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["0h", "h", "24 hours", "-1h", "24H", ""])
def test_parse_window_refuses(text: str) -> None:
    with pytest.raises(InputError, match="'window' must be a duration"):
        parse_window(text)


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (timedelta(weeks=2), "14d"),
        (timedelta(days=2), "2d"),
        (timedelta(hours=24), "24h"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
    ],
)
def test_format_window(window: timedelta, text: str) -> None:
    assert format_window(window) == text
    assert parse_window(text) == window


def test_metric_globs_and_subjects() -> None:
    rule = Rule("c", "drift.column.*.drifted", above=0, subject="{subject}/{match}")
    assert rule.match("drift.column.age.drifted") == "age"
    assert (
        rule.match("drift.column.geo.lat.drifted") == "geo.lat"
    )  # '*' spans dots: column names may hold them
    assert rule.match("drift.column..drifted") is None
    assert rule.match("drift.column.age.score") is None
    assert Rule("s", "drift.share", above=0).match("drift.share") == ""
    assert Rule("s", "drift.share", above=0).match("drift_share") is None  # '.' is literal
    assert rule.render_subject("churn", "drift.column.age.drifted", "age") == "churn/age"
    pattern = rule.subject_pattern("churn")
    assert pattern.match("churn/age") and not pattern.match("sales/age") and not pattern.match("churn")
    assert Rule("s", "drift.share", above=0).subject_pattern("a.b").match("a.b")
    assert not Rule("s", "drift.share", above=0).subject_pattern("a.b").match("aXb")
