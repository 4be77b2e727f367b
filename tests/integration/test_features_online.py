"""The PostgreSQL online store: what materialisation writes and what a read by key returns, against the
training set built at the same moment (the offline and online paths must agree), incremental runs, late rows,
changed definitions, a reader during a write, and bad entity rows.

Every test gets its own warehouse file and its own online database; times are relative to now, and no event
sits within minutes of a TTL's edge, so the seconds between a write and a read cannot flip a value.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from stackml.errors import InputError
from stackml.features import FeatureStore
from stackml.warehouse import connect

REPO = """
entities:
  - {name: customer, join_keys: [customer_id]}
  - {name: store, join_keys: [store_id]}
sources:
  - name: orders
    table: orders
    timestamp_field: event_timestamp
    created_timestamp_field: created_timestamp
  - {name: sales, table: sales, timestamp_field: sold_at}
feature_views:
  - name: recent
    entities: [customer]
    source: orders
    ttl: 2d
    features: [{name: amount, expr: amount}, {name: big, expr: "amount > 100"}]
  - name: ever
    entities: [customer]
    source: orders
    ttl: 0
    features: [{name: doubled, expr: "amount * 2"}]
  - {name: shop, entities: [customer, store], source: sales, ttl: 1d, features: [{name: units, expr: units}]}
services:
  - {name: model, features: ["recent:amount", "recent:big", "ever", "shop:units"]}
"""
NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
GRID = timedelta(hours=6)
OFFSET = timedelta(minutes=30)  # keeps every event 30 minutes from a multiple of 6 h: far from any TTL edge


@pytest.fixture(autouse=True)
def fresh_now() -> None:
    """Times relative to each test's start: a module-wide 'now' grows stale while other tests run."""
    global NOW
    NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _orders(rng: random.Random, customers: range) -> list[dict]:
    rows = []
    for i in range(12 * len(customers)):
        event = NOW - GRID * rng.randrange(1, 30) - OFFSET
        rows.append(
            {
                "customer_id": rng.choice(customers),
                "event_timestamp": event,
                "created_timestamp": event + timedelta(minutes=i % 7),
                "amount": float(rng.randrange(1, 200)),
            }
        )
    tie = NOW - GRID - OFFSET  # customer 1's newest event is a tie: the later write (7.0) wins
    rows.append({"customer_id": 1, "event_timestamp": tie, "created_timestamp": tie, "amount": 3.0})
    rows.append({"customer_id": 1, "event_timestamp": tie, "created_timestamp": tie + GRID, "amount": 7.0})
    return rows


def _sales(rng: random.Random, customers: range) -> list[dict]:
    seen, rows = set(), []
    for _ in range(6 * len(customers)):
        key = (rng.choice(customers), rng.randrange(1, 3), NOW - GRID * rng.randrange(1, 12) - OFFSET)
        if key not in seen:
            seen.add(key)
            rows.append(
                {"customer_id": key[0], "store_id": key[1], "sold_at": key[2], "units": rng.randrange(9)}
            )
    return rows


@pytest.fixture
def online_url(fresh_postgres_url: str) -> str:
    """A database of its own for each test's online store (the schema and state table are global)."""
    return fresh_postgres_url


def _store(
    tmp_path: Path,
    online_url: str,
    orders: list[dict],
    sales: list[dict],
    repo: str = REPO,
    name: str = "repo",
    url: str | None = None,
):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "features.yaml").write_text(repo)
    url = url or f"duckdb:///{tmp_path / 'wh.duckdb'}"
    with connect(url) as wh:
        wh.ingest(pd.DataFrame(orders), "orders", if_exists="replace")
        wh.ingest(pd.DataFrame(sales), "sales", if_exists="replace")
    return FeatureStore(folder, warehouse=url, online=online_url), url


