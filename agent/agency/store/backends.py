"""The few statements that differ between the store's two backends, SQLite and PostgreSQL, in one place.

- `insert_or_ignore` / `insert_new`: one row unless its unique key is taken
  (both say `ON CONFLICT DO NOTHING`, through each dialect's own insert
  construct, `dialect_insert`; what was inserted comes back through
  `RETURNING`, which both have), each statement built once.
- `least` / `greatest`: SQLite's two-argument `min` / `max`.
- `fit_row`: PostgreSQL refuses text longer than a column's declared length,
  a NUL character in text, and whole numbers past a column's range, all of
  which SQLite stores; a row fitted first stores the same on both.
- `hold_change_order`: PostgreSQL runs writers side by side, so a change id
  one transaction took could become visible after a higher one; an advisory
  lock held from taking the id to the commit keeps them in order (SQLite has
  one writer at a time anyway).
"""

from __future__ import annotations

__all__ = [
    "dialect_insert",
    "fit_row",
    "greatest",
    "hold_change_order",
    "insert_new",
    "insert_or_ignore",
    "least",
]

import functools
from typing import Any

from sqlalchemy import Connection, Integer, Row, SmallInteger, String, Table, func, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from agent.agency.store.database import StoreError

# Any fixed number: every writer of one store takes the same lock.
_CHANGES_LOCK = 0x65646765_0002
# The exact signed bytes: never altered (they hold no NUL anyway: JSON escapes it, a JWS is ASCII).
_EXACT = frozenset({"data", "message"})
_INT_RANGE: dict[type[TypeEngine[Any]], tuple[int, int]] = {
    SmallInteger: (-(2**15), 2**15 - 1),
    Integer: (-(2**31), 2**31 - 1),
}


def insert_or_ignore(connection: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row unless its unique key is taken; the rows inserted (0 or 1)."""
    statement = _insert_ignoring(connection.dialect.name, table)
    result = connection.execute(statement, values)
    if connection.dialect.name == "postgresql":
        # An INSERT's rowcount is not reliable through psycopg (SQLAlchemy reports -1); RETURNING is.
        return 0 if result.first() is None else 1
    return result.rowcount


def insert_new(connection: Connection, table: Table, values: dict[str, Any]) -> Row[Any] | None:
    """Insert one row unless its unique key is taken; the row as stored (with its generated keys), or None."""
    return connection.execute(_insert_returning(connection.dialect.name, table), values).first()


def dialect_insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The dialect's own INSERT (it has ON CONFLICT).

    Raises:
        StoreError: neither SQLite nor PostgreSQL.
    """
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise StoreError(f"the receiving store does not support {dialect} databases")


# Statements are built once and given their values as parameters: building `insert(...).values(row)` anew for
# every row costs more CPU than the database spends storing it.
@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Insert:
    statement = dialect_insert(dialect, table).on_conflict_do_nothing()
    return statement.returning(literal_column("1")) if dialect == "postgresql" else statement


@functools.cache
def _insert_returning(dialect: str, table: Table) -> Insert:
    return dialect_insert(dialect, table).on_conflict_do_nothing().returning(*table.c)


def fit_row(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` made storable in `table` on every backend: NULs dropped, text cut to its column's length,
    whole numbers held within the column's range (a new dict)."""
    fitted: dict[str, Any] = {}
    for name, value in values.items():
        kind = table.c[name].type
        if isinstance(value, str) and name not in _EXACT:
            value = value.replace("\x00", "")
            if isinstance(kind, String) and kind.length is not None:
                value = value[: kind.length]
        elif isinstance(value, int) and not isinstance(value, bool):
            bounds = _INT_RANGE.get(type(kind))
            if bounds is not None:
                value = min(max(value, bounds[0]), bounds[1])
        fitted[name] = value
    return fitted


def least(c: Connection, a: Any, b: Any) -> Any:
    # SQLite's two-argument min/max are PostgreSQL's least/greatest.
    return func.least(a, b) if c.dialect.name == "postgresql" else func.min(a, b)


def greatest(c: Connection, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if c.dialect.name == "postgresql" else func.max(a, b)


def hold_change_order(c: Connection) -> None:
    """Call right before taking a change id: on PostgreSQL, wait for the writers before this one to commit."""
    if c.dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGES_LOCK})
