"""Alembic's entry point for the receiving store: runs migrations on the connection `database.migrate` hands over."""

from __future__ import annotations

from alembic import context

from agent.agency.store.tables import metadata

connection = context.config.attributes["connection"]
# render_as_batch: SQLite changes a table by copying it; Alembic's batch mode does that for it.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
