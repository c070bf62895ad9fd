"""The durable outbox: alerts waiting for the broker's acknowledgement.

An alert is committed here (SQLite, WAL journal, `synchronous=FULL`, so the
commit is on disk when `put` returns) before anything tries to publish it,
and it is deleted only after the broker's PUBACK. A broker outage, a restart
or `kill -9` of the agent therefore loses nothing that `put` accepted; the
price is that a message whose PUBACK was received but whose delete had not
committed is sent again (at-least-once). Each message carries a stable
`message_id` so subscribers drop the copy.

Bounds and the drop rule: the outbox holds at most `max_messages` messages
and `max_bytes` payload bytes. When a new message does not fit, messages are
evicted in order of (severity rank ascending, age descending): the oldest
message of the lowest severity goes first. The new message takes part in
that order as the newest one, so a Minor alert arriving at an outbox full of
Severe ones is the one dropped. A payload larger than `max_bytes` on its own
is dropped at once. Messages past their expiry are dropped when they come
up for sending (the broker would discard them anyway). Every drop is counted
in `stats().dropped` (expired ones in `stats().expired`) and logged as
`event=outbox_dropped`.

Messages the broker refuses with a failure reason code (for example 0x87
not authorised, from an ACL) are moved aside to a `rejected` table rather
than retried forever, which would block every message behind them, or
deleted as if delivered. They stay there (the newest `REJECTED_KEEP` rows)
for an operator to inspect or requeue with `requeue_rejected()`; each is
counted in `stats().rejected` and logged by the publisher.

A storage failure (the disk full, an I/O error) undoes the operation, is counted
in `stats()` and raises `OutboxStorageError` naming file and reason (`storage_faults`).

Thread safety: one connection guarded by a lock; producers call `put`, the
publisher thread calls `pending`, `ack_many` and `reject`. `wait_for_work`
lets the publisher sleep until a `put` arrives.
"""

from __future__ import annotations

# The message values live in agent.delivery.messages; they are re-exported here
# because every user of the outbox needs them with it.
__all__ = ["OutboundMessage", "Outbox", "OutboxStats", "OutboxStorageError", "StoredMessage", "message_id_for"]

import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from agent.config import OutboxConfig
from agent.delivery.messages import OutboundMessage, StoredMessage, message_id_for
from agent.delivery.outbox_file import open_outbox_file
from agent.delivery.storage_faults import OutboxStorageError, StorageFaults
from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.outbox")

REJECTED_KEEP = 1000
# Settled message ids kept for reconciling against the audit log at start (about 4 MB).
SETTLED_KEEP = 50_000

