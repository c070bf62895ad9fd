"""Break-glass requests and grants, durable, in the outbox file: the grants the dispatcher consults.

One row per request a recipient sent and the site verified
(`break_glass_requests`), from `pending` to `granted` or `refused`. Three
writers share it, each through its own connection: the running agent's
break-glass desk (`agent.delivery.break_glass`: adds requests, grants or
refuses them by the agreement's terms, lapses pending ones, ends grants),
`edge-agent requests approve|refuse|revoke` on the box (a person's decision,
picked up by the desk's next poll), and the delivery thread, which only
reads: `widening` is the `Grants` of `agent.delivery.sharing_terms`.

A decision takes effect once the desk has written it to the audit log
(`announced`): a copy is never widened under a grant the chain does not yet
hold. A revocation takes effect at once, since narrowing needs no record to
be safe. A grant widens until its `until` (or its revocation) by the
caller's clock, so sharing reverts by itself even if the desk is late to
write `break_glass_ended`.

Times are stored as UTC ISO 8601 with microseconds, so they compare as text.
"""

from __future__ import annotations

__all__ = ["KEEP_S", "BreakGlassTable", "StoredRequest"]

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.alerts.request import BreakGlassRequest
from agent.delivery.outbox_tables import OutboxTables
from agent.delivery.sharing_terms import Widening
from agent.errors import AgentError

KEEP_S = 30 * 86_400  # settled requests are kept this long for `edge-agent requests list`

