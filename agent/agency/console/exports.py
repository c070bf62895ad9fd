"""Alerts leaving the console as files: CSV for spreadsheets, CAP 1.2 XML per alert, an Atom feed for CAD systems.

Every value came from a site and is untrusted. In CSV a text cell that a
spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
or a carriage return) gets a leading `'`, so it is shown as text (OWASP's
advice for CSV injection); numbers the console wrote itself are left alone.
XML is built with `xml.etree.ElementTree`, which escapes text and attribute
values, never by joining strings.
"""

from __future__ import annotations

__all__ = ["CSV_COLUMNS", "CapUnavailable", "alerts_csv", "atom_feed", "cap_document", "neutralise"]

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agent.agency.store import AlertRow
from agent.alerts.cap import alert_to_cap_xml
from agent.alerts.schema import PublishedAlert
from agent.csv_cells import neutralise

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"

CSV_COLUMNS = (
    "sent",
    "received_at",
    "site_id",
    "sender_name",
    "alert_id",
    "incident_id",
    "cap_status",
    "msg_type",
    "phase",
    "event",
    "headline",
    "severity",
    "certainty",
    "validation_level",
    "rule",
    "rule_kind",
    "zone",
    "line",
    "camera_id",
    "class_name",
    "count",
    "confidence",
    "lat",
    "lon",
    "kid",
)
_TIMES = frozenset({"sent", "received_at"})


class CapUnavailable(ValueError):
    """This recipient's view of the alert lacks fields CAP 1.2 requires (the message lists them)."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _TIMES:
        return _iso(float(value))
    if isinstance(value, bool | int | float):
        return str(value)
    return neutralise(str(value))


def alerts_csv(rows: Sequence[AlertRow]) -> str:
    """The rows as CSV text (a header line, then one line per alert; times in UTC, ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(name, getattr(row, name)) for name in CSV_COLUMNS])
    return out.getvalue()


def cap_document(row: AlertRow) -> bytes:
    """The stored alert as a CAP 1.2 XML document.

    Raises:
        CapUnavailable: the view this recipient received lacks fields CAP needs.
    """
    try:
        alert = PublishedAlert.model_validate(row.payload())
    except (ValidationError, ValueError) as err:
        raise CapUnavailable(_missing_fields(err, row)) from None
    return alert_to_cap_xml(alert)


def _missing_fields(err: Exception, row: AlertRow) -> str:
    head = f"alert {row.alert_id} of site {row.site_id} cannot be given as CAP 1.2"
    if not isinstance(err, ValidationError):
        return f"{head}: its stored payload is not a JSON object"
    problems = err.errors(include_url=False, include_input=False)
    missing = sorted({".".join(str(p) for p in e["loc"]) for e in problems if e["type"] == "missing"})
    if missing:
        return f"{head}: the view this recipient receives lacks {', '.join(missing)}"
    first = problems[0]
    return f"{head}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def atom_feed(
    rows: Sequence[AlertRow],
    *,
    title: str,
    feed_url: str,
    cap_url: Callable[[AlertRow], str],
    site_name: Callable[[str], str],
    now: float,
) -> bytes:
    """An Atom (RFC 4287) feed, newest first, each entry linking to its alert's CAP XML.

    Args:
        rows: the alerts, newest first.
        title: the feed's title.
        feed_url: the feed's own absolute URL (its id and `self` link).
        cap_url: the absolute URL of an alert's CAP document (each entry's id and link).
        site_name: a site's name for people.
        now: seconds since the epoch, for the feed's `updated` when there are no entries.
    """
    # The namespace as a plain default `xmlns`: ElementTree's namespace registry is process-wide
    # (and CAP rendering sets its own default there), and its `default_namespace` refuses plain attributes.
    feed = ET.Element("feed", {"xmlns": ATOM_NAMESPACE})
    _sub(feed, "id", feed_url)
    _sub(feed, "title", title)
    _sub(feed, "updated", _iso(rows[0].received_at if rows else now))
    _sub(feed, "link", rel="self", href=feed_url, type="application/atom+xml")
    author = _sub(feed, "author")
    _sub(author, "name", title)
    for row in rows:
        url = cap_url(row)
        entry = _sub(feed, "entry")
        _sub(entry, "id", url)
        _sub(entry, "title", row.headline or row.event or f"Alert {row.alert_id}")
        _sub(entry, "updated", _iso(row.received_at))
        _sub(entry, "published", _iso(row.sent))
        _sub(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=url)
        if row.severity:
            _sub(entry, "category", term=row.severity, label="CAP severity")
        where = " / ".join(v for v in (row.rule, row.zone or row.line) if v)
        summary = f"{row.event or 'Alert'} at {site_name(row.site_id)} ({row.site_id})"
        summary += f", {where}" if where else ""
        summary += f"; {row.cap_status}, {row.msg_type or 'Alert'}, phase {row.phase or '?'}"
        _sub(entry, "summary", summary)
    ET.indent(feed)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
