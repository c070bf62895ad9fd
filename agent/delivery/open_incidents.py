"""The incidents still open, kept on disk, so that a start after `kill -9` or a power cut can end them.

A stopping agent ends its open incidents itself; a killed one cannot, and
recipients would wait for an `end` forever. So the delivery sink records,
beside each alert it handed to the outbox, where the incident stands: a
start or update that the outbox accepted replaces the incident's row (the
alert as built, before any recipient's view), an end removes it. The rows
live in the outbox's own SQLite file (table `open_incidents`, WAL, durable
commits), written on the delivery thread only.

At the next start, before any camera runs, `ended_at_start` turns each row
left over into the incident's `end`: the same incident id, the next sequence
number, `sent` now, CAP `AllClear`, and a headline that says why
(`END_REASON`). The service submits those ends to the sink like any other
alert, so they are routed, redacted, signed, stored and audited, and their
rows are removed as they are accepted; one that cannot be stored stays for
the start after.
"""

from __future__ import annotations

__all__ = ["END_REASON", "OpenIncidents", "end_incidents_left_open", "ended_at_start"]

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.alerts.times import cap_time
from agent.delivery.outbox_tables import OutboxTables
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.open_incidents")

_WHY = "the agent stopped while the incident was open"
END_REASON = f"ended at agent start: {_WHY}"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS open_incidents (
    incident_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    alert_json TEXT NOT NULL,
    updated_utc TEXT NOT NULL
)
"""


class OpenIncidents(OutboxTables):
    """The `open_incidents` table of one outbox file. Use as a context manager.

    Args:
        path: the outbox file (opened, and checked, by the outbox first).
    """

    _SCHEMA = _SCHEMA
    _WHAT = "open-incident table"

    def record(self, alert: Alert) -> None:
        """Note where `alert`'s incident stands now that the outbox accepted it: open, or ended.

        Raises:
            sqlite3.Error: the row could not be written (the disk full); the caller reports it.
        """
        detection = alert.detection
        with self._lock:
            db = self._conn()
            if detection.phase == "end":
                db.execute("DELETE FROM open_incidents WHERE incident_id=?", (detection.incident_id,))
                return
            db.execute(
                "INSERT OR REPLACE INTO open_incidents (incident_id, camera_id, alert_json, updated_utc)"
                " VALUES (?, ?, ?, ?)",
                (detection.incident_id, detection.camera_id, alert.model_dump_json(), alert.sent.isoformat()),
            )

    def left_open(self) -> list[Alert]:
        """The last accepted alert of every incident still open, oldest first.

        A row that no longer reads as an alert (written by another version of the schema)
        is logged and removed: there is nothing left to end it with.
        """
        with self._lock:
            db = self._conn()
            rows = db.execute("SELECT incident_id, alert_json FROM open_incidents ORDER BY updated_utc").fetchall()
            alerts: list[Alert] = []
            for incident_id, text in rows:
                try:
                    alerts.append(Alert.model_validate_json(text))
                except ValidationError as err:
                    log_event(
                        _log, "open_incident_unreadable", logging.ERROR, incident=incident_id, error=str(err)[:200]
                    )
                    db.execute("DELETE FROM open_incidents WHERE incident_id=?", (incident_id,))
            return alerts


def ended_at_start(last: Alert, *, sent: datetime, ids: Uuid7Factory) -> Alert:
    """The `end` of the incident whose last accepted message was `last`, made at start (see the module docstring).

    Args:
        last: the incident's last start or update.
        sent: now (timezone-aware UTC).
        ids: source of the new message's UUIDv7.
    """
    where = last.detection.zone or last.detection.line
    headline = f"{last.info.event} ended: {where} ({END_REASON})" if where else f"{last.info.event} {END_REASON}"
    info = last.info.model_copy(update={"responseType": "AllClear", "urgency": "Expected", "headline": headline})
    detection = last.detection.model_copy(update={"phase": "end", "sequence": last.detection.sequence + 1})
    # Every message after the first refers to the incident's first one; a start is that first one.
    first = last.references or [f"{last.sender},{last.identifier},{cap_time(last.sent)}"]
    return last.model_copy(
        update={
            "identifier": ids.new(sent),
            "sent": sent,
            "msgType": "Update",
            "references": list(first),
            "info": info,
            "detection": detection,
        }
    )


def end_incidents_left_open(incidents: OpenIncidents, submit: Callable[[tuple[Alert, ...]], None]) -> int:
    """Hand the `end` of every incident the last run left open to `submit` (the delivery sink); return how many."""
    now = datetime.now(UTC)
    ids = Uuid7Factory()
    ends = tuple(ended_at_start(last, sent=now, ids=ids) for last in incidents.left_open())
    for end in ends:
        log_event(
            _log,
            "incident_ended_at_start",
            logging.WARNING,
            camera=end.detection.camera_id,
            rule=end.detection.rule,
            incident=end.detection.incident_id,
            reason=_WHY,
        )
    if ends:
        submit(ends)
    return len(ends)
