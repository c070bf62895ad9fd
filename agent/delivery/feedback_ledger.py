"""What the feedback side remembers: alerts sent per recipient, statuses seen, escalations, on disk.

The tables live in the outbox's own SQLite file (WAL), beside the outbox's
ledger of how each message left (`settled`). An alert counts as published at
its broker PUBACK (`feedback_published`, noted as the publisher hears it);
where that is not known (it came before this table did), at the moment its
outbox row was settled as delivered.

- `feedback_sent`: one row per message the audit log recorded (message id,
  alert, recipient, incident, severity, when it was queued, and the
  recipient it was escalated from, if it was). A status is accepted only for
  an alert listed here for the recipient that sends it.
- `feedback_published`: the PUBACK time of each message.
- `feedback_statuses`: every accepted status by `status_id`, so a status
  sent twice (QoS 1 redelivery, a retry after a restart) counts once.
- `feedback_alerts`: the alert as built (before any recipient's view) of
  incidents that may escalate, so an escalation can render the next
  recipient's own view even after a restart.
- `feedback_escalations`: per (incident, recipient) `pending`, `cancelled`
  (acknowledged in time) or `fired`.

Rows older than `KEEP_S` are pruned. Written by the feedback thread only;
`agent.delivery.feedback_history` fills it from the audit log at start.
"""

from __future__ import annotations

__all__ = [
    "ACKNOWLEDGING",
    "KEEP_S",
    "Escalation",
    "FeedbackLedger",
    "SentMessage",
]

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

from agent.alerts.status import AlertStatus
from agent.delivery.outbox_tables import OutboxTables

