"""After a broker outage the publisher is back as soon as the broker answers, not when its backoff runs out.

The first test makes the backoff far longer than the test waits (60 to 120 s
before the first retry), so a delivery within its deadline can only come from
noticing that the broker answers again; a broker that answers but refuses
the agent keeps the agent's backoff (no retry every second). The last test
measures, with the default
backoff and an outage long enough for it to reach its cap, the seconds from
the broker's return to the first delivery, and prints them (timing is a
figure to read, not something a test asserts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.agency.subscriber import AlertReceiver, ReceiverOptions, parse_broker_url
from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import OutboundMessage, Outbox
from agent.delivery.publisher import MqttPublisher, PublisherState
from agent.delivery.signing import AlertSigner, TrustStore, key_id_for, load_or_create_signing_key
from tests.brokers import MosquittoBroker

pytestmark = pytest.mark.broker
TOPIC = "edge/site-back/cam/alerts/yard"


@pytest.fixture()
def signer_and_trust(tmp_path: Path) -> tuple[AlertSigner, TrustStore]:
    key = load_or_create_signing_key(tmp_path / "key.pem")
    return AlertSigner(key), TrustStore({key_id_for(key.public_key()): key.public_key()})


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    # Persistent, and the receiver below keeps a session: what is published while it reconnects waits for it.
    with MosquittoBroker(tmp_path / "broker", persistent=True) as running:
        yield running


def _alert(signer: AlertSigner, n: int) -> OutboundMessage:
    sent = datetime.now(UTC)
    payload = signer.sign({"identifier": f"back-{n}", "n": n}, f"back-{n}", sent)
    return OutboundMessage.for_payload(TOPIC, payload, 1)


def _outage_then_first_delivery_s(
    broker: MosquittoBroker,
    box: Outbox,
    publisher: MqttPublisher,
    receiver: AlertReceiver,
    signer: AlertSigner,
    outage_s: float,
) -> float | None:
    """Stop the broker for `outage_s` with one alert waiting; seconds from its return to that alert's arrival."""
    broker.stop()
    deadline = time.monotonic() + 10
    while publisher.state is PublisherState.CONNECTED and time.monotonic() < deadline:
        time.sleep(0.05)
    box.put(_alert(signer, 1))
    time.sleep(outage_s)
    broker.start()
    back = time.monotonic()
    got = receiver.get(60)
    return time.monotonic() - back if got is not None and got.verified.alert["n"] == 1 else None


def _receiver(broker: MosquittoBroker, trust: TrustStore) -> AlertReceiver:
    options = ReceiverOptions(
        parse_broker_url(f"mqtt://127.0.0.1:{broker.port}"),
        "edge/site-back/+/alerts/#",
        client_id="agency-back",
        session_expiry_s=600,
    )
    return AlertReceiver(options, trust)


def test_reconnects_when_the_broker_answers_without_waiting_out_a_long_backoff(
    tmp_path: Path, broker: MosquittoBroker, signer_and_trust: tuple[AlertSigner, TrustStore]
) -> None:
    signer, trust = signer_and_trust
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        _receiver(broker, trust) as receiver,
        MqttPublisher(
            MqttConfig(port=broker.port), "site-back", box, reconnect_min_s=120, reconnect_max_s=120
        ) as publisher,
    ):
        receiver.wait_subscribed(10)
        publisher.wait_connected(5)
        box.put(_alert(signer, 0))
        first = receiver.get(15)
        assert first is not None and first.verified.alert["n"] == 0
        seconds = _outage_then_first_delivery_s(broker, box, publisher, receiver, signer, outage_s=3.0)
    print(f"broker back to first delivery: {seconds} s (reconnect backoff 60-120 s)")
    assert seconds is not None, "the alert waiting in the outbox did not arrive within 60 s of the broker's return"
    assert box_depth(tmp_path / "o.sqlite") == 0


def test_a_broker_that_refuses_the_agent_is_not_probed_into_a_retry_every_second(tmp_path: Path) -> None:
    # The port answers: only a port seen closed is probed, so a wrong password keeps its backoff.
    with (
        MosquittoBroker(tmp_path / "refusing", anonymous=False, users={"site": "right"}) as broker,
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
    ):
        config = MqttConfig.model_validate({"port": broker.password_port, "username": "site", "password": "wrong"})
        before = broker.log().count("New connection from")  # the fixture's own check that the broker listens
        with MqttPublisher(config, "site-refused", box, reconnect_min_s=10, reconnect_max_s=10) as publisher:
            time.sleep(4.5)  # the first retry comes 5 to 10 s after the refusal
            assert publisher.state is PublisherState.REFUSED
        attempts = broker.log().count("New connection from") - before
    assert attempts == 1, broker.log()


def box_depth(path: Path) -> int:
    with Outbox(OutboxConfig(path=path)) as box:
        return box.stats().depth


@pytest.mark.slow
def test_seconds_from_broker_back_to_first_delivery_after_a_long_outage(
    tmp_path: Path, broker: MosquittoBroker, signer_and_trust: tuple[AlertSigner, TrustStore]
) -> None:
    signer, trust = signer_and_trust
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        _receiver(broker, trust) as receiver,
        MqttPublisher(MqttConfig(port=broker.port), "site-back", box) as publisher,  # the default backoff
    ):
        receiver.wait_subscribed(10)
        publisher.wait_connected(5)
        seconds = _outage_then_first_delivery_s(broker, box, publisher, receiver, signer, outage_s=45.0)
    print(f"broker back to first delivery after a 45 s outage: {seconds} s (default backoff 0.5-30 s)")
    assert seconds is not None, "the alert waiting in the outbox did not arrive within 60 s of the broker's return"
