"""Tables kept in the outbox's own SQLite file beside its messages: opening, closing, the one connection.

Open incidents and the feedback ledger live there, so a site has one file
to back up and one disk whose faults it reports. Each is a subclass that
names its tables (`_SCHEMA`, a script), its durability (`_SYNCHRONOUS`) and
what it is, in words (`_WHAT`, for errors); it is used as a context manager
and reaches its connection through `_conn()`, holding `_lock` around it.
"""

from __future__ import annotations

__all__ = ["OutboxTables"]

import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from agent.errors import AgentError


class OutboxTables:
    """Some tables of one outbox file (opened, and checked, by the outbox first).

    Args:
        path: the outbox file.
    """

    _SCHEMA: ClassVar[str]
    _SYNCHRONOUS: ClassVar[str] = "FULL"
    _WHAT: ClassVar[str]

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> Self:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            db.execute(f"PRAGMA synchronous={self._SYNCHRONOUS}")
            db.executescript(self._SCHEMA)
            self._opened(db)
        except sqlite3.Error as err:
            raise AgentError(f"cannot open the {self._WHAT} of outbox {self.path}: {err}") from None
        self._db = db
        return self

    def _opened(self, db: sqlite3.Connection) -> None:
        """Called once the tables exist, before the connection is in use (a subclass's own checks)."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise AgentError(f"the {self._WHAT} are not open")
        return self._db
