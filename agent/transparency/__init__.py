"""The public transparency report: what the site shared, withheld and was asked for, checkable against the audit log.

`count_figures` turns audit-log records into `Figures` (pure); `render_html`,
`render_csv` and `render_json` turn figures into the report's files;
`write_report` verifies the log's hash chain first and writes nothing for a
log that fails.
"""

from __future__ import annotations

__all__ = [
    "Figures",
    "LogRefused",
    "Period",
    "ReportWritten",
    "count_figures",
    "render_csv",
    "render_html",
    "render_json",
    "write_report",
]

from agent.transparency.counting import count_figures
from agent.transparency.data_files import render_csv, render_json
from agent.transparency.figures import Figures, Period
from agent.transparency.html_report import render_html
from agent.transparency.publish import LogRefused, ReportWritten, write_report
