"""Outbox storage failures: what SQLite's error means in words, counted, logged, and cleared once writes work.

A full disk (SQLITE_FULL, ENOSPC), an I/O error or a file turned read-only
must reach the operator as what it is and which file it is, not as the
"cannot rollback - no transaction is active" SQLite answers when asked to
undo a transaction it has already undone. `StorageFaults.guard` wraps one
outbox operation: on failure it rolls back what is still open, lets the
outbox restore its in-memory totals, counts the failure (and the messages
that could not be stored), logs `event=outbox_storage_error` with the file,
the operation and the reason, and raises `OutboxStorageError`. The first
write that works again logs `event=outbox_storage_recovered` and clears the
current problem. The counters live in memory: a full disk cannot count its
own failures.
"""

from __future__ import annotations

__all__ = ["OutboxStorageError", "StorageFaults", "describe_storage_error"]

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.outbox")

# SQLite primary result codes (extended ones, e.g. SQLITE_IOERR_WRITE, start with these) in words.
_REASONS = (
    ("SQLITE_FULL", "disk full"),
    ("SQLITE_IOERR", "I/O error"),
    ("SQLITE_READONLY", "read-only"),
    ("SQLITE_CANTOPEN", "cannot open the file"),
    ("SQLITE_PERM", "permission denied"),
    ("SQLITE_CORRUPT", "damaged"),
    ("SQLITE_NOTADB", "damaged"),
    ("SQLITE_BUSY", "locked by another process"),
    ("SQLITE_LOCKED", "locked by another process"),
)


def describe_storage_error(err: BaseException) -> str:
    """A storage error in a few words: "disk full", "I/O error", "read-only", ..."""
    if isinstance(err, OSError):
        return "disk full" if err.errno == errno.ENOSPC else os.strerror(err.errno) if err.errno else str(err)
    name = str(getattr(err, "sqlite_errorname", "") or "")
    for code, words in _REASONS:
        if name == code or name.startswith(code + "_"):
            return words
    return "disk full" if "disk is full" in str(err) else "storage error"


class OutboxStorageError(AgentError):
    """An outbox operation failed in storage (the disk full, an I/O error); nothing of it was kept.

    Attributes:
        path: the outbox file.
        operation: what the outbox was doing, in words.
        reason: the failure in a few words ("disk full").
        detail: SQLite's or the system's own message.
    """

    def __init__(self, path: Path, operation: str, reason: str, detail: str) -> None:
        self.path = path
        self.operation = operation
        self.reason = reason
        self.detail = detail
        super().__init__(f"outbox {path}: {reason} while {operation} ({detail})")


class StorageFaults:
    """Failed storage operations of one outbox file (see the module docstring).

    Not locked: the outbox calls it while holding its own lock.

    Args:
        path: the outbox file, named in every report.
        after_rollback: called with the connection once a failed operation was undone,
            so the outbox can reread what its in-memory totals had already counted.
    """

    def __init__(self, path: Path, *, after_rollback: Callable[[sqlite3.Connection], None]) -> None:
        self._path = path
        self._after_rollback = after_rollback
        self.errors = 0
        self.unstored = 0
        self.problem = ""

    @contextlib.contextmanager
    def guard(
        self, db: sqlite3.Connection, operation: str, *, unstored: int = 0, writes: bool = True
    ) -> Iterator[None]:
        """Run one operation; a storage failure is undone, counted, logged and raised as OutboxStorageError.

        Args:
            db: the outbox connection.
            operation: what is being done, in words ("storing a message").
            unstored: messages lost to the store when this operation fails.
            writes: whether success proves that writes work again (a read does not).
        """
        try:
            yield
        except (sqlite3.Error, OSError) as err:
            self._undo(db)
            raise self._failed(operation, err, unstored) from err
        except BaseException:
            self._undo(db)
            raise
        if writes and self.problem:
            log_event(
                _log,
                "outbox_storage_recovered",
                logging.WARNING,
                path=self._path,
                after=self.problem,
                failed_operations=self.errors,
                unstored=self.unstored,
            )
            self.problem = ""

    def _undo(self, db: sqlite3.Connection) -> None:
        # SQLite rolls a transaction back itself on some failures (a full disk at COMMIT):
        # roll back only what is still open, or its "no transaction is active" hides the cause.
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self._after_rollback(db)

    def _failed(self, operation: str, err: BaseException, unstored: int) -> OutboxStorageError:
        reason = describe_storage_error(err)
        self.errors += 1
        self.unstored += unstored
        self.problem = f"outbox {self._path}: {reason}"
        log_event(
            _log,
            "outbox_storage_error",
            logging.ERROR,
            path=self._path,
            reason=reason,
            operation=operation,
            error=str(err),
            failures=self.errors,
            unstored=self.unstored,
        )
        return OutboxStorageError(self._path, operation, reason, str(err))
