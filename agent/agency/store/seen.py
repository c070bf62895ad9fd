"""The receiving store as the verifier's record of accepted alerts: an alert is seen once it is stored.

The ingest service keeps no seen-set of its own (a second replica could not
share it): an alert whose (site id, identifier) row is in `alerts` is a
duplicate. `remember` has nothing left to do, since the caller stored the
alert before acknowledging it; the unique key makes a race between two
replicas store it once (`StoreWriter.add_alert` returns None for the second).
"""

from __future__ import annotations

__all__ = ["StoredAlerts"]

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from agent.agency.seen_store import SeenStoreError
from agent.agency.store.tables import alerts


class StoredAlerts:
    """`SeenLedger` over the `alerts` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def contains(self, site_id: str, alert_id: str) -> bool:
        """Raises: SeenStoreError: the database cannot be read (the message stays unacknowledged)."""
        try:
            with self._engine.connect() as c:
                row = c.execute(
                    select(alerts.c.seq).where(alerts.c.site_id == site_id, alerts.c.alert_id == alert_id)
                ).first()
        except SQLAlchemyError as err:
            raise SeenStoreError(f"the receiving store cannot be read: {err}") from None
        return row is not None

    def remember(self, site_id: str, alert_id: str, sent: datetime) -> bool:
        return True
