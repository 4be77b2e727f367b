"""The prediction log on an embedded DuckDB file: batches, spill while down, replay without duplicates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stackml.serving.prediction_log import PredictionLog
from stackml.warehouse import connect


@pytest.fixture()
def paths(tmp_path: Path) -> tuple[str, Path, Path]:
    db = tmp_path / "wh.duckdb"
    return f"duckdb:///{db}", db, tmp_path / "spill"


def rows(url: str) -> list[dict]:
    with connect(url) as wh:
        if "prediction_log" not in wh.tables():
            return []
        return wh.query("SELECT * FROM prediction_log ORDER BY request_id, row_index").to_dict("records")


def submit_three(plog: PredictionLog, prefix: str = "r") -> None:
    plog.submit(f"{prefix}1", "demand", 3, "champion", [{"x": 1.0}, {"x": 2.0}], [{"y": 10.0}, {"y": 20.0}])
    plog.submit(f"{prefix}2", "demand", 3, "champion", [{"x": 3.0}], [30.0])
    plog.submit(f"{prefix}3", "demand", 4, "champion", [{"x": 4.0}], {"not": "paired"})


def test_rows_pair_inputs_with_outputs(paths):
    url, _, spill = paths
    plog = PredictionLog(url, spill, flush_interval_s=60)
    plog.start()
    submit_three(plog)
    assert plog.stats().written_rows == 0  # nothing written on the request path
    assert plog.flush()
    plog.close()

    got = rows(url)
    assert [(r["request_id"], r["row_index"], r["model_version"]) for r in got] == [
        ("r1", 0, 3),
        ("r1", 1, 3),
        ("r2", 0, 3),
        ("r3", -1, 4),
    ]
    assert json.loads(got[1]["inputs"]) == {"x": 2.0} and json.loads(got[1]["outputs"]) == {"y": 20.0}
    assert json.loads(got[2]["outputs"]) == 30.0
    # Outputs that do not pair one-to-one with the records are kept whole, on one row.
    assert json.loads(got[3]["inputs"]) == [{"x": 4.0}] and json.loads(got[3]["outputs"]) == {"not": "paired"}
    assert got[0]["model_alias"] == "champion" and got[0]["logged_at"].tzinfo is not None


def test_a_full_batch_is_written_without_waiting_for_the_interval(paths):
    url, _, spill = paths
    plog = PredictionLog(url, spill, batch_size=2, flush_interval_s=60)
    plog.start()
    try:
        submit_three(plog)
        deadline = time.monotonic() + 10
        while plog.stats().written_rows < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert plog.stats().written_rows >= 3
    finally:
        plog.close()
    assert len(rows(url)) == 4


def test_outage_spills_then_replays_every_row_once(paths, tmp_path):
    url, db, spill = paths
    db.mkdir()  # a folder where the database file should be: opening it fails for real
    plog = PredictionLog(url, spill, flush_interval_s=60, retry_interval_s=0.1)
    plog.start()
    try:
        submit_three(plog)
        assert plog.flush()
        stats = plog.stats()
        assert (stats.written_rows, stats.spilled_rows, stats.spill_files) == (0, 4, 1)
        assert not stats.warehouse_ok and "Is a directory" in stats.last_error
        ok, detail = plog.probe()
        assert not ok and "Cannot open the DuckDB warehouse" in detail

        db.rmdir()  # the warehouse is back
        submit_three(plog, prefix="s")
        assert plog.flush()
        stats = plog.stats()
        assert (stats.written_rows, stats.replayed_rows, stats.spill_files) == (4, 4, 0)
        assert plog.probe()[0]
    finally:
        plog.close()
    got = rows(url)
    assert sorted({r["request_id"] for r in got}) == ["r1", "r2", "r3", "s1", "s2", "s3"]
    assert len(got) == 8


def test_replay_skips_rows_already_in_the_table_and_keeps_torn_lines(paths):
    url, _, spill = paths
    plog = PredictionLog(url, spill, flush_interval_s=60)
    plog.start()
    submit_three(plog)
    assert plog.flush()
    # What a process that crashed after its write committed, but before it knew, leaves behind:
    spill.mkdir(exist_ok=True)
    written = rows(url)
    # A spill line holds logged_at in microseconds since the epoch.
    lines = [json.dumps({**r, "logged_at": r["logged_at"].value // 1000}) for r in written[:2]]
    extra = {**json.loads(lines[0]), "request_id": "late", "row_index": 0}
    (spill / "spill-999-deadbeef.jsonl").write_text(
        "\n".join([*lines, json.dumps(extra), '{"request_id": "torn']) + "\n"
    )
    try:
        assert plog.flush()
    finally:
        plog.close()
    got = rows(url)
    assert len(got) == 5  # the 4 rows once each, plus the one that was only in the spill file
    assert [r["request_id"] for r in got].count("late") == 1
    assert not (spill / "spill-999-deadbeef.jsonl").exists()
    assert (spill / "spill-999-deadbeef.rejected").read_text() == '{"request_id": "torn\n'


def test_close_drains_and_late_rows_wait_on_disk_for_the_next_process(paths):
    url, _, spill = paths
    first = PredictionLog(url, spill, flush_interval_s=60, batch_size=10_000)
    first.start()
    submit_three(first)
    first.close()  # no flush: shutdown alone must write what was queued
    assert len(rows(url)) == 4
    first.submit("late", "demand", 3, "champion", [{"x": 9.0}], [90.0])  # after close: spilled, not lost
    assert first.stats().spill_files == 1

    second = PredictionLog(url, spill, flush_interval_s=60)
    second.start()
    assert second.flush()
    second.close()
    assert [r["request_id"] for r in rows(url)].count("late") == 1
    assert second.stats().spill_files == 0


def test_a_reused_request_id_is_not_taken_for_a_duplicate_on_replay(paths):
    url, db, spill = paths
    # Reopening the file for each batch lets the test take the warehouse away between two batches.
    plog = PredictionLog(url, spill, flush_interval_s=60, retry_interval_s=0.1, hold_connection=False)
    plog.start()
    try:
        plog.submit("dup", "demand", 3, "champion", [{"x": 1.0}], [1.0], logged_at=1_700_000_000.25)
        assert plog.flush() and plog.stats().written_rows == 1
        db.rename(db.with_suffix(".away"))
        db.mkdir()
        plog.submit("dup", "demand", 3, "champion", [{"x": 2.0}], [2.0], logged_at=1_700_000_001.5)
        assert plog.flush() and plog.stats().spilled_rows == 1
        db.rmdir()
        db.with_suffix(".away").rename(db)
        assert plog.flush() and plog.stats().replayed_rows == 1
    finally:
        plog.close()
    assert [json.loads(r["inputs"]) for r in rows(url)] == [{"x": 1.0}, {"x": 2.0}]


def test_a_spill_file_that_cannot_be_replayed_does_not_hold_up_new_rows(paths):
    url, _, spill = paths
    spill.mkdir()
    bad = {
        "request_id": "x",
        "row_index": 0,
        "model_name": "demand",
        "model_version": "three",
        "model_alias": "champion",
        "logged_at": 1,
        "inputs": "{}",
        "outputs": "1",
    }
    (spill / "spill-1-bad.jsonl").write_text(json.dumps(bad) + "\n")
    plog = PredictionLog(url, spill, flush_interval_s=60)
    plog.start()
    try:
        submit_three(plog)
        assert plog.flush()
        stats = plog.stats()
        assert stats.written_rows == 4 and stats.spill_files == 1
        assert not stats.warehouse_ok and stats.last_error.startswith(
            "replaying spill files failed: ValueError"
        )
    finally:
        plog.close()
    assert len(rows(url)) == 4


def test_forecast_outputs_are_logged_one_row_per_record(paths):
    url, _, spill = paths
    plog = PredictionLog(url, spill, flush_interval_s=60)
    plog.start()
    records = [{"unique_id": "a", "h": 2}, {"unique_id": "b", "h": 2}]
    forecast = [
        {"unique_id": uid, "ds": f"2024-01-0{d}", "yhat": float(d)} for uid in ("b", "a") for d in (1, 2)
    ]
    plog.submit("f1", "demand", 1, "champion", records, forecast)
    plog.submit("f2", "demand", 1, "champion", [{"unique_id": "z"}], forecast)  # no output row for z
    assert plog.flush()
    plog.close()

    got = rows(url)
    assert [(r["request_id"], r["row_index"]) for r in got] == [("f1", 0), ("f1", 1), ("f2", -1)]
    assert json.loads(got[0]["inputs"]) == {"unique_id": "a", "h": 2}
    assert json.loads(got[0]["outputs"]) == [r for r in forecast if r["unique_id"] == "a"]
    assert json.loads(got[1]["outputs"]) == [r for r in forecast if r["unique_id"] == "b"]


KILLED_WRITER = """
import sys, time
from pathlib import Path
from stackml.serving.prediction_log import PredictionLog
plog = PredictionLog(sys.argv[1], Path(sys.argv[2]), flush_interval_s=3600, batch_size=10**6)
plog.start()
for i in range(50):
    plog.submit(f"k{i}", "demand", 1, "champion", [{"x": float(i)}], [float(i)])
print("answered", flush=True)
time.sleep(600)
"""


def test_entries_submitted_before_a_sigkill_are_replayed_by_the_next_process(paths):
    import signal
    import subprocess
    import sys

    url, _, spill = paths
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, url, str(spill)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "answered"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert rows(url) == []  # nothing reached the table: the writer waited for a batch that never came

    after = PredictionLog(url, spill, flush_interval_s=60)
    after.start()
    assert after.flush()
    after.close()
    assert sorted(r["request_id"] for r in rows(url)) == sorted(f"k{i}" for i in range(50))
    assert after.stats().replayed_rows == 50 and list(spill.iterdir()) == []
