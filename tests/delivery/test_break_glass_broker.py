"""Break-glass over a real broker: a recipient publishes a signed request on its requests level, the site's own
connection brings it to the desk, the grant widens the next copy the recipient receives of that incident, and
the owner's signed notice arrives on the notifications topic. A forged request changes nothing.

Wired as the service wires it: outbox, audit chain, feedback intake, break-glass table and desk, the
publisher subscribed for both, the delivery sink with a dispatcher consulting the grants; a real Mosquitto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts.request import BreakGlassNotice
from agent.delivery.break_glass import BreakGlassDesk
from agent.delivery.break_glass_table import BreakGlassTable
from agent.delivery.jws import open_envelope, verify_envelope
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.signing import load_signing_key
from agent.delivery.sink import DeliverySink, OutboxStore
from agent.delivery.topics import notifications_topic, requests_topic
from agent.privacy.audit import AuditLog, read_records, verify_log
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.feedback_assembly import feedback_intake
from tests.delivery.break_glass_site import AUTO, LAT, request_bytes, request_id_of, write_site
from tests.delivery.feedback_site import Incidents, Recipient, recipient_key, wait_until

pytestmark = pytest.mark.broker
SITE = "bg-broker"


class Owner:
    """The owner's monitoring: reads the site's notifications topic."""

    def __init__(self, port: int) -> None:
        self.payloads: list[bytes] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, msg: self.payloads.append(bytes(msg.payload))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(notifications_topic("edge", SITE), qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture()
def live(mosquitto, tmp_path: Path) -> Iterator[tuple]:
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_site(tmp_path / "site.yaml", site_id=SITE, keys=jwk, break_glass=AUTO, port=mosquitto.port)
    with ExitStack() as stack:
        outbox = stack.enter_context(Outbox(config.outbox))
        audit = AuditLog(config.policies.audit_log)
        store = OutboxStore(outbox, default_expiry_s=3600)
        feedback = stack.enter_context(feedback_intake(config, audit=audit, store=store))
        grants = stack.enter_context(BreakGlassTable(config.outbox.path))
        desk = stack.enter_context(BreakGlassDesk.from_config(config, table=grants, audit=audit, put=outbox.put))
        subscriptions = [feedback.subscription(), desk.subscription()]
        publisher = stack.enter_context(
            MqttPublisher(config.mqtt, SITE, outbox, subscriptions=subscriptions, on_delivered=feedback.on_delivered)
        )
        publisher.wait_connected(10)
        wait_until(lambda: desk.counters().subscribed, what="the requests subscription")
        dispatcher = dispatcher_from_config(config).with_tables(TermsTables(grants=grants))
        sink = stack.enter_context(DeliverySink(dispatcher, store, audit=audit))
        police = Recipient(mosquitto.port, "edge", SITE, "police", key, kid)
        stack.callback(police.close)
        owner = Owner(mosquitto.port)
        stack.callback(owner.close)
        yield config, audit, desk, feedback, feedback.watch(sink.submit), police, owner


def test_a_request_over_the_broker_widens_the_next_copy_and_the_owner_is_told(live: tuple) -> None:
    config, audit, desk, feedback, submit, police, owner = live
    incidents = Incidents(config)
    submit((incidents.alert("start", 1),))
    wait_until(lambda: len(police.received()) == 1, what="the first alert at the police")
    first = police.received()[0]
    assert first["info"]["area"][0]["circle"].startswith(f"{LAT:.3f},")

    stranger = Ed25519PrivateKey.generate()
    forged = request_bytes(stranger, police.kid, site_id=SITE, incident_id=first["incidents"])
    asked = request_bytes(police.key, police.kid, site_id=SITE, incident_id=first["incidents"],
                          widen=("exact_location",), duration_s=900)  # fmt: skip
    topic = requests_topic("edge", SITE, "police")
    for payload in (forged, asked):
        police.client.publish(topic, payload, qos=1).wait_for_publish(5)
    wait_until(lambda: desk.counters().granted_automatic == 1, what="the grant")
    assert desk.counters().rejected == {"bad_signature": 1}

    submit((incidents.alert("update", 1),))
    wait_until(lambda: len(police.received()) == 2, what="the widened alert at the police")
    assert police.received()[1]["info"]["area"][0]["circle"].startswith(f"{LAT:.5f},")
    wait_until(lambda: owner.payloads, what="the owner's notice")
    opened = open_envelope(owner.payloads[0])
    public = load_signing_key(config.signing.key_file).public_key()
    notice = BreakGlassNotice.model_validate_json(verify_envelope(opened, public))
    assert (notice.event, notice.request_id, notice.granted_by) == ("granted", request_id_of(asked), "automatic")

    assert feedback.wait_idle(10) and desk.wait_idle(10)
    assert verify_log(config.policies.audit_log)[1] is None
    data = [r.data for r in read_records(audit.path)]
    assert [d.get("kind", "sent") for d in data] == [
        "sent", "break_glass_refused", "break_glass_request", "break_glass_granted", "sent"
    ]  # fmt: skip
    assert data[1]["reason"] == "bad_signature" and data[1]["verified"] is False
    assert data[4]["break_glass"] == request_id_of(asked) and data[4]["location"] == "circle:5"
    assert json.loads(opened.payload)["site_id"] == SITE
