"""Copies held for verification, copies withheld, and verifiers' verdicts: tables in the outbox file.

An agreement with `release: after_verification` holds each copy for its
recipients until the agreement's verifier has said what the cameras show.
The held copy (the alert as built, before any recipient's view, and the
picture its recipient may get) is kept in `held_copies`, so a restart loses
none; the verdict on an incident (`verified` with its level, or
`dismissed`) is kept in `incident_verdicts`, so the incident's later alerts
follow it without waiting again. The first verdict on an incident under an
agreement is the one that counts. Copies an agreement withheld (not in
force, or dismissed) are kept in `withheld_copies` for the owner to look at;
all three are pruned after `KEEP_S`.

The delivery thread writes holds and withheld copies; the feedback thread
(`agent.delivery.releaser.Releaser`) records verdicts and takes copies out.
"""

from __future__ import annotations

__all__ = ["KEEP_S", "ReleaseGate", "StoredHold"]

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.alerts.schema import Alert
from agent.delivery.outbox_tables import OutboxTables
from agent.delivery.sharing_terms import HeldCopy, Verdict, Withheld
from agent.privacy.snapshots import Snapshot

KEEP_S = 30 * 86_400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS held_copies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    agreement TEXT NOT NULL,
    verifier TEXT NOT NULL,
    alert_json TEXT NOT NULL,
    snapshot_redaction TEXT,
    snapshot_jpeg BLOB,
    snapshot_meta TEXT,
    held_utc TEXT NOT NULL,
    release_after_utc TEXT,
    UNIQUE (alert_id, recipient)
);
CREATE INDEX IF NOT EXISTS held_by_incident ON held_copies (incident_id, agreement);
CREATE INDEX IF NOT EXISTS held_by_release ON held_copies (release_after_utc);
CREATE TABLE IF NOT EXISTS incident_verdicts (
    incident_id TEXT NOT NULL,
    agreement TEXT NOT NULL,
    verdict TEXT NOT NULL,
    level INTEGER NOT NULL,
    status_id TEXT NOT NULL,
    verifier TEXT NOT NULL,
    decided_utc TEXT NOT NULL,
    PRIMARY KEY (incident_id, agreement)
);
CREATE TABLE IF NOT EXISTS withheld_copies (
    alert_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    agreement TEXT NOT NULL,
    reason TEXT NOT NULL,
    alert_json TEXT NOT NULL,
    withheld_utc TEXT NOT NULL,
    PRIMARY KEY (alert_id, recipient)
);
"""


@dataclass(frozen=True, slots=True)
class StoredHold:
    """A held copy and its row, for `remove` once it has been released or withheld."""

    row_id: int
    copy: HeldCopy


class ReleaseGate(OutboxTables):
    """The hold tables of one outbox file. Use as a context manager (after the outbox).

    Args:
        path: the outbox file.
    """

    _SCHEMA = _SCHEMA
    _WHAT = "hold tables"

    # -- the delivery thread ----------------------------------------------------------------

    def verdict(self, incident_id: str, agreement_id: str) -> Verdict | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT verdict, level, status_id, verifier FROM incident_verdicts"
                    " WHERE incident_id=? AND agreement=?",
                    (incident_id, agreement_id),
                )
                .fetchone()
            )
        return Verdict(row[0], int(row[1]), row[2], row[3]) if row is not None else None

    def hold(self, copy: HeldCopy, now: datetime | None = None) -> None:
        """Keep `copy` until its verdict (a copy already held stays as it is)."""
        held = now or datetime.now(UTC)
        after = copy.auto_release_after_s
        release_after = (held + timedelta(seconds=after)).isoformat() if after is not None else None
        snap = copy.snapshot
        meta = None if snap is None else f"{snap.width_px},{snap.height_px},{snap.faces_filled},{snap.persons_filled}"
        alert = copy.alert
        with self._lock:
            self._conn().execute(
                "INSERT OR IGNORE INTO held_copies (alert_id, incident_id, recipient, agreement, verifier, alert_json,"
                " snapshot_redaction, snapshot_jpeg, snapshot_meta, held_utc, release_after_utc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.identifier,
                    alert.detection.incident_id,
                    copy.recipient,
                    copy.agreement,
                    copy.verifier,
                    alert.model_dump_json(),
                    None if snap is None else snap.redaction,
                    None if snap is None else snap.jpeg,
                    meta if snap is None or not snap.withheld_reason else snap.withheld_reason,
                    held.isoformat(),
                    release_after,
                ),
            )

    def keep_withheld(self, alert: Alert, withheld: Withheld, now: datetime | None = None) -> None:
        """Keep the alert behind a withheld copy, for the owner to look at."""
        with self._lock:
            self._conn().execute(
                "INSERT OR IGNORE INTO withheld_copies (alert_id, recipient, agreement, reason, alert_json,"
                " withheld_utc) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alert.identifier,
                    withheld.recipient,
                    withheld.agreement,
                    withheld.reason,
                    alert.model_dump_json(),
                    (now or datetime.now(UTC)).isoformat(),
                ),
            )

    # -- the feedback thread ----------------------------------------------------------------

    def record_verdict(self, incident_id: str, agreement_id: str, verdict: Verdict, now: datetime) -> bool:
        """Keep the verdict on an incident under an agreement; False when one was already given."""
        with self._lock:
            cur = self._conn().execute(
                "INSERT OR IGNORE INTO incident_verdicts (incident_id, agreement, verdict, level, status_id,"
                " verifier, decided_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id,
                    agreement_id,
                    verdict.kind,
                    verdict.level,
                    verdict.status_id,
                    verdict.verifier,
                    now.isoformat(),
                ),
            )
            return cur.rowcount == 1

    def held_for(self, incident_id: str, agreement_id: str) -> list[StoredHold]:
        """The copies of an incident held under an agreement, oldest first."""
        return self._select("WHERE incident_id=? AND agreement=? ORDER BY id", (incident_id, agreement_id))

    def due(self, now: datetime) -> list[StoredHold]:
        """The held copies whose `auto_release_after_s` has run out, oldest first."""
        return self._select(
            "WHERE release_after_utc IS NOT NULL AND release_after_utc <= ? ORDER BY id", (now.isoformat(),)
        )

    def held_count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM held_copies").fetchone()[0])

    def remove(self, row_id: int) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM held_copies WHERE id=?", (row_id,))

    def prune(self, now: datetime) -> None:
        """Forget verdicts and withheld copies older than `KEEP_S` (held copies stay until they are decided)."""
        cut = (now - timedelta(seconds=KEEP_S)).isoformat()
        with self._lock:
            db = self._conn()
            db.execute("DELETE FROM incident_verdicts WHERE decided_utc < ?", (cut,))
            db.execute("DELETE FROM withheld_copies WHERE withheld_utc < ?", (cut,))

    def _select(self, where: str, args: tuple[str, ...]) -> list[StoredHold]:
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, recipient, agreement, verifier, alert_json, snapshot_redaction, snapshot_jpeg,"
                    f" snapshot_meta, held_utc, release_after_utc FROM held_copies {where}",
                    args,
                )
                .fetchall()
            )
        return [_stored(row) for row in rows]


def _stored(row: tuple[Any, ...]) -> StoredHold:
    row_id, recipient, agreement, verifier, alert_json, redaction, jpeg, meta, held, after = row
    snapshot: Snapshot | None = None
    if redaction == "withheld":
        snapshot = Snapshot("withheld", b"", 0, 0, 0, 0, str(meta or ""))
    elif redaction is not None:
        w, h, faces, persons = (int(v) for v in str(meta).split(","))
        snapshot = Snapshot(str(redaction), bytes(jpeg or b""), w, h, faces, persons)
    auto = None
    if after is not None:
        auto = (datetime.fromisoformat(str(after)) - datetime.fromisoformat(str(held))).total_seconds()
    copy = HeldCopy(
        Alert.model_validate_json(str(alert_json)), str(recipient), str(agreement), str(verifier), auto, snapshot
    )
    return StoredHold(int(str(row_id)), copy)
