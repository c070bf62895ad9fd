"""The transparency report's machine-readable files: CSV (one row per recipient and agreement) and JSON.

In the CSV every text cell that came from the log and that a spreadsheet
would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
carriage return) gets a leading `'`, so it is shown as text (OWASP's advice
for CSV injection). The JSON carries every figure of the HTML page plus the
period, the log's record count and its chain head.
"""

from __future__ import annotations

__all__ = ["CSV_COLUMNS", "WITHHELD_REASONS", "neutralise", "render_csv", "render_json"]

import csv
import dataclasses
import io
import json
from datetime import datetime
from typing import Any

from agent.csv_cells import neutralise
from agent.transparency.figures import CAP_CLASSES, Figures, RecipientAgreement

WITHHELD_REASONS = ("agreement_expired", "agreement_not_yet_valid", "dismissed")
_PER_CLASS = ("alerts", "messages", "snapshots", "personal_data", "fields")

CSV_COLUMNS: tuple[str, ...] = (
    "recipient",
    "agreement",
    "agreement_digests",
    *(f"{c.lower()}_{name}" for c in CAP_CLASSES for name in _PER_CLASS),
    "actual_snapshot_none",
    "actual_snapshot_faces_filled",
    "actual_snapshot_unredacted",
    "actual_released_immediately",
    "actual_released_verified",
    "actual_released_auto",
    *(f"withheld_{reason}" for reason in WITHHELD_REASONS),
    "withheld_other",
    "held",
    "released_verified",
    "released_auto_release",
    "break_glass_requests",
    "break_glass_granted_automatically",
    "break_glass_approved",
    "break_glass_refused",
    "drills",
    "drill_alerts",
    "drill_messages",
    "actual_received_median_s",
    "actual_received_p90_s",
    "actual_acknowledged_median_s",
    "actual_acknowledged_p90_s",
)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _row_cells(row: RecipientAgreement) -> list[str | int]:
    per_class: list[str | int] = []
    for c in CAP_CLASSES:
        s = row.shared[c]
        per_class += [s.alerts, s.messages, s.snapshots, s.personal_data, neutralise(" ".join(s.fields))]
    actual, ack = row.shared["Actual"], row.acknowledgement["Actual"]
    outcomes = [b.outcome for b in row.break_glass]
    return [
        neutralise(row.recipient),
        neutralise(row.agreement),
        neutralise(" ".join(row.agreement_digests)),
        *per_class,
        actual.snapshot_kinds.get("none", 0),
        actual.snapshot_kinds.get("faces-filled", 0),
        actual.snapshot_kinds.get("unredacted", 0),
        actual.releases.get("immediate", 0),
        actual.releases.get("verified", 0),
        actual.releases.get("auto_release", 0),
        *(row.withheld.get(reason, 0) for reason in WITHHELD_REASONS),
        sum(n for reason, n in row.withheld.items() if reason not in WITHHELD_REASONS),
        row.held,
        row.released.get("verified", 0),
        row.released.get("auto_release", 0),
        len(row.break_glass),
        outcomes.count("granted automatically"),
        outcomes.count("approved"),
        outcomes.count("refused"),
        len(row.drills),
        sum(d.alerts for d in row.drills),
        sum(d.messages for d in row.drills),
        _seconds(ack.received_median_s),
        _seconds(ack.received_p90_s),
        _seconds(ack.acknowledged_median_s),
        _seconds(ack.acknowledged_p90_s),
    ]


def render_csv(figures: Figures) -> str:
    """One header line and one line per recipient and agreement."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in figures.rows:
        writer.writerow(_row_cells(row))
    return out.getvalue()


def _json_ready(value: Any) -> Any:
    """Dataclass values as plain JSON (dates as ISO text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_json_ready(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def render_json(figures: Figures, *, log_name: str, generated: datetime) -> str:
    """The whole report as one JSON document."""
    document = {
        "report": "transparency",
        "generated": generated.isoformat(timespec="seconds"),
        "period": {"from": figures.period.first.isoformat(), "to": figures.period.last.isoformat()},
        "log": {
            "file": log_name,
            "records": figures.log_records,
            "head": {"seq": figures.head_seq, "hash": figures.head_hash},
            "verify": f"edge-agent audit verify --log {log_name}",
        },
        "records_in_period": figures.records_in_period,
        "records_undated": figures.records_undated,
        "records_by_kind": figures.kinds,
        "distinct_alerts": figures.distinct_alerts,
        "rows": _json_ready(figures.rows),
        "weekly_actual_alerts": [{"recipient": w.recipient, "weeks": dict(w.weeks)} for w in figures.weekly],
        "drills": _json_ready(figures.drills),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
