"""What the console reads from the receiving store: the queue, incidents, alerts, sites, searches, changes.

Every query is bounded (a `limit`), so a page costs the same with 100 or
100,000 stored alerts, and each runs on its own short connection: the ingest
service keeps writing meanwhile.
"""

from __future__ import annotations

__all__ = ["DONE_STATES", "StoreReader"]

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, func, select

from agent.agency.store.rows import AlertFilter, AlertRow, IncidentRow, SiteRow, StatusRow, row_of
from agent.agency.store.tables import alerts, changes, incidents, sites, statuses

# Incidents in these states have left the live queue.
DONE_STATES = ("dismissed", "closed")


class StoreReader:
    """Read-only queries for the console (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _all(self, statement: Select[Any]) -> Sequence[Any]:
        with self.engine.connect() as c:
            return c.execute(statement).all()

    def queue(self, *, exercise: bool = False, limit: int = 200) -> list[IncidentRow]:
        """Open incidents: unacknowledged first, then by severity, validation level and time, newest first.

        `exercise` True gives the training view's (exercise incidents only); False never includes them.
        """
        statement = (
            select(incidents)
            .where(incidents.c.exercise == exercise, incidents.c.state.not_in(DONE_STATES))
            .order_by(
                incidents.c.acknowledged,
                incidents.c.severity_rank.desc(),
                incidents.c.validation_level.desc(),
                incidents.c.updated.desc(),
            )
            .limit(limit)
        )
        return [row_of(IncidentRow, r) for r in self._all(statement)]

    def incident(self, site_id: str, incident_id: str) -> IncidentRow | None:
        rows = self._all(
            select(incidents).where(incidents.c.site_id == site_id, incidents.c.incident_id == incident_id)
        )
        return row_of(IncidentRow, rows[0]) if rows else None

    def incident_alerts(self, site_id: str, incident_id: str, limit: int = 500) -> list[AlertRow]:
        """The incident's alerts, oldest first (its timeline: start, updates, end)."""
        statement = (
            select(alerts)
            .where(alerts.c.site_id == site_id, alerts.c.incident_id == incident_id)
            .order_by(alerts.c.sent, alerts.c.seq)
            .limit(limit)
        )
        return [row_of(AlertRow, r) for r in self._all(statement)]

    def incident_statuses(self, site_id: str, incident_id: str, limit: int = 500) -> list[StatusRow]:
        """Statuses sent about the incident's alerts, oldest first."""
        statement = (
            select(statuses)
            .where(statuses.c.site_id == site_id, statuses.c.incident_id == incident_id)
            .order_by(statuses.c.sent, statuses.c.id)
            .limit(limit)
        )
        return [row_of(StatusRow, r) for r in self._all(statement)]

    def alert(self, site_id: str, alert_id: str) -> AlertRow | None:
        rows = self._all(select(alerts).where(alerts.c.site_id == site_id, alerts.c.alert_id == alert_id))
        return row_of(AlertRow, rows[0]) if rows else None

    def search(self, where: AlertFilter, *, limit: int = 100, offset: int = 0) -> list[AlertRow]:
        """Alerts matching `where`, newest first."""
        statement = select(alerts)
        if where.state is not None:
            statement = statement.join(
                incidents,
                (incidents.c.site_id == alerts.c.site_id) & (incidents.c.incident_id == alerts.c.incident_id),
            ).where(incidents.c.state == where.state)
        if where.since is not None:
            statement = statement.where(alerts.c.sent >= where.since)
        if where.until is not None:
            statement = statement.where(alerts.c.sent < where.until)
        for column, value in ((alerts.c.site_id, where.site_id), (alerts.c.rule, where.rule)):
            if value is not None:
                statement = statement.where(column == value)
        if where.severity is not None:
            statement = statement.where(alerts.c.severity == where.severity)
        if where.exercise is not None:
            exercise = alerts.c.cap_status == "Exercise"
            statement = statement.where(exercise if where.exercise else ~exercise)
        statement = statement.order_by(alerts.c.sent.desc(), alerts.c.seq.desc()).limit(limit).offset(offset)
        return [row_of(AlertRow, r) for r in self._all(statement)]

    def sites(self) -> list[SiteRow]:
        return [row_of(SiteRow, r) for r in self._all(select(sites).order_by(sites.c.site_id))]

    def site(self, site_id: str) -> SiteRow | None:
        rows = self._all(select(sites).where(sites.c.site_id == site_id))
        return row_of(SiteRow, rows[0]) if rows else None

    def alerts_per_site(self, since: float) -> dict[str, int]:
        """Alerts received from each site since `since`."""
        statement = (
            select(alerts.c.site_id, func.count()).where(alerts.c.received_at >= since).group_by(alerts.c.site_id)
        )
        return {site_id: int(n) for site_id, n in self._all(statement)}

    def site_positions(self, limit: int = 10_000) -> dict[str, tuple[float, float]]:
        """Each site's latitude and longitude: those of the last alert received from it that had a position.

        A site's place is only ever what its alerts say (their CAP area circle), so the
        newest one stands for where it is now.
        """
        with_position = (alerts.c.lat.is_not(None), alerts.c.lon.is_not(None))
        latest = select(func.max(alerts.c.seq).label("seq")).where(*with_position).group_by(alerts.c.site_id).subquery()
        statement = (
            select(alerts.c.site_id, alerts.c.lat, alerts.c.lon)
            .join(latest, alerts.c.seq == latest.c.seq)
            .order_by(alerts.c.site_id)
            .limit(limit)
        )
        return {site_id: (float(lat), float(lon)) for site_id, lat, lon in self._all(statement)}

    def last_change(self) -> int:
        """The newest change id (0: none yet); the live queue reads what comes after it."""
        rows = self._all(select(func.max(changes.c.id)))
        return int(rows[0][0] or 0)

    def changed_incidents(self, after: int, limit: int = 200) -> list[IncidentRow]:
        """Incidents changed since change id `after`, oldest change first."""
        statement = select(incidents).where(incidents.c.change > after).order_by(incidents.c.change).limit(limit)
        return [row_of(IncidentRow, r) for r in self._all(statement)]

    def count_alerts(self) -> int:
        return int(self._all(select(func.count()).select_from(alerts))[0][0])

    def unanswered(self, received_from: float, received_until: float, limit: int = 1000) -> list[AlertRow]:
        """Alerts stored in that time with no `received` status recorded (an ingest that died in between).

        Run once at an ingest's start, so a scan of the time range is affordable.
        """
        answered = (
            select(statuses.c.id)
            .where(
                statuses.c.site_id == alerts.c.site_id,
                statuses.c.incident_id == alerts.c.incident_id,
                statuses.c.alert_id == alerts.c.alert_id,
                statuses.c.status == "received",
            )
            .exists()
        )
        statement = (
            select(alerts)
            .where(alerts.c.received_at >= received_from, alerts.c.received_at < received_until, ~answered)
            .order_by(alerts.c.received_at)
            .limit(limit)
        )
        return [row_of(AlertRow, r) for r in self._all(statement)]

    def alerts_after(self, seq: int, limit: int = 200) -> list[AlertRow]:
        """Alerts stored after storage number `seq`, in the order they were stored."""
        statement = select(alerts).where(alerts.c.seq > seq).order_by(alerts.c.seq).limit(limit)
        return [row_of(AlertRow, r) for r in self._all(statement)]
