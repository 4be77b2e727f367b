"""Alert rules: which metric, what condition, over which window, how severe; declared in YAML.

A rules file holds one key, ``rules``, a list of rules::

    rules:
      - name: share_drifted            # unique; letters, digits, '_', '-', '.'
        metric: drift.share            # a metric name, exact ...
        above: 0.3                     # fires when the value is > 0.3
        window: 24h                    # optional, default 24h (units s, m, h, d, w)
        severity: warning              # optional: info, warning (default) or critical
      - name: column_score
        metric: drift.column.*.score   # ... or a glob: '*' matches any text, dots included
        outside_band: 3                # fires outside mean +- 3 sd of the earlier windows
        window: 7d
        severity: critical
        subject: "{subject}/{match}"   # optional: one alert per column instead of one per subject
      - name: accuracy_low
        metric: performance.accuracy
        below: 0.8                     # fires when the value is < 0.8

A rule has exactly one condition: ``above`` (value > limit), ``below`` (value < limit) or ``outside_band``
(``k``: value outside mean +- k sample standard deviations of the metric in the earlier windows, at least
:data:`MIN_HISTORY` of them). Booleans count as 1 and 0, so ``above: 0`` fires on ``true``. ``window`` is the
length of the window the monitor computes the metric over, and of each earlier (reference) window.

``subject`` names what an alert is about; there is one open alert per rule and subject. It is a template of
``{subject}`` (what the monitor checks, e.g. the model), ``{rule}``, ``{metric}`` (the metric name that fired)
and ``{match}`` (the text the ``*`` matched, e.g. the column), and must contain ``{subject}``. The default,
``"{subject}"``, gathers every metric a glob rule matches into one alert (holding the metric furthest past
its limit, the others named in its message).

Metric names the monitor produces (flat, dotted): ``drift.share``, ``drift.dataset``,
``drift.column.<column>.score``, ``drift.column.<column>.drifted``, ``drift.column.<column>.psi``,
``prediction_drift.share``, ``prediction_drift.drifted``, ``quality.broken`` (the number of broken checks),
``freshness.<table>.age_hours``, ``freshness.<table>.stale``, ``performance.<metric>``.

Without a rules file, :data:`DEFAULT_RULES` apply: any column drifted (warning, one alert per subject),
dataset drift, a quality break (critical), and a stale table (critical, one alert per table).

Example:
    >>> from stackml.monitoring.rules import Rule
    >>> rule = Rule("share_drifted", "drift.share", above=0.3, window="24h")
    >>> rule.condition, rule.window
    ('above 0.3', datetime.timedelta(days=1))
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from stackml.checks import number_problem
from stackml.errors import InputError, raise_if_problems

__all__ = [
    "Rule",
    "load_rules",
    "DEFAULT_RULES",
    "SEVERITIES",
    "MIN_HISTORY",
    "parse_window",
    "format_window",
]

SEVERITIES = ("info", "warning", "critical")
#: the fewest earlier windows an ``outside_band`` rule needs before it judges a value
MIN_HISTORY = 3
DEFAULT_WINDOW = "24h"
CONDITIONS = ("above", "below", "outside_band")
TEMPLATE_FIELDS = ("subject", "rule", "metric", "match")
_REQUIRED = ("name", "metric")
_KEYS = (*_REQUIRED, *CONDITIONS, "window", "severity", "subject")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EXAMPLE = """A valid rules file:
rules:
  - name: share_drifted
    metric: drift.share
    above: 0.3
    window: 24h
    severity: warning"""


def parse_window(text: str | timedelta) -> timedelta:
    """``"24h"`` -> ``timedelta(hours=24)``; units ``s``, ``m``, ``h``, ``d``, ``w``; a positive timedelta
    passes through. Raises InputError."""
    problem = _window_problem(text)
    if problem:
        raise InputError(problem, hint="Write a number and a unit, e.g. '30m', '24h' or '7d'.")
    if isinstance(text, timedelta):
        return text
    match = _WINDOW.match(text)
    assert match is not None
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_window(window: timedelta) -> str:
    """``window`` as ``<n><unit>``: whole days from two days up, else whole hours, minutes or seconds
    (``timedelta(days=7)`` -> ``"7d"``, ``timedelta(days=1)`` -> ``"24h"``)."""
    seconds = window.total_seconds()
    if seconds % _UNITS["d"] == 0 and seconds >= 2 * _UNITS["d"]:
        return f"{int(seconds // _UNITS['d'])}d"
    for unit in ("h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def _window_problem(value: Any) -> str | None:
    if isinstance(value, timedelta):
        return None if value > timedelta(0) else f"'window' must be a positive duration, got {value}"
    match = _WINDOW.match(value) if isinstance(value, str) else None
    if match and float(match.group(1)) > 0:
        return None
    return f"'window' must be a duration such as '30m', '24h' or '7d' (units s, m, h, d, w), got {value!r}"


def _template_problem(template: Any) -> str | None:
    wanted = "a text using only " + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    if not isinstance(template, str):
        return f"'subject' must be {wanted}, got {template!r}"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"'subject' is not a valid template ({exc}): {template!r}"
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    if any(name not in TEMPLATE_FIELDS or spec or conversion for name, spec, conversion in fields):
        return f"'subject' must be {wanted} (no format specs), got {template!r}"
    if "subject" not in [name for name, _, _ in fields]:
        return (
            "'subject' must contain {subject}, so that each monitored subject has its own alerts, "
            f"got {template!r}"
        )
    return None


def _field_problems(values: Mapping[str, Any]) -> list[str]:
    """Problems with the fields of one rule (``values`` holds the keys that were given)."""
    problems = []
    name = values.get("name")
    if "name" in values and not (isinstance(name, str) and _NAME.match(name)):
        problems.append(f"'name' must be a non-empty text of letters, digits, '_', '-' and '.', got {name!r}")
    metric = values.get("metric")
    if "metric" in values and not (isinstance(metric, str) and metric.strip() == metric and metric):
        problems.append(f"'metric' must be a metric name such as 'drift.share', got {metric!r}")
    given = [c for c in CONDITIONS if values.get(c) is not None]
    if len(given) != 1:
        problems.append(
            f"a rule needs exactly one condition of {list(CONDITIONS)}, got "
            + (f"{len(given)}: {given}" if given else "none")
        )
    for condition in given:
        low = 0.0 if condition == "outside_band" else None
        problem = number_problem(condition, values[condition], low=low, low_open=True)
        if problem and isinstance(values[condition], str) and _is_float(values[condition]):
            problem += (
                " (a text: write the number without quotes; YAML reads 1e-3 as text, 1.0e-3 as a number)"
            )
        if problem:
            problems.append(problem)
    if "window" in values:
        problems.append(_window_problem(values["window"]))
    severity = values.get("severity", "warning")
    if severity not in SEVERITIES:
        problems.append(f"'severity' must be one of {list(SEVERITIES)}, got {severity!r}")
    if "subject" in values:
        problems.append(_template_problem(values["subject"]))
    return [p for p in problems if p]


@dataclass(frozen=True)
class Rule:
    """One alert rule; see the module docstring for the meaning of each field.

    Args:
        name: unique name of the rule, used with the subject to identify an alert.
        metric: a metric name, or a glob with ``*``.
        above: fires when the value is greater than this.
        below: fires when the value is less than this.
        outside_band: fires when the value is outside mean +- ``outside_band`` sd of the earlier windows.
        window: a ``timedelta`` or a text such as ``"24h"`` (stored as a ``timedelta``).
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        subject: the template naming what an alert is about.
    """

    name: str
    metric: str
    above: float | None = None
    below: float | None = None
    outside_band: float | None = None
    window: timedelta = field(default_factory=lambda: parse_window(DEFAULT_WINDOW))
    severity: str = "warning"
    subject: str = "{subject}"

    def __post_init__(self) -> None:
        values = {k: getattr(self, k) for k in _KEYS}
        raise_if_problems(_field_problems(values), what=f"the alert rule {self.name!r}", hint=EXAMPLE)
        if isinstance(self.window, str):
            object.__setattr__(self, "window", parse_window(self.window))
        for condition in CONDITIONS:  # ints from YAML become floats, so equal rules compare equal
            if getattr(self, condition) is not None:
                object.__setattr__(self, condition, float(getattr(self, condition)))

    @property
    def condition(self) -> str:
        """The condition as text: ``"above 0.3"``, ``"below 0.8"`` or ``"outside mean +- 3 sd"``."""
        if self.outside_band is not None:
            return f"outside mean +- {self.outside_band:g} sd"
        return f"above {self.above:g}" if self.above is not None else f"below {self.below:g}"

    def match(self, key: str) -> str | None:
        """The text the glob's ``*`` matched in metric ``key`` (several joined by ``.``; ``""`` for an exact
        name), or ``None`` when ``key`` is not this rule's metric."""
        found = _glob(self.metric).match(key)
        return None if found is None else ".".join(found.groups())

    def render_subject(self, subject: str, key: str, match: str) -> str:
        """The alert subject for metric ``key`` of the monitored ``subject``."""
        return self.subject.format(subject=subject, rule=self.name, metric=key, match=match)

    def subject_pattern(self, subject: str) -> re.Pattern[str]:
        """A pattern matching every alert subject this rule can render for the monitored ``subject``."""
        parts = []
        for literal, name, _, _ in string.Formatter().parse(self.subject):
            parts.append(re.escape(literal))
            if name == "subject":
                parts.append(re.escape(subject))
            elif name == "rule":
                parts.append(re.escape(self.name))
            elif name is not None:
                parts.append(".+")
        return re.compile("^" + "".join(parts) + "$", re.S)