def _append(url: str, table: str, rows: list[dict]) -> None:
    with connect(url) as wh:
        wh.ingest(pd.DataFrame(rows), table, if_exists="append")


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and pd.isna(a)):
        return b is None or (isinstance(b, float) and pd.isna(b))
    return a == b


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_online_values_equal_a_training_set_built_now(
    tmp_path: Path, online_url: str, engine: str, request: pytest.FixtureRequest
) -> None:
    """Materialised from each warehouse engine, read back by key: the values of a training set built now."""
    rng = random.Random(3)
    url = None if engine == "duckdb" else request.getfixturevalue(f"{engine}_url")
    store, _ = _store(tmp_path, online_url, _orders(rng, range(1, 40)), _sales(rng, range(1, 40)), url=url)
    done = store.materialize()
    assert [(m.view, m.rebuilt, m.since) for m in done] == [
        ("recent", True, None),
        ("ever", True, None),
        ("shop", True, None),
    ]
    keys = [{"customer_id": c, "store_id": s} for c in (*range(1, 40), 999) for s in (1, 2)]
    online = store.get_online_features("model", keys)
    entities = pd.DataFrame(keys).assign(event_timestamp=datetime.now(timezone.utc).replace(tzinfo=None))
    offline = store.get_training_set(entities, "model")
    assert list(online) == [
        "customer_id",
        "store_id",
        "recent__amount",
        "recent__big",
        "ever__doubled",
        "shop__units",
    ]
    for column in list(online)[2:]:
        expected = [None if pd.isna(v) else v for v in offline[column]]
        bad = [(k, g, x) for k, g, x in zip(keys, online[column], expected) if not _same(g, x)]
        assert not bad, (column, bad[:5])
    # what the comparison must exercise: values, TTL-expired values, unknown entities and the tie
    assert any(v is None for v in online["recent__amount"][:-2]) and any(
        v is not None for v in online["recent__amount"]
    )
    assert online["ever__doubled"][-1] is None and online["ever__doubled"][0] == 14.0
    assert online["recent__amount"][0] == 7.0 and online["recent__big"][0] is False
    # the views that share join keys are read by one query: two for this service's three views
    with store.online_reader("model") as reader:
        assert [g.keys for g in reader._groups] == [("customer_id",), ("customer_id", "store_id")]


def test_runs_are_incremental_and_a_stored_value_gives_way_only_to_a_newer_one(
    tmp_path: Path, online_url: str
) -> None:
    rng = random.Random(4)
    store, url = _store(tmp_path, online_url, _orders(rng, range(1, 10)), _sales(rng, range(1, 10)))
    first = {m.view: m for m in store.materialize()}
    assert first["ever"].rows == 9
    read = lambda: store.get_online_features(["ever"], [{"customer_id": 1}, {"customer_id": 2}])  # noqa: E731
    before = read()["ever__doubled"]

    fresh = NOW + timedelta(minutes=1)  # newer than everything stored, older than the next run's "now"
    late = NOW - timedelta(days=20)  # older than the watermark: only --since reaches it
    _append(
        url,
        "orders",
        [
            {"customer_id": 1, "event_timestamp": fresh, "created_timestamp": fresh, "amount": 500.0},
            {"customer_id": 2, "event_timestamp": late, "created_timestamp": fresh, "amount": 600.0},
            {"customer_id": 77, "event_timestamp": late, "created_timestamp": fresh, "amount": 1.0},
        ],
    )
    second = {m.view: m for m in store.materialize(until=NOW + timedelta(minutes=2))}
    # the late rows were written after everything stored (their created time): read as well, whatever
    # their event time; customer 2's stored value is newer and stays, customer 77 is new
    assert second["ever"].rows == 3 and not second["ever"].rebuilt
    assert second["ever"].since == first["ever"].until
    assert read()["ever__doubled"] == [1000.0, before[1]]
    assert store.get_online_features(["ever"], [{"customer_id": 77}])["ever__doubled"] == [2.0]
    third = {m.view: m for m in store.materialize(until=NOW + timedelta(minutes=3))}
    assert third["ever"].rows == 0  # nothing new by either watermark

    # a source without created times: a late row needs since; a stored newer value never gives way
    _append(url, "sales", [{"customer_id": 1, "store_id": 1, "sold_at": late, "units": 99}])
    assert store.materialize(["shop"], until=NOW + timedelta(minutes=3))[0].rows == 0
    back = store.materialize(["shop"], since=late - timedelta(seconds=1), until=NOW + timedelta(minutes=4))
    assert back[0].rows >= 1
    shop = store.get_online_features(["shop"], [{"customer_id": 1, "store_id": 1}])["shop__units"]
    assert shop != [99]  # customer 1 had newer sales at store 1 than the late one
    states = store.online_states()
    assert states["ever"].entities == 10 and states["ever"].watermark == NOW + timedelta(minutes=3)


def test_a_changed_definition_is_refused_by_readers_and_rebuilt_by_the_next_run(
    tmp_path: Path, online_url: str
) -> None:
    rng = random.Random(5)
    orders, sales = _orders(rng, range(1, 6)), _sales(rng, range(1, 6))
    store, _ = _store(tmp_path, online_url, orders, sales)
    store.materialize()
    changed, _ = _store(
        tmp_path, online_url, orders, sales, REPO.replace("amount * 2", "amount * 3"), "changed"
    )
    with pytest.raises(InputError, match="view 'ever' changed since it was last materialised"):
        changed.get_online_features(["ever"], [{"customer_id": 1}])
    done = {m.view: m for m in changed.materialize()}
    assert done["ever"].rebuilt and not done["recent"].rebuilt
    assert changed.get_online_features(["ever"], [{"customer_id": 1}])["ever__doubled"] == [21.0]


