"""The receiver against a real Mosquitto: forgeries, replays, stale alerts and hostile payloads are
rejected and counted, and valid alerts keep arriving after each, across restarts too."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.agency.status_sender import StatusSigner
from agent.agency.trust_registry import TrustRegistry
from agent.alerts.status import AlertStatus
from agent.delivery.jws import TYP_STATUS, open_envelope, verify_envelope
from tests.agency.receiving import Collector, ids, receiving, take
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, publish_raw, sign, signed_alert
from tests.brokers import MosquittoBroker


def _identifier(message: bytes) -> str:
    return str(json.loads(open_envelope(message).payload)["identifier"])


def test_forgeries_are_rejected_logged_and_counted(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site, south: Site, agency_log: list[str]
) -> None:
    north_for_south = sign(north.key, alert_data("depot-south", 1))
    real = signed_alert(north, 2)
    with receiving(broker, registry, tmp_path / "seen.sqlite") as receiver:
        publish_raw(
            broker.port,
            [
                (south.topic(), north_for_south),  # A's key claims B, on B's topics
                (north.topic(), north_for_south),  # ... or on its own
                (south.topic(), signed_alert(north, 3)),  # A's own alert under B's topics
                (north.topic(), real),
            ],
        )
        assert ids(take(receiver, 1)) == [_identifier(real)]
        assert receiver.counts.snapshot() == {"forged": 3}
    forged = [line for line in agency_log if line.startswith("event=alert_forged")]
    assert len(forged) == 3
    assert "site=depot-north" in forged[0] and "claims site depot-south" in forged[0]
    assert "under site depot-south's topics" in forged[2]


def test_a_replay_after_the_receiver_restarts_is_rejected(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site
) -> None:
    seen = tmp_path / "seen.sqlite"
    first, second = signed_alert(north, 11), signed_alert(north, 12)
    with receiving(broker, registry, seen) as receiver:
        publish_raw(broker.port, [(north.topic(), first)])
        assert ids(take(receiver, 1)) == [_identifier(first)]
    with receiving(broker, registry, seen) as receiver:
        # The same bytes again, and a re-signed copy of the same alert with other bytes.
        again = sign(north.key, {**json.loads(open_envelope(first).payload), "agreement": "other"})
        publish_raw(broker.port, [(north.topic(), first), (north.topic(), again), (north.topic(), second)])
        assert ids(take(receiver, 1)) == [_identifier(second)]
        assert receiver.duplicates == 2 and receiver.rejected == 0


def test_expired_stale_and_future_alerts_are_rejected(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site
) -> None:
    now = datetime.now(UTC)
    valid = signed_alert(north, 24)
    with receiving(broker, registry, tmp_path / "seen.sqlite") as receiver:
        publish_raw(
            broker.port,
            [
                (north.topic(), signed_alert(north, 21, sent=now - timedelta(minutes=5), ttl_s=60)),
                (north.topic(), signed_alert(north, 22, sent=now - timedelta(hours=25), ttl_s=7 * 86400)),
                (north.topic(), signed_alert(north, 23, sent=now + timedelta(hours=1))),
                (north.topic(), valid),
            ],
        )
        assert ids(take(receiver, 1)) == [_identifier(valid)]
        assert receiver.counts.snapshot() == {"expired": 1, "stale": 1, "from_future": 1}


def _hostile(north: Site, south: Site) -> list[tuple[str, bytes, str]]:
    """(topic, message, reason) of every kind of bad message."""
    wrong_types = alert_data("depot-north", 90)
    wrong_types["info"]["severity"] = 3
    status_like = sign(north.key, alert_data("depot-north", 91), typ=TYP_STATUS)
    envelope = json.loads(signed_alert(north, 92))
    envelope["payload"] = json.loads(signed_alert(north, 93))["payload"]
    v1 = {"alert": alert_data("depot-north", 94), "signature": {"alg": "EdDSA", "kid": north.kid, "sig": "AA"}}
    topic = north.topic()
    return [
        (topic, b"[" * 200_000 + b"]" * 200_000, "too_deep"),
        (topic, sign(north.key, b'{"schema_version":2,"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"), "too_deep"),
        (topic, b'{"protected":"' + b"A" * (3 << 20) + b'","payload":"","signature":""}', "too_large"),
        (topic, b"\xc3\x28\xff\xfe not utf-8", "not_json"),
        (topic, b"", "not_json"),
        (topic, sign(north.key, wrong_types), "bad_schema"),
        (topic, sign(north.key, b"[1,2,3]"), "bad_schema"),
        (topic, json.dumps(v1).encode(), "schema_v1"),
        (topic, json.dumps(envelope).encode(), "bad_signature"),
        (topic, status_like, "wrong_type"),
        (topic, signed_alert(north, 95, recipient="fire-brigade"), "not_for_me"),
        (topic, signed_alert(Site("depot-north"), 96), "unknown_key"),
        (south.topic(), sign(south.key, {"schema_version": 2}), "bad_schema"),
    ]


def test_hostile_payloads_are_rejected_counted_and_valid_alerts_still_arrive_after_each(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site, south: Site
) -> None:
    hostile = _hostile(north, south)
    threads_before = {t.name for t in threading.enumerate()}
    with receiving(broker, registry, tmp_path / "seen.sqlite") as receiver:
        for n, (topic, message, reason) in enumerate(hostile):
            valid = signed_alert(north, 100 + n)
            publish_raw(broker.port, [(topic, message), (north.topic(), valid)])
            assert ids(take(receiver, 1)) == [_identifier(valid)], f"nothing arrived after a {reason} message"
            assert receiver.counts.get(reason) >= 1, f"{reason} not counted: {receiver.counts.snapshot()}"
        expected: dict[str, int] = {}
        for _, _, reason in hostile:
            expected[reason] = expected.get(reason, 0) + 1
        assert receiver.counts.snapshot() == expected
        assert receiver.accepted == len(hostile)
    assert {t.name for t in threading.enumerate()} <= threads_before | {"MainThread"}


def test_a_persistent_session_keeps_rejected_messages_from_coming_back_and_valid_ones_from_being_lost(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site, south: Site
) -> None:
    seen = tmp_path / "seen.sqlite"
    session = {"client_id": "agency-persistent", "session_expiry_s": 300}
    with receiving(broker, registry, seen, **session):
        pass  # the broker now keeps the subscription
    hostile = _hostile(north, south)[:6]
    valid = [signed_alert(north, 200 + n) for n in range(3)]
    publish_raw(broker.port, [(t, m) for t, m, _ in hostile[:3]] + [(north.topic(), valid[0])])
    publish_raw(broker.port, [(t, m) for t, m, _ in hostile[3:]] + [(north.topic(), valid[1])])
    with receiving(broker, registry, seen, **session) as receiver:
        assert ids(take(receiver, 2)) == [_identifier(v) for v in valid[:2]]
        assert receiver.rejected == len(hostile)
        # Taken but not used before the receiver stops: not acknowledged, so it comes again.
        publish_raw(broker.port, [(north.topic(), valid[2])])
        assert receiver.get(10) is not None
    with receiving(broker, registry, seen, **session) as receiver:
        assert ids(take(receiver, 1)) == [_identifier(valid[2])]
        assert receiver.get(1.5) is None, "a message handled before came back"
        assert receiver.counts.snapshot() == {}


def test_accepted_alerts_are_answered_with_a_signed_received_status(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site
) -> None:
    recipient_key = Ed25519PrivateKey.generate()
    signer = StatusSigner(recipient_key, RECIPIENT)
    feedback = Collector(broker.port, "edge/depot-north/feedback/#")
    alert = alert_data("depot-north", 300)
    try:
        with receiving(broker, registry, tmp_path / "seen.sqlite", status_signer=signer) as receiver:
            publish_raw(broker.port, [(north.topic(), sign(north.key, alert))])
            assert len(take(receiver, 1)) == 1
            [(topic, message)] = feedback.wait_for(1)
    finally:
        feedback.close()
    assert topic == f"edge/depot-north/feedback/{RECIPIENT}"
    opened = open_envelope(message)
    assert opened.typ == TYP_STATUS and opened.kid == signer.kid
    status = AlertStatus.model_validate_json(verify_envelope(opened, recipient_key.public_key()))
    assert (status.status, status.site_id, status.recipient) == ("received", "depot-north", RECIPIENT)
    assert (status.alert_id, status.incident_id) == (alert["identifier"], alert["incidents"])
    assert receiver.statuses_sent == 1


@pytest.mark.parametrize("hostile_first", [True, False])
def test_no_status_is_sent_for_a_rejected_alert(
    tmp_path: Path, broker: MosquittoBroker, registry: TrustRegistry, north: Site, hostile_first: bool
) -> None:
    signer = StatusSigner(Ed25519PrivateKey.generate(), RECIPIENT)
    feedback = Collector(broker.port, "edge/+/feedback/#")
    bad = signed_alert(north, 400 + hostile_first, sent=datetime.now(UTC) - timedelta(days=2), ttl_s=7 * 86400)
    good = signed_alert(north, 410 + hostile_first)
    try:
        with receiving(broker, registry, tmp_path / "seen.sqlite", status_signer=signer) as receiver:
            publish_raw(
                broker.port,
                [(north.topic(), bad), (north.topic(), good)]
                if hostile_first
                else [(north.topic(), good), (north.topic(), bad)],
            )
            take(receiver, 1)
            messages = feedback.wait_for(1)
            assert receiver.get(0.5) is None
    finally:
        feedback.close()
    assert len(messages) == 1
    assert json.loads(open_envelope(messages[0][1]).payload)["alert_id"] == _identifier(good)
