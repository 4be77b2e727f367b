"""The Feast side of ``bench/features.py``, run by the interpreter of ``bench/.cache/feast-venv`` (it imports
Feast and pandas only, never stackml).

One process: register the bench's three feature views (the same Parquet files, TTLs and feature names as the
stackml repo); time ``get_historical_features(...).to_df()`` with each offline store of ``--offline``
(Feast's default, file, first); time ``materialize`` (through the file store) into Feast's PostgreSQL online
store and ``get_online_features(...).to_dict()`` for one entity and for 100; read the comparison sample;
then ``teardown`` the online tables. The training sets and the online sample are written to ``--out``; the
numbers are printed as one JSON line.

Usage (``bench/features.py`` runs it): python bench/_feast_side.py --data DIR --out DIR --pg-db NAME
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry, no network
os.environ.setdefault("DO_NOT_TRACK", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="the folder bench/features.py generated")
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-db", required=True)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-schema", default="feast_bench")
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--offline", default="file", help="offline stores to time, the default first")
    parser.add_argument("--variant-repeat", type=int, default=3, help="timed calls per extra offline store")
    args = parser.parse_args()

    import pandas as pd
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Bool, Float64, Int64, String

    data, out = Path(args.data), Path(args.out)
    spec = json.loads((data / "spec.json").read_text())
    types = {"float64": Float64, "int64": Int64, "bool": Bool, "string": String}
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    views = []
    for view in spec["views"]:
        source = FileSource(
            name=view["name"],
            path=str(data / f"{view['name']}.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        )
        views.append(
            FeatureView(
                name=view["name"],
                entities=[customer],
                ttl=timedelta(seconds=view["ttl"]),  # 0: no bound, as ours
                schema=[Field(name=f, dtype=types[t]) for f, t in view["features"].items()],
                source=source,
                online=True,
            )
        )
    service = FeatureService(name="bench", features=views)
    entities = pd.read_parquet(data / "entities.parquet")
    report: dict = {"feast": _version("feast"), "entity_rows": len(entities), "offline": {}}
    online_store = None
    for i, offline in enumerate(args.offline.split(",")):
        # the first offline store (Feast's default, file) also materialises into PostgreSQL and serves
        store = FeatureStore(repo_path=str(_repo(args, offline, online=i == 0)))
        store.apply([customer, *views, service])
        repeat = args.repeat if i == 0 else args.variant_repeat
        times, frame = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            frame = store.get_historical_features(
                entity_df=entities, features=service, full_feature_names=True
            ).to_df()
            times.append(time.perf_counter() - started)
        assert frame is not None
        report["offline"][offline] = {"historical_s": min(times), "all_s": times, "rows": len(frame)}
        frame.to_parquet(out / f"feast_{offline}_training.parquet", index=False)
        if i == 0:
            online_store = store
    if not args.skip_online and online_store is not None:
        try:
            report.update(_online(online_store, service, spec, data, out))
        finally:
            online_store.teardown()
    print(json.dumps(report))


def _repo(args: argparse.Namespace, offline: str, *, online: bool) -> Path:
    """A feature repo folder with only ``feature_store.yaml``: ``offline`` as the offline store and, for the
    one that serves, the PostgreSQL online store (the others get a throwaway SQLite file)."""
    repo = Path(tempfile.mkdtemp(prefix=f"feast-repo-{offline}-", dir=args.out))
    store = (
        [
            "  type: postgres",
            f"  host: {args.pg_host}",
            f"  port: {args.pg_port}",
            f"  database: {args.pg_db}",
            f"  db_schema: {args.pg_schema}",
            f"  user: {args.pg_user}",
            '  password: ""',
            "  sslmode: disable",
        ]
        if online
        else ["  type: sqlite", f"  path: {repo / 'online.db'}"]
    )
    lines = ["project: stackml_bench", f"registry: {repo / 'registry.db'}", "provider: local"]
    lines += ["offline_store:", f"  type: {offline}", "online_store:", *store, ""]
    (repo / "feature_store.yaml").write_text("\n".join(lines))
    return repo


def _online(store, service, spec: dict, data: Path, out: Path) -> dict:
    import pandas as pd

    report: dict = {}
    start = datetime.fromisoformat(spec["start"]) - timedelta(days=1)
    end = datetime.now(timezone.utc)
    started = time.perf_counter()
    store.materialize(start_date=start, end_date=end)
    report["materialize_s"] = time.perf_counter() - started

    reads = json.loads((data / "online.json").read_text())

    def read(rows: list[dict]) -> dict:
        return store.get_online_features(
            features=service, entity_rows=rows, full_feature_names=True
        ).to_dict()

    for ids in reads["warmup"]:
        read([{"customer_id": i} for i in ids])
    for label in ("one", "hundred"):
        latencies = []
        for ids in reads[label]:
            rows = [{"customer_id": i} for i in ids]  # built outside the timed call, as on our side
            started = time.perf_counter_ns()
            read(rows)
            latencies.append((time.perf_counter_ns() - started) / 1e6)
        report[f"online_{label}_ms"] = percentiles(latencies)
    sample = {}
    for i in range(0, len(reads["sample"]), 100):
        got = read([{"customer_id": k} for k in reads["sample"][i : i + 100]])
        for key, values in got.items():
            sample.setdefault(key, []).extend(values)
    pd.DataFrame(sample).to_parquet(out / "feast_online.parquet", index=False)
    return report


def percentiles(values: list[float]) -> dict:
    """p50 and p99 by nearest rank (the value at or below which q of the calls fall), and the mean; both
    sides of the bench use this one definition."""
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"n": len(values), "p50": pick(0.50), "p99": pick(0.99), "mean": sum(values) / len(values)}


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
