"""The receiving side's storage: one SQL layer (SQLAlchemy Core, Alembic migrations) for ingest and console.

`open_database(url)` gives a migrated engine; `StoreWriter` writes (alerts,
statuses, site health, the retention purge), `StoreReader` reads for the
console, `UserStore` keeps console accounts.
"""

from agent.agency.store.database import StoreError, open_database, sqlite_url
from agent.agency.store.reads import StoreReader
from agent.agency.store.rows import AlertFilter, AlertRow, IncidentRow, SiteRow, StatusRow, UserRow
from agent.agency.store.users import ROLES, UserStore
from agent.agency.store.writes import PurgeCounts, StoreWriter

__all__ = [
    "ROLES",
    "AlertFilter",
    "AlertRow",
    "IncidentRow",
    "PurgeCounts",
    "SiteRow",
    "StatusRow",
    "StoreError",
    "StoreReader",
    "StoreWriter",
    "UserRow",
    "UserStore",
    "open_database",
    "sqlite_url",
]
