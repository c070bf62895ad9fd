"""The ingest service on PostgreSQL when the database goes away: it waits and retries, never stops, and once
the database is back every alert is stored once and answered `received` once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.agency.store import StoreReader
from agent.delivery.topics import feedback_filter
from tests.agency.receiving import Collector
from tests.agency.receiving_setup import running_ingest, write_receiving_config
from tests.agency.test_ingest import wait_until
from tests.agency.v2_alerts import Site, publish_raw, signed_alert
from tests.brokers import MosquittoBroker
from tests.pg import PostgresServer

pytestmark = pytest.mark.broker


def test_ingest_waits_for_postgresql_at_start_and_through_a_restart(
    tmp_path: Path, broker: MosquittoBroker, registry_file: Path, north: Site
) -> None:
    feedback = Collector(broker.port, feedback_filter("edge", north.site_id))
    with PostgresServer() as pg:  # its own server: this test stops it
        url = pg.create_database()
        config = write_receiving_config(
            tmp_path / "rx", broker.port, registry_file, client_id="ingest-pg-restart", database=url
        )
        pg.stop()
        threading.Timer(1.0, pg.start).start()  # the database comes up after the service
        messages = [signed_alert(north, n) for n in range(1, 7)]
        with running_ingest(config) as service:
            reader = StoreReader(service.engine)
            publish_raw(broker.port, [(north.topic(), m) for m in messages[:3]])
            assert wait_until(lambda: service.counts.statuses == 3)
            pg.stop()
            publish_raw(broker.port, [(north.topic(), m) for m in messages[3:]])
            time.sleep(1.5)  # the service holds them, unacknowledged, and retries
            assert service._thread is not None and service._thread.is_alive()
            assert service.counts.stored == 3
            pg.start()
            assert wait_until(lambda: service.counts.statuses == 6, 20)
            publish_raw(broker.port, [(north.topic(), messages[4])])  # a replay
            assert wait_until(lambda: service.receiver.duplicates == 1)
            assert reader.count_alerts() == 6
    assert service._failure is None
    received = feedback.wait_for(6)
    feedback.close()
    assert len(received) == 6  # one `received` for each alert, whatever failed in between