# Statuses that say a person at the recipient has seen the alert (`received` is sent by software).
ACKNOWLEDGING = frozenset({"acknowledged", "verified", "dismissed", "dispatched", "on_scene", "closed"})
KEEP_S = 7 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_sent (
    message_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    queued_utc TEXT NOT NULL,
    escalated_from TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_sent_alert ON feedback_sent (alert_id, recipient);
CREATE INDEX IF NOT EXISTS feedback_sent_incident ON feedback_sent (incident_id, recipient);
CREATE INDEX IF NOT EXISTS feedback_sent_age ON feedback_sent (queued_utc);
CREATE TABLE IF NOT EXISTS feedback_published (message_id TEXT PRIMARY KEY, acked_utc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_published_age ON feedback_published (acked_utc);
CREATE TABLE IF NOT EXISTS feedback_statuses (
    status_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    status TEXT NOT NULL,
    received_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_statuses_alert ON feedback_statuses (alert_id, recipient);
CREATE INDEX IF NOT EXISTS feedback_statuses_incident ON feedback_statuses (incident_id, recipient);
CREATE INDEX IF NOT EXISTS feedback_statuses_age ON feedback_statuses (received_utc);
CREATE TABLE IF NOT EXISTS feedback_alerts (
    alert_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    queued_utc TEXT NOT NULL,
    alert_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_alerts_incident ON feedback_alerts (incident_id, queued_utc);
CREATE TABLE IF NOT EXISTS feedback_escalations (
    incident_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    target TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    after_s REAL NOT NULL,
    state TEXT NOT NULL,
    armed_utc TEXT NOT NULL,
    PRIMARY KEY (incident_id, recipient)
);
"""


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the audit log recorded as sent to one recipient."""

    message_id: str
    alert_id: str
    recipient: str
    incident_id: str
    severity_rank: int
    queued_utc: datetime
    escalated_from: str = ""


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where one incident stands between a recipient and the one it escalates to.

    Attributes:
        alert_id: the first alert of the incident that armed it (the clock starts at its PUBACK).
        state: `pending`, `cancelled` (acknowledged in time) or `fired`.
    """

    incident_id: str
    recipient: str
    target: str
    alert_id: str
    after_s: float
    state: str
    armed_utc: datetime


def _utc(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class FeedbackLedger(OutboxTables):
    """The feedback tables of one outbox file (see the module docstring). Use as a context manager.

    Args:
        path: the outbox file (opened, and checked, by the outbox first).
    """

    _SCHEMA = _SCHEMA
    _SYNCHRONOUS = "NORMAL"  # WAL: a power cut may lose the last rows, never corrupt
    _WHAT = "feedback tables"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._has_settled = False

    def _opened(self, db: sqlite3.Connection) -> None:
        self._has_settled = _has_table(db, "settled")

    def __enter__(self) -> Self:
        super().__enter__()
        self.prune(datetime.now(UTC))
        return self

    # -- sent alerts ----------------------------------------------------------------------

    def add_sent(self, sent: SentMessage) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT OR IGNORE INTO feedback_sent VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sent.message_id,
                    sent.alert_id,
                    sent.recipient,
                    sent.incident_id,
                    sent.severity_rank,
                    sent.queued_utc.isoformat(),
                    sent.escalated_from,
                ),
            )

    def newest_sent_utc(self) -> datetime | None:
        """When the newest sent message it knows was queued."""
        with self._lock:
            row = self._conn().execute("SELECT MAX(queued_utc) FROM feedback_sent").fetchone()
        return _utc(row[0]) if row else None

    def sent_to(self, alert_id: str, recipient: str) -> SentMessage | None:
        """The message that carried `alert_id` to `recipient` (the first, if several), or None."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT * FROM feedback_sent WHERE alert_id=? AND recipient=? ORDER BY queued_utc LIMIT 1",
                    (alert_id, recipient),
                )
                .fetchone()
            )
        if row is None:
            return None
        return SentMessage(row[0], row[1], row[2], row[3], int(row[4]), datetime.fromisoformat(row[5]), row[6])

    def add_published(self, message_id: str, acked_utc: datetime) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT OR IGNORE INTO feedback_published VALUES (?, ?)", (message_id, acked_utc.isoformat())
            )

    def published_at(self, message_id: str) -> datetime | None:
        """The message's PUBACK time, else when the outbox settled it as delivered (None: not yet, or never)."""
        with self._lock:
            db = self._conn()
            row = db.execute("SELECT acked_utc FROM feedback_published WHERE message_id=?", (message_id,)).fetchone()
            if row is None and self._has_settled:
                row = db.execute(
                    "SELECT settled_utc FROM settled WHERE message_id=? AND state='delivered'", (message_id,)
                ).fetchone()
        return _utc(row[0]) if row else None

    # -- statuses -------------------------------------------------------------------------

    def add_status(self, status: AlertStatus, received_utc: datetime) -> bool:
        """Remember an accepted status; False when its `status_id` was seen before (a duplicate)."""
        with self._lock:
            cursor = self._conn().execute(
                "INSERT OR IGNORE INTO feedback_statuses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    status.status_id,
                    status.alert_id,
                    status.recipient,
                    status.incident_id,
                    status.status,
                    received_utc.isoformat(),
                ),
            )
        return cursor.rowcount == 1

    def has_status(self, status_id: str) -> bool:
        with self._lock:
            db = self._conn()
            return db.execute("SELECT 1 FROM feedback_statuses WHERE status_id=?", (status_id,)).fetchone() is not None

    def status_kinds(self, alert_id: str, recipient: str) -> set[str]:
        """The kinds of status `recipient` sent about `alert_id` so far."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT status FROM feedback_statuses WHERE alert_id=? AND recipient=?", (alert_id, recipient))
                .fetchall()
            )
        return {str(r[0]) for r in rows}

    def acknowledged(self, incident_id: str, recipient: str) -> bool:
        """Whether `recipient` acknowledged (or went further with) any alert of the incident."""
        marks = ",".join("?" * len(ACKNOWLEDGING))
        with self._lock:
            row = (
                self._conn()
                .execute(
                    f"SELECT 1 FROM feedback_statuses WHERE incident_id=? AND recipient=? AND status IN ({marks})",
                    (incident_id, recipient, *sorted(ACKNOWLEDGING)),
                )
                .fetchone()
            )
        return row is not None

    # -- escalations ----------------------------------------------------------------------

    def keep_alert(self, alert_id: str, incident_id: str, queued_utc: datetime, alert_json: str) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT OR IGNORE INTO feedback_alerts VALUES (?, ?, ?, ?)",
                (alert_id, incident_id, queued_utc.isoformat(), alert_json),
            )

    def alerts_sent(self, incident_id: str, recipient: str, since_alert_id: str) -> list[tuple[str, str]]:
        """(alert id, alert JSON) of the kept alerts of the incident sent to `recipient`, from `since_alert_id` on."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT a.alert_id, a.alert_json FROM feedback_alerts a"
                    " JOIN feedback_sent s ON s.alert_id = a.alert_id AND s.recipient = ?"
                    " WHERE a.incident_id = ? AND a.queued_utc >="
                    " (SELECT queued_utc FROM feedback_alerts WHERE alert_id = ?)"
                    " GROUP BY a.alert_id ORDER BY a.queued_utc, a.alert_id",
                    (recipient, incident_id, since_alert_id),
                )
                .fetchall()
            )
        return [(str(r[0]), str(r[1])) for r in rows]

    def escalation(self, incident_id: str, recipient: str) -> Escalation | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT * FROM feedback_escalations WHERE incident_id=? AND recipient=?", (incident_id, recipient)
                )
                .fetchone()
            )
        return _escalation(row) if row else None

    def put_escalation(self, esc: Escalation) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT OR REPLACE INTO feedback_escalations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    esc.incident_id,
                    esc.recipient,
                    esc.target,
                    esc.alert_id,
                    esc.after_s,
                    esc.state,
                    esc.armed_utc.isoformat(),
                ),
            )

    def pending_escalations(self) -> list[Escalation]:
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT * FROM feedback_escalations WHERE state='pending' ORDER BY armed_utc")
                .fetchall()
            )
        return [_escalation(r) for r in rows]

    # -- housekeeping ---------------------------------------------------------------------

    def prune(self, now: datetime) -> None:
        """Forget what is older than `KEEP_S` (a pending escalation that old is forgotten with it)."""
        cut = (now - timedelta(seconds=KEEP_S)).isoformat()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM feedback_sent WHERE queued_utc < ?", (cut,))
            db.execute("DELETE FROM feedback_published WHERE acked_utc < ?", (cut,))
            db.execute("DELETE FROM feedback_statuses WHERE received_utc < ?", (cut,))
            db.execute("DELETE FROM feedback_alerts WHERE queued_utc < ?", (cut,))
            db.execute("DELETE FROM feedback_escalations WHERE armed_utc < ?", (cut,))
            db.execute("COMMIT")


def _escalation(row: tuple[str, str, str, str, float, str, str]) -> Escalation:
    return Escalation(row[0], row[1], row[2], row[3], float(row[4]), row[5], datetime.fromisoformat(row[6]))


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None
