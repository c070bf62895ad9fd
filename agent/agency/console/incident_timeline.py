"""One incident as the incident page shows it: the site's alerts and the statuses sent back, in one timeline.

Alerts come from the store's columns plus the few detection numbers kept
only in the signed payload (dwell, sequence); statuses are those this
recipient sent (`StatusRow`), published or not. The snapshot is the newest
one an alert carried (already redacted at the site, shown as a `data:` URL);
its base64 is checked before it goes into the page.
"""

from __future__ import annotations

__all__ = ["Snapshot", "TimelineEntry", "key_ids", "latest_snapshot", "pretty_payload", "timeline"]

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.agency.store import AlertRow, StatusRow

# A JPEG inside an alert is bounded by the envelope's size already; this is a second, local bound.
MAX_SNAPSHOT_BASE64 = 4 * 1024 * 1024
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline: an alert from the site, or a status sent to it."""

    at: float
    kind: Literal["alert", "status"]
    alert: AlertRow | None = None
    status: StatusRow | None = None
    dwell_s: float | None = None
    sequence: int | None = None
    agreement_digest: str | None = None
    validation_level: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A picture an alert carried (JPEG, base64)."""

    alert_id: str
    data_base64: str
    width_px: int | None
    height_px: int | None
    redaction: str | None


def _payload(row: AlertRow) -> dict[str, Any]:
    try:
        return row.payload()
    except ValueError:
        return {}


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _alert_entry(row: AlertRow) -> TimelineEntry:
    data = _payload(row)
    detection = _section(data, "detection")
    digest = data.get("agreement_digest")
    return TimelineEntry(
        row.sent,
        "alert",
        alert=row,
        dwell_s=_number(detection.get("dwell_s")),
        sequence=_int(detection.get("sequence")),
        agreement_digest=digest if isinstance(digest, str) else None,
        validation_level=_int(data.get("validation_level")),
    )


def timeline(alerts: Sequence[AlertRow], statuses: Sequence[StatusRow]) -> list[TimelineEntry]:
    """Alerts and statuses oldest first; at the same instant the alert comes before the answer to it."""
    entries = [_alert_entry(a) for a in alerts] + [TimelineEntry(s.sent, "status", status=s) for s in statuses]
    return sorted(entries, key=lambda e: (e.at, e.kind != "alert"))


def latest_snapshot(alerts: Sequence[AlertRow]) -> Snapshot | None:
    """The newest usable snapshot among the alerts, or None."""
    for row in reversed(alerts):
        if not row.has_snapshot:
            continue
        shot = _section(_payload(row), "snapshot")
        data = shot.get("data_base64")
        if shot.get("content_type", "image/jpeg") != "image/jpeg" or not isinstance(data, str):
            continue
        data = "".join(data.split())
        if not data or len(data) > MAX_SNAPSHOT_BASE64 or not _BASE64.match(data):
            continue
        redaction = shot.get("redaction")
        return Snapshot(
            row.alert_id,
            data,
            _int(shot.get("width_px")),
            _int(shot.get("height_px")),
            redaction if isinstance(redaction, str) else None,
        )
    return None


def key_ids(alerts: Sequence[AlertRow]) -> list[str]:
    """The distinct ids of the keys that signed the alerts, in the order first used."""
    return list(dict.fromkeys(a.kid for a in alerts))


def pretty_payload(row: AlertRow) -> str:
    """The signed payload as indented JSON (for the page's details block), the snapshot left out."""
    data = dict(_payload(row))
    if isinstance(data.get("snapshot"), dict) and "data_base64" in data["snapshot"]:
        data["snapshot"] = {**data["snapshot"], "data_base64": "…"}
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