_COUNTERS = ("dropped", "delivered", "expired", "rejected")


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters of an outbox; depth and bytes are current, storage ones since open, the rest since creation."""

    depth: int
    bytes: int
    dropped: int
    delivered: int
    expired: int
    rejected: int
    storage_errors: int = 0
    unstored: int = 0
    storage_problem: str = ""


class Outbox:
    """Durable, bounded FIFO of alerts awaiting PUBACK (see the module docstring).

    Use as a context manager; `put` from any thread.
    """

    def __init__(self, config: OutboxConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db: sqlite3.Connection | None = None
        self._depth = 0
        self._bytes = 0
        self._faults = StorageFaults(Path(config.path), after_rollback=self._reload_totals)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open (creating when missing) the database file; a damaged file is refused (OutboxDamaged)."""
        path = Path(self._config.path)
        db = open_outbox_file(path)
        with self._lock:
            self._db = db
            row = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()
            self._depth, self._bytes = int(row[0]), int(row[1])
        log_event(_log, "outbox_opened", path=path, depth=self._depth, bytes=self._bytes)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._changed.notify_all()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise AgentError("outbox is not open")
        return self._db

    def put(self, msg: OutboundMessage) -> bool:
        """Store `msg` durably; return False when the drop rule dropped it instead.

        A message whose id is already stored is not stored twice (returns True).

        Raises:
            OutboxStorageError: it could not be stored (the disk full, an I/O error).
        """
        size = len(msg.payload)
        with self._lock:
            db = self._conn()
            with self._faults.guard(db, "storing a message", unstored=1):
                if size > self._config.max_bytes:
                    self._count_drop(db, msg.message_id, msg.severity_rank, size, "larger_than_outbox")
                    return False
                db.execute("BEGIN IMMEDIATE")
                if db.execute("SELECT 1 FROM messages WHERE message_id=?", (msg.message_id,)).fetchone():
                    db.execute("COMMIT")
                    return True
                if not self._make_room(db, msg.severity_rank, size):
                    db.execute("COMMIT")
                    self._count_drop(db, msg.message_id, msg.severity_rank, size, "outbox_full")
                    return False
                db.execute(
                    "INSERT INTO messages (message_id, topic, payload, severity_rank, expiry_s, created_utc)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        msg.message_id,
                        msg.topic,
                        msg.payload,
                        msg.severity_rank,
                        msg.expiry_s,
                        msg.created_utc.isoformat(),
                    ),
                )
                db.execute("COMMIT")
            self._depth += 1
            self._bytes += size
            self._changed.notify_all()
            return True

    def _make_room(self, db: sqlite3.Connection, severity_rank: int, size: int) -> bool:
        """Evict by the drop rule so `size` more bytes and one more message fit (in a transaction).

        The victims are chosen first and deleted only if the newcomer then fits: when the
        next victim in line outranks the newcomer, the newcomer is the one dropped and
        nothing that was already stored goes with it.
        """
        cfg = self._config
        depth, total = self._depth, self._bytes
        victims: list[tuple[int, str, int, int]] = []
        rows = db.execute(
            "SELECT seq, message_id, severity_rank, LENGTH(payload) FROM messages ORDER BY severity_rank, seq"
        )
        while depth + 1 > cfg.max_messages or total + size > cfg.max_bytes:
            victim = rows.fetchone()
            if victim is None or victim[2] > severity_rank:
                rows.close()
                return False  # the new message is the oldest-lowest: it is the one dropped
            victims.append((int(victim[0]), str(victim[1]), int(victim[2]), int(victim[3])))
            depth, total = depth - 1, total - int(victim[3])
        rows.close()
        for seq, message_id, rank, victim_size in victims:
            db.execute("DELETE FROM messages WHERE seq=?", (seq,))
            self._count_drop(db, message_id, rank, victim_size, "outbox_full")
        self._depth, self._bytes = depth, total
        return True

    def _count_drop(
        self,
        db: sqlite3.Connection,
        message_id: str,
        severity_rank: int,
        size: int,
        reason: str,
        *,
        counter: str = "dropped",
    ) -> None:
        self._bump(db, counter, 1)
        self._settle(db, message_id, counter)
        log_event(
            _log,
            "outbox_dropped",
            logging.WARNING,
            message_id=message_id,
            severity_rank=severity_rank,
            bytes=size,
            reason=reason,
        )

    @staticmethod
    def _settle(db: sqlite3.Connection, message_id: str, state: str) -> None:
        db.execute(
            "INSERT OR REPLACE INTO settled (message_id, state, settled_utc) VALUES (?, ?, ?)",
            (message_id, state, datetime.now(UTC).isoformat()),
        )

    @staticmethod
    def _prune_settled(db: sqlite3.Connection) -> None:
        """Keep the newest SETTLED_KEEP settled ids; remember from when the ledger is complete."""
        cut = db.execute(
            "SELECT settled_utc FROM settled ORDER BY settled_utc DESC LIMIT 1 OFFSET ?", (SETTLED_KEEP,)
        ).fetchone()
        if cut is None:
            return
        db.execute("DELETE FROM settled WHERE settled_utc <= ?", (cut[0],))
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('settled_complete_after', ?)", (cut[0],))

    def accounted_for(self, message_ids: Iterable[str]) -> set[str]:
        """Which of `message_ids` the outbox knows: waiting, rejected, or settled (sent, dropped, expired)."""
        ids = list(message_ids)
        known: set[str] = set()
        with self._lock:
            db = self._conn()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for table in ("messages", "rejected", "settled"):
                    sql = f"SELECT message_id FROM {table} WHERE message_id IN ({marks})"
                    known.update(str(r[0]) for r in db.execute(sql, chunk))
        return known

    def ledger_start(self) -> datetime:
        """From when every message that left the outbox is in its ledger (its creation, or the last prune)."""
        with self._lock:
            rows = dict(self._conn().execute("SELECT name, value FROM meta").fetchall())
        value = rows.get("settled_complete_after") or rows.get("created_utc")
        return datetime.fromisoformat(value) if value else datetime.now(UTC)

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
        sql = (
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
        )
        # Part of the caller's transaction when one is open, else committed on its own.
        db.execute(sql, (name, by))

    def _reload_totals(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()
        self._depth, self._bytes = int(row[0]), int(row[1])

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[StoredMessage]:
        """Messages with `seq > after_seq`, oldest first; expired ones are dropped on the way."""
        with self._lock:
            db = self._conn()
            out: list[StoredMessage] = []
            # A read proves nothing about writes: only the deletes of expired messages write here.
            with self._faults.guard(db, "reading the queue", writes=False):
                rows = db.execute(
                    "SELECT seq, message_id, topic, payload, severity_rank, expiry_s, created_utc"
                    " FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
                now = datetime.now(UTC)
                for seq, mid, topic, payload, rank, expiry_s, created in rows:
                    msg = OutboundMessage(mid, topic, bytes(payload), rank, expiry_s, datetime.fromisoformat(created))
                    if expiry_s is not None and (now - msg.created_utc).total_seconds() >= expiry_s:
                        self._delete_seq(db, seq, len(msg.payload))
                        self._count_drop(db, mid, rank, len(msg.payload), "expired", counter="expired")
                        continue
                    out.append(StoredMessage(seq, msg))
            return out

    def _delete_seq(self, db: sqlite3.Connection, seq: int, size: int) -> None:
        if db.execute("DELETE FROM messages WHERE seq=?", (seq,)).rowcount:
            self._depth -= 1
            self._bytes -= size
            self._changed.notify_all()

    def ack_many(self, seqs: list[int]) -> int:
        """Delete acknowledged messages in one durable transaction; return how many were still there."""
        if not seqs:
            return 0
        with self._lock:
            db = self._conn()
            with self._faults.guard(db, "committing acknowledgements"):  # a failure rereads the totals
                db.execute("BEGIN IMMEDIATE")
                removed = 0
                for seq in seqs:
                    row = db.execute("SELECT LENGTH(payload), message_id FROM messages WHERE seq=?", (seq,)).fetchone()
                    if row is None:
                        continue  # dropped meanwhile, or a second PUBACK
                    db.execute("DELETE FROM messages WHERE seq=?", (seq,))
                    self._settle(db, str(row[1]), "delivered")
                    self._depth -= 1
                    self._bytes -= int(row[0])
                    removed += 1
                self._bump(db, "delivered", removed)
                self._prune_settled(db)
                db.execute("COMMIT")
            self._changed.notify_all()
            return removed

    def reject(self, seq: int, reason_code: int, reason: str) -> None:
        """Move a message the broker refused to the `rejected` table (see the module docstring)."""
        with self._lock:
            db = self._conn()
            with self._faults.guard(db, "moving a refused message aside"):
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT LENGTH(payload) FROM messages WHERE seq=?", (seq,)).fetchone()
                if row is None:
                    db.execute("COMMIT")
                    return
                db.execute(
                    "INSERT OR REPLACE INTO rejected SELECT seq, message_id, topic, payload, severity_rank,"
                    " expiry_s, created_utc, ?, ?, ? FROM messages WHERE seq=?",
                    (reason_code, reason, datetime.now(UTC).isoformat(), seq),
                )
                db.execute("DELETE FROM messages WHERE seq=?", (seq,))
                db.execute(
                    "DELETE FROM rejected WHERE seq NOT IN (SELECT seq FROM rejected ORDER BY seq DESC LIMIT ?)",
                    (REJECTED_KEEP,),
                )
                self._bump(db, "rejected", 1)
                row_id = db.execute("SELECT message_id FROM rejected WHERE seq=?", (seq,)).fetchone()
                if row_id is not None:
                    self._settle(db, str(row_id[0]), "rejected")
                db.execute("COMMIT")
            self._depth -= 1
            self._bytes -= int(row[0])
            self._changed.notify_all()

    def rejected(self) -> list[tuple[OutboundMessage, int, str]]:
        """Messages moved aside, oldest first, with the reason code and reason."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT message_id, topic, payload, severity_rank, expiry_s, created_utc, reason_code, reason"
                    " FROM rejected ORDER BY seq"
                )
                .fetchall()
            )
        return [
            (OutboundMessage(r[0], r[1], bytes(r[2]), r[3], r[4], datetime.fromisoformat(r[5])), r[6], r[7])
            for r in rows
        ]

    def requeue_rejected(self) -> int:
        """Put every rejected message back at the end of the queue (after fixing an ACL); return the count."""
        moved = self.rejected()
        with self._lock:
            self._conn().execute("DELETE FROM rejected")
        for msg, _, _ in moved:
            self.put(msg)
        return len(moved)

    def stats(self) -> OutboxStats:
        with self._lock:
            rows = dict(self._conn().execute("SELECT name, value FROM counters").fetchall())
            n = {name: int(rows.get(name, 0)) for name in _COUNTERS}
            f = self._faults
            totals = (n["dropped"], n["delivered"], n["expired"], n["rejected"], f.errors, f.unstored)
            return OutboxStats(self._depth, self._bytes, *totals, f.problem)

    def wait_for_work(self, after_seq: int, timeout_s: float) -> bool:
        """Sleep until a message newer than `after_seq` exists (True) or the timeout passes."""
        with self._lock:
            return self._changed.wait_for(lambda: self._has_after(after_seq), timeout_s)

    def _has_after(self, after_seq: int) -> bool:
        if self._db is None:
            return True  # closed: wake the waiter so it can notice
        return self._db.execute("SELECT 1 FROM messages WHERE seq > ? LIMIT 1", (after_seq,)).fetchone() is not None

    def wait_empty(self, timeout_s: float) -> bool:
        """Sleep until no message is waiting (delivered, dropped or rejected); True when empty."""
        with self._lock:
            return self._changed.wait_for(lambda: self._depth == 0, timeout_s)
