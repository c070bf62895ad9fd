"""Everything written to the receiving store: accepted alerts, statuses sent, site health, and the retention purge.

Each write is one transaction. An alert goes in once: the unique (site id,
identifier) key is the durable duplicate check, so two ingest replicas (or
one after a crash and a redelivery) that both hold a copy store it once, and
`add_alert` tells the second it was a duplicate. The alert's incident row is
created by its first alert and updated by each one after (highest severity,
phase, end time), and a row in `changes` marks it for the console's live
queue. Incident state only moves forward through what this recipient sent
(`add_status`).

The same statements run on SQLite and PostgreSQL; the few that differ are
in `agent.agency.store.backends`. Every row is fitted to its columns first
(`fit_row`), so a signed alert that verified is storable on both (the exact
signed bytes, `data` and `message`, are never cut). On PostgreSQL, where
writers run side by side, each takes its change id as late in its
transaction as it can and under a lock held to the commit
(`hold_change_order`), so the console, which reads changes in id order,
never steps over one that commits late.
"""

from __future__ import annotations

__all__ = [
    "DETECTION_LEVEL",
    "VERIFIED_LEVEL",
    "PurgeCounts",
    "StoreWriter",
    "alert_columns",
    "fit_row",
    "insert_or_ignore",
]

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from agent.agency.alert_verifier import AcceptedAlert
from agent.agency.store.backends import (
    dialect_insert,
    fit_row,
    greatest,
    hold_change_order,
    insert_new,
    insert_or_ignore,
    least,
)
from agent.agency.store.database import StoreError
from agent.agency.store.rows import AlertRow, row_of
from agent.agency.store.tables import SEVERITY_RANK, alerts, changes, incidents, sites, statuses
from agent.alerts.status import AlertStatus

# TMA-AVS-01: level 2 is "a person is present, intent unknown" (what a detection alone shows);
# a person who verified it on camera raises it to 3.
DETECTION_LEVEL = 2
VERIFIED_LEVEL = 3
# Statuses after which an incident leaves the live queue.
_DONE = ("dismissed", "closed")


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    alerts: int
    incidents: int
    statuses: int


def _circle(data: dict[str, Any]) -> tuple[float | None, float | None, str | None]:
    """Latitude and longitude of the first CAP area circle, and its description."""
    areas = (data.get("info") or {}).get("area") or []
    if not areas or not isinstance(areas[0], dict):
        return None, None, None
    area = areas[0]
    desc = area.get("areaDesc") if isinstance(area.get("areaDesc"), str) else None
    circle = area.get("circle")
    if not isinstance(circle, str):
        return None, None, desc
    try:
        point = circle.split()[0]
        lat_text, lon_text = point.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        return None, None, desc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None, desc
    return lat, lon, desc


def _epoch(value: datetime) -> float:
    return value.timestamp()


def alert_columns(accepted: AcceptedAlert, message: bytes, received_at: float) -> dict[str, Any]:
    """The `alerts` row of an accepted alert (every field the view lacks left empty)."""
    view, data = accepted.alert, accepted.data
    info = data.get("info") or {}
    d = data.get("detection") or {}
    lat, lon, area_desc = _circle(data)
    snapshot = data.get("snapshot") or {}
    severity = view.severity
    columns = {
        "site_id": accepted.site.site_id,
        "alert_id": view.identifier,
        "incident_id": view.incident_id or view.identifier,
        "sent": _epoch(view.sent),
        "received_at": received_at,
        "expires": _epoch(view.expires),
        "cap_status": data.get("status") if isinstance(data.get("status"), str) else "Actual",
        "msg_type": data.get("msgType"),
        "phase": d.get("phase"),
        "severity": severity,
        "severity_rank": SEVERITY_RANK.get(severity or "", 0),
        "certainty": info.get("certainty"),
        "validation_level": _level(data.get("validation_level")),
        "event": view.event,
        "headline": info.get("headline"),
        "rule": d.get("rule"),
        "rule_kind": d.get("rule_kind"),
        "zone": d.get("zone"),
        "line": d.get("line"),
        "camera_id": d.get("camera_id"),
        "class_name": d.get("class_name"),
        "count": d.get("count"),
        "confidence": d.get("confidence"),
        "sender_name": info.get("senderName"),
        "area_desc": area_desc,
        "lat": lat,
        "lon": lon,
        "recipient": view.recipient,
        "agreement": view.agreement,
        "kid": accepted.kid,
        "topic": accepted.topic,
        "has_snapshot": bool(snapshot.get("data_base64")),
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        "message": message.decode("ascii", errors="replace"),
    }
    return fit_row(alerts, columns)


