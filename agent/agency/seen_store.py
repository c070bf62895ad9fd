"""Durable memory of accepted alerts, so a replay is refused even after the receiver restarts.

One SQLite file (WAL, `synchronous=FULL`: an alert is remembered before the
broker is told it arrived) holds each accepted (site id, alert identifier)
with the alert's `sent`. An alert whose `sent` is older than the freshness
window is refused as stale whatever the store says, so a row is needed only
while its alert could still pass the freshness check: rows whose `sent` is
older than the window plus a margin are purged (at open, then every
`purge_every` remembered alerts or `purge_interval_s`). `max_rows` bounds
the file against a flood of valid alerts; trimming by it drops the oldest
rows first and is logged, since a replay of a dropped row inside the window
would pass.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MARGIN_S", "SeenLedger", "SeenStore", "SeenStoreError"]

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.agency.seen_store")

DEFAULT_MARGIN_S = 3600.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    site_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    sent_s REAL NOT NULL,
    accepted_s REAL NOT NULL,
    PRIMARY KEY (site_id, alert_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_sent ON seen (sent_s);
"""


class SeenLedger(Protocol):
    """What the verifier asks of a durable record of accepted alerts."""

    def contains(self, site_id: str, alert_id: str) -> bool: ...

    def remember(self, site_id: str, alert_id: str, sent: datetime) -> bool: ...


class SeenStoreError(AgentError):
    """The store cannot be read or written (disk full, file damaged): duplicates can no longer be told."""


class SeenStore:
    """(site id, alert identifier) pairs accepted so far; a context manager owning the connection.

    Args:
        path: the SQLite file (created with its folder), or ":memory:".
        window_s: the freshness window; rows are kept for it plus `margin_s`.
        max_rows: the most rows kept (oldest `sent` dropped first).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        window_s: float,
        margin_s: float = DEFAULT_MARGIN_S,
        max_rows: int = 2_000_000,
        purge_every: int = 1000,
        purge_interval_s: float = 60.0,
    ) -> None:
        self.path = str(path)
        self._keep_s = window_s + margin_s
        self._max_rows = max_rows
        self._purge_every = purge_every
        self._purge_interval_s = purge_interval_s
        self._lock = threading.Lock()
        self._since_purge = 0
        self._last_purge = time.monotonic()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise SeenStoreError(f"cannot open the seen-alerts store {self.path}: {err}") from err
        self.purge()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; an SQLite failure becomes `SeenStoreError`."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as err:
                raise SeenStoreError(f"seen-alerts store {self.path}: {err}") from err

    def contains(self, site_id: str, alert_id: str) -> bool:
        with self._locked():
            row = self._db.execute(
                "SELECT 1 FROM seen WHERE site_id = ? AND alert_id = ?", (site_id, alert_id)
            ).fetchone()
        return row is not None

    def remember(self, site_id: str, alert_id: str, sent: datetime) -> bool:
        """Record an accepted alert; False when it was already there (durable once this returns).

        Raises:
            SeenStoreError: it could not be written.
        """
        with self._locked():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO seen (site_id, alert_id, sent_s, accepted_s) VALUES (?, ?, ?, ?)",
                (site_id, alert_id, sent.timestamp(), time.time()),
            )
            added = cursor.rowcount == 1
            self._since_purge += 1
            due = (
                self._since_purge >= self._purge_every or time.monotonic() - self._last_purge >= self._purge_interval_s
            )
        if due:
            self.purge()
        return added

    def purge(self, now: datetime | None = None) -> int:
        """Drop rows past the window plus margin, then trim to `max_rows`; the number of rows dropped."""
        cutoff = (now or datetime.now(UTC)).timestamp() - self._keep_s
        with self._locked():
            dropped = self._db.execute("DELETE FROM seen WHERE sent_s < ?", (cutoff,)).rowcount
            over = int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]) - self._max_rows
            if over > 0:
                self._db.execute(
                    "DELETE FROM seen WHERE (site_id, alert_id) IN "
                    "(SELECT site_id, alert_id FROM seen ORDER BY sent_s LIMIT ?)",
                    (over,),
                )
            self._since_purge = 0
            self._last_purge = time.monotonic()
        if over > 0:
            log_event(_log, "seen_store_trimmed", logging.WARNING, rows=over, max_rows=self._max_rows)
        return dropped + max(over, 0)

    def __len__(self) -> int:
        with self._locked():
            return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
