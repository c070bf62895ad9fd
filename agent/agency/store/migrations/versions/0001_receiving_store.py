"""The receiving store: sites, alerts, incidents, statuses, changes, users.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-02 03:44:17.539360
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "alerts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=200), nullable=False),
        sa.Column("sent", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("cap_status", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=True),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("severity_rank", sa.SmallInteger(), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=True),
        sa.Column("validation_level", sa.SmallInteger(), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("headline", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("rule_kind", sa.String(length=64), nullable=True),
        sa.Column("zone", sa.String(length=200), nullable=True),
        sa.Column("line", sa.String(length=200), nullable=True),
        sa.Column("camera_id", sa.String(length=200), nullable=True),
        sa.Column("class_name", sa.String(length=64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("sender_name", sa.String(length=200), nullable=True),
        sa.Column("area_desc", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("agreement", sa.String(length=200), nullable=False),
        sa.Column("kid", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("has_snapshot", sa.Boolean(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("site_id", "alert_id", name="uq_alerts_site_alert"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_expires", ["expires"], unique=False)
        batch_op.create_index("ix_alerts_incident", ["site_id", "incident_id"], unique=False)
        batch_op.create_index("ix_alerts_sent", ["sent"], unique=False)

    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("site_id", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "incidents",
        sa.Column("site_id", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=200), nullable=False),
        sa.Column("exercise", sa.Boolean(), nullable=False),
        sa.Column("opened", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("ended", sa.Float(), nullable=True),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("severity_rank", sa.SmallInteger(), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=True),
        sa.Column("validation_level", sa.SmallInteger(), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("headline", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("rule_kind", sa.String(length=64), nullable=True),
        sa.Column("zone", sa.String(length=200), nullable=True),
        sa.Column("line", sa.String(length=200), nullable=True),
        sa.Column("camera_id", sa.String(length=200), nullable=True),
        sa.Column("class_name", sa.String(length=64), nullable=True),
        sa.Column("sender_name", sa.String(length=200), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("last_alert_id", sa.String(length=200), nullable=False),
        sa.Column("has_snapshot", sa.Boolean(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("change", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "incident_id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_change", ["change"], unique=False)
        batch_op.create_index(
            "ix_incidents_queue", ["exercise", "acknowledged", "severity_rank", "updated"], unique=False
        )

    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("state_since", sa.Float(), nullable=True),
        sa.Column("stats", sa.Text(), nullable=True),
        sa.Column("stats_at", sa.Float(), nullable=True),
        sa.Column("first_alert_at", sa.Float(), nullable=True),
        sa.Column("last_alert_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("site_id"),
    )
    op.create_table(
        "statuses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("status_id", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=True),
        sa.Column("operator", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("sent", sa.Float(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("status_id"),
    )
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.create_index("ix_statuses_incident", ["site_id", "incident_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:

    op.drop_table("users")
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.drop_index("ix_statuses_incident")

    op.drop_table("statuses")
    op.drop_table("sites")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_queue")
        batch_op.drop_index("ix_incidents_change")

    op.drop_table("incidents")
    op.drop_table("changes")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_sent")
        batch_op.drop_index("ix_alerts_incident")
        batch_op.drop_index("ix_alerts_expires")

    op.drop_table("alerts")
