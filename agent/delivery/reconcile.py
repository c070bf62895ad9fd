"""At start, the outbox checked against the audit log: alerts the log says were queued but that are gone.

The audit log is appended and fsynced after the outbox accepted a message,
so every message it lists was committed to the outbox once. The outbox's
ledger says how each message left (delivered, dropped, expired, rejected).
A message the log lists that is neither waiting nor in the ledger was lost
by the outbox itself: a torn write-ahead log after a power cut, a file
restored from an old copy. Nothing can bring it back, but it is reported,
one line per alert, so the loss is known rather than silent.
"""

from __future__ import annotations

__all__ = ["LostMessage", "find_lost_messages", "report_lost_messages"]

import logging
from dataclasses import dataclass
from pathlib import Path

from agent.delivery.outbox import Outbox
from agent.logs import log_event
from agent.privacy.audit import read_records

_log = logging.getLogger("agent.delivery.reconcile")
_REPORT_EACH = 50  # one line per lost alert up to this many, then a count


@dataclass(frozen=True, slots=True)
class LostMessage:
    """A message the audit log lists as queued that the outbox cannot account for."""

    audit_line: int
    message_id: str
    alert_id: str
    recipient: str
    queued_utc: str


def find_lost_messages(outbox: Outbox, audit_log: Path) -> list[LostMessage]:
    """Audit records since the outbox's ledger starts whose message the outbox does not know.

    Records from before the ledger starts (an outbox created or pruned later) are not
    judged: the outbox cannot say what happened to them.
    """
    if not Path(audit_log).is_file():
        return []
    start = outbox.ledger_start()
    queued = [
        r
        for r in read_records(Path(audit_log))
        if isinstance(r.data.get("message_id"), str) and r.ts is not None and r.ts >= start
    ]
    known = outbox.accounted_for(str(r.data["message_id"]) for r in queued)
    return [
        LostMessage(
            audit_line=r.line,
            message_id=str(r.data["message_id"]),
            alert_id=str(r.data.get("alert_id", "")),
            recipient=str(r.data.get("recipient", "")),
            queued_utc=str(r.data.get("ts", "")),
        )
        for r in queued
        if r.data["message_id"] not in known
    ]


def report_lost_messages(outbox: Outbox, audit_log: Path) -> list[LostMessage]:
    """Log every lost message (error level) and return them; nothing is logged when none is lost."""
    lost = find_lost_messages(outbox, audit_log)
    for item in lost[:_REPORT_EACH]:
        log_event(
            _log,
            "outbox_message_lost",
            logging.ERROR,
            alert_id=item.alert_id,
            recipient=item.recipient,
            message_id=item.message_id,
            queued=item.queued_utc,
            audit_line=item.audit_line,
        )
    if lost:
        log_event(
            _log,
            "outbox_reconciled",
            logging.ERROR,
            lost=len(lost),
            audit_log=audit_log,
            detail="queued according to the audit log, but neither waiting nor sent, dropped or rejected",
        )
    return lost