_SCHEMA = """
CREATE TABLE IF NOT EXISTS break_glass_requests (
    request_id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    agreement TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    widen TEXT NOT NULL,
    duration_s INTEGER NOT NULL,
    justification TEXT NOT NULL,
    operator TEXT NOT NULL,
    received_utc TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_as TEXT,
    decided_utc TEXT,
    until_utc TEXT,
    reason TEXT,
    detail TEXT,
    announced INTEGER NOT NULL DEFAULT 0,
    revoked_utc TEXT,
    revoked_as TEXT,
    ended_utc TEXT
);
CREATE INDEX IF NOT EXISTS break_glass_by_incident ON break_glass_requests (recipient, incident_id);
CREATE INDEX IF NOT EXISTS break_glass_by_state ON break_glass_requests (state, announced);
"""
_COLUMNS = (
    "request_id, recipient, agreement, incident_id, widen, duration_s, justification, operator, received_utc,"
    " state, decided_by, decided_as, decided_utc, until_utc, reason, detail, announced, revoked_utc, revoked_as,"
    " ended_utc"
)


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise AgentError("break-glass times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """One request and where it stands.

    Attributes:
        state: `pending`, `granted` or `refused`.
        decided_by: with granted `automatic` or `approved`; with refused `terms` (the agreement),
            `owner` (`edge-agent requests refuse`) or `lapsed` (nobody decided in time).
        decided_as: the person on the box who approved or refused ('' for the agent itself).
        announced: whether the decision is in the audit log (a grant widens only then).
    """

    request_id: str
    recipient: str
    agreement: str
    incident_id: str
    widen: tuple[str, ...]
    duration_s: int
    justification: str
    operator: str
    received_utc: datetime
    state: str
    decided_by: str = ""
    decided_as: str = ""
    decided_utc: datetime | None = None
    until_utc: datetime | None = None
    reason: str = ""
    detail: str = ""
    announced: bool = False
    revoked_utc: datetime | None = None
    revoked_as: str = ""
    ended_utc: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Whether this grant widens sharing at `now`."""
        return (
            self.state == "granted"
            and self.announced
            and self.revoked_utc is None
            and self.decided_utc is not None
            and self.until_utc is not None
            and self.decided_utc <= now < self.until_utc
        )


def _stored(row: tuple[Any, ...]) -> StoredRequest:
    (rid, recipient, agreement, incident, widen, duration, justification, operator, received, state, by, as_, decided,
     until, reason, detail, announced, revoked, revoked_as, ended) = row  # fmt: skip
    return StoredRequest(
        str(rid), str(recipient), str(agreement), str(incident), tuple(str(widen).split(",")), int(duration),
        str(justification), str(operator), datetime.fromisoformat(str(received)), str(state), str(by or ""),
        str(as_ or ""), _time(decided), _time(until), str(reason or ""), str(detail or ""), bool(announced),
        _time(revoked), str(revoked_as or ""), _time(ended),
    )  # fmt: skip


class BreakGlassTable(OutboxTables):
    """The break-glass table of one outbox file (see the module docstring). Use as a context manager.

    Args:
        path: the outbox file.
    """

    _SCHEMA = _SCHEMA
    _WHAT = "break-glass tables"

    # -- the delivery thread: Grants -------------------------------------------------------

    def widening(self, recipient: str, incident_id: str, now: datetime) -> Widening | None:
        """The widening in force for `recipient`'s copies of the incident at `now` (None: none).

        Two grants at once widen by both; the copy names the one that lasts longest.
        """
        at = _iso(now)
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT request_id, widen FROM break_glass_requests WHERE recipient=? AND incident_id=?"
                    " AND state='granted' AND announced=1 AND revoked_utc IS NULL AND decided_utc <= ?"
                    " AND until_utc > ? ORDER BY until_utc DESC, request_id",
                    (recipient, incident_id, at, at),
                )
                .fetchall()
            )
        if not rows:
            return None
        return Widening(str(rows[0][0]), frozenset(w for row in rows for w in str(row[1]).split(",")))

    # -- the desk ---------------------------------------------------------------------------

    def incident_sent_to(self, incident_id: str, recipient: str) -> bool:
        """Whether any alert of the incident went to `recipient` (the feedback ledger's `feedback_sent`).

        The ledger keeps a week of sent messages: an incident older than that cannot be widened.
        """
        with self._lock:
            try:
                row = (
                    self._conn()
                    .execute(
                        "SELECT 1 FROM feedback_sent WHERE incident_id=? AND recipient=? LIMIT 1",
                        (incident_id, recipient),
                    )
                    .fetchone()
                )
            except sqlite3.OperationalError:  # no feedback ledger in this file (yet): nothing is known as sent
                return False
        return row is not None

    def has(self, request_id: str) -> bool:
        with self._lock:
            row = (
                self._conn().execute("SELECT 1 FROM break_glass_requests WHERE request_id=?", (request_id,)).fetchone()
            )
        return row is not None

    def add(self, request: BreakGlassRequest, agreement: str, received: datetime) -> bool:
        """Keep a verified request as `pending`; False when its id is known already."""
        with self._lock:
            cur = self._conn().execute(
                "INSERT OR IGNORE INTO break_glass_requests (request_id, recipient, agreement, incident_id, widen,"
                " duration_s, justification, operator, received_utc, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.request_id,
                    request.recipient,
                    agreement,
                    request.incident_id,
                    ",".join(sorted(request.widen)),
                    request.duration_s,
                    request.justification,
                    request.operator,
                    _iso(received),
                    "pending",
                ),
            )
        return cur.rowcount == 1

    def unannounced(self) -> list[StoredRequest]:
        """Decisions not yet in the audit log, oldest first."""
        return self._select("WHERE state IN ('granted', 'refused') AND announced=0 ORDER BY decided_utc", ())

    def mark_announced(self, request_id: str) -> None:
        self._execute("UPDATE break_glass_requests SET announced=1 WHERE request_id=?", (request_id,))

    def pending(self) -> list[StoredRequest]:
        return self._select("WHERE state='pending' ORDER BY received_utc", ())

    def ending(self, now: datetime) -> list[StoredRequest]:
        """Announced grants that ran out or were revoked and whose end is not recorded yet."""
        return self._select(
            "WHERE state='granted' AND announced=1 AND ended_utc IS NULL"
            " AND (until_utc <= ? OR revoked_utc IS NOT NULL) ORDER BY until_utc",
            (_iso(now),),
        )

    def mark_ended(self, request_id: str, now: datetime) -> None:
        self._execute("UPDATE break_glass_requests SET ended_utc=? WHERE request_id=?", (_iso(now), request_id))

    def counts(self, now: datetime) -> tuple[int, int]:
        """(requests waiting for the owner, grants widening sharing at `now`)."""
        at = _iso(now)
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT SUM(state='pending'), SUM(state='granted' AND announced=1 AND revoked_utc IS NULL"
                    " AND decided_utc <= ? AND until_utc > ?) FROM break_glass_requests",
                    (at, at),
                )
                .fetchone()
            )
        return int(row[0] or 0), int(row[1] or 0)

    # -- decisions (the desk, and `edge-agent requests` on the box) -------------------------

    def grant(self, request_id: str, by: str, now: datetime, decided_as: str = "") -> bool:
        """Grant a pending request from `now` for its duration; False when it is not pending."""
        row = self.get(request_id)
        if row is None or row.state != "pending":
            return False
        until = now + timedelta(seconds=row.duration_s)
        return self._execute(
            "UPDATE break_glass_requests SET state='granted', decided_by=?, decided_as=?, decided_utc=?, until_utc=?"
            " WHERE request_id=? AND state='pending'",
            (by, decided_as, _iso(now), _iso(until), request_id),
        )

    def refuse(self, request_id: str, reason: str, detail: str, by: str, now: datetime, decided_as: str = "") -> bool:
        """Refuse a pending request; False when it is not pending."""
        return self._execute(
            "UPDATE break_glass_requests SET state='refused', decided_by=?, decided_as=?, decided_utc=?, reason=?,"
            " detail=? WHERE request_id=? AND state='pending'",
            (by, decided_as, _iso(now), reason, detail[:300], request_id),
        )

    def revoke(self, request_id: str, now: datetime, revoked_as: str = "") -> bool:
        """End a grant now (it stops widening at once); False when it is not a grant in force."""
        return self._execute(
            "UPDATE break_glass_requests SET revoked_utc=?, revoked_as=? WHERE request_id=? AND state='granted'"
            " AND revoked_utc IS NULL AND ended_utc IS NULL AND until_utc > ?",
            (_iso(now), revoked_as, request_id, _iso(now)),
        )

    # -- reading ----------------------------------------------------------------------------

    def get(self, request_id: str) -> StoredRequest | None:
        found = self._select("WHERE request_id=?", (request_id,))
        return found[0] if found else None

    def find(self, text: str) -> StoredRequest:
        """The request whose id is `text`, or ends with it (the last group of a UUID is enough).

        Raises:
            AgentError: no request, or more than one, matches.
        """
        exact = self.get(text)
        if exact is not None:
            return exact
        like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = self._select("WHERE request_id LIKE ? ESCAPE '\\' ORDER BY received_utc", (f"%{like}",)) if text else []
        if len(found) == 1:
            return found[0]
        if not found:
            raise AgentError(f"no break-glass request {text!r} (see `edge-agent requests list`)")
        raise AgentError(f"{len(found)} break-glass requests end with {text!r}: give more of the id")

    def recent(self, since: datetime) -> list[StoredRequest]:
        """Requests received at or after `since`, and every pending one or grant in force, newest first."""
        return self._select(
            "WHERE received_utc >= ? OR state='pending' OR (state='granted' AND ended_utc IS NULL)"
            " ORDER BY received_utc DESC",
            (_iso(since),),
        )

    def prune(self, now: datetime) -> None:
        """Forget settled requests (refused, or granted and ended) received more than `KEEP_S` ago."""
        cut = _iso(now - timedelta(seconds=KEEP_S))
        self._execute(
            "DELETE FROM break_glass_requests WHERE received_utc < ? AND announced=1"
            " AND (state='refused' OR ended_utc IS NOT NULL)",
            (cut,),
        )

    def _select(self, where: str, args: tuple[str, ...]) -> list[StoredRequest]:
        with self._lock:
            rows = self._conn().execute(f"SELECT {_COLUMNS} FROM break_glass_requests {where}", args).fetchall()
        return [_stored(tuple(r)) for r in rows]

    def _execute(self, sql: str, args: tuple[Any, ...]) -> bool:
        with self._lock:
            return self._conn().execute(sql, args).rowcount > 0
