"""Reports: one self-contained HTML file per pipeline run, and an index of them all.

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

__all__ = ["Report", "ReportEntry", "build_index", "list_reports"]
