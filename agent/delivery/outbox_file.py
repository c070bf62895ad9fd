"""The outbox's SQLite file: its schema, and the integrity check that runs before it is used.

A file damaged in the middle (a bad sector, a copy cut short, a disk filled
while writing) must not reach the publisher as a traceback on a thread: it
is refused at start with one error that names the file and what to do. The
file is left where it is for whoever wants to recover from it; nothing here
deletes or rewrites it.
"""

from __future__ import annotations

__all__ = ["OutboxDamaged", "open_outbox_file"]

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import AgentError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    severity_rank INTEGER NOT NULL,
    expiry_s INTEGER,
    created_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_drop_order ON messages (severity_rank, seq);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    severity_rank INTEGER NOT NULL,
    expiry_s INTEGER,
    created_utc TEXT NOT NULL,
    reason_code INTEGER NOT NULL,
    reason TEXT NOT NULL,
    rejected_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- How each message left the outbox (delivered, dropped, expired, rejected), so a start can
-- tell a message that was settled from one a torn write lost. Bounded: see Outbox.
CREATE TABLE IF NOT EXISTS settled (
    message_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    settled_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settled_age ON settled (settled_utc);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxDamaged(AgentError):
    """The outbox file is not a sound SQLite database."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"outbox {path} is damaged ({detail}); stop the agent, move the file aside "
            f"(mv {path} {path}.damaged, with its -wal file if any) and start again with an empty outbox; "
            f"the audit log lists every message that had been queued"
        )


def open_outbox_file(path: Path) -> sqlite3.Connection:
    """Open (creating when missing) and check the outbox file; WAL journal, durable commits.

    Raises:
        OutboxDamaged: the file is not a database, or SQLite's integrity check fails.
        AgentError: the file cannot be opened or created at all (permissions, no folder).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        raise AgentError(f"cannot open outbox {path}: {err}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # quick_check reads every page (not the index-to-table cross checks): for a file
        # bounded by outbox.max_bytes that is a fraction of a second.
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            raise OutboxDamaged(path, "; ".join(problems))
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('created_utc', ?)", (datetime.now(UTC).isoformat(),)
        )
    except sqlite3.DatabaseError as err:
        db.close()
        raise OutboxDamaged(path, str(err)) from None
    except OutboxDamaged:
        db.close()
        raise
    except sqlite3.Error as err:
        db.close()
        raise AgentError(f"cannot open outbox {path}: {err}") from None
    return db