class StoreWriter:
    """The ingest service's and the console's writes (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_alert(self, accepted: AcceptedAlert, message: bytes, received_at: float) -> AlertRow | None:
        """Store an accepted alert and update its incident; None when it was stored before.

        A call repeated with the same `received_at` after a failure finds its own row when the
        failed attempt's commit did go through (the connection broke after the commit): that
        row is returned, not None, so the caller still answers `received` for it once.

        Raises:
            StoreError: the database failed (nothing was stored).
        """
        row = alert_columns(accepted, message, received_at)
        key = (alerts.c.site_id == row["site_id"], alerts.c.alert_id == row["alert_id"])
        try:
            with self.engine.begin() as c:
                stored = insert_new(c, alerts, row)
                if stored is None:
                    earlier = c.execute(select(alerts).where(*key, alerts.c.received_at == received_at)).first()
                    return row_of(AlertRow, earlier) if earlier is not None else None
                c.execute(
                    _site_heard(c.dialect.name),
                    {"site_id": row["site_id"], "name": row["sender_name"], "at": received_at},
                )
                change = self._change(c, row["site_id"], row["incident_id"], "alert", received_at)
                self._touch_incident(c, row, change)
        except SQLAlchemyError as err:
            raise StoreError(f"alert {row['alert_id']} of site {row['site_id']} not stored: {err}") from None
        return row_of(AlertRow, stored)

    @staticmethod
    def _change(c: Connection, site_id: str, incident_id: str | None, kind: str, at: float) -> int:
        """A new change id; on PostgreSQL the ids commit in order (see the module docstring)."""
        hold_change_order(c)
        result = c.execute(changes.insert().values(at=at, site_id=site_id, incident_id=incident_id, kind=kind))
        key = result.inserted_primary_key
        return int(key[0]) if key is not None else 0

    @staticmethod
    def _touch_incident(c: Connection, row: dict[str, Any], change: int) -> None:
        key = (incidents.c.site_id == row["site_id"], incidents.c.incident_id == row["incident_id"])
        ended = row["sent"] if row["phase"] == "end" else None
        fresh = {
            "site_id": row["site_id"],
            "incident_id": row["incident_id"],
            "exercise": row["cap_status"] == "Exercise",
            "opened": row["sent"],
            "updated": row["sent"],
            "ended": ended,
            "alert_count": 1,
            "last_alert_id": row["alert_id"],
            "state": "new",
            "acknowledged": False,
            "change": change,
            **{k: row[k] for k in _SUMMARY},
        }
        if insert_or_ignore(c, incidents, fresh):
            return
        newer = row["sent"] >= select(incidents.c.updated).where(*key).scalar_subquery()
        values: dict[str, Any] = {
            "alert_count": incidents.c.alert_count + 1,
            "change": change,
            "opened": least(c, incidents.c.opened, row["sent"]),
            "updated": greatest(c, incidents.c.updated, row["sent"]),
            "expires": greatest(c, incidents.c.expires, row["expires"]),
            "has_snapshot": incidents.c.has_snapshot | row["has_snapshot"],
            "severity_rank": greatest(c, incidents.c.severity_rank, row["severity_rank"]),
            "validation_level": greatest(c, incidents.c.validation_level, row["validation_level"]),
            "severity": case(
                (incidents.c.severity_rank < row["severity_rank"], row["severity"]), else_=incidents.c.severity
            ),
        }
        if ended is not None:
            values["ended"] = ended
        # What the newest alert says wins (alerts may arrive out of order after a redelivery).
        for name, source in _NEWEST.items():
            values[name] = case((newer, row[source]), else_=incidents.c[name])
        c.execute(update(incidents).where(*key).values(values))

    def add_status(self, status: AlertStatus, *, published: bool, error: str | None = None) -> None:
        """Record a status sent to a site and move its incident's state.

        Raises:
            StoreError: the database failed.
        """
        sent = _epoch(status.sent)
        key = (incidents.c.site_id == status.site_id, incidents.c.incident_id == status.incident_id)
        try:
            with self.engine.begin() as c:
                row = fit_row(
                    statuses,
                    {
                        "status_id": status.status_id,
                        "site_id": status.site_id,
                        "incident_id": status.incident_id,
                        "alert_id": status.alert_id,
                        "status": status.status,
                        "disposition": status.disposition,
                        "operator": status.operator,
                        "note": status.note,
                        "sent": sent,
                        "published": published,
                        "error": error,
                    },
                )
                if not insert_or_ignore(c, statuses, row) or not published or status.status == "received":
                    return
                change = self._change(c, status.site_id, status.incident_id, "status", sent)
                values: dict[str, Any] = {"state": status.status, "change": change, "acknowledged": True}
                if status.status == "verified":
                    values["validation_level"] = greatest(c, incidents.c.validation_level, status.verified_level)
                c.execute(update(incidents).where(*key).values(values))
        except SQLAlchemyError as err:
            raise StoreError(f"status {status.status_id} not recorded: {err}") from None

    def set_site_state(self, site_id: str, state: str, at: float) -> None:
        """The site's retained status (online, offline, stopped) as of `at`; `state_since` moves on a change only."""
        self._upsert_site(
            site_id,
            {
                "state": state,
                "state_since": case((sites.c.state == state, sites.c.state_since), else_=at),
            },
            {"state": state, "state_since": at},
            at,
        )

    def set_site_stats(self, site_id: str, stats: dict[str, Any], at: float) -> None:
        """The site's last stats message (already reduced to known fields by the caller)."""
        text = json.dumps(stats, separators=(",", ":"))
        self._upsert_site(site_id, {"stats": text, "stats_at": at}, {"stats": text, "stats_at": at}, at)

    def _upsert_site(self, site_id: str, on_update: dict[str, Any], on_insert: dict[str, Any], at: float) -> None:
        try:
            with self.engine.begin() as c:
                if not insert_or_ignore(c, sites, {"site_id": site_id, **on_insert}):
                    c.execute(update(sites).where(sites.c.site_id == site_id).values(on_update))
                self._change(c, site_id, None, "site", at)
        except SQLAlchemyError as err:
            raise StoreError(f"site {site_id} not updated: {err}") from None

    def purge_expired(self, now: float) -> PurgeCounts:
        """Delete alerts past their `expires`, then incidents with no alert left and their statuses.

        Raises:
            StoreError: the database failed (nothing was deleted).
        """
        try:
            with self.engine.begin() as c:
                gone = c.execute(delete(alerts).where(alerts.c.expires <= now)).rowcount
                left = select(alerts.c.seq).where(
                    alerts.c.site_id == incidents.c.site_id, alerts.c.incident_id == incidents.c.incident_id
                )
                status_left = select(alerts.c.seq).where(
                    alerts.c.site_id == statuses.c.site_id, alerts.c.incident_id == statuses.c.incident_id
                )
                status_gone = c.execute(delete(statuses).where(~status_left.exists())).rowcount
                incidents_gone = c.execute(delete(incidents).where(~left.exists())).rowcount
                c.execute(delete(changes).where(changes.c.at <= now - 86400))
        except SQLAlchemyError as err:
            raise StoreError(f"retention purge failed: {err}") from None
        return PurgeCounts(gone, incidents_gone, status_gone)


