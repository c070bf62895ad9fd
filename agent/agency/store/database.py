"""Opening the receiving store: an SQLAlchemy engine for a database URL, migrated to the newest schema.

SQLite is the embedded default (`sqlite:///path/to/receiving.sqlite`): the
file and its folder are created, and every connection runs in WAL mode with
`synchronous=FULL` (an alert is on disk before the broker is told it
arrived), foreign keys on and a busy timeout, so the ingest service and the
console, two processes, share the file.

PostgreSQL (`postgresql+psycopg://user:password@host/db`, or over a Unix
socket `postgresql+psycopg://user@/db?host=/run/postgresql`) is the store of
a receiving side with several ingest replicas and consoles on several
machines; it goes through the same tables, queries and migrations
(psycopg 3, SQLAlchemy's `postgresql+psycopg` dialect). A connection attempt
gives up after `CONNECT_TIMEOUT_S` unless the URL sets `connect_timeout`, so
an unreachable server is a quick, retried error rather than a hang.

`open_database` applies the Alembic migrations shipped in
`agent/agency/store/migrations/` up to the newest revision before returning
(`migrate_database` does it for an engine opened with `migrate=False`);
replicas that start together take turns (a PostgreSQL advisory lock, SQLite's
write lock), so each finds the schema either untouched or complete.
`schema_revision` tells which revision a database is at.
"""

from __future__ import annotations

__all__ = ["StoreError", "migrate_database", "open_database", "schema_revision", "sqlite_url"]

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agent.errors import AgentError

_MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
# Any fixed number: every process migrating this store takes the same PostgreSQL advisory lock.
_MIGRATION_LOCK = 0x65646765_0001


class StoreError(AgentError):
    """The receiving store cannot be opened, read or written."""


def sqlite_url(path: Path) -> str:
    """The URL of an SQLite file."""
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """An engine for `url`, its schema brought to the newest revision (unless `migrate` is False).

    Raises:
        StoreError: a URL SQLAlchemy cannot use, or a database that cannot be reached or migrated.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise StoreError(f"database URL {url!r} is not valid: {err}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = create_engine(parsed, connect_args=connect_args)
    except (ArgumentError, ImportError) as err:
        raise StoreError(f"database URL {parsed.render_as_string()}: {err}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        migrate_database(engine)
    return engine


def migrate_database(engine: Engine) -> None:
    """Apply the shipped migrations up to the newest revision, one process at a time.

    Raises:
        StoreError: the database cannot be reached or migrated.
    """
    try:
        with engine.begin() as connection:
            _take_migration_lock(connection)
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as err:
        raise StoreError(f"cannot open the database {engine.url.render_as_string()}: {err}") from None


def _take_migration_lock(connection: Connection) -> None:
    """Held until the migration's transaction ends, so a second process sees the first one's whole result."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        # pysqlite opens its transaction lazily, at the first write; take the write lock now instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
