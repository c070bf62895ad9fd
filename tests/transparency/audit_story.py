"""A fortnight of a site's audit log, written through the real `AuditLog`, with every record kind in it.

Period under test: 2026-03-02 to 2026-03-15 (ISO weeks 10 and 11), with
records on the day before and the day after, and one a millisecond before
the period ends. Two agreements with the police (one expired), a security
firm that receives pictures, a recipient whose name is a spreadsheet
formula, a drill (Exercise messages), a Test message, an older record
without the agreement fields, holds and releases, three break-glass
requests (granted automatically, refused, approved then revoked), statuses
and the two existing event kinds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.delivery.routing import OutgoingAlert
from agent.privacy.audit import AuditLog

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 15)
WEEK10 = datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
WEEK11 = datetime(2026, 3, 10, 21, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
FORMULA_RECIPIENT = "=SUM(A1:A9)"
FORMULA_AGREEMENT = "@agreement"
DIGEST = "sha256:" + hashlib.sha256(b"pd-2026 terms").hexdigest()


class Story:
    """Writes the records of the story, each at the time it is given."""

    def __init__(self, path: Path) -> None:
        self.log = AuditLog(path)
        self._n = 0

    def sent(self, ts: datetime, recipient: str, alert_id: str, **fields: Any) -> None:
        """A sent message with every new field (override any with `fields`; None drops one)."""
        self._n += 1
        snapshot = fields.pop("snapshot", "none")
        outgoing = OutgoingAlert(
            message_id=f"m-{self._n}",
            recipient=recipient,
            topic=f"edge/site-1/cam-1/alerts/yard/{recipient}",
            payload=f"payload {self._n}".encode(),
            alert_id=alert_id,
            severity_rank=1,
            policy_version="p-7",
            snapshot=snapshot,
            personal_data=snapshot == "unredacted",
        )
        extra: dict[str, Any] = {
            "incident_id": f"inc-{alert_id}",
            "rule": "yard-intrusion",
            "phase": "start",
            "severity": "Moderate",
            "agreement": "pd-2026",
            "agreement_digest": DIGEST,
            "cap_status": "Actual",
            "validation_level": 2,
            "location": "zone_only",
            "shared_fields": ["info.event", "info.headline", "info.area.zone"],
            "release": "immediate",
            **fields,
        }
        self.log.record(outgoing, ts=ts, **{k: v for k, v in extra.items() if v is not None})

    def old_sent(self, ts: datetime, recipient: str, alert_id: str) -> None:
        """A sent message as logs written before agreements recorded it."""
        self._n += 1
        outgoing = OutgoingAlert(
            message_id=f"m-{self._n}",
            recipient=recipient,
            topic="edge/t",
            payload=b"old",
            alert_id=alert_id,
            severity_rank=1,
            policy_version="p-1",
        )
        self.log.record(outgoing, ts=ts)

    def event(self, ts: datetime, kind: str, **fields: Any) -> None:
        self.log.record_event(kind, ts=ts, **fields)

    def withheld(self, ts: datetime, recipient: str, agreement: str, alert_id: str, reason: str) -> None:
        incident = {"incident_id": f"inc-{alert_id}", "rule": "yard-intrusion", "severity": "Minor"}
        fields = {"recipient": recipient, "agreement": agreement, "alert_id": alert_id, **incident}
        self.event(ts, "withheld", reason=reason, detail=f"{reason} ({agreement})", **fields)

    def held(self, ts: datetime, recipient: str, alert_id: str, auto_release_after_s: int) -> None:
        fields = {
            "recipient": recipient,
            "agreement": "pd-2026",
            "alert_id": alert_id,
            "incident_id": f"inc-{alert_id}",
        }
        self.event(ts, "held", severity="Severe", verifier="firm", auto_release_after_s=auto_release_after_s, **fields)

    def released(self, ts: datetime, recipient: str, alert_id: str, by: str, **fields: Any) -> None:
        ids = {"recipient": recipient, "agreement": "pd-2026", "alert_id": alert_id, "incident_id": f"inc-{alert_id}"}
        self.event(ts, "released", by=by, **ids, **fields)

    def status(self, ts: datetime, recipient: str, alert_id: str, status: str, since_s: float) -> None:
        self.event(
            ts,
            "status",
            recipient=recipient,
            topic=f"edge/site-1/feedback/{recipient}",
            alert_id=alert_id,
            incident_id=f"inc-{alert_id}",
            status_id=f"st-{alert_id}-{status}",
            status=status,
            status_sent=ts.isoformat(),
            operator="desk-3",
            kid="k-1",
            payload_sha256="0" * 64,
            payload_bytes=100,
            since_published_s=since_s,
        )


def minutes(start: datetime, n: int) -> datetime:
    return start + timedelta(minutes=n)


def write_story(path: Path) -> Path:
    """Write the whole fortnight to `path`; returns it."""
    s = Story(path)
    s.sent(datetime(2026, 3, 1, 23, 59, tzinfo=UTC), "police", "a-0")  # the day before the period
    _week10(s)
    _drill(s)
    _week11(s)
    s.sent(datetime(2026, 3, 16, 0, 0, tzinfo=UTC), "police", "a-9")  # the day after
    s.status(datetime(2026, 3, 16, 0, 1, tzinfo=UTC), "police", "a-8", "acknowledged", 3600.0)
    return path


def _week10(s: Story) -> None:
    t = WEEK10
    s.sent(minutes(t, 0), "police", "a-1")
    s.sent(minutes(t, 1), "police", "a-1", phase="update")  # same alert again: one alert, two messages
    s.sent(minutes(t, 1), "firm", "a-1", agreement="firm-1", agreement_digest=None, snapshot="unredacted")
    s.status(minutes(t, 2), "police", "a-1", "received", 2.0)
    s.status(minutes(t, 2), "firm", "a-1", "received", 1.5)
    s.status(minutes(t, 3), "police", "a-1", "acknowledged", 30.0)
    s.status(minutes(t, 4), "police", "a-1", "acknowledged", 99.0)  # not the first answer: ignored
    s.held(minutes(t, 5), "police", "a-2", 300)
    s.sent(minutes(t, 5), "firm", "a-2", agreement="firm-1", snapshot="unredacted", cap_status="Actual")
    s.status(minutes(t, 6), "firm", "a-2", "verified", 40.0)
    s.released(minutes(t, 6), "police", "a-2", "verified", validation_level=3, status_id="st-a-2-verified")
    s.sent(
        minutes(t, 6),
        "police",
        "a-2",
        snapshot="faces-filled",
        location="circle:3",
        release="verified",
        validation_level=3,
        shared_fields=["detection.count", "info.event", "info.headline"],
    )
    s.status(minutes(t, 7), "police", "a-2", "received", 3.0)
    s.status(minutes(t, 8), "police", "a-2", "verified", 60.0)
    s.status(minutes(t, 9), "police", "a-2", "dispatched", 90.0)
    s.withheld(minutes(t, 10), "police", "pd-2025", "a-3", "agreement_expired")
    s.withheld(minutes(t, 11), "police", "pd-2026", "a-4", "dismissed")
    s.withheld(minutes(t, 12), "firm", "firm-1", "a-4", "dismissed")
    s.withheld(minutes(t, 12), "firm", "firm-2027", "a-4", "agreement_not_yet_valid")
    s.held(minutes(t, 13), "police", "a-5", 120)
    s.released(minutes(t, 15), "police", "a-5", "auto_release", validation_level=2)
    s.sent(minutes(t, 15), "police", "a-5", release="auto_release")
    _break_glass(s, minutes(t, 20))
    s.event(
        minutes(t, 40),
        "status_rejected",
        recipient="police",
        topic_level="status",
        reason="bad_signature",
        kid="k-9",
        payload_sha256="1" * 64,
        detail="signature does not verify",
    )
    s.event(
        minutes(t, 41),
        "escalation",
        recipient="police",
        target="firm",
        incident_id="inc-a-1",
        alert_ids=["a-1"],
        messages=["m-1"],
        waited_s=300.0,
        outcome="sent",
    )
    s.sent(minutes(t, 41), "firm", "a-1", agreement="firm-1", escalated_from="police")


def _break_glass(s: Story, t: datetime) -> None:
    common = {"recipient": "police", "agreement": "pd-2026", "incident_id": "inc-a-6"}
    widen = ["snapshots", "exact_location"]
    s.event(
        t,
        "break_glass_request",
        request_id="bg-1",
        widen=widen,
        duration_s=1800,
        justification=SCRIPT,
        operator="j.doe",
        **common,
    )
    s.event(
        minutes(t, 1),
        "break_glass_granted",
        request_id="bg-1",
        widen=widen,
        until=minutes(t, 31).isoformat(),
        granted_by="automatic",
        **common,
    )
    s.sent(
        minutes(t, 2),
        "police",
        "a-6",
        snapshot="faces-filled",
        location="circle:5",
        break_glass="bg-1",
        shared_fields=["detection.count", "info.area.circle", "info.event", "snapshot.jpeg"],
    )
    s.event(
        minutes(t, 31),
        "break_glass_ended",
        request_id="bg-1",
        recipient="police",
        incident_id="inc-a-6",
        ended="expired",
        duration_s=1800.0,
    )
    s.event(
        minutes(t, 32),
        "break_glass_request",
        request_id="bg-2",
        widen=["snapshots"],
        duration_s=600,
        justification='=HYPERLINK("http://x")',
        operator="j.doe",
        **common,
    )
    s.event(minutes(t, 33), "break_glass_refused", request_id="bg-2", reason="agreement forbids snapshots", **common)
    s.event(
        minutes(t, 34),
        "break_glass_request",
        request_id="bg-3",
        widen=["exact_location"],
        duration_s=3600,
        justification="suspect fled north",
        operator="a.roe",
        **common,
    )
    s.event(
        minutes(t, 36),
        "break_glass_granted",
        request_id="bg-3",
        widen=["exact_location"],
        until=minutes(t, 96).isoformat(),
        granted_by="approved",
        **common,
    )
    s.event(
        minutes(t, 46),
        "break_glass_ended",
        request_id="bg-3",
        recipient="police",
        incident_id="inc-a-6",
        ended="revoked",
        duration_s=600.0,
    )


def _drill(s: Story) -> None:
    t = WEEK10 + timedelta(days=1)
    drill = {"drill_id": "d-1", "scenario": "yard-intrusion", "recipients": ["police", "firm"], "camera": "cam-1"}
    s.event(t, "drill_started", **drill)
    s.sent(minutes(t, 1), "police", "e-1", cap_status="Exercise", drill="d-1")
    s.sent(minutes(t, 1), "firm", "e-1", cap_status="Exercise", drill="d-1", agreement="firm-1", snapshot="unredacted")
    s.status(minutes(t, 2), "police", "e-1", "received", 5.0)
    s.status(minutes(t, 3), "police", "e-1", "acknowledged", 20.0)
    s.event(minutes(t, 4), "drill_finished", alerts=1, messages=2, **drill)
    s.sent(minutes(t, 10), "police", "t-1", cap_status="Test")


def _week11(s: Story) -> None:
    t = WEEK11
    s.sent(minutes(t, 0), "police", "a-8")
    s.sent(minutes(t, 0), FORMULA_RECIPIENT, "a-8", agreement=FORMULA_AGREEMENT, shared_fields=["-x.y"])
    s.status(minutes(t, 1), "police", "a-8", "received", 4.0)
    s.old_sent(minutes(t, 2), "police", "a-old")
    s.sent(datetime(2026, 3, 15, 23, 59, 59, 999000, tzinfo=UTC), "police", "a-10")  # last millisecond
