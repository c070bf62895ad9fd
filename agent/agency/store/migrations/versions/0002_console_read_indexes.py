"""Indexes for the console's reads at 100,000 alerts: alerts per site and day, site positions, search by site,
incident state, an incident's timeline, and the queue's full order.

Measured on a store of 100,000 alerts (benchmarks/bench_ingest.py): the sites
and map pages 464 -> 31 ms and 475 -> 43 ms, the queue 42 -> 23 ms, a search
by site 15 -> 3 ms; storing an alert costs the same (the fsync dominates).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WITH_POSITION = sa.text("lat IS NOT NULL AND lon IS NOT NULL")
_QUEUE_ORDER: list[str | sa.TextClause] = [
    "exercise",
    "acknowledged",
    sa.text("severity_rank DESC"),
    sa.text("validation_level DESC"),
    sa.text("updated DESC"),
    "state",
]


def upgrade() -> None:
    op.create_index("ix_alerts_site_received", "alerts", ["site_id", "received_at"])
    op.create_index("ix_alerts_site_sent", "alerts", ["site_id", "sent"])
    op.create_index(
        "ix_alerts_site_position",
        "alerts",
        ["site_id"],
        sqlite_where=_WITH_POSITION,
        postgresql_where=_WITH_POSITION,
    )
    # An incident's timeline in its order: without `sent` here the planner takes ix_alerts_site_sent
    # and walks the site's whole history.
    op.drop_index("ix_alerts_incident", table_name="alerts")
    op.create_index("ix_alerts_incident", "alerts", ["site_id", "incident_id", "sent"])
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.drop_index("ix_incidents_queue", table_name="incidents")
    op.create_index("ix_incidents_queue", "incidents", _QUEUE_ORDER)


def downgrade() -> None:
    op.drop_index("ix_incidents_queue", table_name="incidents")
    op.create_index("ix_incidents_queue", "incidents", ["exercise", "acknowledged", "severity_rank", "updated"])
    op.drop_index("ix_incidents_state", table_name="incidents")
    op.drop_index("ix_alerts_incident", table_name="alerts")
    op.create_index("ix_alerts_incident", "alerts", ["site_id", "incident_id"])
    op.drop_index("ix_alerts_site_position", table_name="alerts")
    op.drop_index("ix_alerts_site_sent", table_name="alerts")
    op.drop_index("ix_alerts_site_received", table_name="alerts")
