"""The demo on embedded defaults: the sample lands in the warehouse and the report index is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from stackml.config import get_settings
from stackml.demo import run_demo
from stackml.demo.sample import sample_path, store_sales
from stackml.reports import list_reports
from stackml.warehouse import connect


def test_bundled_sample_is_the_seeded_generator_output() -> None:
    bundled = pd.read_csv(sample_path(), parse_dates=["ds"])
    pd.testing.assert_frame_equal(bundled, store_sales(), check_dtype=False)


def test_run_demo_writes_warehouse_and_reports(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "home")
    result = run_demo(settings)
    assert result.index_path == settings.reports_dir / "index.html" and result.index_path.is_file()
    assert all(p.is_file() for p in result.reports)
    with connect(settings=settings) as wh:
        assert wh.row_count("demo_store_sales") == 3650
    titles = [entry.title for entry in list_reports(settings.reports_dir)]
    assert "Sample data: daily store sales" in titles
    # Running it again replaces the demo tables instead of failing on them.
    run_demo(settings)


def test_cli_demo_prints_the_report_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKML_")}
    proc = subprocess.run(
        [sys.executable, "-m", "stackml", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    index = tmp_path / ".stackml" / "reports" / "index.html"
    assert f"Report index: {index}" in proc.stdout
    assert index.is_file()
