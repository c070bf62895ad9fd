"""Drills handed to the running agent: one row per drill in the outbox's SQLite file.

`edge-agent drill` (another process) adds a `pending` row; the running
agent's `DrillDesk` takes the oldest pending one (`running`), runs it and
settles it (`finished`, `failed`, or `interrupted` when the agent stopped
during it). A row nobody took can be withdrawn (`withdrawn`) by the command
that added it, atomically, so a drill is either run by the agent or not at
all. Rows older than `KEEP_S` are pruned when the table is opened.

The table lives in the outbox file because the agent already has it open
and a site has one file to back up; SQLite's WAL and busy timeout let the
two processes share it.
"""

from __future__ import annotations

__all__ = ["KEEP_S", "DrillRequest", "DrillRequests", "RequestState"]

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from agent.delivery.outbox_tables import OutboxTables

KEEP_S = 90 * 86400.0
RequestState = Literal["pending", "running", "finished", "failed", "interrupted", "withdrawn"]
SETTLED: frozenset[str] = frozenset({"finished", "failed", "interrupted", "withdrawn"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drill_requests (
    drill_id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    requested_utc TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_utc TEXT NOT NULL,
    alerts INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS drill_requests_state ON drill_requests (state, requested_utc);
"""
_COLUMNS = "drill_id, scenario, requested_utc, state, updated_utc, alerts, messages, detail"


@dataclass(frozen=True, slots=True)
class DrillRequest:
    """One handed-over drill and where it stands."""

    drill_id: str
    scenario: str
    requested_utc: datetime
    state: str
    updated_utc: datetime
    alerts: int = 0
    messages: int = 0
    detail: str = ""

    @property
    def settled(self) -> bool:
        return self.state in SETTLED


def _row(row: tuple[str, str, str, str, str, int, int, str]) -> DrillRequest:
    return DrillRequest(
        row[0],
        row[1],
        datetime.fromisoformat(row[2]),
        row[3],
        datetime.fromisoformat(row[4]),
        int(row[5]),
        int(row[6]),
        row[7],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DrillRequests(OutboxTables):
    """The `drill_requests` table of one outbox file (see the module docstring). Use as a context manager.

    Args:
        path: the outbox file.
    """

    _SCHEMA = _SCHEMA
    _WHAT = "drill requests"

    def __enter__(self) -> Self:
        super().__enter__()
        cut = (datetime.now(UTC) - timedelta(seconds=KEEP_S)).isoformat()
        with self._lock:
            self._conn().execute("DELETE FROM drill_requests WHERE updated_utc < ?", (cut,))
        return self

    def request(self, drill_id: str, scenario: str) -> DrillRequest:
        """Add a pending drill (the command's side)."""
        now = _now()
        with self._lock:
            self._conn().execute(
                f"INSERT INTO drill_requests ({_COLUMNS}) VALUES (?, ?, ?, 'pending', ?, 0, 0, '')",
                (drill_id, scenario, now, now),
            )
        at = datetime.fromisoformat(now)
        return DrillRequest(drill_id, scenario, at, "pending", at)

    def get(self, drill_id: str) -> DrillRequest | None:
        with self._lock:
            row = (
                self._conn().execute(f"SELECT {_COLUMNS} FROM drill_requests WHERE drill_id=?", (drill_id,)).fetchone()
            )
        return _row(row) if row else None

    def take_pending(self) -> DrillRequest | None:
        """The oldest pending drill, now `running` (the agent's side); None when none waits."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM drill_requests WHERE state='pending' ORDER BY requested_utc LIMIT 1"
                ).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE drill_requests SET state='running', updated_utc=? WHERE drill_id=?", (_now(), row[0])
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row is not None else None

    def settle(
        self, drill_id: str, state: RequestState, *, alerts: int = 0, messages: int = 0, detail: str = ""
    ) -> None:
        """Record how a drill ended."""
        with self._lock:
            self._conn().execute(
                "UPDATE drill_requests SET state=?, updated_utc=?, alerts=?, messages=?, detail=? WHERE drill_id=?",
                (state, _now(), alerts, messages, detail[:500], drill_id),
            )

    def withdraw(self, drill_id: str) -> bool:
        """Withdraw a drill nobody took yet; False when the agent took it meanwhile (or it is gone)."""
        with self._lock:
            cursor = self._conn().execute(
                "UPDATE drill_requests SET state='withdrawn', updated_utc=? WHERE drill_id=? AND state='pending'",
                (_now(), drill_id),
            )
        return cursor.rowcount == 1

    def left_running(self) -> list[DrillRequest]:
        """Drills a previous run of the agent took and never settled (it was killed during them)."""
        with self._lock:
            rows = (
                self._conn()
                .execute(f"SELECT {_COLUMNS} FROM drill_requests WHERE state='running' ORDER BY requested_utc")
                .fetchall()
            )
        return [_row(r) for r in rows]
