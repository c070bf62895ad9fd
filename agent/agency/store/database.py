"""Opening the receiving store: an SQLAlchemy engine for a database URL, migrated to the newest schema.

SQLite is the embedded default (`sqlite:///path/to/receiving.sqlite`): the
file and its folder are created, and every connection runs in WAL mode with
`synchronous=FULL` (an alert is on disk before the broker is told it
arrived), foreign keys on and a busy timeout, so the ingest service and the
console, two processes, share the file. Any other URL SQLAlchemy knows
(PostgreSQL: `postgresql+psycopg://...`) goes through the same code.

`open_database` applies the Alembic migrations shipped in
`agent/agency/store/migrations/` up to the newest revision before returning;
`schema_revision` tells which revision a database is at.
"""

from __future__ import annotations

__all__ = ["StoreError", "open_database", "schema_revision", "sqlite_url"]

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agent.errors import AgentError

_MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 10_000


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
    """An engine for `url`, its schema brought to the newest revision.

    Raises:
        StoreError: a URL SQLAlchemy cannot use, or a database that cannot be reached or migrated.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise StoreError(f"database URL {url!r} is not valid: {err}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed)
    except (ArgumentError, ImportError) as err:
        raise StoreError(f"database URL {parsed.render_as_string()}: {err}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        try:
            with engine.begin() as connection:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as err:
            raise StoreError(f"cannot open the database {parsed.render_as_string()}: {err}") from None
    return engine


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
