"""The receiving store as the verifier's record of accepted alerts: an alert is seen once it is stored.

The ingest service keeps no seen-set of its own (a second replica could not
share it): an alert whose (site id, identifier) row is in `alerts` is a
duplicate. `remember` has nothing left to do, since the caller stored the
alert before acknowledging it; the unique key makes a race between two
replicas store it once (`StoreWriter.add_alert` returns None for the second).

This look-up only answers early what the write decides anyway, so a
database that cannot be read (PostgreSQL restarting, SQLite locked past its
busy timeout) is not an error here: the answer is "not seen", the alert goes
on to `add_alert`, which the ingest service retries until the database is
back, and the message stays unacknowledged meanwhile. Nothing is lost and
nothing is stored twice.
"""

from __future__ import annotations

__all__ = ["StoredAlerts"]

import logging
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from agent.agency.store.tables import alerts
from agent.logs import log_event

_log = logging.getLogger("agent.agency.store.seen")


class StoredAlerts:
    """`SeenLedger` over the `alerts` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.unreadable = 0  # look-ups the database failed (each answered "not seen")

    def contains(self, site_id: str, alert_id: str) -> bool:
        """Whether the alert is stored; False too when the database cannot be read (the write decides)."""
        try:
            with self._engine.connect() as c:
                row = c.execute(
                    select(alerts.c.seq).where(alerts.c.site_id == site_id, alerts.c.alert_id == alert_id)
                ).first()
        except SQLAlchemyError as err:
            self.unreadable += 1
            log_event(_log, "seen_check_failed", logging.WARNING, site_id=site_id, alert_id=alert_id, error=str(err))
            return False
        return row is not None

    def remember(self, site_id: str, alert_id: str, sent: datetime) -> bool:
        return True
