"""`edge-agent transparency`: write the public transparency report (HTML, CSV, JSON) from the audit log."""

from __future__ import annotations

__all__ = ["parse_day", "register"]

import argparse
import functools
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agent.transparency import Period, write_report

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Without --from, the report covers the year up to --to.
DEFAULT_SPAN_DAYS = 365


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "transparency",
        help="write the public transparency report from the audit log",
        description=(
            "Verify the audit log's hash chain, then write report.html (a self-contained page with plots), "
            "report.csv and report.json into DIR: what was shared with each recipient under each agreement, "
            "what was withheld and why, holds and releases, break-glass requests, drills and answer times. "
            "A log that fails verification gets no report (exit 1). Days are UTC and inclusive."
        ),
    )
    parser.add_argument("--audit", required=True, type=Path, metavar="LOG", help="audit log (JSONL)")
    parser.add_argument(
        "--from",
        dest="first",
        type=parse_day,
        default=None,
        metavar="DATE",
        help=f"first day, YYYY-MM-DD (default: {DEFAULT_SPAN_DAYS} days before --to)",
    )
    parser.add_argument(
        "--to", dest="last", type=parse_day, default=None, metavar="DATE", help="last day, YYYY-MM-DD (default: today)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the report files")
    parser.set_defaults(handler=functools.partial(_run, parser))


def parse_day(text: str) -> date:
    """A calendar day written YYYY-MM-DD."""
    if not _DAY.match(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a day written YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: {err}") from None


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    last: date = args.last or datetime.now(UTC).date()
    first: date = args.first or last - timedelta(days=DEFAULT_SPAN_DAYS)
    try:
        period = Period(first, last)
    except ValueError as err:
        parser.error(f"--from/--to: {err}")
    written = write_report(args.audit, period, args.out)
    f = written.figures
    print(
        f"wrote {', '.join(str(p) for p in written.files)}: {f.records_in_period} of {f.log_records} record(s) "
        f"in {period.first}..{period.last}; chain head seq {f.head_seq} hash {f.head_hash}"
    )
    return 0
