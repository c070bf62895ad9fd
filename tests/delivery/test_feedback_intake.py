"""Statuses a recipient sends back reach the site over its own MQTT connection: believed only when signed
by the recipient's key and about an alert the site sent it; counted, timed and kept in the audit chain.

Real parts throughout (see `tests/delivery/feedback_site.py`): a Mosquitto broker, the outbox, publisher,
delivery sink, dispatcher, audit log and feedback intake wired as the service wires them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.jws import TYP_ALERT, key_id_for, sign_envelope
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.subscriptions import Subscription
from agent.privacy.audit import read_records, verify_log
from tests.delivery.feedback_site import (
    Incidents,
    Recipient,
    recipient_key,
    running_site,
    status_bytes,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.broker


def _feedback(site, name: str):
    return next(r for r in site.feedback.counters().recipients if r.recipient == name)


def _records(config, kind: str | None) -> list[dict]:
    return [r.data for r in read_records(config.policies.audit_log) if r.data.get("kind") == kind]


def test_a_status_round_trip_is_accepted_timed_and_audited(mosquitto, tmp_path: Path) -> None:
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="fb-round",
        recipients=[{"name": "police", "feedback_keys": jwk.name}],  # relative to the config file
    )
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "fb-round", "police", key, kid)
        site.submit((Incidents(config).alert("start", 1),))
        wait_until(police.received, what="the alert at the police")
        view = police.received()[0]
        police.send(view, "received")
        police.send(view, "acknowledged", operator="PC 4711")
        police.send(view, "dispatched")
        closed = police.send(view, "closed", disposition="confirmed", note="one person, left on arrival")
        police.publish_raw(closed)  # the same status again (a QoS 1 redelivery): counted once
        wait_until(lambda: _feedback(site, "police").duplicates == 1, what="the duplicate")
        counters = _feedback(site, "police")
        police.close()

    assert counters.statuses == {"received": 1, "acknowledged": 1, "dispatched": 1, "closed": 1}
    assert counters.rejected == {}
    assert counters.last_status == "closed"
    # Timed from the alert leaving the outbox to the first received / acknowledging status, on loopback.
    assert counters.received_seconds.count == 1 and counters.acknowledged_seconds.count == 1
    assert 0 < counters.received_seconds.sum_s < 5
    assert counters.received_seconds.sum_s <= counters.acknowledged_seconds.sum_s < 5
    count, issue = verify_log(config.policies.audit_log)
    assert issue is None and count == 5  # the alert sent, four statuses
    sent = _records(config, None)
    assert [(r["recipient"], r["incident_id"], r["severity"]) for r in sent] == [
        ("police", view["incidents"], "Severe")
    ]
    statuses = _records(config, "status")
    assert [s["status"] for s in statuses] == ["received", "acknowledged", "dispatched", "closed"]
    assert {s["alert_id"] for s in statuses} == {view["identifier"]}
    assert statuses[1]["operator"] == "PC 4711" and statuses[3]["disposition"] == "confirmed"
    assert all(s["kid"] == kid and "message_id" not in s for s in statuses)


def test_statuses_that_cannot_be_believed_are_rejected_counted_and_audited(mosquitto, tmp_path: Path) -> None:
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="fb-bad",
        recipients=[{"name": "police", "feedback_keys": str(jwk)}, {"name": "fire"}],
    )
    stranger = Ed25519PrivateKey.generate()
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "fb-bad", "police", key, kid)
        fire = Recipient(mosquitto.port, "edge", "fb-bad", "fire", stranger, key_id_for(stranger.public_key()))
        site.submit((Incidents(config).alert("start", 1),))
        wait_until(lambda: police.received() and fire.received(), what="the alert at both recipients")
        view = police.received()[0]
        ids = {"alert_id": view["identifier"], "incident_id": view["incidents"]}

        def signed(by: Ed25519PrivateKey, key_id: str, **fields: object) -> bytes:
            return status_bytes(by, key_id, **{"site_id": "fb-bad", "recipient": "police", **ids, **fields})

        bad = {
            "unknown_key": signed(stranger, key_id_for(stranger.public_key()), status="acknowledged"),
            "bad_signature": signed(stranger, kid, status="acknowledged"),  # forged: the police's kid, another key
            "wrong_type": sign_envelope(json.dumps({"status": "received"}).encode(), key, kid, TYP_ALERT),
            "not_json": b"\xff\xfe not json",
            "malformed": json.dumps({"protected": "!", "payload": "", "signature": ""}).encode(),
            "too_large": b"{" + b" " * 20_000 + b"}",
            "wrong_site": signed(key, kid, status="received", site_id="another-site"),
            "recipient_mismatch": signed(key, kid, status="received", recipient="fire"),
            "unknown_alert": signed(key, kid, status="received", alert_id="not-an-alert-we-sent"),
            "invalid_status": sign_envelope(json.dumps({"status": "seen"}).encode(), key, kid, "edge-status+json"),
        }
        for payload in bad.values():
            police.publish_raw(payload)
        fire.send(fire.received()[0], "received")  # fire has no feedback_keys: nothing of it can be believed
        police.publish_raw(signed(key, kid, status="received"), level="nobody")  # a level naming no recipient
        wait_until(lambda: sum(_feedback(site, "police").rejected.values()) == len(bad), 10, "every rejection")
        police.send(view, "acknowledged")  # the connection and the intake outlived all of it
        wait_until(lambda: _feedback(site, "police").statuses.get("acknowledged") == 1, what="the good status")
        counters = {r.recipient: r for r in site.feedback.counters().recipients}
        assert site.publisher.state.value == "connected"
        police.close()
        fire.close()

    assert counters["police"].rejected == dict.fromkeys(bad, 1)
    assert counters["fire"].rejected == {"unverifiable": 1}
    assert counters["(unknown)"].rejected == {"unknown_recipient": 1}
    rejected = _records(config, "status_rejected")
    assert sorted(r["reason"] for r in rejected) == sorted([*bad, "unverifiable", "unknown_recipient"])
    forged = next(r for r in rejected if r["reason"] == "bad_signature")
    assert forged["kid"] == kid and forged["recipient"] == "police" and len(forged["payload_sha256"]) == 64
    assert [s["status"] for s in _records(config, "status")] == ["acknowledged"]
    assert verify_log(config.policies.audit_log)[1] is None


def test_a_status_sent_while_the_site_was_away_arrives_when_it_is_back(mosquitto, tmp_path: Path) -> None:
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="fb-away",
        recipients=[{"name": "police", "feedback_keys": str(jwk)}],
    )
    police = Recipient(mosquitto.port, "edge", "fb-away", "police", key, kid)
    with running_site(config) as site:
        site.submit((Incidents(config).alert("start", 1),))
        wait_until(police.received, what="the alert at the police")
        site.feedback.wait_idle(5)
    view = police.received()[0]
    police.send(view, "acknowledged")  # the site is stopped: its MQTT 5 session keeps the status
    with running_site(config) as site:
        wait_until(lambda: _feedback(site, "police").statuses.get("acknowledged") == 1, what="the status")
    police.close()
    assert [s["status"] for s in _records(config, "status")] == ["acknowledged"]


def test_a_handler_that_fails_never_stops_the_connection(mosquitto, tmp_path: Path) -> None:
    seen: list[bytes] = []

    def handler(topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("a bug in a handler")
        seen.append(payload)

    subscription = Subscription("fb-boom/in/+", 1, handler)
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        MqttPublisher(MqttConfig(port=mosquitto.port), "fb-boom", box, subscriptions=[subscription]) as pub,
    ):
        pub.wait_connected(5)
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sender.connect("127.0.0.1", mosquitto.port)
        sender.loop_start()
        time.sleep(0.5)  # the publisher's SUBACK
        for payload in (b"boom", b"after"):
            sender.publish("fb-boom/in/x", payload, qos=1).wait_for_publish(5)
        wait_until(lambda: seen == [b"after"], what="the message after the failure")
        assert pub.state.value == "connected"
        sender.loop_stop()
        sender.disconnect()


def test_an_alert_the_audit_log_lists_is_known_to_a_site_that_starts_later(mosquitto, tmp_path: Path) -> None:
    from agent.delivery.sink import DeliverySink, OutboxStore
    from agent.privacy.audit import AuditLog
    from agent.runtime.assembly import dispatcher_from_config

    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="fb-later",
        recipients=[{"name": "police", "feedback_keys": str(jwk)}],
    )
    police = Recipient(mosquitto.port, "edge", "fb-later", "police", key, kid)
    # Sent and audited by a run without a feedback intake (`replay --publish` sends this way).
    with (
        Outbox(config.outbox) as box,
        MqttPublisher(config.mqtt, "fb-later", box) as pub,
        DeliverySink(
            dispatcher_from_config(config),
            OutboxStore(box, default_expiry_s=600),
            audit=AuditLog(config.policies.audit_log),
        ) as sink,
    ):
        sink.submit((Incidents(config).alert("start", 1),))
        wait_until(police.received, what="the alert at the police")
        assert pub.flush(5)
    with running_site(config) as site:
        police.send(police.received()[0], "received")
        wait_until(lambda: _feedback(site, "police").statuses.get("received") == 1, what="the status")
        assert _feedback(site, "police").rejected == {}
    police.close()