@functools.cache
def _site_heard(dialect: str) -> Insert:
    """A site's row on each alert: made by its first, `last_alert_at` moved by each (one statement, built once)."""
    insert = dialect_insert(dialect, sites).values(
        site_id=bindparam("site_id"),
        name=bindparam("name"),
        first_alert_at=bindparam("at"),
        last_alert_at=bindparam("at"),
    )
    return insert.on_conflict_do_update(
        index_elements=[sites.c.site_id],
        set_={
            "last_alert_at": insert.excluded.last_alert_at,
            "name": func.coalesce(sites.c.name, insert.excluded.name),
        },
    )


# Incident fields the newest alert sets, and the alert column each comes from.
_NEWEST = {
    "phase": "phase",
    "last_alert_id": "alert_id",
    "headline": "headline",
    "lat": "lat",
    "lon": "lon",
    "certainty": "certainty",
}
# Incident fields taken from its first alert (and the newest for some, see _touch_incident).
_SUMMARY = (
    "phase",
    "severity",
    "severity_rank",
    "certainty",
    "validation_level",
    "event",
    "headline",
    "rule",
    "rule_kind",
    "zone",
    "line",
    "camera_id",
    "class_name",
    "sender_name",
    "lat",
    "lon",
    "has_snapshot",
    "expires",
)


def _level(value: Any) -> int:
    """The alert's own validation level (2-4; a site that sends none, or nonsense, is at detection level)."""
    if isinstance(value, int) and not isinstance(value, bool) and DETECTION_LEVEL <= value <= 4:
        return value
    return DETECTION_LEVEL
