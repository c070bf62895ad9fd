"""At an ingest's start: the `received` a killed ingest owed, sent after all.

The ingest stores an alert, acknowledges it to the broker, then sends and
records its `received`. An ingest killed between the acknowledgement and the
record leaves an alert the broker will not deliver again and a site that
never hears it arrived. The alert's row is the durable fact, so at start
every alert stored in the last `LOOK_BACK_S` without a recorded `received`
is answered now: signed, published on its site's feedback topic (one
connection per status, `status_sender.broker_publisher`) and recorded.
Alerts stored in the last `SETTLE_S` are left to whichever replica is
answering them right now. A `received` sent twice (the first one went out
just before the kill) is harmless: the site counts an alert's first one.
"""

from __future__ import annotations

__all__ = ["LOOK_BACK_S", "SETTLE_S", "answer_unanswered"]

import logging
import time

from sqlalchemy import Engine

from agent.agency.receiving_config import ReceivingConfig
from agent.agency.status_sender import StatusSigner, broker_publisher
from agent.agency.store import StoreReader, StoreWriter
from agent.agency.trust_registry import TrustRegistry
from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.agency.ingest")
LOOK_BACK_S = 24 * 3600.0
SETTLE_S = 30.0


def answer_unanswered(
    config: ReceivingConfig,
    engine: Engine,
    registry: TrustRegistry,
    signer: StatusSigner,
    *,
    now: float | None = None,
) -> int:
    """Send and record `received` for every stored alert that has none (see the module docstring); how many.

    Raises:
        StoreError: the store cannot be read or written (the caller retries).
    """
    at = time.time() if now is None else now
    rows = StoreReader(engine).unanswered(at - LOOK_BACK_S, at - SETTLE_S)
    if not rows:
        return 0
    send = broker_publisher(config, registry, signer)
    writer = StoreWriter(engine)
    answered = 0
    for row in rows:
        status = signer.make(site_id=row.site_id, alert_id=row.alert_id, incident_id=row.incident_id, status="received")
        try:
            send(status)
        except AgentError as err:  # the broker is away: the next start tries again
            log_event(_log, "received_not_sent", logging.WARNING, alert_id=row.alert_id, error=str(err))
            break
        writer.add_status(status, published=True)
        answered += 1
    log_event(_log, "received_sent_at_start", logging.WARNING, alerts=answered, unanswered=len(rows))
    return answered
