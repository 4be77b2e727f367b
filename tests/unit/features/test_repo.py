"""Feature definitions and repo parsing, without a warehouse: the issue's YAML verbatim, TTLs, every problem
at once with its file and name, bad YAML, Python definitions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stackml.errors import InputError
from stackml.features import Entity, Feature, FeatureService, FeatureView, Source, load_repo, parse_ttl
from stackml.features.definitions import format_ttl
from stackml.features.registry import digest

ISSUE_YAML = """\
entities: [{name: customer, join_keys: [customer_id]}]
sources:
  - {name: orders, table: orders, timestamp_field: event_timestamp, created_timestamp_field: created_timestamp}
feature_views:
  - name: customer_orders
    entities: [customer]
    source: orders
    ttl: 30d            # 0 = unbounded
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
services: [{name: churn, features: ["customer_orders:amount", "customer_orders:big"]}]
"""  # noqa: E501 - verbatim from the issue


def _repo(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name.replace("_yaml", ".yaml").replace("_py", ".py")).write_text(text)
    return tmp_path


def test_the_issue_yaml_reads_as_written(tmp_path: Path) -> None:
    defs = load_repo(_repo(tmp_path, features_yaml=ISSUE_YAML))
    assert defs.entities == (Entity("customer", ("customer_id",)),)
    assert defs.sources == (
        Source(
            "orders",
            table="orders",
            timestamp_field="event_timestamp",
            created_timestamp_field="created_timestamp",
        ),
    )
    assert defs.views == (
        FeatureView(
            "customer_orders",
            entities=("customer",),
            source="orders",
            features=(Feature("amount", "amount"), Feature("big", "amount > 100")),
            ttl=30 * 86400,
        ),
    )
    assert defs.services == (FeatureService("churn", ("customer_orders:amount", "customer_orders:big")),)
    assert defs.join_keys(defs.views[0]) == ["customer_id"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 2592000),
        ("12h", 43200),
        ("15m", 900),
        ("45s", 45),
        ("2w", 1209600),
        ("0", 0),
        (0, 0),
        (90, 90),
    ],
)
def test_ttl_parsing(text: object, seconds: int) -> None:
    assert parse_ttl(text) == seconds
    assert parse_ttl(format_ttl(seconds) if seconds else 0) == seconds


@pytest.mark.parametrize("bad", ["3x", "-1d", "1.5h", "", -5, True, None, timedelta(seconds=-1)])
def test_bad_ttls_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="TTL must be"):
        parse_ttl(bad)


def test_every_problem_is_reported_at_once_with_file_and_name(tmp_path: Path) -> None:
    broken = """\
entities: [{name: customer, join_keys: [customer_id]}, {name: customer, join_keys: [id]}]
sources:
  - {name: orders, table: orders, query: "SELECT 1"}
  - {name: payments, table: payments, colour: red}
feature_views:
  - name: customer_orders
    entities: [client]
    source: payments
    ttl: 3x
    features: [{name: amount, expr: amount}]
  - name: spend
    entities: [client]
    source: nowhere
    features: [{name: amount, expr: amount}, {name: amount, expr: amount * 2}]
services: [{name: churn, features: ["spend:amount", "spend:nope", "ghost:x", "customer_orders:amount"]}]
extra: 1
"""
    other = "entities: [{name: customer, join_keys: [customer_id]}]\nsources: [{name: bad name, table: t}]\n"
    with pytest.raises(InputError) as caught:
        load_repo(_repo(tmp_path, a_yaml=broken, b_yaml=other))
    message = str(caught.value)
    expected = [
        "a.yaml: unknown section(s) ['extra']",
        "a.yaml: source 'orders': give exactly one of 'table' or 'query'",
        "a.yaml: source 'payments': unknown field(s) ['colour']",
        "a.yaml: feature view 'customer_orders': the TTL must be a duration such as 30d, 12h or 0, got '3x'",
        "a.yaml: feature view 'spend': unknown entities ['client']",
        "a.yaml: feature view 'spend': unknown source 'nowhere'",
        "a.yaml: feature view 'spend': feature(s) ['amount'] declared more than once",
        "a.yaml: service 'churn': unknown feature 'spend:nope'",
        "a.yaml: service 'churn': unknown feature view 'ghost'",
        "a.yaml: entity 'customer' is declared more than once (also in a.yaml)",
        "b.yaml: entity 'customer' is declared more than once (also in a.yaml)",
        "b.yaml: source name 'bad name' is not a valid name",
    ]
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert f"{len(expected)} problem(s) with the feature repo" in message
    # the view that could not be read is reported once, not again as an unknown reference of the service
    assert "customer_orders:amount" not in message


def test_bad_yaml_names_its_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"broken\.yaml: is not valid YAML at line 3"):
        load_repo(_repo(tmp_path, good_yaml=ISSUE_YAML, broken_yaml="entities: [\n  {name: x\n"))
    (tmp_path / "broken.yaml").write_text("- just\n- a list\n")
    with pytest.raises(InputError, match=r"broken\.yaml: must be a mapping"):
        load_repo(tmp_path)


def test_a_repo_must_be_a_folder_with_definitions(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a folder"):
        load_repo(tmp_path / "missing")
    with pytest.raises(InputError, match=r"holds no \*\.yaml"):
        load_repo(tmp_path)


def test_python_definitions_mix_with_yaml(tmp_path: Path) -> None:
    python = """\
from stackml.features import Feature, FeatureService, FeatureView

refunds = FeatureView(
    "refunds", entities=("customer",), source="orders", features=(Feature("n", "1"),), ttl="1h"
)
service = FeatureService("refund_model", ("refunds:n", "customer_orders:big"))
"""
    defs = load_repo(_repo(tmp_path, features_yaml=ISSUE_YAML, more_py=python))
    assert [v.name for v in defs.views] == ["customer_orders", "refunds"]
    assert defs.origins["feature view:refunds"] == "more.py"
    assert defs.view("refunds").ttl == 3600  # read as the YAML form is
    (tmp_path / "more.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InputError, match=r"more\.py: failed to run: RuntimeError: boom"):
        load_repo(tmp_path)


def test_the_digest_ignores_declaration_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    first = load_repo(_repo(one, x_yaml=ISSUE_YAML))
    head, tail = ISSUE_YAML.split("feature_views:")
    second = load_repo(_repo(two, b_yaml=head, a_yaml="feature_views:" + tail))
    assert digest(first) == digest(second)
    changed = load_repo(_repo(two, a_yaml="feature_views:" + tail.replace("30d", "29d")))
    assert digest(changed) != digest(first)