@functools.cache
def _glob(metric: str) -> re.Pattern[str]:
    return re.compile("^" + "(.+)".join(re.escape(part) for part in metric.split("*")) + "$", re.S)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("column_drifted", "drift.column.*.drifted", above=0, severity="warning"),
    Rule("dataset_drift", "drift.dataset", above=0, severity="critical"),
    Rule("quality_broken", "quality.broken", above=0, severity="critical"),
    Rule("table_stale", "freshness.*.stale", above=0, severity="critical", subject="{subject}/{match}"),
)


def load_rules(path: str | Path | None = None) -> list[Rule]:
    """The rules of the YAML file at ``path`` (format: the module docstring), or :data:`DEFAULT_RULES` when
    ``path`` is ``None``.

    Every problem in the file is reported at once, each with its rule's number (from 1) and name, as one
    :class:`~stackml.errors.InputError`.
    """
    if path is None:
        return list(DEFAULT_RULES)
    import yaml

    path = Path(path)
    where = f"the alert rules in '{path}'"
    if not path.is_file():
        raise InputError(
            f"The alert rules file '{path}' does not exist.",
            hint="Check the path, or leave it out for the "
            "default rules (any column drifted, dataset drift, a quality break, a stale table).",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"'{path}' is not valid YAML: {' '.join(str(exc).split())}", hint=EXAMPLE) from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise InputError(
            f"'{path}' must hold a mapping with a 'rules' list, got {_shown(data)}.", hint=EXAMPLE
        )
    problems = [f"unknown top-level key {key!r} (expected only 'rules')" for key in data if key != "rules"]
    seen: dict[str, int] = {}
    for number, item in enumerate(data["rules"], start=1):
        label = f"rule {number}" + (
            f" ({item['name']!r})" if isinstance(item, dict) and "name" in item else ""
        )
        if not isinstance(item, dict):
            problems.append(f"{label}: must be a mapping of {list(_KEYS)}, got {_shown(item)}")
            continue
        unknown = [key for key in item if key not in _KEYS]
        if unknown:
            problems.append(f"{label}: unknown keys {unknown} (known: {list(_KEYS)})")
        missing = [key for key in _REQUIRED if key not in item]
        if missing:
            problems.append(f"{label}: missing keys {missing}")
        problems += [f"{label}: {p}" for p in _field_problems(item)]
        name = item.get("name")
        if isinstance(name, str) and name in seen:
            problems.append(f"{label}: the name {name!r} is already used by rule {seen[name]}")
        elif isinstance(name, str):
            seen[name] = number
    raise_if_problems(problems, what=where, hint=EXAMPLE)
    return [Rule(**{k: v for k, v in item.items() if v is not None}) for item in data["rules"]]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
