"""Writing a transparency report: verify the log's chain, count, render, then write the three files.

A log that fails verification gets no report at all: a report counted from
an edited or shortened log would lend it credibility it has not earned.
Only the records the verification covered are counted, so records a
running agent appends meanwhile neither slip in unverified nor move the
stated chain head. Every file is rendered before the first is written, and
each is written to a temporary name and renamed, so a failure leaves no
half-written file.
"""

from __future__ import annotations

__all__ = ["REPORT_FILES", "LogRefused", "ReportWritten", "write_report"]

import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import AgentError
from agent.privacy.audit import AuditIssue, read_records, verify_log
from agent.transparency.counting import count_figures
from agent.transparency.data_files import render_csv, render_json
from agent.transparency.figures import Figures, Period
from agent.transparency.html_report import render_html

REPORT_FILES = ("report.html", "report.csv", "report.json")


class LogRefused(AgentError):
    """The audit log failed verification; no report was written.

    Attributes:
        path: the log.
        issue: the first thing wrong with it (its line, 0 for the log as a whole, and the reason).
    """

    def __init__(self, path: Path, issue: AuditIssue) -> None:
        self.path = path
        self.issue = issue
        where = f"line {issue.line}: " if issue.line else ""
        super().__init__(
            f"audit log {path} fails verification: {where}{issue.reason}; no report written "
            f"(check it with: edge-agent audit verify --log {path})"
        )


@dataclass(frozen=True, slots=True)
class ReportWritten:
    """A report on disk: its figures and the files written."""

    figures: Figures
    files: tuple[Path, ...]


def write_report(log: Path, period: Period, out_dir: Path, *, now: datetime | None = None) -> ReportWritten:
    """Verify `log`, count `period` and write `REPORT_FILES` into `out_dir` (created when missing).

    Raises:
        LogRefused: the chain or its head file does not verify (nothing is written).
        AgentError: the log is missing or unreadable, or the report cannot be written.
    """
    if not log.is_file():
        raise AgentError(f"audit log {log} does not exist")
    count, issue = verify_log(log)
    if issue is not None:
        raise LogRefused(log, issue)
    figures = count_figures((rec.data for rec in itertools.islice(read_records(log), count)), period)
    generated = now or datetime.now(UTC)
    texts = {
        "report.html": render_html(figures, log_name=log.name, generated=generated),
        "report.csv": render_csv(figures),
        "report.json": render_json(figures, log_name=log.name, generated=generated),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = tuple(_write_atomically(out_dir / name, text) for name, text in texts.items())
    except OSError as err:
        raise AgentError(f"cannot write the report into {out_dir}: {err.strerror or err}") from None
    return ReportWritten(figures, files)


def _write_atomically(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
