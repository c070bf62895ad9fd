"""What the site's own files already say about what left: the audit log's sent messages, the outbox's ledger.

At start the feedback intake fills its table of sent messages from the audit
log (`sent_from_audit`: every sent-message record since the newest one it
knows, or of the last `KEEP_S`), so a status about an alert sent before the
table existed, or while the feedback thread could not write it, is still
recognised. `message_states` reads, read-only, how each message stands in an
outbox file (for `edge-agent incidents`).
"""

from __future__ import annotations

__all__ = ["message_states", "sent_from_audit"]

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from agent.config import SEVERITY_ORDER
from agent.delivery.feedback_ledger import SentMessage
from agent.privacy.audit import read_records


def sent_from_audit(path: Path, since: datetime) -> Iterator[SentMessage]:
    """The sent-message records of the audit log queued at or after `since`."""
    if not Path(path).is_file():
        return
    for rec in read_records(Path(path)):
        d, ts = rec.data, rec.ts
        if d.get("kind") is not None or ts is None or ts < since or not isinstance(d.get("message_id"), str):
            continue
        yield SentMessage(
            str(d["message_id"]),
            str(d.get("alert_id", "")),
            str(d.get("recipient", "")),
            str(d.get("incident_id", "")),
            SEVERITY_ORDER.get(str(d.get("severity")), 0),
            ts,
            str(d.get("escalated_from", "")),
        )


def message_states(path: Path, message_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """How each message stands in an outbox file, read-only: `waiting`, or how it left and when.

    Returns (state, UTC time) per message id the outbox knows: `waiting` (with when it was
    queued), `delivered`, `dropped`, `expired` or `rejected` (with when it left).
    """
    ids = list(dict.fromkeys(message_ids))
    out: dict[str, tuple[str, str]] = {}
    if not ids or not Path(path).is_file():
        return out
    try:
        db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return out
    try:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            if _has_table(db, "settled"):
                for mid, state, when in db.execute(
                    f"SELECT message_id, state, settled_utc FROM settled WHERE message_id IN ({marks})", chunk
                ):
                    out[str(mid)] = (str(state), str(when))
            if _has_table(db, "messages"):
                for mid, when in db.execute(
                    f"SELECT message_id, created_utc FROM messages WHERE message_id IN ({marks})", chunk
                ):
                    out[str(mid)] = ("waiting", str(when))
    except sqlite3.Error:
        return out
    finally:
        db.close()
    return out


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None
