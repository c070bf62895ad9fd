"""The ingest service against a real Mosquitto: verified alerts stored once, `received` sent and recorded,
site health kept, nothing missed while it is away, forgeries and replays not stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import delete, func, select, update

from agent.agency.receiving_config import load_receiving_config
from agent.agency.store import AlertFilter, StoreReader
from agent.agency.store.tables import alerts, statuses
from agent.delivery.jws import open_envelope
from agent.delivery.topics import feedback_filter, stats_topic, status_topic
from tests.agency.receiving import Collector
from tests.agency.receiving_setup import running_ingest, write_receiving_config
from tests.agency.v2_alerts import Site, alert_data, publish_raw, sign, signed_alert
from tests.brokers import MosquittoBroker

pytestmark = pytest.mark.broker


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _count(reader: StoreReader, table: object) -> int:
    with reader.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture()
def config_file(tmp_path: Path, broker: MosquittoBroker, registry_file: Path, request: pytest.FixtureRequest) -> Path:
    return write_receiving_config(
        tmp_path / "rx", broker.port, registry_file, client_id=f"ingest-{request.node.name}"[:60]
    )


def test_alerts_are_stored_once_and_answered_received(config_file: Path, broker: MosquittoBroker, north: Site) -> None:
    feedback = Collector(broker.port, feedback_filter("edge", north.site_id))
    messages = [signed_alert(north, n) for n in range(1, 4)]
    with running_ingest(config_file) as service:
        reader = StoreReader(service.engine)
        publish_raw(broker.port, [(north.topic(), m) for m in messages])
        publish_raw(broker.port, [(north.topic(), messages[0])])  # a replay
        assert wait_until(lambda: _count(reader, statuses) == 3)
        time.sleep(0.3)
    feedback.wait_for(3)
    feedback.close()
    assert _count(reader, alerts) == 3
    stored = reader.search(AlertFilter(site_id=north.site_id))
    # The JWS exactly as it arrived is kept: anyone can verify it again with the site's public key.
    assert {a.message.encode() for a in stored} == set(messages)
    assert all(open_envelope(a.message.encode()).kid == north.kid for a in stored)
    assert len(feedback.messages) == 3  # one `received` per alert, none for the replay
    sent = [json.loads(open_envelope(p).payload) for _, p in feedback.messages]
    assert {s["alert_id"] for s in sent} == {a.alert_id for a in stored}
    assert {s["status"] for s in sent} == {"received"}
    history = reader.incident_statuses(north.site_id, stored[0].incident_id)
    assert [h.status for h in history] == ["received"] and history[0].published


def test_forged_and_expired_alerts_are_not_stored(
    config_file: Path, broker: MosquittoBroker, north: Site, south: Site
) -> None:
    forged = sign(south.key, alert_data(north.site_id, 1))  # south's key, claiming north
    expired = sign(north.key, alert_data(north.site_id, 2, ttl_s=-10))
    with running_ingest(config_file) as service:
        publish_raw(broker.port, [(north.topic(), forged), (north.topic(), expired), (north.topic(), b"{not json")])
        publish_raw(broker.port, [(north.topic(), signed_alert(north, 3))])
        reader = StoreReader(service.engine)
        assert wait_until(lambda: reader.count_alerts() == 1)
        assert wait_until(lambda: service.rejected == 3)
    assert [a.sender_name for a in reader.search(AlertFilter())] == [f"Site {north.site_id}"]


def test_site_health_is_kept_from_the_retained_status_and_stats(
    config_file: Path, broker: MosquittoBroker, south: Site
) -> None:
    stats = {
        "site_id": south.site_id,
        "uptime_s": 12.5,
        "outbox_depth": 3,
        "outbox_delivered": 40,
        "cameras": [{"camera_id": "gate", "state": "running", "achieved_fps": 4.9, "target_fps": 5, "x": [1]}],
        "secret": "dropped",
    }
    client_topic = status_topic("edge", south.site_id)
    _publish_retained(broker.port, client_topic, b"online")
    with running_ingest(config_file) as service:
        reader = StoreReader(service.engine)
        assert wait_until(lambda: (s := reader.site(south.site_id)) is not None and s.state == "online")
        publish_raw(broker.port, [(stats_topic("edge", south.site_id), json.dumps(stats).encode())])
        publish_raw(broker.port, [(client_topic, b"<b>bogus</b>")])  # not a state word: ignored
        assert wait_until(lambda: (s := reader.site(south.site_id)) is not None and s.stats is not None)
    site = reader.site(south.site_id)
    assert site is not None and site.state == "online"
    kept = site.stats_data()
    assert kept["outbox_depth"] == 3 and kept["cameras"] == [
        {"camera_id": "gate", "state": "running", "target_fps": 5.0, "achieved_fps": 4.9, "inference_ms": None}
    ]
    assert "secret" not in kept
    _publish_retained(broker.port, client_topic, b"")


def test_alerts_sent_while_ingest_is_away_arrive_after_restart(
    config_file: Path, broker: MosquittoBroker, north: Site
) -> None:
    config = load_receiving_config(config_file)
    with running_ingest(config):
        pass  # the broker now keeps the persistent session
    publish_raw(broker.port, [(north.topic(), signed_alert(north, n)) for n in (7, 8)])
    with running_ingest(config) as service:
        reader = StoreReader(service.engine)
        assert wait_until(lambda: reader.count_alerts() == 2)


def test_an_alert_a_killed_ingest_left_unanswered_is_answered_received_at_the_next_start(
    config_file: Path, broker: MosquittoBroker, north: Site
) -> None:
    config = load_receiving_config(config_file)
    with running_ingest(config) as service:
        reader = StoreReader(service.engine)
        publish_raw(broker.port, [(north.topic(), signed_alert(north, n)) for n in (1, 2)])
        assert wait_until(lambda: _count(reader, statuses) == 2)
    (owed,) = reader.search(AlertFilter(site_id=north.site_id))[:1]
    # What a kill after the broker's acknowledgement and before `received` leaves: the alert, no answer.
    with service.engine.begin() as c:
        c.execute(delete(statuses).where(statuses.c.alert_id == owed.alert_id))
        c.execute(update(alerts).values(received_at=alerts.c.received_at - 120))
    feedback = Collector(broker.port, feedback_filter("edge", north.site_id))
    with running_ingest(config) as service:
        feedback.wait_for(1)
        time.sleep(0.3)
    feedback.close()
    sent = [json.loads(open_envelope(p).payload) for _, p in feedback.messages]
    assert [(s["alert_id"], s["status"]) for s in sent] == [(owed.alert_id, "received")]
    history = reader.incident_statuses(north.site_id, owed.incident_id)
    assert [h.status for h in history if h.alert_id == owed.alert_id] == ["received"]
    assert _count(reader, statuses) == 2


def _publish_retained(port: int, topic: str, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
