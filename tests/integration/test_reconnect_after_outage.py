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
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from agent.agency.subscriber import AlertReceiver
from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher, PublisherState
from agent.delivery.signing import AlertSigner, load_or_create_signing_key
from tests.agency.receiving import receiving
from tests.brokers import MosquittoBroker
from tests.delivery.sample_alerts import make_alert, number, registry_for

pytestmark = pytest.mark.broker
SITE = "site-back"
TOPIC = f"edge/{SITE}/cam/alerts/yard"


@pytest.fixture()
def signer(tmp_path: Path) -> AlertSigner:
    return AlertSigner(load_or_create_signing_key(tmp_path / "key.pem"))


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    # Persistent, and the receiver below keeps a session: what is published while it reconnects waits for it.
    with MosquittoBroker(tmp_path / "broker", persistent=True) as running:
        yield running


def _received(receiver: AlertReceiver, timeout_s: float) -> int | None:
    """The number of the next alert accepted within `timeout_s` (used, so acknowledged), or None."""
    item = receiver.get(timeout_s)
    if item is None:
        return None
    receiver.done(item)
    return number(item)


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
    box.put(make_alert(signer, TOPIC, 1))
    time.sleep(outage_s)
    broker.start()
    back = time.monotonic()
    got = _received(receiver, 60)
    return time.monotonic() - back if got == 1 else None


def _receiver(tmp_path: Path, broker: MosquittoBroker, signer: AlertSigner) -> AbstractContextManager[AlertReceiver]:
    """A started, subscribed receiver that trusts the signer for the site, in a session the broker keeps."""
    return receiving(
        broker,
        registry_for(signer, SITE),
        tmp_path / "seen.sqlite",
        topic_filters=(f"edge/{SITE}/+/alerts/#",),
        client_id="agency-back",
        session_expiry_s=600,
    )


def test_reconnects_when_the_broker_answers_without_waiting_out_a_long_backoff(
    tmp_path: Path, broker: MosquittoBroker, signer: AlertSigner
) -> None:
    assert broker.port is not None
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        _receiver(tmp_path, broker, signer) as receiver,
        MqttPublisher(
            MqttConfig(port=broker.port), "site-back", box, reconnect_min_s=120, reconnect_max_s=120
        ) as publisher,
    ):
        publisher.wait_connected(5)
        box.put(make_alert(signer, TOPIC, 0))
        assert _received(receiver, 15) == 0
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
    tmp_path: Path, broker: MosquittoBroker, signer: AlertSigner
) -> None:
    assert broker.port is not None
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        _receiver(tmp_path, broker, signer) as receiver,
        MqttPublisher(MqttConfig(port=broker.port), "site-back", box) as publisher,  # the default backoff
    ):
        publisher.wait_connected(5)
        seconds = _outage_then_first_delivery_s(broker, box, publisher, receiver, signer, outage_s=45.0)
    print(f"broker back to first delivery after a 45 s outage: {seconds} s (default backoff 0.5-30 s)")
    assert seconds is not None, "the alert waiting in the outbox did not arrive within 60 s of the broker's return"
