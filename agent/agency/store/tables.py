"""The receiving side's tables, as SQLAlchemy Core metadata: what the ingest service writes and the console reads.

Times are seconds since the epoch (UTC) as floats, the same in SQLite and
PostgreSQL. The schema is created and changed only by the Alembic
migrations in `agent/agency/store/migrations/`; these definitions follow
them and are what queries are written against.

- `sites`: one row per site heard from: its retained `online` / `offline` /
  `stopped` state and since when, its last stats message, first and last alert.
- `alerts`: every accepted alert once (unique site id + identifier: the
  durable duplicate check, shared by every ingest replica), with the fields
  the console lists and filters on, the signed payload as JSON (`data`) and
  the JWS exactly as it arrived (`message`: the proof of what came).
- `incidents`: one row per (site, incident id) summarising its alerts (start,
  updates, end), its highest severity, and what the recipient did about it
  (`state`: the last status sent, `acknowledged`, `validation_level`).
- `statuses`: every status this recipient sent to a site (the automatic
  `received` and each one from the console), with who sent it and whether the
  broker took it.
- `changes`: an ever-growing id per write that touched an incident or a site;
  the console's live queue follows it (several processes write, so an
  in-process notification would miss other writers).
- `users`: console accounts (name, role, Argon2 hash).
"""

from __future__ import annotations

__all__ = [
    "SEVERITY_RANK",
    "alerts",
    "changes",
    "incidents",
    "metadata",
    "sites",
    "statuses",
    "users",
]

from typing import Final

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# CAP severities, most urgent highest; anything else (or none) ranks 0.
SEVERITY_RANK: Final = {"Extreme": 4, "Severe": 3, "Moderate": 2, "Minor": 1}

_ID = 200
metadata = MetaData()

sites = Table(
    "sites",
    metadata,
    Column("site_id", String(_ID), primary_key=True),
    Column("name", String(200)),
    Column("state", String(16)),
    Column("state_since", Float),
    Column("stats", Text),
    Column("stats_at", Float),
    Column("first_alert_at", Float),
    Column("last_alert_at", Float),
)

alerts = Table(
    "alerts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("site_id", String(_ID), nullable=False),
    Column("alert_id", String(_ID), nullable=False),
    Column("incident_id", String(_ID), nullable=False),
    Column("sent", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("cap_status", String(16), nullable=False),
    Column("msg_type", String(16)),
    Column("phase", String(8)),
    Column("severity", String(16)),
    Column("severity_rank", SmallInteger, nullable=False),
    Column("certainty", String(16)),
    Column("validation_level", SmallInteger, nullable=False),
    Column("event", String(200)),
    Column("headline", Text),
    Column("rule", String(_ID)),
    Column("rule_kind", String(64)),
    Column("zone", String(_ID)),
    Column("line", String(_ID)),
    Column("camera_id", String(_ID)),
    Column("class_name", String(64)),
    Column("count", Integer),
    Column("confidence", Float),
    Column("sender_name", String(200)),
    Column("area_desc", Text),
    Column("lat", Float),
    Column("lon", Float),
    Column("recipient", String(_ID), nullable=False),
    Column("agreement", String(_ID), nullable=False),
    Column("kid", String(_ID), nullable=False),
    Column("topic", Text, nullable=False),
    Column("has_snapshot", Boolean, nullable=False),
    Column("data", Text, nullable=False),
    Column("message", Text, nullable=False),
    UniqueConstraint("site_id", "alert_id", name="uq_alerts_site_alert"),
    Index("ix_alerts_incident", "site_id", "incident_id", "sent"),
    Index("ix_alerts_sent", "sent"),
    Index("ix_alerts_expires", "expires"),
    # Migration 0002: alerts per site and day, site positions, search by site.
    Index("ix_alerts_site_received", "site_id", "received_at"),
    Index("ix_alerts_site_sent", "site_id", "sent"),
    Index(
        "ix_alerts_site_position",
        "site_id",
        sqlite_where=text("lat IS NOT NULL AND lon IS NOT NULL"),
        postgresql_where=text("lat IS NOT NULL AND lon IS NOT NULL"),
    ),
)

incidents = Table(
    "incidents",
    metadata,
    Column("site_id", String(_ID), primary_key=True),
    Column("incident_id", String(_ID), primary_key=True),
    Column("exercise", Boolean, nullable=False),
    Column("opened", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("ended", Float),
    Column("phase", String(8)),
    Column("severity", String(16)),
    Column("severity_rank", SmallInteger, nullable=False),
    Column("certainty", String(16)),
    Column("validation_level", SmallInteger, nullable=False),
    Column("event", String(200)),
    Column("headline", Text),
    Column("rule", String(_ID)),
    Column("rule_kind", String(64)),
    Column("zone", String(_ID)),
    Column("line", String(_ID)),
    Column("camera_id", String(_ID)),
    Column("class_name", String(64)),
    Column("sender_name", String(200)),
    Column("lat", Float),
    Column("lon", Float),
    Column("alert_count", Integer, nullable=False),
    Column("last_alert_id", String(_ID), nullable=False),
    Column("has_snapshot", Boolean, nullable=False),
    Column("expires", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("acknowledged", Boolean, nullable=False),
    Column("change", Integer, nullable=False),
    # The live queue's whole order (migration 0002), so its page reads the index alone.
    Index(
        "ix_incidents_queue",
        "exercise",
        "acknowledged",
        text("severity_rank DESC"),
        text("validation_level DESC"),
        text("updated DESC"),
        "state",
    ),
    Index("ix_incidents_state", "state"),
    Index("ix_incidents_change", "change"),
)

statuses = Table(
    "statuses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status_id", String(_ID), nullable=False, unique=True),
    Column("site_id", String(_ID), nullable=False),
    Column("incident_id", String(_ID), nullable=False),
    Column("alert_id", String(_ID), nullable=False),
    Column("status", String(16), nullable=False),
    Column("disposition", String(16)),
    Column("operator", String(100)),
    Column("note", Text),
    Column("sent", Float, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("error", Text),
    Index("ix_statuses_incident", "site_id", "incident_id"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("site_id", String(_ID), nullable=False),
    Column("incident_id", String(_ID)),
    Column("kind", String(16), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)