def test_a_failing_run_changes_nothing(tmp_path: Path, online_url: str) -> None:
    rng = random.Random(6)
    orders, sales = _orders(rng, range(1, 6)), _sales(rng, range(1, 6))
    store, _ = _store(tmp_path, online_url, orders, sales)
    store.materialize("ever")
    before = store.online_states()["ever"]
    broken, _ = _store(
        tmp_path, online_url, orders, sales, REPO.replace("amount * 2", "no_such_column * 2"), "broken"
    )
    with pytest.raises(InputError, match="Materialising feature view 'ever' failed"):
        broken.materialize("ever")
    assert store.online_states()["ever"] == before
    assert store.get_online_features(["ever"], [{"customer_id": 1}])["ever__doubled"] == [14.0]


def test_a_reader_sees_a_whole_batch_or_none_of_it(tmp_path: Path, online_url: str) -> None:
    customers = range(1, 3001)
    t0 = NOW - timedelta(hours=1)
    version = lambda v, t: [  # noqa: E731 - every customer's amount is the batch number
        {"customer_id": c, "event_timestamp": t, "created_timestamp": t, "amount": float(v)}
        for c in customers
    ]
    store, url = _store(tmp_path, online_url, version(1, t0), _sales(random.Random(8), range(1, 3)))
    store.materialize(["ever"], until=t0)
    keys = [{"customer_id": c} for c in customers]
    seen: list[set] = []
    stop = threading.Event()
    with store.online_reader(["ever"], pool_size=1) as reader:

        def read() -> None:
            while not stop.is_set():
                seen.append(set(reader.read(keys)["ever__doubled"]))

        thread = threading.Thread(target=read)
        thread.start()
        try:
            for v in range(2, 6):
                t = t0 + timedelta(minutes=v)
                _append(url, "orders", version(v, t))
                store.materialize(["ever"], until=t)
        finally:
            stop.set()
            thread.join()
    assert len(seen) > 3
    assert all(len(values) == 1 for values in seen), [sorted(s)[:5] for s in seen if len(s) > 1][:3]
    assert seen[-1] == {10.0}


def test_bad_entity_rows_and_unmaterialised_views_say_what_is_wrong(tmp_path: Path, online_url: str) -> None:
    rng = random.Random(7)
    store, _ = _store(tmp_path, online_url, _orders(rng, range(1, 4)), _sales(rng, range(1, 4)))
    with pytest.raises(InputError, match="view 'recent' has not been materialised"):
        store.get_online_features(["recent"], [{"customer_id": 1}])
    store.materialize()
    with pytest.raises(InputError, match=r"join key\(s\) \['customer_id', 'store_id'\]"):
        store.get_online_features("model", [{"customer_id": 1}])
    with pytest.raises(InputError, match="Join key 'customer_id' is missing"):
        store.get_online_features(["ever"], [{"customer_id": None}])
    with pytest.raises(InputError, match=r"Join key 'customer_id' is an integer \(bigint\), got 'abc'"):
        store.get_online_features(["ever"], [{"customer_id": "abc"}])
    # PostgreSQL would round 1.5 to customer 2, and refuses a boolean with its own error
    with pytest.raises(InputError, match=r"Join key 'customer_id' is an integer \(bigint\), got 1.5"):
        store.get_online_features(["ever"], [{"customer_id": 1.5}])
    with pytest.raises(InputError, match="got True"):
        store.get_online_features(["ever"], [{"customer_id": True}])
    whole = store.get_online_features(["ever"], [{"customer_id": 1.0}, {"customer_id": "1"}])
    assert whole["ever__doubled"][0] == whole["ever__doubled"][1] is not None
    with pytest.raises(InputError, match="Unknown feature service 'nope'"):
        store.get_online_features("nope", [{"customer_id": 1}])
    with pytest.raises(InputError, match=r"Unknown feature view\(s\) \['nope'\]"):
        store.materialize("nope")
    # a dict of lists and a DataFrame are entity rows too
    as_dict = store.get_online_features(["ever"], {"customer_id": [1, 2]})
    as_frame = store.get_online_features(["ever"], pd.DataFrame({"customer_id": [1, 2]}))
    assert as_dict == as_frame and len(as_dict["ever__doubled"]) == 2
    # the store keeps one reader (one connection) per feature list; close() closes them
    assert list(store._readers) == [("ever",)]
    store.close()
    assert not store._readers
    assert store.get_online_features(["ever"], []) == {"customer_id": [], "ever__doubled": []}


def test_the_online_store_must_be_postgresql(tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text(REPO)
    store = FeatureStore(tmp_path, warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    with pytest.raises(InputError, match="online feature store needs PostgreSQL"):
        store.materialize()
