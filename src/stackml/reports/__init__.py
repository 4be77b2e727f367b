"""Reports: one self-contained HTML file per pipeline run, an index of them all, and the result tables as
Tableau extracts (``.hyper``) or Parquet and CSV files.

A report holds its CSS, plotly.js and data inline, so it opens offline, from an e-mail attachment
or an artifact store, and never contacts a server.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from stackml.reports import Report
    >>> report = Report("Forecast accuracy", "All stores improve on the baseline.", pipeline="forecast")
    >>> path = report.add_table(pd.DataFrame({"store": ["A"], "mase": [0.81]})).write(tempfile.mkdtemp())
    >>> (path.parent / "index.html").exists()
    True
"""

from stackml.reports.index import ReportEntry, build_index, list_reports
from stackml.reports.report import Report
from stackml.reports.table_files import TABLE_FILE_FORMATS, write_table_files
from stackml.reports.tableau import read_extract, write_extract, write_extract_beside

__all__ = [
    "Report",
    "ReportEntry",
    "build_index",
    "list_reports",
    "write_extract",
    "read_extract",
    "write_extract_beside",
    "write_table_files",
    "TABLE_FILE_FORMATS",
]
